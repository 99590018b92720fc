"""Rendering: pages/s of our PDF stage vs raw pypdfium2 and pdf2image on the same PDF at 200 dpi.

Ours is :func:`minimaxvl_tools.pdf.iter_pdf_pages` with its default backend, measured twice: pixels only
(``text=False``, like for like with raw pypdfium2: the target row) and with the text layer it reads by
default (info). Both read rotation and hand out an owned RGB image. Raw pypdfium2 is the bare minimum:
open, render, ``to_pil``, close. pdf2image is one ``convert_from_path`` call over the whole page range
(poppler's best case: one pdftoppm process). Repetitions are interleaved (ours, raw, pdf2image, ours,
...) so drifting machine load hits all three alike; the median of the repetitions is reported.
Target: ours >= 90 % of raw.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .common import BenchResult, Row, make_text_pdf, median

DPI = 200


def render_ours(path: Path, dpi: float = DPI, *, text: bool = True) -> int:
    """Render every page through our PDF stage (with its text layer unless ``text=False``); returns the
    number of pages."""
    from minimaxvl_tools.pdf import iter_pdf_pages

    n = 0
    for page in iter_pdf_pages(path, dpi=dpi, text=text):
        assert page.image is not None
        n += 1
    return n


def render_ours_pixels(path: Path, dpi: float = DPI) -> int:
    """Our PDF stage for pixels only (``text=False``): the like-for-like comparison with raw pypdfium2."""
    return render_ours(path, dpi, text=False)


def render_raw_pdfium(path: Path, dpi: float = DPI) -> int:
    """Render every page with bare pypdfium2 (open, render, to_pil, close); returns the number of pages."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    try:
        n = len(doc)
        for i in range(n):
            page = doc[i]
            bitmap = page.render(scale=dpi / 72.0)
            image = bitmap.to_pil()
            image.load()
            bitmap.close()
            page.close()
        return n
    finally:
        doc.close()


def render_pdf2image(path: Path, dpi: float = DPI) -> int:
    """Render every page with one pdf2image ``convert_from_path`` call; returns the number of pages."""
    from pdf2image import convert_from_path, pdfinfo_from_path

    n = int(pdfinfo_from_path(str(path))["Pages"])
    images = convert_from_path(str(path), dpi=dpi, first_page=1, last_page=n)
    assert len(images) == n
    return n


def run(quick: bool = False, *, pages: int | None = None, reps: int | None = None) -> BenchResult:
    """Measure pages/s of the three renderers (interleaved repetitions, medians) and build the rows."""
    t0 = time.perf_counter()
    pages = pages or (10 if quick else 30)
    reps = reps or (3 if quick else 5)
    methods: dict[str, Callable[[Path, float], int]] = {
        "ours (iter_pdf_pages, pypdfium2)": render_ours,
        "ours, pixels only (text=False)": render_ours_pixels,
        "raw pypdfium2": render_raw_pdfium,
        "pdf2image (one convert_from_path)": render_pdf2image,
    }
    rates: dict[str, list[float]] = {k: [] for k in methods}
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "render.pdf"
        make_text_pdf(pdf, pages, font_size=10, page_format="letter")
        for fn in methods.values():  # one untimed round: imports, file cache, allocator
            fn(pdf, DPI)
        for _ in range(reps):
            for name, fn in methods.items():
                s = time.perf_counter()
                n = fn(pdf, DPI)
                rates[name].append(n / (time.perf_counter() - s))
    med = {k: median(v) for k, v in rates.items()}
    ours, ours_px, raw, p2i = (med[k] for k in methods)
    lines = [f"{pages}-page letter PDF of 10 pt text at {DPI} dpi; {reps} interleaved repetitions"]
    for name, vals in rates.items():
        lines.append(
            f"{name:36s} median {med[name]:7.2f} pages/s   runs: " + ", ".join(f"{v:.2f}" for v in vals)
        )
    rows = [
        Row("render: ours (pixels only) vs raw pypdfium2", ours_px, raw, "pages/s", ">=", 0.90),
        Row("render: ours + text layer vs raw pypdfium2 (info)", ours, raw, "pages/s", "info"),
        Row("render: ours vs pdf2image", ours, p2i, "pages/s", "info"),
    ]
    return BenchResult("render", rows, "\n".join(lines), time.perf_counter() - t0, {"pages_per_s": med})
