"""Small-print measurement and the plans it drives: big print goes as one image, fine print is cut at the
resolution it needs (never above the render's), and the token cost follows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fpdf import FPDF
from PIL import Image

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.images.quality import estimate_x_height
from minimaxvl_tools.pages import MIN_X_HEIGHT, cut_page, plan_page, plan_page_image
from minimaxvl_tools.pdf import render_page

DPI = 200
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "wizards",
    "quietly",
    "hex",
    "number",
]


def _page(tmp: Path, sizes: list[float], *, fmt: str = "letter", spacing: float = 1.2) -> Image.Image:
    """A page rendered at 200 dpi: lines of words in each of ``sizes`` (pt), one block after another."""
    pdf = FPDF(format=fmt)
    pdf.add_page()
    pdf.set_auto_page_break(False)
    if DEJAVU.exists():
        pdf.add_font("DejaVu", fname=str(DEJAVU))
        pdf.set_font("DejaVu")
    else:  # pragma: no cover - the CI image installs fonts-dejavu-core
        pdf.set_font("Helvetica")
    rng = np.random.default_rng(len(sizes))
    y = 15.0
    for size in sizes:
        pdf.set_font_size(size)
        line_mm = size * spacing * 25.4 / 72
        for _ in range(int(230 / len(sizes) // line_mm)):
            pdf.set_xy(15, y)
            pdf.cell(180, line_mm, " ".join(rng.choice(WORDS, 12)))
            y += line_mm
    path = tmp / f"p{'_'.join(str(s) for s in sizes)}.pdf"
    pdf.output(str(path))
    image = render_page(path, 1, dpi=DPI).image
    assert image is not None
    return image


@pytest.mark.parametrize("size", [6.0, 8.0, 10.0, 14.0])
def test_x_height_of_rendered_print(tmp_path: Path, size: float) -> None:
    em = size / 72 * DPI  # pixels
    x = estimate_x_height(_page(tmp_path, [size]))
    assert x is not None
    assert 0.45 * em <= x <= 0.65 * em  # DejaVu Sans' x-height is 0.545 em


def test_single_spaced_lines_are_still_told_apart(tmp_path: Path) -> None:
    x = estimate_x_height(_page(tmp_path, [8.0], spacing=1.0))
    assert x is not None and x <= 0.65 * (8 / 72 * DPI)  # lines that touch are not measured as one


def test_small_print_wins_on_a_mixed_page(tmp_path: Path) -> None:
    mixed = estimate_x_height(_page(tmp_path, [12.0, 12.0, 12.0, 6.0]))  # body text and a footnote block
    small = estimate_x_height(_page(tmp_path, [6.0]))
    assert mixed is not None and small is not None and abs(mixed - small) <= 1.5


def test_no_text_no_estimate() -> None:
    assert estimate_x_height(Image.new("RGB", (800, 1000), "white")) is None
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (600, 800), dtype=np.uint8))
    blurred = photo.resize((80, 60)).resize((800, 600))  # smooth gradients: no text lines
    assert estimate_x_height(blurred) is None
    with pytest.raises(InvalidInputError, match="percentile"):
        estimate_x_height(Image.new("L", (10, 10)), percentile=120)


def test_plan_follows_the_print_size() -> None:
    w, h = 1700, 2200  # letter at 200 dpi
    native = plan_page(w, h)
    assert native.mode == "tiles" and native.scale == 1.0  # unmeasured: crops at the render's resolution
    big = plan_page(w, h, x_height=19.0)  # 12 pt
    assert big.mode == "single" and big.size is not None
    assert big.size.scale * 19.0 >= MIN_X_HEIGHT and big.tokens < native.tokens / 3
    small = plan_page(w, h, x_height=12.0)  # 8 pt: one canvas would show it at ~7 px
    assert small.mode == "tiles" and small.scale * 12.0 >= MIN_X_HEIGHT and small.scale < 1.0
    assert small.tokens < native.tokens
    tiny = plan_page(w, h, x_height=5.0)  # needs more than the render has: crops at 1.0, never upscaled
    assert tiny.mode == "tiles" and tiny.scale == 1.0 and tiny.tokens == native.tokens
    stricter = plan_page(w, h, x_height=19.0, min_x_height=14.0)
    assert stricter.mode == "tiles" and stricter.tokens > big.tokens
    for plan in (small, tiny):  # boxes are in page pixels and cover the page
        assert plan.boxes[0][:2] == (0, 0) and plan.boxes[-1][2:] == (w, h)
    assert plan_page(w, h, x_height=12.0, tile=False).mode == "single"
    with pytest.raises(InvalidInputError, match="x_height"):
        plan_page(w, h, x_height=0.0)


def test_plan_page_image_and_cut_page(tmp_path: Path) -> None:
    large = plan_page_image(_page(tmp_path, [12.0]))
    assert large.mode == "single" and large.x_height is not None
    fine_image = _page(tmp_path, [6.0])
    fine = plan_page_image(fine_image)
    assert fine.mode == "tiles" and fine.x_height is not None
    crops = cut_page(fine_image, fine)
    assert len(crops) == fine.requests
    assert [img.size for img, _ in crops] == [t.size for t in fine.tiles.tiles]  # type: ignore[union-attr]
    assert sum(t.tokens for _, t in crops) == fine.tokens
    with pytest.raises(InvalidInputError, match="tiled plan"):
        cut_page(fine_image, large)
    with pytest.raises(InvalidInputError, match="plan is for"):
        cut_page(fine_image.resize((100, 100)), fine)
