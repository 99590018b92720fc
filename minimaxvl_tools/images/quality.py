"""Client-side page checks that cost no request: blank pages, rotated scans, and the size of the print.

Why: a blank page sent to MiniMax-VL-01 costs ~1-3k image tokens and often comes back as hallucinated
text; a page scanned sideways or upside down is read far worse than an upright one. Both are cheap to
catch locally before a request is planned.

How: every check works on a small grayscale copy of the page (a few hundred pixels on the long side),
so it costs milliseconds; only a page that :func:`detect_rotation`'s image-only check does not find
upright may start Tesseract (OSD when its ``osd`` data is installed, else two small OCR runs), and only
when the caller allows it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from ..errors import InvalidInputError
from ..local_ocr import LocalOCREngine, LocalOCRError

__all__ = [
    "BlankCheck",
    "RotationCheck",
    "correct_rotation",
    "detect_rotation",
    "estimate_x_height",
    "ink_mask",
    "is_blank",
]

RotationMethod = Literal["blank", "osd", "projection+ocr", "projection+layout", "projection"]


@dataclass(frozen=True)
class BlankCheck:
    """Result of :func:`is_blank`.

    ``ink_fraction`` is the share (0-1) of the downscaled page (of its inkiest band, on a long page),
    margins excluded, covered by marks that stand out from the local background and are not isolated
    specks; ``reason`` says why in words.
    """

    blank: bool
    ink_fraction: float
    reason: str


@dataclass(frozen=True)
class RotationCheck:
    """Result of :func:`detect_rotation`.

    ``angle`` is the **clockwise** rotation (0/90/180/270) that makes the page upright
    (:func:`correct_rotation` applies it); ``confidence`` is a 0-1 score (0 = no evidence, kept upright);
    ``method`` names the evidence: ``"blank"``, ``"osd"`` (Tesseract orientation detection),
    ``"projection+ocr"`` (text-line axis + OCR confidence of both candidates), ``"projection+layout"``
    (text-line axis + ascender/descender asymmetry) or ``"projection"`` (axis only).
    """

    angle: int
    confidence: float
    method: str


def _check_image(image: object, fn: str) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise InvalidInputError(f"{fn}() needs a PIL.Image.Image, got {type(image).__name__}")
    if image.width < 1 or image.height < 1:
        raise InvalidInputError(f"{fn}() got an empty {image.width}x{image.height} image")
    return image


def _gray_small(image: Image.Image, size: int) -> np.ndarray:
    """Grayscale float32 copy with the long side at most ``size`` (area-averaged, so specks fade)."""
    factor = max(image.size) // (2 * size)
    if factor >= 2:  # integer box reduction first (fast, and still an area average), exact size after
        image = image.reduce(factor)
    gray = image if image.mode == "L" else image.convert("L")
    scale = size / max(gray.size)
    if scale < 1:
        new = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
        gray = gray.resize(new, Image.Resampling.BOX)
    return np.asarray(gray, dtype=np.float32)


def _local_background(a: np.ndarray, block: int) -> np.ndarray:
    """Per-block median background, smoothly upsampled: follows shading and gray paper, ignores sparse ink."""
    h, w = a.shape
    bh, bw = max(1, -(-h // block)), max(1, -(-w // block))
    padded = np.pad(a, ((0, bh * block - h), (0, bw * block - w)), mode="edge")
    blocks = padded.reshape(bh, block, bw, block).transpose(0, 2, 1, 3).reshape(bh, bw, -1)
    med = np.median(blocks, axis=2).astype(np.float32)
    bg = Image.fromarray(med, mode="F").resize((bw * block, bh * block), Image.Resampling.BILINEAR)
    return np.asarray(bg, dtype=np.float32)[:h, :w]


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """Number of set pixels in each 3x3 neighbourhood (the pixel included)."""
    p = np.pad(mask.astype(np.uint8), 1)
    h, w = mask.shape
    return sum(p[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))


def ink_mask(
    image: Image.Image,
    *,
    size: int = 256,
    ink_threshold: float = 40.0,
    margin: float = 0.02,
    min_neighbours: int = 3,
) -> np.ndarray:
    """Boolean mask of "ink" on a ``size``-px copy of the page (margins cropped).

    A pixel is ink when it differs from the local background (block medians, so gray paper, shading and
    a dark page are all "background") by more than ``ink_threshold`` gray levels, and at least
    ``min_neighbours`` pixels of its 3x3 neighbourhood are ink too (isolated specks are dropped).
    """
    image = _check_image(image, "ink_mask")
    return _ink_mask(_gray_small(image, size), ink_threshold, margin, min_neighbours)


def _ink_mask(a: np.ndarray, ink_threshold: float, margin: float, min_neighbours: int) -> np.ndarray:
    h, w = a.shape
    my, mx = int(h * margin), int(w * margin)
    if h - 2 * my >= 8 and w - 2 * mx >= 8:
        a = a[my : h - my, mx : w - mx]
    block = max(8, min(a.shape) // 8)
    bg = _local_background(a, block)
    raw = np.abs(a - bg) > ink_threshold
    if min_neighbours <= 1:
        return raw
    return raw & (_neighbours(raw) >= min_neighbours)


def _gray_for_blank(image: Image.Image, size: int, max_area: int) -> np.ndarray:
    """Grayscale copy whose SHORT side is at most ``size`` px (area at most ``max_area``), so that a text
    line keeps a few pixels of height however long or thin the page is (a 600x8000 receipt, a strip)."""
    w, h = image.size
    scale = min(1.0, size / min(w, h), (max_area / (w * h)) ** 0.5)
    factor = int(1 / scale) // 2
    if factor >= 2:  # integer box reduction first (fast, and still an area average), exact size after
        image = image.reduce(factor)
    gray = image if image.mode == "L" else image.convert("L")
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if gray.size != new:
        gray = gray.resize(new, Image.Resampling.BOX)
    return np.asarray(gray, dtype=np.float32)


def _band_fractions(mask: np.ndarray) -> list[float]:
    """Ink share of each square-ish band along the long side of ``mask`` (one band for a normal page)."""
    h, w = mask.shape
    if not mask.size:
        return [0.0]
    axis, long, short = (0, h, w) if h >= w else (1, w, h)
    bands = max(1, round(long / max(short, 1)))
    return [float(b.mean()) for b in np.array_split(mask, bands, axis=axis) if b.size]


def is_blank(
    image: Image.Image,
    *,
    ink_threshold: float = 40.0,
    min_ink_fraction: float = 0.0005,
    size: int = 256,
    margin: float = 0.02,
    max_area: int = 4_000_000,
) -> BlankCheck:
    """Say whether a page is blank or nearly so (white/gray/dark paper, scanner noise, dust, faint specks).

    The page is downscaled until its short side is ``size`` px (area averaging removes single-pixel
    noise; at most ``max_area`` pixels are checked, so a long strip stays cheap), compared with its local
    background level, and isolated specks are ignored. The long side is then cut into square bands and
    the page is blank when no band has ink covering ``min_ink_fraction`` of it: a text line survives on
    any aspect ratio (a 600x8000 receipt, a 50000x10 strip) and one line on a long page still counts.
    A single short line of text covers roughly 0.2-1 % of a page and is not blank. ``margin`` (share of
    each side) is ignored so that scanner-bed edges and punch holes do not count as content.
    """
    image = _check_image(image, "is_blank")
    if not 0 <= min_ink_fraction < 1:
        raise InvalidInputError(f"min_ink_fraction={min_ink_fraction} must be in [0, 1)")
    if ink_threshold <= 0:
        raise InvalidInputError(f"ink_threshold={ink_threshold} must be positive (gray levels, 0-255)")
    a = _gray_for_blank(image, size, max_area)
    level, spread = float(np.median(a)), float(np.percentile(a, 99.5) - np.percentile(a, 0.5))
    m = int(min(a.shape) * margin)  # margins as wide as on a normal page, also along a long side
    if min(a.shape) - 2 * m >= 8:
        a = a[m : a.shape[0] - m, m : a.shape[1] - m]
    mask = _ink_mask(a, ink_threshold, 0.0, 3)
    fraction = max(_band_fractions(mask))
    tone = "dark" if level < 96 else "gray" if level < 235 else "white"
    if fraction < min_ink_fraction:
        if spread <= 12:
            reason = f"uniform {tone} page (background {level:.0f}, contrast {spread:.0f})"
        else:
            reason = (
                f"only noise or isolated specks on a {tone} page "
                f"(ink {fraction:.3%} < {min_ink_fraction:.3%})"
            )
        return BlankCheck(True, fraction, reason)
    return BlankCheck(False, fraction, f"ink covers {fraction:.2%} of the page")


# ---------------------------------------------------------------------------------------------- print size
def estimate_x_height(
    image: Image.Image,
    *,
    percentile: float = 10.0,
    bands: int = 4,
    ink_delta: int = 80,
    min_lines: int = 3,
) -> float | None:
    """Pixel x-height of the SMALL print on a page (its ink-weighted ``percentile`` over text lines), or
    None when there is no text to measure.

    Why: the resolution a page needs is set by its smallest text, not by its size in pixels; knowing it, a
    page of 12 pt text goes as one image and only fine print pays for crops (see :func:`~..pages.plan_page`).
    How: at full resolution, in ``bands`` vertical strips (so columns do not blend), rows are cut into text
    lines where their ink drops under 5 % of the strip's peak; in each line the span from the first to the
    last dense row (>= 40 % of the line's peak: the x-line and the baseline) is its x-height (about 0.55 em
    for common fonts). Lines weigh by their ink, so a stray mark counts for little. Pages with fewer than
    ``min_lines`` lines (photos, blank pages, figures) give None. ~10-40 ms for a 200 dpi letter page.
    """
    image = _check_image(image, "estimate_x_height")
    if not 0 <= percentile <= 100:
        raise InvalidInputError(f"percentile={percentile} must be in [0, 100]")
    gray = np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.int16)
    background = int(np.median(gray[::8, ::8]))
    ink = np.abs(gray - background) > ink_delta
    lines: list[tuple[int, int]] = []  # (x-height, ink)
    for cols in np.array_split(np.arange(ink.shape[1]), max(1, bands)):
        if cols.size == 0:
            continue
        profile = ink[:, cols[0] : cols[-1] + 1].sum(axis=1)
        if profile.max() < 4:
            continue
        for start, end in _runs(profile > 0.05 * profile.max()):
            seg = profile[start:end]
            if end - start < 3 or seg.max() < 4:
                continue  # a rule, a speck or a dot
            dense = np.flatnonzero(seg >= 0.4 * seg.max())
            span = int(dense[-1] - dense[0] + 1)
            if span >= 3:
                lines.append((span, int(seg.sum())))
    if len(lines) < min_lines:
        return None
    lines.sort()
    weights = np.cumsum([w for _, w in lines])
    i = int(np.searchsorted(weights, percentile / 100 * weights[-1]))
    return float(lines[min(i, len(lines) - 1)][0])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in a 1-D boolean array."""
    d = np.diff(mask.astype(np.int8), prepend=0, append=0)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


