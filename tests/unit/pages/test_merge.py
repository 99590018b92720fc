"""merge_overlapping / join_overlap: crop transcriptions are merged without duplicating the overlap."""

from __future__ import annotations

import base64
import io
import random
from pathlib import Path

import pytest
from fpdf import FPDF
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from minimaxvl_tools.errors import AccessDeniedError, InvalidInputError
from minimaxvl_tools.images.policy import InputPolicy
from minimaxvl_tools.pages import clean_transcription, iter_pages, join_overlap, merge_overlapping, plan_page
from minimaxvl_tools.profile import image_tokens

LINES = [f"Line {i:02d}: the quick brown fox {i * 7} jumps over lazy dog number {i}" for i in range(40)]


def _text(a: int, b: int) -> str:
    return "\n".join(LINES[a:b])


def test_exact_overlap_is_kept_once() -> None:
    merged = join_overlap(_text(0, 12), _text(9, 20))
    assert merged == _text(0, 20)


def test_no_overlap_concatenates() -> None:
    assert join_overlap(_text(0, 5), _text(5, 10)) == _text(0, 10)


def test_fuzzy_overlap_with_ocr_noise() -> None:
    second = _text(9, 20).replace("quick", "qu1ck", 2).replace("lazy", "1azy", 1)
    merged = join_overlap(_text(0, 12), second)
    assert merged.count("Line 10:") == 1 and merged.count("Line 11:") == 1
    assert merged.splitlines()[:12] == LINES[:12]
    assert merged.splitlines()[-1] == LINES[19]


def test_garbled_edge_lines_are_skipped() -> None:
    # the last line of the top crop and the first of the bottom crop were cut through by the crop edge
    first = _text(0, 12) + "\nLi~e 12: tbe qu"
    second = "ne 09 wn fox 63\n" + _text(10, 20)
    merged = join_overlap(first, second)
    assert merged == _text(0, 20)


def test_blank_lines_do_not_break_matching() -> None:
    first = "# Title\n\n" + _text(0, 6) + "\n\n" + _text(6, 8)
    second = _text(6, 8) + "\n\n" + _text(8, 12)
    merged = join_overlap(first, second)
    assert merged.count("Line 06:") == 1 and merged.count("Line 07:") == 1
    assert "Line 11:" in merged


def test_weak_lines_alone_are_not_an_overlap() -> None:
    # a table rule line is common to both but is no evidence of overlap
    first = "| a | b |\n|---|---|"
    second = "|---|---|\n| c | d |"
    assert join_overlap(first, second).count("|---|---|") == 2


def test_empty_sides() -> None:
    assert join_overlap("", "abc") == "abc"
    assert join_overlap("abc\n", "  \n") == "abc"


def test_merge_grid_rows_then_columns() -> None:
    # 2 rows x 1 column of strips plus a third row; given out of order
    items = [
        (_text(18, 30), (0, 1800, 1000, 2800)),
        (_text(0, 12), (0, 0, 1000, 1000)),
        (_text(10, 20), (0, 900, 1000, 1900)),
    ]
    assert merge_overlapping(items) == _text(0, 30)


def test_merge_row_of_two_columns_left_then_right() -> None:
    items = [(_text(5, 10), (900, 0, 1900, 1000)), (_text(0, 5), (0, 10, 1000, 1010))]
    assert merge_overlapping(items) == _text(0, 10)


def test_clean_transcription_strips_fence_and_blank_marker() -> None:
    assert clean_transcription("```markdown\n# A\ntext\n```") == "# A\ntext"
    assert clean_transcription("[blank page]") == ""
    assert clean_transcription("  plain  ") == "plain"


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=3, max_value=6),
    overlap=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_property_strips_merge_to_the_original(n: int, overlap: int, seed: int) -> None:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "total", "invoice", "2024", "€ 13.50", "page", "report"]
    lines = [f"{i} " + " ".join(rng.choice(words) for _ in range(rng.randint(2, 6))) for i in range(60)]
    step = len(lines) // n
    items = []
    for k in range(n):
        a = max(0, k * step - overlap)
        b = len(lines) if k == n - 1 else (k + 1) * step
        items.append(("\n".join(lines[a:b]), (0, k * 500, 1000, k * 500 + 540)))
    assert merge_overlapping(items) == "\n".join(lines)


