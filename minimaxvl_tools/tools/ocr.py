"""OCRTool: full transcription of images and PDF pages as markdown (or plain text), page by page."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..errors import (
    InvalidInputError,
    MiniMaxVLError,
    PDFError,
    UnsupportedImageError,
    redact_url,
)
from ..images.quality import correct_rotation
from ..local_ocr import LocalOCREngine
from ..page_workers import PageJob, PagePool, aocr_prepared, ocr_prepared, resolve_workers, shared_pool
from ..pages import MIN_X_HEIGHT, PageImage, _profile_of, _quality_of, aocr_page, ocr_page, single_fit
from ..pages.window import FailureRule, Ready, in_order
from ..pdf import text_layer_is_good
from ..results import OCRPage, OCRResult
from .base import MiniMaxVLBaseTool


def common_error_type(names: list[str | None]) -> type[MiniMaxVLError]:
    """The most specific :mod:`~minimaxvl_tools.errors` class that every named failure is an instance of.

    Why: when every page failed for the same kind of reason (the server down, truncation each time), the
    caller should be able to catch that kind (ServerUnavailableError, TruncatedOutputError, ...); pages
    that failed differently share only a base class, down to MiniMaxVLError.
    """
    from .. import errors

    classes: list[type[MiniMaxVLError]] = []
    for name in names:
        cls = getattr(errors, name or "", None)
        if not (isinstance(cls, type) and issubclass(cls, MiniMaxVLError)):
            return MiniMaxVLError
        classes.append(cls)
    if not classes:
        return MiniMaxVLError
    for base in classes[0].__mro__:
        if (
            isinstance(base, type)
            and issubclass(base, MiniMaxVLError)
            and all(issubclass(c, base) for c in classes)
        ):
            return base
    return MiniMaxVLError  # pragma: no cover - MiniMaxVLError is in every MRO


class OCRInput(BaseModel):
    """Arguments of :class:`OCRTool`."""

    source: str = Field(description="An image or PDF: a file path, an http(s) URL or a data: URL.")
    pages: str | None = Field(None, description="PDF/TIFF pages to transcribe, e.g. '1-3,5' (default: all).")
    plain: bool = Field(False, description="Plain text instead of markdown (headings, lists, tables).")


Fallback = Literal["text-layer", "local"]


class OCRTool(MiniMaxVLBaseTool):
    """Transcribe every word of an image or document pages; dense pages are read in overlapping crops.

    Robustness options: ``fix_rotation`` turns sideways/upside-down scans upright before sending;
    ``max_attempts`` bounds the retries of looping or cut replies (hotter, on smaller crops);
    ``fallback`` names what may stand in for a page the model failed on (its PDF text layer, the local
    Tesseract engine), flagged ``status="fallback"``; ``max_failure_rate`` stops a job whose failed pages
    pass that share of the selection (JobAbortedError, returned to the agent as the tool's error text).
    """

    name: str = "ocr_transcribe"
    description: str = (
        "Transcribe ALL the text of an image, scan, screenshot or PDF pages, verbatim, as markdown "
        "(reading order, headings, lists, tables) or plain text. Use when the full text is needed; "
        "to answer one question about a document use document_qa instead."
    )
    args_schema: type[BaseModel] = OCRInput
    max_tokens: int | None = Field(
        None, ge=64, description="Completion budget per request (default: settings)."
    )
    max_pages: int = Field(50, ge=1, description="Most pages one call transcribes.")
    tile: Literal["auto"] | bool = Field(
        "auto", description="'auto': crops only where small print needs them; True always; False never."
    )
    min_x_height: float = Field(
        MIN_X_HEIGHT,
        gt=0,
        description="Legibility target: small print's x-height (px) as the server sees it ('auto' tiling).",
    )
    fix_rotation: bool = Field(True, description="Detect sideways/upside-down scans and turn them upright.")
    max_attempts: int = Field(
        3, ge=1, description="Tries per page region for looping or cut replies (hotter, smaller crops)."
    )
    fallback: tuple[Fallback, ...] = Field(
        (), description="In order, what may replace a failed page: 'text-layer' (good PDF text), 'local'."
    )
    max_failure_rate: float | None = Field(
        None, ge=0.0, le=1.0, description="Stop the job once failed pages exceed this share of the pages."
    )

    def _pages(self, source: str, pages: str | None) -> list[PageImage]:
        """The selected pages, PDF pages not rendered yet: the count is checked before any pixels."""
        selected = self.load_pages(source, pages=pages, render=False, text=False)
        if len(selected) > self.max_pages:
            raise InvalidInputError(
                f"{len(selected)} pages selected, over this tool's limit of {self.max_pages}: "
                "pass a page range such as pages='1-10'"
            )
        return selected

    def _rendered(self, source: str, page: PageImage) -> PageImage:
        """``page`` with its image: PDF pages are rendered one at a time, so memory stays bounded."""
        if page.image is not None:
            return page
        # a page that will go as one image is rendered at the size sent (no big render + resize)
        fit = single_fit(self.tile, max_tokens=self.max_tokens)
        return self.load_pages(source, pages=[page.number], fit=fit)[0]

    @staticmethod
    def _unrendered(meta: PageImage, error: MiniMaxVLError) -> OCRPage:
        """The failed result of a page that could not be rendered (damaged, over the pixel cap)."""
        return OCRPage(page=meta.number, status="failed", error=str(error), error_type=type(error).__name__)

    def _pool(self, source: str, count: int) -> PagePool | None:
        """The worker-process pool for this job (``settings.workers``; see :mod:`..page_workers`), or None
        for in-process page work: data URLs and URLs, and small jobs when ``workers`` is None."""
        src = source.strip()
        if src.startswith("data:") or "://" in src:
            return None
        workers = resolve_workers(self.settings.workers if self.settings else None, count)
        return shared_pool(workers) if workers else None

    def _page_job(self, source: str, meta: PageImage, plain: bool) -> PageJob:
        """The worker's order for one page: the same render (fit), checks, plan and encode as in-process."""
        return PageJob(
            path=str(self.policy.check_path(source.strip())),
            number=meta.number,
            dpi=self.dpi,
            tile=self.tile,
            image_max_tokens=self.max_tokens,
            min_x_height=self.min_x_height,
            fix_rotation=self.fix_rotation,
            plain=plain,
            profile=_profile_of(self.vl_client),
            quality=_quality_of(self.vl_client),
        )

    def _prepared_kwargs(self, plain: bool) -> dict[str, Any]:
        return {"plain": plain, "max_tokens": self.max_tokens, "max_attempts": self.max_attempts}

    def _fallback_page(self, source: str, meta: PageImage, page: PageImage, ocr: OCRPage) -> PageImage:
        """The page a fallback reads: with its pixels (rendered again here) only when 'local' may run."""
        if ocr.status == "failed" and "local" in self.fallback:
            rendered = self._rendered(source, meta)
            rendered.text_layer = page.text_layer
            return rendered
        return page

    def _ocr_kwargs(self, plain: bool) -> dict[str, Any]:
        return {
            "plain": plain,
            "max_tokens": self.max_tokens,
            "tile": self.tile,
            "fix_rotation": self.fix_rotation,
            "max_attempts": self.max_attempts,
            "min_x_height": self.min_x_height,
        }

    def _fallback(self, page: PageImage, ocr: OCRPage) -> OCRPage:
        """A failed page read by the first allowed fallback, flagged ``fallback``; else ``ocr`` unchanged.

        The original reason stays in ``error``; ``engine`` names the fallback. The local engine reads the
        page turned as the model saw it (``ocr.rotation``), so a corrected scan stays corrected.
        """
        if ocr.status != "failed":
            return ocr
        for kind in self.fallback:
            try:
                if kind == "text-layer" and text_layer_is_good(page.text_layer):
                    text, engine = page.text_layer.strip(), "text-layer"
                elif kind == "local" and page.image is not None and LocalOCREngine.available():
                    image = correct_rotation(page.image, (ocr.rotation - page.rotation) % 360)
                    res = LocalOCREngine().ocr(image)
                    if not res.text.strip():
                        continue
                    text, engine = res.text.strip(), res.engine
                else:
                    continue
            except InvalidInputError:
                raise
            except MiniMaxVLError as e:  # the fallback itself failed: try the next one
                ocr.warnings.append(f"fallback {kind} failed: {e}")
                continue
            return ocr.model_copy(
                update={
                    "status": "fallback",
                    "engine": engine,
                    "markdown": text,
                    "text": text,
                    "warnings": [*ocr.warnings, f"model path failed; text from the {kind} fallback"],
                }
            )
        return ocr

    def _check_failures(self, done: list[OCRPage], total: int) -> None:
        """JobAbortedError once failed pages exceed ``max_failure_rate`` of the ``total`` selected pages.

        Counting against the whole selection means the job stops as soon as the final rate is certain to
        pass the threshold, and never stops a job that would have ended under it.
        """
        failed = [p for p in done if p.status == "failed"]
        if failed:
            detail = f"page {failed[0].page}: {failed[0].error}"
            FailureRule(self.max_failure_rate).check(len(failed), len(done), total, detail)

    def _finish(self, source: str, pages: list[OCRPage]) -> tuple[str, OCRResult]:
        pages = sorted(pages, key=lambda p: p.page)
        shown = redact_url(source) if not source.startswith("data:") else "data URL"
        result = OCRResult(source=shown, pages=pages)
        failed = [p for p in pages if p.status == "failed"]
        if failed and len(failed) == len(pages):
            cls = common_error_type([p.error_type for p in failed])
            raise cls(f"every page failed; page {failed[0].page}: {failed[0].error}")
        body = result.to_markdown()
        notes = []
        if failed:
            notes.append("failed pages: " + ", ".join(f"{p.page} ({p.error})" for p in failed))
        fallback = [p for p in pages if p.status == "fallback"]
        if fallback:
            notes.append(
                "fallback pages: " + ", ".join(f"{p.page} ({p.engine}; model: {p.error})" for p in fallback)
            )
        retried = [f"{p.page} ({p.attempts} attempts)" for p in pages if p.status == "ok" and p.attempts > 1]
        if retried:
            notes.append("retried pages: " + ", ".join(retried))
        turned = [f"{p.page} ({p.rotation} degrees)" for p in pages if p.rotation and p.status != "blank"]
        if turned:
            notes.append("rotated pages: " + ", ".join(turned))
        blank = [str(p.page) for p in pages if p.status == "blank"]
        if blank:
            notes.append("blank pages: " + ", ".join(blank))
        if not body.strip():
            body = "(no text found)"
        content = self.truncate(body)
        if notes:
            content += "\n\n[" + "; ".join(notes) + "]"
        return content, result

    def _items(self, source: str, selected: list[PageImage], plain: bool) -> Iterator[tuple[PageImage, Any]]:
        """Pages rendered here, in order (PDFium is not thread-safe), each with the job that reads it."""
        for meta in selected:
            try:
                page = self._rendered(source, meta)
            except (PDFError, UnsupportedImageError) as e:  # this page cannot be rendered: it fails alone
                yield meta, Ready(self._unrendered(meta, e))
                continue
            yield meta, partial(self._read_rendered, page, plain)

    def _read_rendered(self, page: PageImage, plain: bool) -> OCRPage:
        try:
            return self._fallback(page, ocr_page(self.vl_client, page, **self._ocr_kwargs(plain)))
        finally:
            page.image = None  # free the pixels once the page is read

    def _pooled_items(
        self, source: str, selected: list[PageImage], plain: bool, pool: PagePool
    ) -> Iterator[tuple[PageImage, Any]]:
        """Pages prepared by worker processes, in order, each with the job that sends it."""
        jobs = [self._page_job(source, m, plain) for m in selected]
        with closing(pool.map(jobs)) as outcomes:
            for meta, outcome in zip(selected, outcomes, strict=True):
                try:
                    prepared = outcome.unwrap()
                except (PDFError, UnsupportedImageError) as e:  # this page fails alone
                    yield meta, Ready(self._unrendered(meta, e))
                    continue
                yield meta, partial(self._read_prepared, source, meta, prepared, plain)

    def _read_prepared(self, source: str, meta: PageImage, prepared: Any, plain: bool) -> OCRPage:
        ocr = ocr_prepared(self.vl_client, prepared, **self._prepared_kwargs(plain))
        return self._fallback(self._fallback_page(source, meta, prepared.page_image(), ocr), ocr)

    def _run(
        self, source: str, pages: str | None = None, plain: bool = False, **_: Any
    ) -> tuple[str, OCRResult]:
        def go() -> tuple[str, OCRResult]:
            done: list[OCRPage] = []
            selected = self._pages(source, pages)
            pool = self._pool(source, len(selected))
            items = (
                self._pooled_items(source, selected, plain, pool)
                if pool
                else self._items(source, selected, plain)
            )
            # up to max_concurrency pages in flight, as on the async path; results in page order
            with closing(in_order(items, self.vl_client.settings.max_concurrency)) as finished:
                for _meta, ocr in finished:
                    done.append(ocr)
                    self._check_failures(done, len(selected))
            return self._finish(source, done)

        return self.guard(source, go)

    async def _arun(
        self, source: str, pages: str | None = None, plain: bool = False, **_: Any
    ) -> tuple[str, OCRResult]:
        # pages run concurrently (their requests capped by the client); a few more pages than request
        # slots are rendered and encoded ahead, so a freed slot gets its next request at once; pages in
        # memory stay bounded by the gate
        slots = self.vl_client.settings.max_concurrency
        gate = asyncio.Semaphore(slots + max(2, slots // 4))
        done: list[OCRPage] = []

        # PDFium renders one page at a time anyway (it is not thread-safe): one render thread of our own, in
        # page order, keeps renders from queueing in front of the encodes in asyncio's default executor
        render_pool = ThreadPoolExecutor(1, thread_name_prefix="minimaxvl-render")
        loop = asyncio.get_running_loop()

        async def pooled(meta: PageImage, total: int, pool: PagePool) -> None:
            async with gate:
                try:
                    prepared = (await pool.aprepare(self._page_job(source, meta, plain))).unwrap()
                except (PDFError, UnsupportedImageError) as e:  # this page fails alone
                    done.append(self._unrendered(meta, e))
                    self._check_failures(done, total)
                    return
                ocr = await aocr_prepared(self.vl_client, prepared, **self._prepared_kwargs(plain))
                if ocr.status == "failed" and self.fallback:
                    page = prepared.page_image()
                    page = await asyncio.to_thread(self._fallback_page, source, meta, page, ocr)
                    ocr = await asyncio.to_thread(self._fallback, page, ocr)
                done.append(ocr)
            self._check_failures(done, total)

        async def one(meta: PageImage, total: int) -> None:
            async with gate:
                try:
                    page = await loop.run_in_executor(render_pool, self._rendered, source, meta)
                except (PDFError, UnsupportedImageError) as e:
                    done.append(self._unrendered(meta, e))
                    self._check_failures(done, total)
                    return
                try:
                    ocr = await aocr_page(self.vl_client, page, **self._ocr_kwargs(plain))
                    if ocr.status == "failed" and self.fallback:
                        ocr = await asyncio.to_thread(self._fallback, page, ocr)
                    done.append(ocr)
                finally:
                    page.image = None
            self._check_failures(done, total)

        async def go() -> tuple[str, OCRResult]:
            selected = await asyncio.to_thread(self._pages, source, pages)
            pool = self._pool(source, len(selected))
            tasks = [
                asyncio.create_task(one(p, len(selected)) if pool is None else pooled(p, len(selected), pool))
                for p in selected
            ]
            try:
                finished, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in finished:
                    exc = task.exception()
                    if exc is not None:
                        raise exc
            finally:
                for task in tasks:  # an abort (or a cancelled call) stops the pages still running
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return self._finish(source, done)

        try:
            return await self.aguard(source, go)
        finally:
            render_pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["OCRInput", "OCRTool", "common_error_type"]