# ---------------------------------------------------------------------------------------------- rotation
def _close_rows(mask: np.ndarray, gap: int) -> np.ndarray:
    """Fill horizontal gaps of up to ``gap`` pixels (joins the letters of a word into one run)."""
    out = mask.copy()
    w = mask.shape[1]
    for span in range(2, gap + 2):
        for a in range(1, span):
            b = span - a
            if a >= w or b >= w:
                continue
            left = np.zeros_like(mask)
            left[:, a:] = mask[:, :-a]
            right = np.zeros_like(mask)
            right[:, :-b] = mask[:, b:]
            out |= left & right
    return out


def _mean_run(mask: np.ndarray) -> float:
    """Mean length of horizontal runs of set pixels."""
    m = mask.astype(np.int8)
    d = np.diff(np.pad(m, ((0, 0), (1, 1))), axis=1)
    starts = int((d == 1).sum())
    return float(m.sum()) / starts if starts else 0.0


def _profile_cv(mask: np.ndarray, axis: int) -> float:
    """Coefficient of variation of the projection profile inside the ink bounding box."""
    prof = mask.sum(axis=axis).astype(np.float64)
    nz = np.nonzero(prof)[0]
    if nz.size < 2:
        return 0.0
    prof = prof[nz[0] : nz[-1] + 1]
    mean = prof.mean()
    return float(prof.std() / mean) if mean > 0 else 0.0


