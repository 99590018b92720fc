"""Rotation check cost per page: the default image-only pre-check vs Tesseract OSD on every page.

A 60-page set like a scanned ingest (letter pages of text at 150 dpi, gray paper, noise, slight skew,
JPEG), one page in six turned 90/180/270 degrees, goes through the loader/OCR call site
(:func:`minimaxvl_tools.pages.prepare.upright`) twice: with ``detect_rotation``'s default pre-check (Tesseract
only on pages the image-only check does not find upright) and with ``precheck=False`` (Tesseract OSD on
every page, the former default). Targets: the pre-check at least 3x the pages/s, every turned page still
turned upright and no upright page turned. For information, when Debian's ``libtasn1-doc`` is installed:
the same two settings on upright pages of its third-party manual (``libtasn1.pdf``, 100 dpi).
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .common import BenchResult, Row, make_text_pdf

if TYPE_CHECKING:
    from PIL import Image

    from minimaxvl_tools.pages import PageImage

DPI = 150
TURNS = (90, 180, 270)
REAL_PDF = Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf")


def _scan(image: Image.Image, seed: int) -> Image.Image:
    """Scanner-like copy: slight skew, gray paper, gaussian noise, JPEG at quality 70."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    gray = image.convert("L").rotate(0.8, fillcolor=255, resample=Image.Resampling.BICUBIC)
    a = np.asarray(gray, dtype=np.float32) * 0.92 + 12 + rng.normal(0, 6.0, gray.size[::-1])
    buf = io.BytesIO()
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=70)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def pages(n: int) -> tuple[list[PageImage], list[int]]:
    """``n`` scanned text pages, every sixth one turned; and the clockwise correction each page needs."""
    from minimaxvl_tools.pages import PageImage
    from minimaxvl_tools.pdf import iter_pdf_pages

    out: list[PageImage] = []
    needed: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "source.pdf"
        make_text_pdf(pdf, n, font_size=11, page_format="letter", ttf=False, fill=0.8)
        for page in iter_pdf_pages(pdf, dpi=DPI):
            assert page.image is not None
            img = _scan(page.image, page.number)
            turn = TURNS[(page.number // 6) % 3] if page.number % 6 == 0 else 0
            img = img.rotate(-turn, expand=True)  # PIL turns counter-clockwise
            out.append(PageImage(number=page.number, page_count=n, image=img, source="scan.pdf"))
            needed.append((360 - turn) % 360)
    return out, needed


def _measure(
    items: list[PageImage], needed: list[int], check: Callable[[PageImage], PageImage]
) -> tuple[float, int, int]:
    """(wall seconds, turned pages corrected, upright pages left alone)."""
    t0 = time.perf_counter()
    results = [check(p) for p in items]
    wall = time.perf_counter() - t0
    turned_ok = sum(1 for r, want in zip(results, needed, strict=True) if want and r.rotation == want)
    upright_ok = sum(1 for r, want in zip(results, needed, strict=True) if not want and r.rotation == 0)
    return wall, turned_ok, upright_ok


def run(quick: bool = False, *, n_pages: int | None = None) -> BenchResult:
    """Pages/s and correct detections of the rotation check with and without the pre-check."""
    from minimaxvl_tools.local_ocr import LocalOCREngine
    from minimaxvl_tools.pages.prepare import upright as turn_upright

    t0 = time.perf_counter()
    n = n_pages or (12 if quick else 60)
    items, needed = pages(n)
    engine = LocalOCREngine() if LocalOCREngine.available() else None
    osd = engine is not None and LocalOCREngine.osd_available()

    def default(p: PageImage) -> PageImage:
        return turn_upright(p, engine)[0]

    def every_page(p: PageImage) -> PageImage:
        return turn_upright(p, engine, precheck=False)[0]

    default(items[0])  # warm: imports, Tesseract start-up
    full_wall, full_turned, full_upright = _measure(items, needed, every_page)
    pre_wall, pre_turned, pre_upright = _measure(items, needed, default)
    n_turned = sum(1 for w in needed if w)
    n_upright = n - n_turned
    full_rate, pre_rate = n / full_wall, n / pre_wall
    raw = "\n".join(
        [
            f"{n} letter text pages at {DPI} dpi (scanner-like: skew 0.8 deg, noise, JPEG 70), {n_turned} "
            f"turned 90/180/270; pages.prepare.upright with the local engine (Tesseract "
            f"{'with' if osd else 'WITHOUT'} osd data{'' if engine else ': not installed'})",
            f"Tesseract on every page (precheck=False): {full_wall:.2f} s -> {full_rate:.2f} pages/s; "
            f"turned pages corrected {full_turned}/{n_turned}, upright left alone {full_upright}/{n_upright}",
            f"default pre-check (Tesseract on suspect pages only): {pre_wall:.2f} s -> {pre_rate:.2f} "
            f"pages/s ({pre_rate / full_rate:.1f}x); turned pages corrected {pre_turned}/{n_turned}, "
            f"upright left alone {pre_upright}/{n_upright}",
        ]
    )
    if REAL_PDF.exists():
        from minimaxvl_tools.pages import PageImage
        from minimaxvl_tools.pdf import iter_pdf_pages

        real = [
            PageImage(number=p.number, page_count=p.page_count, image=p.image, source=str(REAL_PDF))
            for p in iter_pdf_pages(REAL_PDF, pages="3-8" if quick else "3-14", dpi=100)
        ]
        upright = [0] * len(real)
        r_full, _, r_full_ok = _measure(real, upright, every_page)
        r_pre, _, r_pre_ok = _measure(real, upright, default)
        raw += (
            f"\nreal PDF {REAL_PDF.name} (libtasn1-doc), {len(real)} upright pages, 100 dpi: OSD every page "
            f"{r_full:.2f} s ({len(real) / r_full:.2f} pages/s, {r_full_ok} left upright); pre-check "
            f"{r_pre:.2f} s ({len(real) / r_pre:.2f} pages/s, {r_pre_ok} left upright)"
        )
    rows = [
        Row("rotation: pages/s, pre-check vs OSD on every page", pre_rate, full_rate, "pages/s", ">=", 3.0),
        Row("rotation: turned pages corrected (pre-check)", pre_turned, n_turned, "pages", ">=", 1.0),
        Row("rotation: upright pages left alone (pre-check)", pre_upright, n_upright, "pages", ">=", 1.0),
        Row("rotation: turned pages corrected (OSD every page)", full_turned, n_turned, "pages", "info"),
    ]
    if REAL_PDF.exists():
        rows.append(
            Row(
                "rotation: real PDF pages/s, pre-check vs OSD (info)",
                len(real) / r_pre,
                len(real) / r_full,
                "pages/s",
                "info",
            )
        )
    return BenchResult("rotation", rows, raw, time.perf_counter() - t0)
