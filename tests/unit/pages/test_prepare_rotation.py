"""Rotation detection is cheap by default: Tesseract runs only on pages the image-only check suspects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont

from minimaxvl_tools.images.quality import detect_rotation
from minimaxvl_tools.local_ocr import LocalOCREngine, LocalOCRResult
from minimaxvl_tools.pages import PageImage
from minimaxvl_tools.pages.prepare import upright as turn_upright

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LINES = [
    "Quarterly report for the northern region",
    "Revenue grew by twelve percent this year",
    "The board approved the new budget plan",
    "Shipping costs were lower than expected",
    "Please contact the finance office today",
]

needs_tesseract = pytest.mark.skipif(
    not LocalOCREngine.available() or not LocalOCREngine.osd_available(),
    reason="tesseract with osd data not installed (apt-get install tesseract-ocr)",
)


class CountingEngine(LocalOCREngine):
    """The real local engine, counting how often Tesseract is asked."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls = 0

    def orientation_details(self, image: Image.Image) -> tuple[int, float] | None:
        self.calls += 1
        return super().orientation_details(image)

    def ocr(self, image: Image.Image) -> LocalOCRResult:
        self.calls += 1
        return super().ocr(image)


def page(turned: int = 0) -> Image.Image:
    img = Image.new("L", (620, 877), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 18)
    for i, line in enumerate(LINES):
        draw.text((40, 60 + i * 32), line, font=font, fill=0)
    return img.convert("RGB").rotate(-turned, expand=True)


@needs_tesseract
def test_upright_page_costs_no_tesseract_run() -> None:
    engine = CountingEngine()
    check = detect_rotation(page(), engine=engine)
    assert check.angle == 0 and check.method == "projection+layout"
    assert engine.calls == 0


@needs_tesseract
@pytest.mark.parametrize("turned", [90, 180, 270])
def test_rotated_pages_still_go_to_osd_and_are_corrected(turned: int) -> None:
    engine = CountingEngine()
    check = detect_rotation(page(turned), engine=engine)
    assert check.angle == (360 - turned) % 360, check
    assert check.method == "osd"
    assert engine.calls == 1


@needs_tesseract
def test_precheck_false_asks_tesseract_about_every_page() -> None:
    engine = CountingEngine()
    check = detect_rotation(page(), engine=engine, precheck=False)
    assert check.angle == 0 and check.method == "osd"
    assert engine.calls == 1


@needs_tesseract
def test_upright_call_site_skips_tesseract_on_upright_pages() -> None:
    engine = CountingEngine()
    upright = PageImage(number=1, page_count=2, image=page(), source="a.png")
    turned = PageImage(number=2, page_count=2, image=page(180), source="a.png")
    same, notes = turn_upright(upright, engine)
    assert same is upright and notes == [] and engine.calls == 0
    fixed, notes = turn_upright(turned, engine)
    assert fixed.rotation == 180 and engine.calls == 1
    assert "osd" in notes[0]


# a third-party PDF from a Debian package (libtasn1-doc 4.19.0, installed by scripts/setup.sh)
LIBTASN1_PDF = Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf")


@needs_tesseract
@pytest.mark.skipif(not LIBTASN1_PDF.exists(), reason="apt-get install libtasn1-doc")
def test_real_pdf_pages_upright_skip_tesseract_and_turned_ones_are_found() -> None:
    from minimaxvl_tools.pdf import iter_pdf_pages

    engine = CountingEngine()
    pages = [p.image.convert("RGB") for p in iter_pdf_pages(LIBTASN1_PDF, pages="3-5", dpi=100) if p.image]
    assert len(pages) == 3
    for img in pages:
        assert detect_rotation(img, engine=engine).angle == 0
    assert engine.calls == 0  # every upright page answered by the image-only check
    turned = detect_rotation(pages[0].rotate(-90, expand=True), engine=engine)
    assert turned.angle == 270 and turned.method == "osd" and engine.calls == 1
