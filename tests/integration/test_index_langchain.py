"""LangChain plug points and answers over the index, against LocalVLLMServer (a TEST DOUBLE of vLLM:
scripted answers, no model): the retriever's standard tests, ``ask`` with region crops and citations,
MiniMaxVLImageBlobParser inside PyPDFium2Loader, ChatMiniMaxVL inside LLMImageBlobParser, the
OpenAI-compatible embeddings setting, and the scanned-PDF RAG agent's second run reading no page.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests
from PIL import Image, ImageDraw, ImageFont

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.index import MiniMaxVLIndexRetriever, PageIndex
from minimaxvl_tools.profile import image_tokens
from minimaxvl_tools.testing.server import LocalVLLMServer, Reply

pytestmark = pytest.mark.timeout(90)
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MINIMAXVL_EMBED_BASE_URL", raising=False)


def client_for(server: LocalVLLMServer) -> MiniMaxVLClient:
    return MiniMaxVLClient(base_url=server.base_url, max_retries=0, backoff_base=0.01)


def _request_images(body: dict[str, Any]) -> list[Image.Image]:
    out = []
    for m in body["messages"]:
        if isinstance(m.get("content"), list):
            for p in m["content"]:
                if p.get("type") == "image_url":
                    data = p["image_url"]["url"].split(",", 1)[1]
                    out.append(Image.open(io.BytesIO(base64.b64decode(data))))
    return out


# ------------------------------------------------------------------ retriever standard tests
@functools.cache
def _retriever_store() -> str:
    store = Path(tempfile.mkdtemp(prefix="minimaxvl-retriever-")) / "store"
    ix = PageIndex(store)
    docs = [
        Document(
            f"Invoice {i}: the total due is {100 * i} euros, payable within 30 days.",
            metadata={"source": f"/docs/invoice{i}.pdf", "page": 0, "page_number": 1, "total_pages": 1},
        )
        for i in range(1, 6)
    ]
    ix.add_documents(docs)
    return str(store)


class TestIndexRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[MiniMaxVLIndexRetriever]:
        return MiniMaxVLIndexRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"store": _retriever_store(), "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "what is the total due on the invoice?"


def test_retriever_metadata_cites_page_and_box() -> None:
    hits = MiniMaxVLIndexRetriever(store=_retriever_store(), k=1).invoke("invoice 3 total due 300 euros")
    assert hits[0].metadata["source"] == "/docs/invoice3.pdf" and hits[0].metadata["page"] == 1
    assert "box" in hits[0].metadata


# ------------------------------------------------------------------ ask with regions
def _page_with_regions(path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A 1700x2200 page image: a title at the top, the total in a box near the bottom."""
    img = Image.new("RGB", (1700, 2200), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=40)
    blocks = [
        {"text": "ACME Components Ltd. Invoice 2024-0117", "box": [120, 100, 1300, 160]},
        {"text": "Delivery of 40 valves to the Alpha plant", "box": [120, 700, 1300, 760]},
        {"text": "Total due: 1,080.00 EUR", "box": [900, 1900, 1550, 1960]},
    ]
    for b in blocks:
        d.text((b["box"][0], b["box"][1]), b["text"], fill="black", font=font)
    img.save(path)
    return path, blocks


