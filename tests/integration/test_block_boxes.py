"""Boxes per block: every transcribed line/block keeps where it was read (page pixels, PDF points), in
OCRPage, OCRResult and the loader's Document metadata; cropping a box and reading it gives its text."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
from fpdf import FPDF

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.loaders import MiniMaxVLDocumentLoader
from minimaxvl_tools.local_ocr import LocalOCREngine
from minimaxvl_tools.pages import PageImage, iter_pages, ocr_page
from minimaxvl_tools.results import OCRResult
from minimaxvl_tools.testing import LocalVLLMServer
from minimaxvl_tools.testing.server import canvas_view
from tests.synthpages import DEJAVU, make_page

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not LocalOCREngine.available(), reason="needs tesseract"),
]


def _client(server: LocalVLLMServer) -> MiniMaxVLClient:
    return MiniMaxVLClient(base_url=server.base_url, max_retries=0, max_concurrency=2)


def _alike(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, " ".join(a.split()), " ".join(b.split())).ratio()


def test_tiled_page_blocks_map_back_onto_the_page(vllm_reader_server: LocalVLLMServer) -> None:
    page = make_page(1400, 1800, font_px=16, columns=2, seed=11)
    res = ocr_page(_client(vllm_reader_server), PageImage(1, 1, page.image), plain=True, min_x_height=12.0)
    assert res.status == "ok" and len(res.crops) >= 2 and res.blocks
    assert "\n".join(b.text for b in res.blocks).split() == res.text.split()  # blocks cover the text
    engine = LocalOCREngine(psm=6)
    checked = 0
    for block in res.blocks[:: max(1, len(res.blocks) // 6)]:
        left, top, right, bottom = block.box
        assert 0 <= left < right <= page.image.width and 0 <= top < bottom <= page.image.height
        assert block.pdf_box is None  # an image, not a PDF page
        crop = page.image.crop((left - 2, top - 2, right + 2, bottom + 2))
        assert _alike(engine.ocr(canvas_view(crop)).text, block.text) >= 0.8, block
        checked += 1
    assert checked >= 3
    assert any(b.kind == "line" for b in res.blocks)  # lines and text rows agree: one box per line
    assert OCRResult(source="x", pages=[res]).blocks[0] == (1, res.blocks[0])


def _pdf(path: Path) -> list[tuple[str, float, float, float]]:
    """A one-page PDF of lines at known places: (text, x, y of the cell top, text width) in points."""
    pdf = FPDF(unit="pt", format="letter")
    pdf.add_page()
    pdf.add_font("DejaVu", fname=DEJAVU)
    pdf.set_font("DejaVu", size=14)
    placed = []
    for i, text in enumerate(
        ["Quarterly report of river clock", "Invoice total amount 4521", "Signed north"]
    ):
        x, y = 72.0, 100.0 + 150.0 * i
        pdf.set_xy(x, y)
        pdf.cell(400, 20, text)
        placed.append((text, x, y, pdf.get_string_width(text)))
    pdf.output(str(path))
    return placed


def test_pdf_page_blocks_carry_pdf_points_and_loader_metadata(
    vllm_reader_server: LocalVLLMServer, tmp_path: Path
) -> None:
    path = tmp_path / "placed.pdf"
    placed = _pdf(path)
    page = next(iter_pages(path, dpi=100))
    res = ocr_page(_client(vllm_reader_server), page, plain=True)
    assert res.status == "ok" and res.blocks
    for text, x, y, width in placed:
        block = max(res.blocks, key=lambda b: _alike(b.text, text))
        assert _alike(block.text, text) >= 0.8 and block.pdf_box is not None
        left, top, right, bottom = block.pdf_box
        assert abs(left - x) <= 6 and y - 4 <= top <= y + 20 and bottom <= y + 30  # where it was printed
        assert 0.85 * width <= right - left <= 1.1 * width
    docs = MiniMaxVLDocumentLoader(
        path,
        mode="vlm",
        client=_client(vllm_reader_server),
        dpi=100,
        cache_dir=tmp_path / "c",
        detect_rotation=False,
        plain=True,
    ).load()
    meta = docs[0].metadata
    blocks = meta["blocks"]
    json.dumps(meta)  # JSON-serialisable
    assert blocks and all(
        None not in b.values() and set(b) <= {"box", "pdf_box", "kind", "span"} for b in blocks
    )
    spans = [b["span"] for b in blocks if "span" in b]
    assert spans and all(docs[0].page_content[a:b].strip() for a, b in spans)
    assert any("Invoice total" in docs[0].page_content[a:b] for a, b in spans)
