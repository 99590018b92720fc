"""OCRTool: full transcription of images and PDF pages as markdown (or plain text), page by page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing, closing
from dataclasses import replace
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
from ..images.load import describe
from ..page_senders import worker_pools
from ..page_workers import resolve_workers
from ..pages import MIN_X_HEIGHT, PageImage, iter_pages, single_fit
from ..pages.fallback import FallbackEngine, Fallbacks
from ..pages.pipeline import PageReader
from ..pages.window import FailureRule, Ready, ain_order, in_order, window_for
from ..pdf import is_pdf, parse_page_range, pdf_page_count
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


Fallback = FallbackEngine


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

    def select_pages(self, source: str, pages: str | None = None) -> list[PageImage]:
        """The selected pages, PDF pages not rendered yet: the count is checked before any pixels."""
        selected = self._listed(source, pages)
        if selected is None:
            selected = self.load_pages(source, pages=pages, render=False, text=False)
        if len(selected) > self.max_pages:
            raise InvalidInputError(
                f"{len(selected)} pages selected, over this tool's limit of {self.max_pages}: "
                "pass a page range such as pages='1-10'"
            )
        return selected

    def _listed(self, source: str, pages: str | None) -> list[PageImage] | None:
        """A local PDF's selected pages from its page count alone (number and count; no page is opened:
        opening each of 1,280 pages cost 0.25-0.6 s before the first request); None for other sources."""
        src = self.check_source(source)
        if not _is_file_path(src):
            return None
        path = self.policy.check_path(src)
        if not is_pdf(path, policy=self.policy):
            return None
        count = pdf_page_count(path, policy=self.policy)
        name = describe(src)
        return [PageImage(n, count, None, "", name) for n in parse_page_range(pages, count)]

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

    def _workers(self, source: str, count: int) -> int:
        """Worker processes for this job (``settings.workers``; see :mod:`..page_workers`), 0 for
        in-process page work: data URLs and URLs, and small jobs when ``workers`` is None."""
        if not _is_file_path(source.strip()):
            return 0
        return resolve_workers(self.settings.workers if self.settings else None, count)

    def _reader(self, source: str, plain: bool, count: int) -> PageReader:
        """This call's page pipeline: the tool's options, its fallbacks, and for ``count`` pages the sender
        processes (:mod:`..page_senders`) or the worker pool, or neither (in-process)."""
        pool, senders = worker_pools(self.vl_client, self._workers(source, count))
        return PageReader.build(
            self.vl_client,
            plain=plain,
            tile=self.tile,
            min_x_height=self.min_x_height,
            fix_rotation=self.fix_rotation,
            max_tokens=self.max_tokens,
            max_attempts=self.max_attempts,
            fallbacks=Fallbacks(self.fallback),
            pool=pool,
            senders=senders,
            dpi=self.dpi,
            fit=True,
            render=partial(self._rendered, source),
        )

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

    def _render_stream(self, source: str, selected: list[PageImage]) -> Iterator[PageImage]:
        """The selected pages with their pixels, in order, from one pass over the file (not one opening per
        page); a page sent as one image is rendered straight at the size sent. A page that cannot be
        rendered comes with its ``error`` and the pages after it still come (the file is opened again after
        a damaged page)."""
        if all(p.image is not None for p in selected):  # images and TIFF frames: decoded already
            yield from selected
            return
        fit = single_fit(self.tile, max_tokens=self.max_tokens)
        src = self.check_source(source)
        todo = [p.number for p in selected]
        while todo:
            try:
                pages = iter_pages(
                    src, pages=todo, dpi=self.dpi, policy=self.policy, fit=fit, page_errors=True
                )
                for page in pages:
                    todo = todo[todo.index(page.number) + 1 :]
                    yield page
            except (PDFError, UnsupportedImageError) as e:  # this page is damaged: it fails alone
                number, todo = todo[0], todo[1:]
                yield PageImage(number, selected[0].page_count, None, source=source, error=e)

    def _ready(self, meta: PageImage, page: PageImage, reader: PageReader) -> Ready[OCRPage] | None:
        """The result of a page that could not be rendered (failed, through the fallback chain like any
        failed page), else None."""
        if page.error is None:
            return None
        return Ready(reader.finish(meta, self._unrendered(meta, page.error), rendered=False))

    def _items(
        self, source: str, selected: list[PageImage], reader: PageReader
    ) -> Iterator[tuple[PageImage, Callable[[], OCRPage] | Ready[OCRPage]]]:
        """Each page with the job that reads it, in order: sent to the worker pool as it is listed, or
        rendered here (PDFium is not thread-safe) and read by the job."""
        if reader.in_workers:
            path = str(self.policy.check_path(source.strip()))
            for meta in selected:
                yield meta, reader.job(replace(meta, image=None), path)
            return
        for meta, page in zip(selected, self._render_stream(source, selected), strict=True):
            yield meta, self._ready(meta, page, reader) or reader.job(page)

    async def _aitems(
        self, source: str, selected: list[PageImage], reader: PageReader, render_pool: ThreadPoolExecutor
    ) -> AsyncIterator[tuple[PageImage, Callable[[], Awaitable[OCRPage]] | Ready[OCRPage]]]:
        """Async :meth:`_items`: pages rendered on one render thread, in order, as the window takes them."""
        if reader.in_workers:
            path = str(await asyncio.to_thread(self.policy.check_path, source.strip()))
            for meta in selected:
                yield meta, reader.ajob(replace(meta, image=None), path)
            return
        loop = asyncio.get_running_loop()
        stream = self._render_stream(source, selected)
        for meta in selected:
            page = await loop.run_in_executor(render_pool, next, stream)
            ready = await asyncio.to_thread(self._ready, meta, page, reader) if page.error else None
            yield meta, ready or reader.ajob(page)

    def read_selected(
        self,
        source: str,
        selected: list[PageImage],
        *,
        plain: bool = False,
        on_page: Callable[[], object] | None = None,
    ) -> tuple[str, OCRResult]:
        """Read ``selected`` (from :meth:`select_pages`) through the page pipeline, as the tool's call does,
        calling ``on_page`` after each page (a progress line); returns (content, result) like the tool.

        Up to ``max_concurrency`` pages are in flight, results come in page order; errors raise as typed
        package errors (every page failed: the kind they share; ``max_failure_rate`` passed: JobAbortedError).
        """
        done: list[OCRPage] = []
        reader = self._reader(source, plain, len(selected))
        window = window_for(self.vl_client.settings.max_concurrency, workers=reader.in_workers)
        with closing(in_order(self._items(source, selected, reader), window)) as finished:
            for _meta, ocr in finished:
                done.append(ocr)
                self._check_failures(done, len(selected))
                if on_page is not None:
                    on_page()
        return self._finish(source, done)

    def _run(
        self, source: str, pages: str | None = None, plain: bool = False, **_: Any
    ) -> tuple[str, OCRResult]:
        return self.guard(
            source, lambda: self.read_selected(source, self.select_pages(source, pages), plain=plain)
        )

    async def _arun(
        self, source: str, pages: str | None = None, plain: bool = False, **_: Any
    ) -> tuple[str, OCRResult]:
        # pages run concurrently (their requests capped by the client); more pages than request slots are
        # rendered and encoded ahead, so a freed slot gets its next request at once
        slots = self.vl_client.settings.max_concurrency
        # PDFium renders one page at a time anyway (it is not thread-safe): one render thread of our own, in
        # page order, keeps renders from queueing in front of the encodes in asyncio's default executor
        render_pool = ThreadPoolExecutor(1, thread_name_prefix="minimaxvl-render")

        async def go() -> tuple[str, OCRResult]:
            done: list[OCRPage] = []
            selected = await asyncio.to_thread(self.select_pages, source, pages)
            reader = self._reader(source, plain, len(selected))
            items = self._aitems(source, selected, reader, render_pool)
            window = window_for(slots, workers=reader.in_workers, ahead=max(2, slots // 4))
            async with aclosing(ain_order(items, window)) as finished:
                async for _meta, ocr in finished:
                    done.append(ocr)
                    self._check_failures(done, len(selected))
            return self._finish(source, done)

        try:
            return await self.aguard(source, go)
        finally:
            render_pool.shutdown(wait=False, cancel_futures=True)


def _is_file_path(src: str) -> bool:
    """True for a file path, not a data URL or a URL (only files are listed by count or read by workers)."""
    return not (src.startswith("data:") or "://" in src)


__all__ = ["OCRInput", "OCRTool", "common_error_type"]
