"""One page to its :class:`~.records.PageRecord`, in the loader's mode: the text layer, the page pipeline
(:class:`~minimaxvl_tools.pages.pipeline.PageReader`, in-process or a worker's), or Tesseract; sync and
async with the same decisions. Any error of one page becomes that page's failed record, never the job's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal

from ..pages.fallback import Fallbacks
from ..pages.prepare import is_blank_page, upright
from ..pages.send import failed_page
from ..pdf import text_layer_is_good
from .records import PageRecord, record_of

if TYPE_CHECKING:  # pragma: no cover
    from ..local_ocr import LocalOCREngine
    from ..pages.pipeline import PageReader
    from ..pages.source import PageImage
    from ..results import OCRPage

LoaderMode = Literal["vlm", "text-layer", "auto", "local"]


@dataclass
class PageRecorder:
    """How one loader run turns a page into a record.

    ``reader`` reads pages with the model (``vlm``/``auto``; None in the other modes); ``fallbacks`` stand
    in for pages the model or the renderer failed on; ``local_engine`` gives the Tesseract engine of
    ``local`` mode (built on first use by the loader).
    """

    mode: LoaderMode
    reader: PageReader | None
    fallbacks: Fallbacks
    local_engine: Callable[[], LocalOCREngine]
    rotation_engine: LocalOCREngine | None = None
    plain: bool = False
    min_text_chars: int = 40
    skip_blank: bool = True
    detect_rotation: bool = True

    def needs_model(self, page: PageImage) -> bool:
        """True when the model reads ``page`` (``vlm``, or ``auto`` without a good text layer)."""
        if self.mode == "vlm":
            return True
        if self.mode == "auto":
            return not text_layer_is_good(page.text_layer or "", self.min_text_chars)
        return False

    def early(self, page: PageImage) -> PageRecord | None:
        """The record of a page that needs no pixel work: text layers, and pages that did not render."""
        if self.mode == "text-layer" or (self.mode == "auto" and not self.needs_model(page)):
            return PageRecord.text_layer(page.text_layer or "")
        if page.error is not None:  # not rendered: the text-layer fallback, else failed
            failed = failed_page(page, page.error)
            failed.error = f"{type(page.error).__name__}: {page.error}"
            return self._record(self.fallbacks.apply(page, failed, None), page)
        return None

    def _record(self, ocr: OCRPage, page: PageImage) -> PageRecord:
        return record_of(ocr, plain=self.plain, page_rotation=page.rotation)

    def read(self, page: PageImage) -> PageRecord:
        """One rendered page (or one without pixels that needs none), on this thread."""
        early = self._early_or_failed(page)
        return early if early is not None else self._read_pixels(page)

    def job(self, page: PageImage, path: str) -> Callable[[], PageRecord]:
        """The window's job for one page of the file ``path``: its record when it needs no pixel work; the
        job of a worker process preparing it (submitted now, in page order); or a read on the window."""
        early = self._early_or_failed(page)
        if early is not None:
            return lambda: early
        if self._for_workers(page):
            return partial(self._recorded, self.reader.job(page, path), page)  # type: ignore[union-attr]
        return partial(self._read_pixels, page)

    def ajob(self, page: PageImage, path: str) -> Callable[[], Awaitable[PageRecord]]:
        """Async :meth:`job`."""
        early = self._early_or_failed(page)
        if early is not None:
            return partial(_ready, early)
        if self._for_workers(page):
            return partial(self._arecorded, self.reader.ajob(page, path), page)  # type: ignore[union-attr]
        return partial(self._aread_pixels, page)

    def _early_or_failed(self, page: PageImage) -> PageRecord | None:
        try:
            return self.early(page)
        except Exception as e:  # a page we cannot even look at fails alone
            return PageRecord.failed(f"{type(e).__name__}: {e}")

    def _for_workers(self, page: PageImage) -> bool:
        """True for a page without pixels that a worker process renders and prepares (or reads whole)."""
        return page.image is None and self.reader is not None and self.reader.in_workers

    def _read_pixels(self, page: PageImage) -> PageRecord:
        """A page that needs its pixels read: by the model (the page pipeline) or, in ``local`` mode, by
        Tesseract; any error becomes this page's failed record."""
        if self.reader is None:
            try:
                return self._read_local(page)
            except Exception as e:
                return PageRecord.failed(f"{type(e).__name__}: {e}")
        return self._recorded(partial(self.reader.read, page), page)

    async def _aread_pixels(self, page: PageImage) -> PageRecord:
        """Async :meth:`_read_pixels`: the model's requests on the loop, Tesseract in a thread."""
        if self.reader is None:
            return await asyncio.to_thread(self._read_pixels, page)
        return await self._arecorded(partial(self.reader.aread, page), page)

    def _read_local(self, page: PageImage) -> PageRecord:
        """``local`` mode: the same blank and rotation checks as the model path, then Tesseract."""
        if self.skip_blank and is_blank_page(page, use_text_layer=False)[0]:
            return PageRecord(status="blank")
        turned = 0
        if self.detect_rotation:
            fixed, _ = upright(page, self.rotation_engine)
            turned, page = (fixed.rotation - page.rotation) % 360, fixed
        res = self.local_engine().ocr(page.pixels())
        return PageRecord(
            content=res.text, status="ok", engine=res.engine, extraction="ocr", rotation_corrected=turned
        )

    def _recorded(self, job: Callable[[], OCRPage], page: PageImage) -> PageRecord:
        try:
            return self._record(job(), page)
        except Exception as e:  # a page we cannot even prepare fails alone
            return PageRecord.failed(f"{type(e).__name__}: {e}")

    async def _arecorded(self, job: Callable[[], Awaitable[OCRPage]], page: PageImage) -> PageRecord:
        try:
            return self._record(await job(), page)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            return PageRecord.failed(f"{type(e).__name__}: {e}")


async def _ready(rec: PageRecord) -> PageRecord:
    return rec


__all__ = ["LoaderMode", "PageRecorder"]
