"""One page transcribed end to end: :func:`~.prepare.prepare` then :func:`~.send.read_prepared` (sync and
async: the same checks, plan, requests and merge; only how the requests go out differs)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import InvalidInputError, MiniMaxVLError
from ..results import OCRPage
from .plan import MIN_X_HEIGHT
from .prepare import PreparedPage, PrepareOptions, is_blank_page, prepare, upright
from .read import _profile_of, _quality_of
from .send import aread_prepared, failed_page, read_prepared
from .source import PageImage, TileMode

if TYPE_CHECKING:  # pragma: no cover
    from ..client import MiniMaxVLClient
    from ..local_ocr import LocalOCREngine

_upright = upright
_failed = failed_page


def _blank(page: PageImage) -> bool:
    """True for an empty page (a page whose text layer holds real text is not blank)."""
    return is_blank_page(page)[0]


def prepare_options(
    client: MiniMaxVLClient | None,
    *,
    plain: bool = False,
    tile: TileMode = "auto",
    min_x_height: float = MIN_X_HEIGHT,
    skip_blank: bool = True,
    fix_rotation: bool = False,
    blank_uses_text_layer: bool = True,
) -> PrepareOptions:
    """The :class:`PrepareOptions` for ``client`` (its model profile and JPEG quality) and these options."""
    return PrepareOptions(
        plain=plain,
        tile=tile,
        min_x_height=min_x_height,
        skip_blank=skip_blank,
        blank_uses_text_layer=blank_uses_text_layer,
        fix_rotation=fix_rotation,
        profile=_profile_of(client),
        quality=_quality_of(client),
    )


def _prepared(
    client: MiniMaxVLClient,
    page: PageImage,
    options: PrepareOptions,
    rotation_engine: LocalOCREngine | None,
    max_attempts: int,
    raise_errors: bool,
) -> PreparedPage | OCRPage:
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise InvalidInputError(f"max_attempts={max_attempts!r} must be a positive integer")
    try:
        return prepare(page, options, rotation_engine)
    except InvalidInputError:
        raise
    except MiniMaxVLError as e:  # e.g. an image the encoder refuses: this page fails alone
        if raise_errors:
            raise
        return failed_page(page, e, None, page.warnings)


def ocr_page(
    client: MiniMaxVLClient,
    page: PageImage,
    *,
    plain: bool = False,
    max_tokens: int | None = None,
    tile: TileMode = "auto",
    raise_errors: bool = False,
    skip_blank: bool = True,
    fix_rotation: bool = False,
    rotation_engine: LocalOCREngine | None = None,
    max_attempts: int = 3,
    min_x_height: float = MIN_X_HEIGHT,
    stop_on_failure: bool = True,
) -> OCRPage:
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
    options = prepare_options(
        client,
        plain=plain,
        tile=tile,
        min_x_height=min_x_height,
        skip_blank=skip_blank,
        fix_rotation=fix_rotation,
    )
    prepared = _prepared(client, page, options, rotation_engine, max_attempts, raise_errors)
    if isinstance(prepared, OCRPage):
        return prepared
    return read_prepared(
        client,
        prepared,
        plain=plain,
        max_tokens=max_tokens,
        raise_errors=raise_errors,
        max_attempts=max_attempts,
        stop_on_failure=stop_on_failure,
    )


async def aocr_page(
    client: MiniMaxVLClient,
    page: PageImage,
    *,
    plain: bool = False,
    max_tokens: int | None = None,
    tile: TileMode = "auto",
    raise_errors: bool = False,
    skip_blank: bool = True,
    fix_rotation: bool = False,
    rotation_engine: LocalOCREngine | None = None,
    max_attempts: int = 3,
    min_x_height: float = MIN_X_HEIGHT,
    stop_on_failure: bool = True,
) -> OCRPage:
    """Async :func:`ocr_page`: the page work (checks, plan, encode) runs in a worker thread so the event
    loop stays free; crops (and retried halves) are sent concurrently, bounded by the client."""
    options = prepare_options(
        client,
        plain=plain,
        tile=tile,
        min_x_height=min_x_height,
        skip_blank=skip_blank,
        fix_rotation=fix_rotation,
    )
    prepared = await asyncio.to_thread(
        _prepared, client, page, options, rotation_engine, max_attempts, raise_errors
    )
    if isinstance(prepared, OCRPage):
        return prepared
    return await aread_prepared(
        client,
        prepared,
        plain=plain,
        max_tokens=max_tokens,
        raise_errors=raise_errors,
        max_attempts=max_attempts,
        stop_on_failure=stop_on_failure,
    )


__all__ = ["aocr_page", "ocr_page", "prepare_options"]
