"""One page transcribed end to end: :class:`~.pipeline.PageReader` (prepare, then send) for one page, as
two thin drivers, sync and async, of the same pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from .pipeline import PageReader

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

    from ..client import MiniMaxVLClient
    from ..local_ocr import LocalOCREngine
    from ..results import OCRPage
    from .source import PageImage, TileMode


class PageOptions(TypedDict, total=False):
    """The options of :func:`ocr_page` / :func:`aocr_page` (each documented there)."""

    plain: bool
    max_tokens: int | None
    tile: TileMode
    raise_errors: bool
    skip_blank: bool
    fix_rotation: bool
    rotation_engine: LocalOCREngine | None
    max_attempts: int
    min_x_height: float
    stop_on_failure: bool


def _reader(client: MiniMaxVLClient, options: PageOptions) -> PageReader:
    return PageReader.build(client, release=False, **options)


def ocr_page(client: MiniMaxVLClient, page: PageImage, **options: Unpack[PageOptions]) -> OCRPage:
    """Transcribe one page: one fitted image, or overlapping crops merged without the duplicated overlap.

    * Blank pages (``skip_blank``) cost no request: ``status="blank"``, empty text, ``attempts=0``.
    * ``fix_rotation`` turns a sideways or upside-down scan upright first
      (:func:`~.images.quality.detect_rotation`, Tesseract OSD via ``rotation_engine`` or the default
      local engine when installed); ``OCRPage.rotation`` records the correction.
    * A reply that loops or is cut at ``max_tokens`` is retried, up to ``max_attempts`` tries in all, one
      step hotter on the temperature schedule and on two overlapping halves of the region; after the
      last try the page is ``failed`` with the reason (e.g. ``"truncated (finish_reason=length) after 3
      attempts"``), never returned as if fine. ``OCRPage.attempts`` and ``warnings`` record the retries.
    * With ``tile="auto"`` a page that might need crops has its small print measured first
      (:func:`plan_page_image`): crops only when one image would show it under ``min_x_height`` px.

    Failures of the server come back as ``status="failed"`` with the error text, unless ``raise_errors``;
    input errors always raise.
    """
    return _reader(client, options).read(page)


async def aocr_page(client: MiniMaxVLClient, page: PageImage, **options: Unpack[PageOptions]) -> OCRPage:
    """Async :func:`ocr_page`: the page work (checks, plan, encode) runs in a worker thread so the event
    loop stays free; crops (and retried halves) are sent concurrently, bounded by the client."""
    return await _reader(client, options).aread(page)


__all__ = ["PageOptions", "aocr_page", "ocr_page"]
