"""Page checks without a request: blank detection and rotation detection/correction."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.images.quality import (
    BlankCheck,
    RotationCheck,
    correct_rotation,
    detect_rotation,
    is_blank,
)
from minimaxvl_tools.local_ocr import LocalOCREngine

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SIZE = (620, 877)  # A4 at half of 1240x1754, keeps Tesseract fast
LINES = [
    "Quarterly report for the northern region",
    "Revenue grew by twelve percent this year",
    "The board approved the new budget plan",
    "Shipping costs were lower than expected",
    "Please contact the finance office today",
    "All figures are reported in euros only",
]

needs_tesseract = pytest.mark.skipif(
    not LocalOCREngine.available(), reason="tesseract binary not installed (apt-get install tesseract-ocr)"
)


def render(lines: list[str], *, font_px: int = 18, y0: int = 60, bg: int = 255, ink: int = 0) -> Image.Image:
    img = Image.new("L", SIZE, bg)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, font_px)
    for i, line in enumerate(lines):
        draw.text((40, y0 + i * int(font_px * 1.8)), line, font=font, fill=ink)
    return img.convert("RGB")


def scan_noise(
    img: Image.Image, *, seed: int = 0, sigma: float = 8.0, specks: int = 400, skew: float = 0.0
) -> Image.Image:
    """Scanner-like degradation: slight skew, gray paper, gaussian noise, dust specks, JPEG."""
    rng = np.random.default_rng(seed)
    if skew:
        img = img.rotate(skew, fillcolor=(255, 255, 255), resample=Image.Resampling.BICUBIC)
    a = np.asarray(img.convert("L"), dtype=np.float32) * 0.92 + 12 + rng.normal(0, sigma, img.size[::-1])
    h, w = a.shape
    for _ in range(specks):
        y, x, s = rng.integers(0, h - 3), rng.integers(0, w - 3), rng.integers(1, 3)
        a[y : y + s, x : x + s] = rng.integers(0, 140)
    buf = io.BytesIO()
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=60)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def shaded_blank() -> Image.Image:
    """Blank page with uneven scanner illumination (255 at the top to 190 at the bottom)."""
    ramp = np.linspace(255, 190, SIZE[1], dtype=np.float32)[:, None].repeat(SIZE[0], axis=1)
    return Image.fromarray(ramp.astype(np.uint8)).convert("RGB")


# ------------------------------------------------------------------------------------------ is_blank
@pytest.mark.parametrize(
    "name, page",
    [
        ("white", Image.new("RGB", SIZE, "white")),
        ("light gray", Image.new("RGB", SIZE, (222, 222, 222))),
        ("dark", Image.new("RGB", SIZE, (25, 25, 25))),
        ("scanner noise + specks", scan_noise(Image.new("RGB", SIZE, "white"), specks=600)),
        ("gray noisy paper", scan_noise(Image.new("RGB", SIZE, (205, 205, 205)), sigma=14, seed=3)),
        ("uneven illumination", shaded_blank()),
        ("edge shadow only", render([])),
    ],
)
def test_blank_pages_are_blank(name: str, page: Image.Image) -> None:
    if name == "edge shadow only":  # a dark scanner-bed edge within the ignored margin
        ImageDraw.Draw(page).rectangle((0, 0, 8, SIZE[1]), fill="black")
    check = is_blank(page)
    assert isinstance(check, BlankCheck)
    assert check.blank, (name, check)
    assert check.ink_fraction < 0.0005
    assert check.reason


@pytest.mark.parametrize(
    "name, page",
    [
        ("one short line", render(["Total: 42 EUR"])),
        ("one short line, small font", render(["See attached."], font_px=12)),
        ("one short line on a noisy scan", scan_noise(render(["Total: 42 EUR"]), specks=600)),
        ("faint gray text", render(LINES, ink=170)),
        ("white text on a dark page", render(LINES, bg=20, ink=235)),
        ("full page", render(LINES * 3)),
    ],
)
def test_pages_with_text_are_not_blank(name: str, page: Image.Image) -> None:
    check = is_blank(page)
    assert not check.blank, (name, check)
    assert "ink covers" in check.reason


def test_ink_fraction_grows_with_content() -> None:
    blank = is_blank(Image.new("RGB", SIZE, "white")).ink_fraction
    one = is_blank(render(["Total: 42 EUR"])).ink_fraction
    full = is_blank(render(LINES * 3)).ink_fraction
    assert blank == 0.0 < one < full


def test_thresholds_are_honoured() -> None:
    line = render(["Total: 42 EUR"])
    assert is_blank(line, min_ink_fraction=0.5).blank  # stricter: one line is "blank enough"
    assert not is_blank(render(LINES, ink=170), ink_threshold=20).blank
    assert is_blank(render(LINES, ink=200), ink_threshold=80).blank  # light ink under a high threshold


def test_is_blank_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        is_blank("page.png")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        is_blank(Image.new("RGB", SIZE, "white"), min_ink_fraction=1.5)


# ------------------------------------------------------------------------------------------ rotation
def rotated(page: Image.Image, clockwise: int) -> Image.Image:
    return page.rotate(-clockwise, expand=True)  # PIL turns counter-clockwise


@pytest.mark.parametrize("scanned", [False, True], ids=["clean", "scanned"])
@pytest.mark.parametrize("turned", [0, 90, 180, 270])
def test_rotation_image_only(turned: int, scanned: bool) -> None:
    """Without Tesseract: line axis + ascender/descender asymmetry."""
    page = render(LINES)
    if scanned:
        page = scan_noise(page, seed=turned, skew=1.2)
    check = detect_rotation(rotated(page, turned), use_ocr=False)
    assert isinstance(check, RotationCheck)
    assert check.angle == (360 - turned) % 360, check
    assert check.method.startswith("projection")
    assert 0 < check.confidence <= 1


@pytest.mark.parametrize("turned", [0, 90, 180, 270])
def test_rotation_single_line(turned: int) -> None:
    page = render(["Total amount due: 1,234.56 EUR"])
    check = detect_rotation(rotated(page, turned), use_ocr=False)
    assert check.angle == (360 - turned) % 360, check


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def ocr_cer(img: Image.Image, reference: str) -> float:
    """Character error rate of Tesseract's reading of ``img`` (whitespace normalised)."""
    hyp = " ".join(LocalOCREngine().ocr(img).text.split())
    return levenshtein(reference, hyp) / len(reference)