def _axis_score(mask: np.ndarray, gap: int = 3) -> float:
    """Log-evidence that text lines run horizontally (> 0) rather than vertically (< 0).

    Two cues: (a) rows of text make the projection profile across the lines alternate between ink and
    gaps (high variance) while the profile along the lines stays smooth; (b) after closing small gaps
    along one direction, letters merge into long word runs along the text direction but only into short
    runs (one line height) across it. Cue (b) is weighted double because (a) fails on a single line.
    """
    eps = 1e-6
    profile = np.log((_profile_cv(mask, 1) + eps) / (_profile_cv(mask, 0) + eps))
    along = _mean_run(_close_rows(mask, gap))
    across = _mean_run(_close_rows(np.ascontiguousarray(mask.T), gap))
    runs = np.log((along + eps) / (across + eps))
    return float(0.5 * profile + runs)


def _line_masses(mask: np.ndarray, max_height: int) -> tuple[float, float, int]:
    """Ink above and below the x-height band of each text line of ``mask``; and the number of lines.

    Row bands taller than ``max_height`` (chart bars, photos, rules) are not text lines and are skipped.
    """
    rows = mask.sum(axis=1).astype(np.float64)
    if rows.max() <= 0:
        return 0.0, 0.0, 0
    above = below = 0.0
    used = 0
    for r0, r1 in _runs(rows > 0.02 * rows.max()):
        if r1 - r0 < 6 or r1 - r0 > max_height:
            continue
        prof = rows[r0:r1]
        core = np.flatnonzero(prof >= 0.5 * prof.max())
        above += float(prof[: core[0]].sum())
        below += float(prof[core[-1] + 1 :].sum())
        used += 1
    return above, below, used


