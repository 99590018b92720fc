"""Index pieces with no store: RRF, chunk boxes from page blocks, the crop decision, offline embeddings,
and the RAG benchmark's question generator (deterministic, answer page known)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document
from PIL import Image

from minimaxvl_tools.index import rrf, split_page
from minimaxvl_tools.index.answer import region_image
from minimaxvl_tools.profile import image_tokens


def test_rrf_fuses_rankings() -> None:
    fused = rrf([["a", "b", "c"], ["c", "a", "d"]])
    assert [k for k, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    weighted = rrf([["a", "b"], ["b", "a"]], k=10, weights=[1.0, 0.5])
    assert [k for k, _ in weighted] == ["a", "b"]  # the first list decides a tie of ranks
    assert weighted[0][1] == pytest.approx(1 / 11 + 0.5 / 12)


def test_chunks_keep_page_and_union_of_block_boxes() -> None:
    blocks = [
        {"text": "Invoice 2024-0117 from ACME", "box": [10, 10, 500, 40]},
        {"text": "Total due: 1,080.00 EUR", "bbox": [300, 900, 700, 940]},
        {"text": "no box here"},
    ]
    doc = Document(
        "Invoice 2024-0117 from ACME\n\n" + "filler words " * 10 + "\n\nTotal due: 1,080.00 EUR",
        metadata={"source": "/x.pdf", "page": 2, "page_number": 3, "blocks": blocks},
    )
    chunks = split_page(doc, chunk_size=60, chunk_overlap=0)
    assert all(c.page == 3 and c.source == "/x.pdf" for c in chunks)
    assert chunks[0].box == (10.0, 10.0, 500.0, 40.0)
    assert chunks[-1].box == (300.0, 900.0, 700.0, 940.0)
    assert any(c.box is None for c in chunks)  # the filler between blocks has no region
    # no blocks at all: chunks, no boxes
    plain = split_page(
        Document("some text " * 30, metadata={"source": "/y.pdf", "page": 1}), chunk_size=80, chunk_overlap=10
    )
    assert plain and all(c.box is None for c in plain)
    assert len({c.id for c in plain}) == len(plain)


def test_region_image_crops_only_when_cheaper() -> None:
    page = Image.new("RGB", (1700, 2200), "white")
    crop, box = region_image(page, [(900, 1900, 1550, 1960)])
    assert box is not None and image_tokens(*crop.size) < image_tokens(1700, 2200)
    assert max(crop.size) / min(crop.size) <= 4.01  # a one-line region is widened, not sent as a strip
    whole, none = region_image(page, [(0, 0, 1700, 2200)])
    assert none is None and whole.size == (1700, 2200)
    mixed, none = region_image(page, [(900, 1900, 1550, 1960), None])  # one hit without a region
    assert none is None and mixed.size == (1700, 2200)


def test_wordllama_embeddings_are_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from minimaxvl_tools.index import WordLlamaEmbeddings

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the embeddings tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    emb = WordLlamaEmbeddings()
    a, b, c = emb.embed_documents(["the invoice total", "amount due on the bill", "fire drill on friday"])
    assert len(a) == 256 and emb.name == "wordllama:l2_supercat:256"
    dot = lambda x, y: sum(p * q for p, q in zip(x, y, strict=True))  # noqa: E731
    assert dot(a, b) > dot(a, c)


def test_benchmark_questions_are_deterministic_with_known_pages(tmp_path: Path) -> None:
    from fpdf import FPDF

    from benchmarks.rag import make_questions

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    sentences = [
        "The compressor station delivers nitrogen to the packaging hall through insulated pipes.",
        "Operators calibrate the humidity sensors before every production shift begins here.",
        "Maintenance crews replace worn conveyor rollers during the scheduled summer shutdown.",
    ]
    for s in sentences:
        pdf.add_page()
        pdf.multi_cell(0, 8, s + " Shared footer line appears on every page.")
    path = tmp_path / "doc.pdf"
    pdf.output(str(path))
    first = make_questions([path], n=10)
    assert first == make_questions([path], n=10)
    assert len(first) == 3  # the footer sentence is on every page: never a question
    for q in first:
        original = sentences[q.page - 1]
        assert q.answer in original and q.answer not in q.text.split() and "what" in q.text