def test_ask_sends_the_cited_region_and_cites_its_box(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    from minimaxvl_tools.index.answer import ask

    png, blocks = _page_with_regions(tmp_path / "invoice.png")
    ix = PageIndex(tmp_path / "store", chunk_size=60, chunk_overlap=0)
    text = "\n\n".join(b["text"] for b in blocks)
    ix.add_documents(
        [
            Document(
                text,
                metadata={
                    "source": str(png),
                    "page": 0,
                    "page_number": 1,
                    "total_pages": 1,
                    "blocks": blocks,
                },
            )
        ]
    )
    answer = {
        "answer": "1,080.00 EUR",
        "short_answer": "1,080.00 EUR",
        "pages": [1],
        "evidence": "Total due: 1,080.00 EUR",
        "confidence": 0.9,
        "found": True,
    }
    vllm_server.set_responder(lambda body: Reply(text=json.dumps(answer)))
    res = ask(ix, "What is the total due?", client=client_for(vllm_server), k=1, online=True)
    assert res.answer == "1,080.00 EUR" and res.found
    (body,) = vllm_server.requests
    (sent,) = _request_images(body)
    assert sent.width < 1700 and sent.height < 2200  # a crop, not the page
    assert res.cropped == 1 and res.image_tokens < image_tokens(1700, 2200)
    (cite,) = res.citations
    assert cite["source"] == str(png) and cite["page"] == 1
    left, top, right, bottom = cite["box"]
    assert left <= 900 and top <= 1900 and right >= 1550 and bottom >= 1960  # holds the total's block
    assert bottom - top < 2200 / 2
    # offline: the extractive answer, flagged, citing the chunk's box
    off = ask(ix, "What is the total due?", k=1, online=False)
    assert "1,080.00" in off.answer and off.engine.startswith("offline")
    assert off.citations[0]["box"] == [900.0, 1900.0, 1550.0, 1960.0]


def test_ask_sends_the_whole_page_when_no_box_is_known(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    from minimaxvl_tools.index.answer import ask

    png, blocks = _page_with_regions(tmp_path / "invoice.png")
    ix = PageIndex(tmp_path / "store")
    ix.add_documents(
        [
            Document(
                "\n".join(b["text"] for b in blocks),
                metadata={"source": str(png), "page": 0, "page_number": 1},
            )
        ]
    )
    vllm_server.set_responder(
        lambda body: Reply(
            text=json.dumps(
                {"answer": "1,080.00 EUR", "pages": [1], "evidence": "", "found": True, "confidence": 0.9}
            )
        )
    )
    res = ask(ix, "What is the total due?", client=client_for(vllm_server), online=True)
    (sent,) = _request_images(vllm_server.requests[0])
    assert res.cropped == 0 and res.citations == [{"source": str(png), "page": 1, "box": None}]
    assert sent.width / sent.height == pytest.approx(1700 / 2200, rel=0.02)


# ------------------------------------------------------------------ blob parsers
def _pdf_with_embedded_scan(path: Path) -> tuple[Path, tuple[int, int]]:
    from fpdf import FPDF

    scan = Image.new("L", (1400, 900), 255)
    ImageDraw.Draw(scan).text(
        (60, 60), "EMBEDDED SCAN: order 7731", fill=0, font=ImageFont.load_default(size=48)
    )
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(0, 10, "Cover note with one scanned attachment below.")
    pdf.image(scan, x=10, y=30, w=180)
    pdf.output(str(path))
    return path, scan.size


def test_blob_parser_reads_embedded_scans_at_canvas_size(
    vllm_server: LocalVLLMServer, tmp_path: Path
) -> None:
    from langchain_community.document_loaders import PyPDFium2Loader

    from minimaxvl_tools import MiniMaxVLImageBlobParser
    from minimaxvl_tools.pages import plan_page

    pdf, size = _pdf_with_embedded_scan(tmp_path / "note.pdf")
    vllm_server.set_responder(lambda body: Reply(text="EMBEDDED SCAN: order 7731"))
    parser = MiniMaxVLImageBlobParser(client=client_for(vllm_server), plain=True)
    docs = PyPDFium2Loader(str(pdf), extract_images=True, images_parser=parser).load()
    assert len(docs) == 1
    assert "Cover note" in docs[0].page_content and "order 7731" in docs[0].page_content
    (body,) = vllm_server.requests
    (sent,) = _request_images(body)
    plan = plan_page(*size)
    assert plan.mode == "single" and image_tokens(*sent.size) == plan.tokens
    assert sent.size != size  # resized onto the canvas, not sent as extracted


def test_chat_model_inside_llm_image_blob_parser(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    from langchain_community.document_loaders.parsers.images import LLMImageBlobParser
    from langchain_core.documents.base import Blob

    from minimaxvl_tools import ChatMiniMaxVL

    img = Image.new("RGB", (800, 600), "white")
    ImageDraw.Draw(img).text((40, 40), "Figure 3: pressure over time", fill="black")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    vllm_server.set_responder(lambda body: Reply(text="A line chart of pressure over time."))
    parser = LLMImageBlobParser(model=ChatMiniMaxVL(client=client_for(vllm_server)))
    (doc,) = parser.lazy_parse(
        Blob.from_data(buf.getvalue(), path=str(tmp_path / "fig.png"), mime_type="image/png")
    )
    assert doc.page_content == "A line chart of pressure over time."
    (body,) = vllm_server.requests
    assert len(_request_images(body)) == 1


# ------------------------------------------------------------------ embeddings endpoint
class _EmbeddingsHandler(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible /v1/embeddings (deterministic letter-count vectors), for the setting."""

    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": [float(t.lower().count(c)) + 0.01 for c in "abcdefghijklmnopqrstuvwxyz"],
            }
            for i, t in enumerate(inputs)
        ]
        out = json.dumps(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


def test_openai_compatible_embeddings_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from minimaxvl_tools.errors import IndexStoreError
    from minimaxvl_tools.index import WordLlamaEmbeddings, embeddings_from_env

    srv = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MINIMAXVL_EMBED_BASE_URL", f"http://127.0.0.1:{srv.server_port}/v1")
        monkeypatch.setenv("MINIMAXVL_EMBED_MODEL", "test-embedder")
        emb = embeddings_from_env()
        ix = PageIndex(tmp_path / "store", embeddings=emb)
        ix.add_documents(
            [
                Document("zebra zoo", metadata={"source": "/a.pdf", "page": 0, "page_number": 1}),
                Document("apple banana", metadata={"source": "/b.pdf", "page": 0, "page_number": 1}),
            ]
        )
        assert ix.search("zzz", k=1, method="dense")[0].metadata["source"] == "/a.pdf"
        assert {b["model"] for b in _EmbeddingsHandler.seen} == {"test-embedder"}
        with pytest.raises(IndexStoreError, match="openai:test-embedder"):
            PageIndex(tmp_path / "store", embeddings=WordLlamaEmbeddings())
    finally:
        srv.shutdown()


# ------------------------------------------------------------------ the agent's second run
def test_rag_second_run_reads_and_indexes_no_page(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    from agents.scanned_pdf_rag import run

    folder = tmp_path / "scans"
    folder.mkdir()
    pdf = shutil.copy(SAMPLES / "scanned_report.pdf", folder / "scanned_report.pdf")
    pages = iter(
        ["# INVOICE\n\nTotal due: 1,080.00 EUR", "# MEMO\n\nFire drill on Friday", "# TABLE\n\nAlpha 1200"]
    )
    ocr_calls: list[int] = []

    def respond(body: dict[str, Any]) -> Reply:
        if (body.get("response_format") or {}).get("type") == "json_schema":
            return Reply(
                text=json.dumps(
                    {
                        "answer": "1,080.00 EUR",
                        "pages": [1],
                        "evidence": "Total due",
                        "found": True,
                        "confidence": 0.9,
                    }
                )
            )
        prompt = " ".join(
            p.get("text", "")
            for m in body["messages"]
            if isinstance(m["content"], list)
            for p in m["content"]
            if p.get("type") == "text"
        )
        if "crop" not in prompt or "crop 1 of" in prompt:
            ocr_calls.append(1)
            return Reply(text=next(pages))
        return Reply(text="")

    vllm_server.set_responder(respond)
    kw = {
        "mode": "vlm",
        # one page at a time, so the scripted transcriptions reach pages 1, 2, 3 in order
        "client": MiniMaxVLClient(base_url=vllm_server.base_url, max_retries=0, max_concurrency=1),
        "cache_dir": tmp_path / "cache",
        "detect_rotation": False,
    }
    first = run("What is the total due?", [folder], **kw)
    assert first.pages_read == 3 and first.pages_indexed == 3 and len(ocr_calls) == 3
    shutil.rmtree(tmp_path / "cache" / "pages")  # the page cache is gone: only the index can answer
    vllm_server.reset()
    vllm_server.set_responder(respond)
    second = run("What is the total due?", [folder], **kw)
    assert second.pages_read == 0 and second.pages_indexed == 3
    assert len(ocr_calls) == 3  # no page read again
    assert len(vllm_server.requests) == 1  # only the question
    assert second.answer == "1,080.00 EUR" and [(c["source"], c["page"]) for c in second.citations] == [
        (str(pdf), 1)
    ]
