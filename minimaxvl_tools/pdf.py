"""PDF pages as images and text, streamed one page at a time.

pypdfium2 renders by default (page /Rotate applied); pdf2image (poppler) is a selectable rasteriser. Pages
are rendered, yielded and released one by one, so a 500-page file never sits in memory. PDFium is not
thread-safe, so every call into it holds a module lock (never across a ``yield``).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, Union

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from .errors import ImageTooLargeError, InvalidInputError, PDFError, PDFPasswordError
from .images.load import _try_base64, describe, read_bytes, sniff
from .images.policy import InputPolicy
from .settings import DEFAULT_DPI, check_dpi

PDFSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO]  # noqa: UP007
Backend = Literal["pypdfium2", "pdf2image"]

_LOCK = threading.RLock()
_DEFAULT_POLICY = InputPolicy()
_KEPT: OrderedDict[tuple[str, int, int, str | None], pdfium.PdfDocument] = OrderedDict()
"""Documents left open between calls, by (path, mtime_ns, size, password), most recent last (under _LOCK)."""
_KEEP = 0
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_RANGE_RE = re.compile(r"^\s*(\d*)\s*(-\s*(\d*))?\s*$")


@dataclass
class PDFPage:
    """One page: 1-based number, rendered RGB image (or None), text layer, rotation and size in points."""

    number: int
    page_count: int
    image: Image.Image | None
    text: str
    rotation: int
    width_pt: float  # as displayed, i.e. after /Rotate
    height_pt: float
    dpi: float
    source: str
    warnings: list[str] = field(default_factory=list)
    """Notes on how the page was rendered (e.g. a lower dpi to stay under the pixel cap)."""
    error: ImageTooLargeError | None = None
    """Why ``image`` is None although rendering was asked for (only with ``page_errors=True``)."""

    @property
    def has_text_layer(self) -> bool:
        """True when the page carries extractable text (scans usually do not)."""
        return bool(self.text.strip())


def parse_page_range(spec: str | Sequence[int] | None, page_count: int) -> list[int]:
    """1-based page numbers from ``"1-3,5"``, ``"7-"``, ``"all"``, a list, or None (all pages), in order."""
    if page_count < 1:
        raise PDFError("the document has no pages: pass a PDF with at least one page")
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "all", "*")):
        return list(range(1, page_count + 1))
    out: list[int] = []
    if isinstance(spec, str):
        for part in spec.split(","):
            m = _RANGE_RE.match(part)
            if not m or (not m.group(1) and not m.group(3)):
                raise InvalidInputError(
                    f"page range {spec!r} is not valid near {part.strip()!r}: use forms like '1-3,5' or '7-'"
                )
            first = int(m.group(1)) if m.group(1) else 1
            last = (int(m.group(3)) if m.group(3) else page_count) if m.group(2) else first
            if first > last:
                raise InvalidInputError(
                    f"page range {part.strip()!r} runs backwards: write it as {last}-{first}"
                )
            for n in (first, last):
                if not 1 <= n <= page_count:
                    raise InvalidInputError(
                        f"page {n} in {spec!r} is out of range: the document has {page_count} pages "
                        f"(1-{page_count})"
                    )
            out.extend(range(first, last + 1))
    else:
        for n in spec:
            if isinstance(n, bool) or not isinstance(n, int):
                raise InvalidInputError(f"page numbers must be integers, got {n!r} in {list(spec)!r}")
            if not 1 <= n <= page_count:
                raise InvalidInputError(
                    f"page {n} is out of range: the document has {page_count} pages (1-{page_count}); "
                    "page numbers are 1-based"
                )
            out.append(n)
    seen: set[int] = set()
    return [n for n in out if not (n in seen or seen.add(n))]


# ---------------------------------------------------------------- opening
def _resolve(source: PDFSource, policy: InputPolicy) -> tuple[Path | bytes, str]:
    """A local path (checked, not read) or the bytes of ``source``, plus its display name."""
    name = describe(source)
    if isinstance(source, str) and not source.startswith("data:") and not _URL_RE.match(source):
        decoded = _try_base64(source)
        if decoded is not None:
            source = decoded
    if isinstance(source, (str, os.PathLike)) and not (
        isinstance(source, str) and (source.startswith("data:") or _URL_RE.match(source))
    ):
        path = policy.check_path(source)
        if not path.is_file():
            raise PDFError(f"PDF {name!r} does not exist or is not a file: check the path")
        if path.stat().st_size == 0:
            raise PDFError(f"PDF {name!r} is empty (0 bytes): re-create or re-download it")
        with open(path, "rb") as fh:
            head = fh.read(1024)
        if sniff(head) != "pdf":
            raise PDFError(f"{name!r} is not a PDF (content starts {head[:12]!r}): pass a PDF file")
        return path, name
    try:
        data, name = read_bytes(source, policy=policy)  # type: ignore[arg-type]
    except PDFError:
        raise
    except InvalidInputError as exc:
        if "empty" in str(exc):
            raise PDFError(f"PDF {name} is empty (0 bytes): pass the file's actual content") from exc
        raise
    if sniff(data) != "pdf":
        raise PDFError(f"{name} is not a PDF (content starts {data[:12]!r}): pass a PDF file")
    return data, name


def _open(target: Path | bytes, name: str, password: str | None) -> pdfium.PdfDocument:
    """Open a document under the lock, mapping PDFium errors to PDFError/PDFPasswordError."""
    with _LOCK:
        try:
            doc = pdfium.PdfDocument(str(target) if isinstance(target, Path) else target, password=password)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
                if password is None:
                    raise PDFPasswordError(f"PDF {name} is encrypted: pass password=...") from exc
                raise PDFPasswordError(
                    f"PDF {name}: the password given is wrong; pass the document's user or owner password"
                ) from exc
            if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_SUCCESS:  # PDFium's verdict on 0 pages
                raise PDFError(
                    f"PDF {name} has no pages (or no readable page tree): pass a PDF with at least one page"
                ) from exc
            raise PDFError(
                f"PDF {name} cannot be opened ({exc}): the file is corrupt, truncated or has no pages; "
                "re-export or "
                "re-download it"
            ) from exc
        if len(doc) == 0:
            doc.close()
            raise PDFError(f"PDF {name} has no pages: pass a PDF with at least one page")
        return doc


def keep_documents(count: int) -> None:
    """Keep up to ``count`` local PDFs open between :func:`iter_pdf_pages` calls (0, the default: close each
    at the end of its call). Worker processes that render one page per call set it: opening and closing
    a document costs ~1.4 ms a page. A document is reopened when its file's mtime or size changes."""
    global _KEEP
    with _LOCK:
        _KEEP = max(0, int(count))
        _trim()


