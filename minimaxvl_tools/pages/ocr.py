"""One page transcribed: blank and rotation checks, plan, requests, merge, OCRPage (sync and async)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, MiniMaxVLError
from ..prompts import ocr as ocr_prompts
from ..results import CropInfo, OCRPage, markdown_to_text

if TYPE_CHECKING:  # pragma: no cover
    from ...client import MiniMaxVLClient
    from ...local_ocr import LocalOCREngine
from .blocks import _text_blocks, block_geometry
from .merge import clean_transcription, merge_crops, merge_overlapping, merged_text
from .plan import MIN_X_HEIGHT, PagePlan, _crop_requests, encode_page, plan_page, plan_page_image
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
from .source import Box, PageImage, TileMode


# ---------------------------------------------------------------------------------------------- page
def _page_result(
    page: PageImage,
    plain: bool,
    texts: list[tuple[str, Box]],
    crops: list[CropInfo],
    reads: list[_Read],
    job: _Job,
    warnings: list[str],
) -> OCRPage:
    """The page's OCRPage: crop texts merged, or ``failed`` with the first region's reason.

    Nothing read at all (every reply empty after the retries, none the blank-page marker) is a failed
    page (EmptyOutputError), never a blank one: the page was judged non-blank before it was sent.
    """
    attempts = max((r.attempts for r in reads), default=1)
    warnings = warnings + [w for r in reads for w in r.warnings]
    failed = next((r for r in reads if r.failure), None)
    common: dict[str, Any] = {
        "page": page.number,
        "crops": crops,
        "image_tokens": job.tokens,
        "requests": job.requests,
        "rotation": page.rotation,
        "attempts": attempts,
        "warnings": warnings,
    }
    if failed is not None:
        return OCRPage(status="failed", error=failed.failure, error_type=failed.failure_type, **common)
    blocks: Any = None
    if crops and job.regions:
        blocks = merge_crops([clean_transcription(t) for t, _ in texts], job.regions[: len(texts)])
        body = merged_text(blocks)
    elif crops:
        body = merge_overlapping([(clean_transcription(t), b) for t, b in texts])
    else:
        body = clean_transcription(texts[0][0]) if texts else ""
    if not body.strip() and not any(r.said_blank for r in reads):
        error = f"empty reply for a page judged non-blank after {attempts} attempts"
        return OCRPage(status="failed", error=error, error_type="EmptyOutputError", **common)
    geometry = job.geometry or block_geometry(page, job.regions if crops else ())
    blocks = _text_blocks(geometry, blocks if crops and job.regions else None, body)
    return OCRPage(
        markdown=body,
        text=body if plain else markdown_to_text(body),
        status="ok" if body.strip() else "blank",
        blocks=blocks,
        **common,
    )


def _blank(page: PageImage) -> bool:
    """True for an empty page (checked on the client, so no request is spent on it).

    A page whose text layer holds real text is not blank: the pixel check is skipped for it.
    """
    from ..pdf import text_layer_is_good

    if page.text_layer and text_layer_is_good(page.text_layer):
        return False
    try:
        from ..images.quality import is_blank
    except ImportError:  # pragma: no cover
        return False
    return bool(is_blank(page.pixels()).blank)


def _upright(
    page: PageImage, engine: LocalOCREngine | None, *, precheck: bool = True
) -> tuple[PageImage, list[str]]:
    """``page`` turned upright by :func:`~.images.quality.detect_rotation`.

    Its image-only pre-check answers pages it finds upright; only suspect pages cost a Tesseract OSD run
    (when installed); ``precheck=False`` asks Tesseract about every page. Why: a sideways or upside-down
    scan is read far worse by the model. The returned copy's ``rotation``
    adds the clockwise correction to the page's own (PDF ``/Rotate``) rotation; the caller's page is left
    untouched. Detection errors never stop the page: it is sent as it is, with a warning.
    """
    from ..images.quality import correct_rotation, detect_rotation

    try:
        chk = detect_rotation(page.pixels(), engine=engine, precheck=precheck)
    except InvalidInputError:
        raise
    except MiniMaxVLError as e:  # e.g. Tesseract crashed: send the page as it is
        return page, [f"rotation check failed ({e}); page sent as it is"]
    if not chk.angle:
        return page, []
    fixed = replace(
        page,
        image=correct_rotation(page.pixels(), chk),
        rotation=(page.rotation + chk.angle) % 360,
        pdf_size=None,  # pixel boxes of the turned image no longer map onto the PDF page
    )
    note = f"rotated {chk.angle} degrees clockwise to upright ({chk.method}, confidence {chk.confidence:.2f})"
    return fixed, [note]


def _failed(
    page: PageImage, err: Exception, job: _Job | None = None, warnings: Sequence[str] = ()
) -> OCRPage:
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


def _prepare(
    client: MiniMaxVLClient,
    page: PageImage,
    *,
    plain: bool,
    max_tokens: int | None,
    tile: TileMode,
    skip_blank: bool,
    fix_rotation: bool,
    rotation_engine: LocalOCREngine | None,
    max_attempts: int,
    min_x_height: float = MIN_X_HEIGHT,
) -> tuple[PageImage, OCRPage | None, _Job, PagePlan, list[str]]:
    """Shared start of :func:`ocr_page` / :func:`aocr_page`: blank check, rotation, plan and request context.

    Returns the (possibly rotated) page, an early result for a blank page (None otherwise), the job, the
    plan and the warnings so far.
    """
    from ..output_checks import temperature_schedule

    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise InvalidInputError(f"max_attempts={max_attempts!r} must be a positive integer")
    profile = _profile_of(client)
    job = _Job(
        client=client,
        system=ocr_prompts.system_prompt(plain=plain),
        budget=_default_max_tokens(client, max_tokens),
        temperatures=temperature_schedule(_temperature_of(client), max_attempts),
        plain=plain,
        profile=profile,
        quality=_quality_of(client),
    )
    warnings: list[str] = list(page.warnings)
    if skip_blank and _blank(page):
        blank = OCRPage(
            page=page.number, status="blank", rotation=page.rotation, attempts=0, warnings=warnings
        )
        return page, blank, job, plan_page(1, 1, tile=False, profile=profile), warnings
    if fix_rotation:
        page, turned = _upright(page, rotation_engine)
        warnings += turned
    plan = plan_page_image(page.pixels(), tile=tile, min_x_height=min_x_height, profile=profile)
    job.regions = plan.regions
    return page, None, job, plan, warnings


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
    page, early, job, plan, warnings = _prepare(
        client,
        page,
        plain=plain,
        max_tokens=max_tokens,
        tile=tile,
        skip_blank=skip_blank,
        fix_rotation=fix_rotation,
        rotation_engine=rotation_engine,
        max_attempts=max_attempts,
        min_x_height=min_x_height,
    )
    if early is not None:
        return early
    try:
        if plan.mode == "tiles":
            texts: list[tuple[str, Box]] = []
            crops: list[CropInfo] = []
            reads: list[_Read] = []
            reqs = _crop_requests(page, plan, plain, job.profile, job.quality)
            for prompt, enc, t, img in reqs:
                job.tokens += enc.tokens
                read = _read_region(job, img, enc, prompt, label=f"crop {t.index + 1}/{len(reqs)}: ")
                reads.append(read)
                texts.append((read.text, plan.boxes[t.index]))
                crops.append(CropInfo(box=plan.boxes[t.index], tokens=enc.tokens))
                if read.failure:  # the page has failed for good: spend nothing on its other crops
                    break
            return _page_result(page, plain, texts, crops, reads, job, warnings)
        image = page.pixels()
        enc = encode_page(image, profile=job.profile, quality=job.quality)
        job.tokens += enc.tokens
        read = _read_region(job, image, enc, ocr_prompts.page_prompt(plain=plain))
        return _page_result(page, plain, [(read.text, (0, 0, *page.size))], [], [read], job, warnings)
    except InvalidInputError:
        raise
    except MiniMaxVLError as e:
        if raise_errors:
            raise
        return _failed(page, e, job, warnings)


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
) -> OCRPage:
    """Async :func:`ocr_page`: crops (and retried halves) are sent concurrently, bounded by the client.

    Rotation detection (CPU, possibly Tesseract) runs in a worker thread so the event loop stays free.
    """
    page, early, job, plan, warnings = await asyncio.to_thread(
        _prepare,
        client,
        page,
        plain=plain,
        max_tokens=max_tokens,
        tile=tile,
        skip_blank=skip_blank,
        fix_rotation=fix_rotation,
        rotation_engine=rotation_engine,
        max_attempts=max_attempts,
        min_x_height=min_x_height,
    )
    if early is not None:
        return early
    try:
        if plan.mode == "tiles":
            reqs = await asyncio.to_thread(_crop_requests, page, plan, plain, job.profile, job.quality)
            job.tokens += sum(enc.tokens for _, enc, _, _ in reqs)
            reads = await asyncio.gather(
                *(
                    _aread_region(job, img, enc, p, label=f"crop {t.index + 1}/{len(reqs)}: ")
                    for p, enc, t, img in reqs
                )
            )
            texts = [(r.text, plan.boxes[t.index]) for r, (_, _, t, _) in zip(reads, reqs, strict=True)]
            crops = [CropInfo(box=plan.boxes[t.index], tokens=enc.tokens) for _, enc, t, _ in reqs]
            return _page_result(page, plain, texts, crops, list(reads), job, warnings)
        image = page.pixels()
        enc = await asyncio.to_thread(encode_page, image, profile=job.profile, quality=job.quality)
        job.tokens += enc.tokens
        read = await _aread_region(job, image, enc, ocr_prompts.page_prompt(plain=plain))
        return _page_result(page, plain, [(read.text, (0, 0, *page.size))], [], [read], job, warnings)
    except InvalidInputError:
        raise
    except MiniMaxVLError as e:
        if raise_errors:
            raise
        return _failed(page, e, job, warnings)