def _line_asymmetry(mask: np.ndarray, strips: int = 4) -> tuple[float, int]:
    """Ascender-vs-descender evidence that horizontal text is upright (> 0) or upside down (< 0).

    In Latin script ascenders (b d f h k l t, capitals, digits) are far more frequent than descenders
    (g j p q y), so within each text line more ink lies above the x-height band than below it. The page
    is cut into ``strips`` vertical strips so that a skew of a degree or two does not smear the lines.
    Returns (score in [-1, 1], number of line pieces used).
    """
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return 0.0, 0
    bounds = np.linspace(cols[0], cols[-1] + 1, strips + 1).astype(int)
    above = below = 0.0
    used = 0
    for c0, c1 in itertools.pairwise(bounds):
        a, b, n = _line_masses(mask[:, c0:c1], max_height=max(12, int(0.08 * mask.shape[0])))
        above, below, used = above + a, below + b, used + n
    total = above + below
    return (float((above - below) / total) if total > 0 else 0.0), used


def _solid_fraction(mask: np.ndarray) -> float:
    """Share of ink pixels with an all-ink 3x3 neighbourhood: low for text strokes, high for solid areas."""
    total = int(mask.sum())
    return float((mask & (_neighbours(mask) == 9)).sum()) / total if total else 0.0


def _rotate_cw(image: Image.Image, angle: int) -> Image.Image:
    """Rotate clockwise by a multiple of 90 degrees, losslessly."""
    angle %= 360
    if angle == 0:
        return image
    transpose = {
        90: Image.Transpose.ROTATE_270,  # PIL's ROTATE_* turn counter-clockwise
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_90,
    }[angle]
    return image.transpose(transpose)


def _ocr_score(engine: LocalOCREngine, image: Image.Image) -> tuple[float, int]:
    """(OCR confidence weighted by the share of word-like tokens, number of word-like tokens)."""
    result = engine.ocr(image)
    plausible = sum(
        1 for w in result.text.split() if len(w) >= 2 and w.isalpha() and any(c in "aeiouyAEIOUY" for c in w)
    )
    share = plausible / result.words if result.words else 0.0
    return (result.mean_confidence * (0.5 + 0.5 * share) if result.words else 0.0), plausible