def _trim() -> None:
    """Close the oldest kept documents beyond :data:`_KEEP` (under _LOCK)."""
    while len(_KEPT) > _KEEP:
        _KEPT.popitem(last=False)[1].close()


def _checkout(target: Path | bytes, name: str, password: str | None) -> tuple[pdfium.PdfDocument, Any]:
    """An open document for ``target`` and its cache key (None: not to be kept); a kept one is taken out
    of the cache while in use, so two callers never share one and eviction never closes one in use."""
    key = None
    if _KEEP and isinstance(target, Path):
        with contextlib.suppress(OSError):  # no key: opened and closed as without keeping
            st = target.stat()
            key = (str(target), st.st_mtime_ns, st.st_size, password)
    if key is not None:
        with _LOCK:
            doc = _KEPT.pop(key, None)
        if doc is not None:
            return doc, key
    return _open(target, name, password), key


def _checkin(doc: pdfium.PdfDocument, key: Any) -> None:
    """Give ``doc`` back: kept (the oldest beyond :func:`keep_documents` closed) or closed."""
    with _LOCK:
        if key is None or not _KEEP:
            doc.close()
            return
        stale = [k for k in _KEPT if k[0] == key[0]]  # an older version of the same file
        for k in stale:
            _KEPT.pop(k).close()
        _KEPT[key] = doc
        _trim()


def pdf_page_count(
    source: PDFSource, *, password: str | None = None, policy: InputPolicy | None = None
) -> int:
    """Number of pages of the PDF ``source`` (path, bytes, file object, data URL, allowed URL)."""
    target, name = _resolve(source, policy or _DEFAULT_POLICY)
    doc = _open(target, name, password)
    with _LOCK:
        try:
            return len(doc)
        finally:
            doc.close()


def is_pdf(source: Any, *, policy: InputPolicy | None = None) -> bool:
    """True when ``source`` holds PDF content (judged by the bytes, not the extension)."""
    pol = policy or _DEFAULT_POLICY
    if isinstance(source, (bytes, bytearray, memoryview)):
        return sniff(bytes(source[:1024])) == "pdf"
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith("data:"):
            return text[5:20].startswith("application/pdf") or sniff(read_bytes(text)[0][:1024]) == "pdf"
        if _URL_RE.match(text):
            return False
        try:
            path = pol.check_path(text)
        except InvalidInputError:
            return False
        if path.is_file():
            with open(path, "rb") as fh:
                return sniff(fh.read(1024)) == "pdf"
        return False
    if hasattr(source, "read") and hasattr(source, "seek"):
        pos = source.tell()
        head = source.read(1024)
        source.seek(pos)
        return isinstance(head, bytes) and sniff(head) == "pdf"
    return False