@needs_tesseract
@pytest.mark.parametrize("turned", [90, 180, 270])
def test_rotation_detected_and_corrected(turned: int) -> None:
    """The default path (OSD when installed, else OCR votes); after correction OCR reads the text again."""
    page = scan_noise(render(LINES), seed=turned, specks=100)
    scan = rotated(page, turned)
    check = detect_rotation(scan)
    assert check.angle == (360 - turned) % 360, check
    assert check.method in {"osd", "projection+ocr"}
    fixed = correct_rotation(scan, check)
    assert fixed.size == page.size
    reference = " ".join(LINES)
    assert ocr_cer(fixed, reference) < 0.03  # dust specks may add a stray "." or two
    if turned == 180:  # (Tesseract's layout analysis copes with sideways lines, not upside-down ones)
        assert ocr_cer(scan, reference) > 0.5  # ...while the uncorrected scan is unreadable


@needs_tesseract
@pytest.mark.parametrize("turned", [180, 270])
def test_rotation_ocr_vote_without_osd(turned: int) -> None:
    """The fallback used when the osd traineddata is missing: OCR both candidates, keep the better one."""
    check = detect_rotation(rotated(render(LINES), turned), use_osd=False)
    assert check.method == "projection+ocr"
    assert check.angle == (360 - turned) % 360, check


def bar_chart() -> Image.Image:
    img = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(img)
    for i, height in enumerate([120, 340, 260, 480, 200, 390, 150, 300]):
        draw.rectangle((60 + i * 60, 700 - height, 100 + i * 60, 700), fill=(50, 90, 200))
    draw.line((50, 700, 560, 700), fill="black", width=3)
    draw.line((50, 150, 50, 700), fill="black", width=3)
    return img


@pytest.mark.parametrize("use_ocr", [False, pytest.param(True, marks=needs_tesseract)])
@pytest.mark.parametrize("turned", [0, 90])
def test_pages_without_text_are_left_alone(turned: int, use_ocr: bool) -> None:
    """A chart or photo has no text lines to go by: never turn it on a guess."""
    rng = np.random.default_rng(turned)
    photo = Image.fromarray((rng.random((40, 30, 3)) * 255).astype(np.uint8)).resize(SIZE)
    for page in (bar_chart(), photo):
        assert detect_rotation(rotated(page, turned), use_ocr=use_ocr).angle == 0


def test_upright_and_blank_pages() -> None:
    assert detect_rotation(Image.new("RGB", SIZE, "white")) == RotationCheck(0, 0.0, "blank")
    assert detect_rotation(render(LINES), use_ocr=False).angle == 0


def test_correct_rotation_turns_clockwise() -> None:
    img = Image.new("L", (40, 20), 255)
    img.putpixel((0, 0), 0)  # top-left marker
    out = correct_rotation(img, 90)
    assert out.size == (20, 40)
    assert out.getpixel((19, 0)) == 0  # clockwise: top-left goes to top-right
    assert correct_rotation(img, RotationCheck(180, 1.0, "osd")).getpixel((39, 19)) == 0
    assert correct_rotation(img, RotationCheck(0, 0.0, "blank")) is img
    with pytest.raises(InvalidInputError):
        correct_rotation(img, 45)
