"""A prepared page sent: its crops through the retry ladder, texts merged, one OCRPage (sync and async).

:func:`read_prepared` and :func:`aread_prepared` share every decision (:func:`_start`, :func:`_result`);
they differ only in how the crops go out: one after another, or concurrently. ``stop_on_failure`` is the
same in both: a crop that fails for good ends the page (sync sends no further crop; async cancels the
crops still in flight), and the page is ``failed`` with the first failure in crop order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, MiniMaxVLError
from ..output_checks import temperature_schedule
from ..prompts import ocr as ocr_prompts
from ..results import CropInfo, OCRPage, markdown_to_text
from .blocks import _text_blocks
from .merge import clean_transcription, merge_crops, merge_overlapping, merged_text
from .prepare import PreparedCrop, PreparedPage, crop_pixels
from .read import (
    _aread_region,
    _default_max_tokens,
    _Job,
    _profile_of,
    _quality_of,
    _Read,
    _read_region,
    _temperature_of,
)
from .source import PageImage

if TYPE_CHECKING:  # pragma: no cover
    from ..client import MiniMaxVLClient
    from .blocks import BlockGeometry


@dataclass
class _Send:
    """One page's request context and its notes so far."""

    job: _Job
    page: PageImage
    warnings: list[str] = field(default_factory=list)


def failed_page(
    page: PageImage, err: Exception, job: _Job | None = None, warnings: Sequence[str] = ()
) -> OCRPage:
    """The ``failed`` OCRPage of ``page`` for error ``err``, with what was spent on it."""
    return OCRPage(
        page=page.number,
        status="failed",
        error=str(err),
        error_type=type(err).__name__,
        requests=job.requests if job else 0,
        image_tokens=job.tokens if job else 0,
        rotation=page.rotation,
        warnings=list(warnings),
    )


@dataclass(frozen=True)
class SendOptions:
    """How a prepared page is sent: ``plain`` must match the preparation's (the prompts were built with
    it); ``max_tokens`` is the completion budget per request (default: settings); ``max_attempts`` tries
    per region; server failures come back as a ``failed`` page unless ``raise_errors`` (input errors
    always raise)."""

    plain: bool = False
    max_tokens: int | None = None
    raise_errors: bool = False
    max_attempts: int = 3
    stop_on_failure: bool = True

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if not isinstance(attempts, int) or attempts < 1:
            raise InvalidInputError(f"max_attempts={attempts!r} must be a positive integer")


def _start(
    client: MiniMaxVLClient, prepared: PreparedPage, options: SendOptions
) -> tuple[_Send | None, OCRPage | None]:
    """The request context of a prepared page, or the early result of a blank page (no request)."""
    page = prepared.page_image()
    if prepared.blank:
        blank = OCRPage(
            page=page.number,
            status="blank",
            rotation=page.rotation,
            attempts=0,
            warnings=list(prepared.warnings),
        )
        return None, blank
    job = _Job(
        client=client,
        system=ocr_prompts.system_prompt(plain=options.plain),
        budget=_default_max_tokens(client, options.max_tokens),
        temperatures=temperature_schedule(_temperature_of(client), options.max_attempts),
        plain=options.plain,
        profile=_profile_of(client),
        quality=_quality_of(client),
        regions=prepared.regions,
        geometry=prepared.geometry,
    )
    return _Send(job, page, list(prepared.warnings)), None


def _label(prepared: PreparedPage, i: int) -> str:
    return f"crop {i + 1}/{len(prepared.crops)}: " if prepared.mode == "tiles" else ""