# ---------------------------------------------------------------- rendering
def _render_pdf2image(
    target: Path | bytes, number: int, dpi: float, password: str | None, name: str
) -> Image.Image:
    from pdf2image import convert_from_bytes, convert_from_path
    from pdf2image.exceptions import PDFInfoNotInstalledError, PDFPageCountError, PDFSyntaxError

    kwargs: dict[str, Any] = {"dpi": dpi, "first_page": number, "last_page": number, "userpw": password}
    try:
        if isinstance(target, Path):
            images = convert_from_path(str(target), **kwargs)
        else:
            images = convert_from_bytes(target, **kwargs)
    except PDFInfoNotInstalledError as exc:
        raise PDFError(
            "pdf2image backend needs poppler-utils (pdftoppm): install it or use pypdfium2"
        ) from exc
    except (PDFPageCountError, PDFSyntaxError) as exc:
        raise PDFError(f"PDF {name} page {number} could not be rendered by poppler ({exc})") from exc
    if not images:
        raise PDFError(f"PDF {name} page {number}: poppler rendered nothing; try backend='pypdfium2'")
    img = images[0]
    return img if img.mode == "RGB" else img.convert("RGB")


def _render_pdfium(page: Any, scale: float, name: str, number: int) -> Image.Image:
    """Render one PDFium page at ``scale`` as RGB; running out of memory is a typed ImageTooLargeError."""
    try:
        bitmap = page.render(scale=scale)
    except MemoryError as exc:
        raise ImageTooLargeError(
            f"PDF {name} page {number}: not enough memory to render it at "
            f"{scale * 72:.0f} dpi; lower dpi or InputPolicy.max_pixels"
        ) from exc
    try:
        # pdfium renders BGR; to_pil() converts it into a new RGB image (Pillow maps only RGBA/RGBX/L
        # buffers), so no second copy is needed before close().
        image = bitmap.to_pil()
        return image if image.mode == "RGB" else image.convert("RGB")
    finally:
        bitmap.close()


def _cap_scale(
    width_pt: float, height_pt: float, scale: float, max_pixels: int, name: str, number: int
) -> tuple[float, list[str]]:
    """``scale`` lowered so the rendered page stays within ``max_pixels``, and a note when it was lowered."""
    w, h = width_pt * scale, height_pt * scale
    if math.ceil(w) * math.ceil(h) <= max_pixels:
        return scale, []
    fitted = scale * math.sqrt(max_pixels / (w * h)) * 0.999
    while fitted > 0 and math.ceil(width_pt * fitted) * math.ceil(height_pt * fitted) > max_pixels:
        fitted *= 0.99  # rounding up to whole pixels: shave until it fits
    if fitted * 72.0 < 1.0:
        raise ImageTooLargeError(
            f"PDF {name} page {number} is {width_pt / 72:.0f}x{height_pt / 72:.0f} inches: even at 1 dpi it "
            f"passes the {max_pixels}-pixel cap; raise InputPolicy.max_pixels if the file is trusted"
        )
    note = (
        f"page {number} rendered at {fitted * 72:.0f} dpi instead of {scale * 72:.0f}: "
        f"{math.ceil(w)}x{math.ceil(h)} pixels would pass max_pixels={max_pixels}"
    )
    return fitted, [note]


def text_layer_is_good(text: str, min_chars: int = 20) -> bool:
    """A text layer worth using instead of OCR: enough characters, mostly letters/digits/punctuation.

    Why: scanned PDFs often carry an OCR layer of glyph garbage; trusting it silently is worse than OCR.
    """
    stripped = "".join(text.split())
    if len(stripped) < min_chars:
        return False
    good = sum(ch.isalnum() or ch in ".,;:!?%€$()-/'\"" for ch in stripped)
    return good / len(stripped) >= 0.8


