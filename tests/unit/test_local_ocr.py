"""LocalOCREngine: Tesseract reads a rendered page, reports orientation, fails with typed errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageDraw, ImageFont

from minimaxvl_tools import local_ocr
from minimaxvl_tools.errors import InvalidInputError, MiniMaxVLError
from minimaxvl_tools.local_ocr import LocalOCREngine, LocalOCRError, LocalOCRResult, TesseractNotFoundError

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LINES = [
    "Quarterly report for the northern region",
    "Revenue grew by twelve percent in 2024",
    "Invoice 4711 was paid on 3 March",
    "Please contact the finance office today",
]

needs_tesseract = pytest.mark.skipif(
    not LocalOCREngine.available(), reason="tesseract binary not installed (apt-get install tesseract-ocr)"
)
needs_osd = pytest.mark.skipif(
    not LocalOCREngine.osd_available(),
    reason="tesseract osd traineddata not installed (apt-get install tesseract-ocr-osd)",
)


def render(lines: list[str], size: tuple[int, int] = (620, 440), font_px: int = 20) -> Image.Image:
    """A white half-A4-width page with ``lines`` in DejaVuSans (small, so Tesseract stays fast)."""
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, font_px)
    for i, line in enumerate(lines):
        draw.text((40, 50 + i * int(font_px * 1.8)), line, font=font, fill="black")
    return img


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate after whitespace normalisation."""
    ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
    return levenshtein(ref, hyp) / max(1, len(ref))


def test_levenshtein_helper() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert cer("abc", "abc") == 0.0


@needs_tesseract
@pytest.mark.parametrize("use_pytesseract", [True, False], ids=["pytesseract", "subprocess"])
def test_reads_rendered_text(use_pytesseract: bool) -> None:
    if use_pytesseract and local_ocr._pytesseract is None:
        pytest.skip("pytesseract not installed")
    engine = LocalOCREngine()
    engine.use_pytesseract = use_pytesseract
    result = engine.ocr(render(LINES))
    assert isinstance(result, LocalOCRResult)
    assert cer("\n".join(LINES), result.text) < 0.02, result.text
    assert result.text.splitlines()[0].strip() == LINES[0]  # line structure is kept
    assert result.words == sum(len(line.split()) for line in LINES)
    assert result.mean_confidence > 80
    assert result.engine.startswith("tesseract ") and result.engine[len("tesseract ") :][0].isdigit()


@needs_tesseract
def test_blank_image_gives_empty_result() -> None:
    result = LocalOCREngine().ocr(Image.new("L", (200, 120), 255))
    assert (result.text, result.words, result.mean_confidence) == ("", 0, 0.0)


@needs_tesseract
def test_thread_safe_parallel_calls() -> None:
    engine = LocalOCREngine(psm=7)  # one line per image: fast
    images = {
        word: render([word], size=(360, 80), font_px=26) for word in ("Alpha", "Bravo", "Charlie", "Delta")
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(images, pool.map(engine.ocr, images.values()), strict=True))
    assert {word: r.text for word, r in results.items()} == {word: word for word in images}


@needs_tesseract
def test_timeout_is_a_typed_error() -> None:
    engine = LocalOCREngine(timeout=0.001)
    with pytest.raises(LocalOCRError, match="timeout"):
        engine.ocr(render(LINES * 3, size=(1240, 900)))


@needs_tesseract
def test_missing_language_names_the_package() -> None:
    with pytest.raises(LocalOCRError, match="tesseract-ocr-xyz"):
        LocalOCREngine(lang="xyz").ocr(render(["x"]))


@needs_tesseract
@needs_osd
@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_orientation_reports_clockwise_rotation(degrees: int) -> None:
    page = render(LINES * 2, size=(620, 877), font_px=18)
    rotated = page.rotate(-degrees, expand=True)  # PIL turns counter-clockwise: -d is d clockwise
    assert LocalOCREngine().orientation(rotated) == degrees


@needs_tesseract
def test_orientation_of_blank_page_is_none() -> None:
    assert LocalOCREngine().orientation(Image.new("RGB", (300, 400), "white")) is None


def test_missing_binary_raises_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_ocr, "_binary", lambda: None)
    assert LocalOCREngine.available() is False
    assert LocalOCREngine.osd_available() is False
    with pytest.raises(TesseractNotFoundError, match=r"apt-get install tesseract-ocr") as info:
        LocalOCREngine().ocr(Image.new("RGB", (10, 10), "white"))
    assert isinstance(info.value, MiniMaxVLError)
    with pytest.raises(TesseractNotFoundError):
        LocalOCREngine().orientation(Image.new("RGB", (10, 10), "white"))


@pytest.mark.parametrize(
    "kwargs",
    [{"psm": 14}, {"oem": 7}, {"timeout": 0}, {"lang": ""}, {"lang": "eng; rm -rf /"}],
)
def test_invalid_arguments(kwargs: dict) -> None:
    with pytest.raises(InvalidInputError):
        LocalOCREngine(**kwargs)


def test_ocr_rejects_non_images() -> None:
    with pytest.raises(InvalidInputError, match="PIL"):
        LocalOCREngine().ocr(b"not an image")  # type: ignore[arg-type]