def _result(
    prepared: PreparedPage, send: _Send, plain: bool, reads: Sequence[tuple[PreparedCrop, _Read]]
) -> OCRPage:
    """The page's OCRPage from its crops' reads (in crop order): texts merged, or ``failed`` with the first
    failure. Nothing read at all (every reply empty after the retries, none the blank-page marker) is a
    failed page (EmptyOutputError), never a blank one: the page was judged non-blank before it was sent."""
    job = send.job
    attempts = max((r.attempts for _, r in reads), default=1)
    warnings = send.warnings + [w for _, r in reads for w in r.warnings]
    tiles = prepared.mode == "tiles"
    common: dict[str, Any] = {
        "page": prepared.number,
        "crops": [CropInfo(box=c.box, tokens=c.image.tokens) for c, _ in reads] if tiles else [],
        "image_tokens": job.tokens,
        "requests": job.requests,
        "rotation": prepared.rotation,
        "attempts": attempts,
        "warnings": warnings,
    }
    failed = next((r for _, r in reads if r.failure), None)
    if failed is not None:
        return OCRPage(status="failed", error=failed.failure, error_type=failed.failure_type, **common)
    texts = [(r.text, c.box) for c, r in reads]
    parts: Any = None
    if tiles and job.regions:
        parts = merge_crops([clean_transcription(t) for t, _ in texts], job.regions[: len(texts)])
        body = merged_text(parts)
    elif tiles:
        body = merge_overlapping([(clean_transcription(t), b) for t, b in texts])
    else:
        body = clean_transcription(texts[0][0]) if texts else ""
    if not body.strip() and not any(r.said_blank for _, r in reads):
        error = f"empty reply for a page judged non-blank after {attempts} attempts"
        return OCRPage(status="failed", error=error, error_type="EmptyOutputError", **common)
    blocks = (
        _text_blocks(job.geometry, parts if tiles and job.regions else None, body) if job.geometry else []
    )
    return OCRPage(
        markdown=body,
        text=body if plain else markdown_to_text(body),
        status="ok" if body.strip() else "blank",
        blocks=blocks,
        **common,
    )


def _failed_send(send: _Send, options: SendOptions, error: MiniMaxVLError) -> OCRPage:
    """A server failure that ends the page: raised for ``raise_errors`` and input errors, else recorded."""
    if options.raise_errors or isinstance(error, InvalidInputError):
        raise error
    return failed_page(send.page, error, send.job, send.warnings)


def read_prepared(
    client: MiniMaxVLClient, prepared: PreparedPage, options: SendOptions | None = None
) -> OCRPage:
    """Send a prepared page: each crop through the retry ladder, one after another, then merged."""
    options = options or SendOptions()
    send, early = _start(client, prepared, options)
    if send is None:
        return early  # type: ignore[return-value]
    reads: list[tuple[PreparedCrop, _Read]] = []
    try:
        for i, crop in enumerate(prepared.crops):
            send.job.tokens += crop.image.tokens
            label = _label(prepared, i)
            reads.append(
                (crop, _read_region(send.job, crop_pixels(crop), crop.image, crop.prompt, label=label))
            )
            if reads[-1][1].failure and options.stop_on_failure:  # failed for good: spend nothing more
                break
    except MiniMaxVLError as e:
        return _failed_send(send, options, e)
    return _result(prepared, send, options.plain, reads)


async def aread_prepared(
    client: MiniMaxVLClient,
    prepared: PreparedPage,
    options: SendOptions | None = None,
    geometry: Callable[[], Awaitable[BlockGeometry]] | None = None,
) -> OCRPage:
    """Async :func:`read_prepared`: the crops (and retried halves) are sent concurrently, bounded by the
    client's concurrency cap; with ``stop_on_failure`` the first crop that fails for good cancels the rest.
    ``geometry``: for a page prepared without its block geometry (:func:`.prepare.prepare_deferred`), what
    computes it once the replies are in (a page that was read is kept, without block boxes, if it fails)."""
    options = options or SendOptions()
    send, early = _start(client, prepared, options)
    if send is None:
        return early  # type: ignore[return-value]
    send.job.tokens += prepared.image_tokens
    tasks = [
        asyncio.ensure_future(
            _aread_region(send.job, crop_pixels(c), c.image, c.prompt, label=_label(prepared, i))
        )
        for i, c in enumerate(prepared.crops)
    ]
    try:
        for fut in asyncio.as_completed(tasks):
            if (await fut).failure and options.stop_on_failure:
                break
    except MiniMaxVLError as e:
        return _failed_send(send, options, e)
    finally:
        for t in tasks:
            t.cancel()
    done = [
        (c, t.result())
        for c, t in zip(prepared.crops, tasks, strict=True)
        if t.done() and not t.cancelled() and t.exception() is None
    ]
    if geometry is not None and done and not any(r.failure for _, r in done):
        try:
            send.job.geometry = await geometry()
        except Exception as e:  # a page read is never lost to its block boxes
            send.warnings.append(f"block boxes not computed: {e!r}")
    return _result(prepared, send, options.plain, done)


__all__ = ["SendOptions", "aread_prepared", "failed_page", "read_prepared"]