def _text_sample(image: Image.Image, long_side: int) -> Image.Image:
    """A band of an (assumed upright-axis) page holding text, for a cheap OCR vote.

    Keeps the horizontal band (at most half as tall as the page is wide) with the most ink, cropped to
    the columns holding ink, and downscales it to ``long_side`` px: OCR cost grows with area, and a few
    lines are enough to tell upright text from upside-down text. Choosing the densest band (rather
    than the middle of the ink bounding box) keeps stray specks on a scan from centring it on nothing.
    """
    gray = image.convert("L")
    mask = ink_mask(gray, size=512, margin=0.0)
    if mask.any():
        h, w = mask.shape
        band = max(1, min(h, w // 2))
        cumulative = np.concatenate(([0], np.cumsum(mask.sum(axis=1))))
        top = int(np.argmax(cumulative[band:] - cumulative[:-band])) if h > band else 0
        cols = np.flatnonzero(mask[top : top + band].any(axis=0))
        sy, sx = gray.height / h, gray.width / w
        pad = int(0.01 * max(gray.size))
        left = max(0, int(cols[0] * sx) - pad)
        right = min(gray.width, int((cols[-1] + 1) * sx) + pad)
        upper = max(0, int(top * sy) - pad)
        lower = min(gray.height, int((top + band) * sy) + pad)
        gray = gray.crop((left, upper, right, lower))
    if max(gray.size) > long_side:
        scale = long_side / max(gray.size)
        gray = gray.resize(
            (max(1, round(gray.width * scale)), max(1, round(gray.height * scale))), Image.Resampling.LANCZOS
        )
    return gray


def detect_rotation(
    image: Image.Image,
    *,
    engine: LocalOCREngine | None = None,
    use_ocr: bool = True,
    use_osd: bool = True,
    precheck: bool = True,
    upright_confidence: float = 0.5,
    min_confidence: float = 0.15,
    size: int = 512,
    ocr_long_side: int = 800,
) -> RotationCheck:
    """Find the clockwise rotation (0/90/180/270) that makes a scanned page upright.

    With ``precheck`` (the default) the image-only check runs first (tens of milliseconds) and a page it
    finds upright with confidence >= ``upright_confidence`` is answered without Tesseract; only suspect
    pages (turned, unsure, or without text lines) go on to OSD / OCR, which costs about a second of CPU
    per page. ``precheck=False`` asks Tesseract about every page.

    Steps, cheapest first:

    1. Text-line axis from a binarised ``size``-px copy: projection-profile variance and ink run lengths
       decide "0 or 180" against "90 or 270".
    2. Direction along that axis: Tesseract OSD when its ``osd`` data is installed (it answers all four
       angles and overrides step 1 when confident); else local OCR of both candidates (downscaled to
       ``ocr_long_side``), keeping the one read with the higher confidence and share of word-like tokens;
       else (Tesseract missing or ``use_ocr=False``) the ascender/descender asymmetry of the text lines.

    A page without text-line structure (a chart, photo or drawing) answers ``angle=0``; so does any
    answer whose confidence is below ``min_confidence`` (a wrong turn costs more than a missed one).
    ``use_ocr=False`` keeps Tesseract out entirely; ``use_osd=False`` skips OSD only.
    ``engine`` defaults to ``LocalOCREngine()`` when Tesseract is installed. A blank page or one
    without text answers ``angle=0`` with ``confidence=0``.
    """
    check = _detect_rotation(
        _check_image(image, "detect_rotation"),
        engine=engine,
        use_ocr=use_ocr,
        use_osd=use_osd,
        precheck=precheck,
        upright_confidence=upright_confidence,
        size=size,
        ocr_long_side=ocr_long_side,
    )
    if check.angle and check.confidence < min_confidence:
        return RotationCheck(0, check.confidence, check.method)
    return check


def _detect_rotation(
    image: Image.Image,
    *,
    engine: LocalOCREngine | None,
    use_ocr: bool,
    use_osd: bool,
    precheck: bool,
    upright_confidence: float,
    size: int,
    ocr_long_side: int,
) -> RotationCheck:
    mask = ink_mask(image, size=size, ink_threshold=40.0)
    if mask.size == 0 or mask.mean() < 0.0005:
        return RotationCheck(0, 0.0, "blank")
    axis = _axis_score(mask)
    horizontal = axis >= 0
    axis_conf = float(1 - np.exp(-abs(axis)))
    candidates = (0, 180) if horizontal else (90, 270)

    if use_ocr and engine is None and LocalOCREngine.available():
        engine = LocalOCREngine()
    layout: RotationCheck | None = None
    if use_ocr and engine is not None and precheck:
        layout = _layout_check(image, mask, horizontal, candidates, axis_conf, size)
        if layout.angle == 0 and layout.confidence >= upright_confidence:
            return layout  # confidently upright: no Tesseract run for this page
    if use_ocr and engine is not None:
        try:
            osd = engine.orientation_details(image) if use_osd and engine.osd_available() else None
            if osd is not None:
                degrees, osd_conf = osd
                angle = (360 - degrees) % 360
                conf = osd_conf / (osd_conf + 2.0)
                if angle not in candidates:
                    conf *= 0.5  # OSD and the line axis disagree: trust OSD, but say so
                return RotationCheck(angle, round(conf, 3), "osd")
            crop = _text_sample(_rotate_cw(image, candidates[0]), ocr_long_side)
            scores = {
                candidates[0]: _ocr_score(engine, crop),
                candidates[1]: _ocr_score(engine, _rotate_cw(crop, 180)),
            }
            best, other = sorted(candidates, key=lambda a: scores[a][0], reverse=True)
            (hi, words), lo = scores[best], scores[other][0]
            if words < 2:  # no readable text either way: a chart, photo or drawing; leave it alone
                return RotationCheck(0, 0.0, "projection+ocr")
            margin = (hi - lo) / hi
            return RotationCheck(best, round(axis_conf * min(1.0, 0.3 + margin), 3), "projection+ocr")
        except LocalOCRError:
            pass  # fall through to the image-only heuristic
    if layout is not None:
        return layout
    return _layout_check(image, mask, horizontal, candidates, axis_conf, size)


def _layout_check(
    image: Image.Image,
    mask: np.ndarray,
    horizontal: bool,
    candidates: tuple[int, int],
    axis_conf: float,
    size: int,
) -> RotationCheck:
    """Image-only direction along the text-line axis, from the ascender/descender asymmetry."""
    # rotate the mask so candidate[0] is upright, then read ascender/descender asymmetry
    upright = mask if horizontal else np.rot90(mask, k=-1)  # k=-1: 90 degrees clockwise
    # ~1024 px so that ascenders and descenders are a few pixels tall. (A median filter against scan noise
    # was tried and rejected: it erases the 1-px ascender stems of small text and then answers wrongly.)
    long_side = max(size, 1024)
    gray = _rotate_cw(image, candidates[0]).convert("L")
    big = ink_mask(gray, size=long_side, ink_threshold=40.0, min_neighbours=3)
    if not big.any():
        big = upright
    asym, lines = _line_asymmetry(big)
    if lines < 3 or asym == 0 or _solid_fraction(big) > 0.6:
        # no text-line structure (too few lines, or solid areas: bars, photos): leave the page alone
        return RotationCheck(0, 0.0, "projection")
    angle = candidates[0] if asym > 0 else candidates[1]
    # |asym| is ~0.4 on clean pages and ~0.05 on noisy JPEG scans (still the right sign on every test page)
    conf = axis_conf * min(1.0, abs(asym) * 8) * min(1.0, lines / 8)
    return RotationCheck(angle, round(conf, 3), "projection+layout")


def correct_rotation(image: Image.Image, check: RotationCheck | int) -> Image.Image:
    """Rotate ``image`` clockwise by ``check.angle`` (or an int angle, a multiple of 90), losslessly."""
    image = _check_image(image, "correct_rotation")
    angle = check.angle if isinstance(check, RotationCheck) else int(check)
    if angle % 90:
        raise InvalidInputError(f"angle={angle} is not a multiple of 90 degrees")
    return _rotate_cw(image, angle)