def iter_pdf_pages(
    source: PDFSource,
    *,
    pages: str | Sequence[int] | None = None,
    dpi: float = DEFAULT_DPI,
    long_side: int | None = None,
    password: str | None = None,
    backend: Backend = "pypdfium2",
    render: bool = True,
    policy: InputPolicy | None = None,
    text: bool = True,
    fit: Callable[[int, int], tuple[int, int] | None] | None = None,
    page_errors: bool = False,
) -> Iterator[PDFPage]:
    """Yield the chosen pages one at a time: RGB image at ``dpi`` (or ``long_side`` px) plus the text layer.

    ``text=False`` skips the text layer (about a tenth of the render time) for callers that only need pixels.
    The render size is planned before rendering: a page that would pass the policy's ``max_pixels`` at
    ``dpi`` is rendered at the dpi that fits, and its ``warnings`` say so (a 200x200 inch page at 200 dpi
    would be a 1.6-gigapixel bitmap); a page even 1 dpi cannot fit (or a render out of memory) raises
    ImageTooLargeError, or with ``page_errors=True`` is yielded with ``image=None`` and the error in
    ``error``, so the pages after it still come.
    ``fit(w, h)`` sees the page's pixel size at ``dpi`` and may return a smaller (w, h) box to render into
    directly: rendering at the size that will be sent is far cheaper than rendering big and resizing.

    Each page's PDFium objects are closed before it is yielded; the document is closed when the iterator
    finishes or is discarded. ``render=False`` skips rasterising (text and sizes only).
    """
    if backend not in ("pypdfium2", "pdf2image"):
        raise InvalidInputError(f"PDF backend {backend!r} is unknown: use 'pypdfium2' or 'pdf2image'")
    if long_side is None:
        check_dpi(dpi)
    if long_side is not None and (not isinstance(long_side, int) or not 16 <= long_side <= 20000):
        raise InvalidInputError(f"long_side must be an integer in 16..20000 pixels, got {long_side!r}")
    pol = policy or _DEFAULT_POLICY
    target, name = _resolve(source, pol)
    doc, key = _checkout(target, name, password)
    try:
        with _LOCK:
            count = len(doc)
        numbers = parse_page_range(pages, count)
        for number in numbers:
            with _LOCK:
                page = doc[number - 1]
                try:
                    rotation = int(page.get_rotation())
                    width_pt, height_pt = page.get_size()
                    scale = long_side / max(width_pt, height_pt) if long_side else dpi / 72.0
                    if fit is not None and render:
                        pw, ph = (height_pt, width_pt) if rotation in (90, 270) else (width_pt, height_pt)
                        box = fit(max(1, round(pw * scale)), max(1, round(ph * scale)))
                        if box is not None:
                            shrink = min(box[0] / (pw * scale), box[1] / (ph * scale))
                            if shrink < 1.0:
                                scale *= shrink
                    notes: list[str] = []
                    failure: ImageTooLargeError | None = None
                    page_text = ""
                    if text:
                        textpage = page.get_textpage()
                        try:
                            page_text = textpage.get_text_range()
                        finally:
                            textpage.close()
                    image: Image.Image | None = None
                    try:
                        if render:
                            cap = pol.max_pixels
                            scale, notes = _cap_scale(width_pt, height_pt, scale, cap, name, number)
                        if render and backend == "pypdfium2":
                            image = _render_pdfium(page, scale, name, number)
                    except ImageTooLargeError as exc:
                        if not page_errors:
                            raise
                        failure = exc  # this page alone cannot be rendered: yielded with its error
                except pdfium.PdfiumError as exc:
                    raise PDFError(
                        f"PDF {name} page {number} could not be read ({exc}): the page is damaged"
                    ) from exc
                finally:
                    page.close()
            if render and backend == "pdf2image" and failure is None:
                image = _render_pdf2image(target, number, scale * 72.0, password, name)
            yield PDFPage(
                number=number,
                page_count=count,
                image=image,
                text=page_text.replace("\r\n", "\n"),
                rotation=rotation,
                width_pt=float(width_pt),
                height_pt=float(height_pt),
                dpi=scale * 72.0,
                source=name,
                warnings=notes,
                error=failure,
            )
    finally:
        _checkin(doc, key)


def render_page(
    source: PDFSource,
    number: int,
    *,
    dpi: float = DEFAULT_DPI,
    long_side: int | None = None,
    password: str | None = None,
    policy: InputPolicy | None = None,
) -> PDFPage:
    """Render a single 1-based page (convenience over :func:`iter_pdf_pages`)."""
    return next(
        iter_pdf_pages(source, pages=[number], dpi=dpi, long_side=long_side, password=password, policy=policy)
    )


__all__ = [
    "Backend",
    "PDFPage",
    "PDFSource",
    "is_pdf",
    "iter_pdf_pages",
    "parse_page_range",
    "pdf_page_count",
    "render_page",
]
