"""Pages of any input: :class:`PageImage` and :func:`iter_pages` (image, multi-page TIFF or PDF, rendered)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image

from ..errors import InvalidInputError, MiniMaxVLError
from ..images import load
from ..images.load import describe
from ..pdf import iter_pdf_pages, parse_page_range
from ..settings import DEFAULT_DPI

if TYPE_CHECKING:  # pragma: no cover
    from ...images.policy import InputPolicy


Box = tuple[int, int, int, int]
TileMode = Literal["auto"] | bool
PageSpec = str | Sequence[int] | None


# ---------------------------------------------------------------------------------------------- pages
@dataclass
class PageImage:
    """One page of any source: 1-based ``number`` of ``page_count``, the RGB image, its text layer."""

    number: int
    page_count: int
    image: Image.Image | None  # None only for PDF pages iterated with render=False
    text_layer: str = ""
    source: str = ""
    rotation: int = 0
    warnings: list[str] = field(default_factory=list)  # how it was rendered (e.g. dpi lowered for the cap)
    error: MiniMaxVLError | None = None  # why a page iterated with page_errors=True has no image
    pdf_size: tuple[float, float] | None = None  # page size in PDF points as displayed (PDF pages only)

    @property
    def has_text_layer(self) -> bool:
        """True when the page carries extractable text (a born-digital PDF page)."""
        return bool(self.text_layer and self.text_layer.strip())

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the rendered image in pixels."""
        return self.pixels().size

    def pixels(self) -> Image.Image:
        """The rendered image; InvalidInputError if the page was iterated with ``render=False``."""
        if self.image is None:
            raise InvalidInputError(f"page {self.number} of {self.source} was not rendered (render=False)")
        return self.image


def _is_pathlike(source: Any) -> bool:
    if isinstance(source, os.PathLike):
        return True
    if isinstance(source, str):
        s = source.strip()
        return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", s) and not s.startswith("data:") and len(s) < 4096
    return False


def iter_pages(
    source: Any,
    *,
    pages: PageSpec = None,
    dpi: int = DEFAULT_DPI,
    policy: InputPolicy | None = None,
    password: str | None = None,
    render: bool = True,
    fit: Callable[[int, int], tuple[int, int] | None] | None = None,
    text: bool = True,
    page_errors: bool = False,
) -> Iterator[PageImage]:
    """Pages of any input, streamed: an image (one page), a multi-page TIFF (its frames) or a PDF (rendered).

    ``pages`` is a 1-based selection (``"1-3,5"`` or a list); ``policy`` guards paths and URLs; errors are
    :class:`~minimaxvl_tools.errors.MiniMaxVLError` subclasses naming the input. ``render=False`` skips
    rendering PDF pages (``image`` is None; text layers only), to pick pages before paying for pixels.
    ``fit`` lets a PDF page be rendered straight at the size it will be sent (see ``iter_pdf_pages``);
    ``text=False`` skips PDF text layers (page counts and selection only need neither text nor pixels).
    ``page_errors=True`` yields a PDF page that cannot be rendered (over the pixel cap even at 1 dpi) with
    ``image=None`` and the reason in ``error`` instead of raising, so the pages after it still come.
    """
    name = _describe(source)
    if isinstance(source, Image.Image):
        for n in parse_page_range(pages, 1):
            yield PageImage(n, 1, load.load_image(source, policy=policy), "", name)
        return

    target: Any = source
    pdf_options: dict[str, Any] = {  # a PDF is read the same way from a path or from bytes
        "pages": pages,
        "dpi": dpi,
        "password": password,
        "policy": policy,
        "render": render,
        "fit": fit,
        "text": text,
        "page_errors": page_errors,
    }
    if _is_pathlike(source):
        path = policy.check_path(source) if policy is not None else Path(source).expanduser()
        if path.is_dir():
            raise InvalidInputError(f"{name!r} is a directory: pass a file (an image or a PDF)")
        if path.is_file():
            with open(path, "rb") as fh:
                head = fh.read(2048)
            if load.sniff(head) == "pdf":
                yield from _pdf_pages(iter_pdf_pages, path, name, **pdf_options)
                return
            target = path
    if target is source:  # URL, data URL, base64, bytes, file object (or a missing path: read_bytes says so)
        data, name = load.read_bytes(source, policy=policy)
        if load.sniff(data) == "pdf":
            yield from _pdf_pages(iter_pdf_pages, data, name, **pdf_options)
            return
        target = data

    frames = list(load.iter_images(target, policy=policy))
    count = len(frames)
    for n in parse_page_range(pages, count):
        yield PageImage(n, count, frames[n - 1], "", name)


def _pdf_pages(iter_pdf_pages: Any, src: Any, name: str, **kw: Any) -> Iterator[PageImage]:
    for p in iter_pdf_pages(src, **kw):
        yield PageImage(
            number=p.number,
            page_count=p.page_count,
            image=p.image,
            text_layer=p.text or "",
            source=name,
            rotation=p.rotation,
            warnings=list(p.warnings),
            error=p.error,
            pdf_size=(p.width_pt, p.height_pt),
        )


def _describe(source: Any) -> str:
    try:
        return describe(source)
    except Exception:  # pragma: no cover - describe must never hide the real error
        return type(source).__name__