# ------------------------------------------------------------------ the rest of pages.py (no server)
def _tiff(path: str, n: int) -> None:
    frames = [Image.new("RGB", (120, 80), (i * 40, 0, 0)) for i in range(n)]
    frames[0].save(path, save_all=True, append_images=frames[1:])


def test_iter_pages_over_image_inputs(tmp_path: Path) -> None:
    img = Image.new("RGB", (50, 40), "white")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data_url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    for src in (img, buf.getvalue(), data_url):
        pages = list(iter_pages(src))
        assert [(p.number, p.page_count, p.image.size) for p in pages] == [(1, 1, (50, 40))]
        assert not pages[0].has_text_layer
    tiff = str(tmp_path / "scan.tiff")
    _tiff(tiff, 3)
    pages = list(iter_pages(tiff, pages="2-3", policy=InputPolicy(allowed_roots=[tmp_path])))
    assert [(p.number, p.page_count) for p in pages] == [(2, 3), (3, 3)]
    assert pages[0].image.getpixel((0, 0))[0] == 40


def test_iter_pages_pdf_text_layer_and_no_render(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for t in ("alpha page", "beta page"):
        pdf.add_page()
        pdf.cell(0, 10, t)
    path = tmp_path / "x.pdf"
    pdf.output(str(path))
    pages = list(iter_pages(path, dpi=50))
    assert [p.number for p in pages] == [1, 2] and "beta" in pages[1].text_layer and pages[1].has_text_layer
    assert pages[0].image.size[0] > 100
    lazy = list(iter_pages(str(path), pages=[2], render=False))
    assert len(lazy) == 1 and lazy[0].image is None and "beta" in lazy[0].text_layer
    raw = list(iter_pages(path.read_bytes(), dpi=50))  # PDF as bytes, sniffed by content
    assert len(raw) == 2


def test_iter_pages_errors_name_the_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"nope\.png"):
        list(iter_pages(str(tmp_path / "nope.png")))
    with pytest.raises(AccessDeniedError):
        list(iter_pages("/etc/hostname", policy=InputPolicy(allowed_roots=[tmp_path])))
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 broken")
    with pytest.raises(InvalidInputError, match=r"bad\.pdf"):
        list(iter_pages(bad))


def test_plan_page_single_and_tiles() -> None:
    small = plan_page(800, 600)
    assert small.mode == "single" and small.requests == 1 and small.crops == 0
    assert small.tokens == image_tokens(*small.size.final)  # type: ignore[union-attr]
    a4 = plan_page(1654, 2339)  # A4 at 200 dpi: too dense for one canvas
    assert a4.mode == "tiles" and a4.requests == len(a4.boxes) >= 2
    assert all(b[0] == 0 and b[2] == 1654 for b in a4.boxes)  # full-width strips: lines stay whole
    assert a4.boxes[0][1] == 0 and a4.boxes[-1][3] == 2339
    assert all(a[3] > b[1] for a, b in zip(a4.boxes, a4.boxes[1:], strict=False))  # strips overlap
    wide = plan_page(2480, 3508)  # wider than any canvas: scaled to 2016 first
    assert wide.mode == "tiles" and wide.scale < 1 and wide.tiled_size[0] == 2016
    assert wide.boxes[-1][3] == 3508 and wide.boxes[0][2] == 2480  # boxes in page pixels
    assert plan_page(1654, 2339, tile=False).mode == "single"
    forced = plan_page(800, 600, tile=True)
    assert forced.mode == "single"  # one crop would be the whole page: no tiling
