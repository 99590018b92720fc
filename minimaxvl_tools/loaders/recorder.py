"""One page to its :class:`~.records.PageRecord`, in the loader's mode: the text layer, the page pipeline
(:class:`~minimaxvl_tools.pages.pipeline.PageReader`, in-process or a worker's), or Tesseract; sync and
async with the same decisions. Any error of one page becomes that page's failed record, never the job's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
        try:
            rec = self.early(page)
            if rec is not None:
                return rec
            if self.reader is None:
                return self._read_local(page)
            return self._record(self.reader.read(page), page)
        except Exception as e:  # a page we cannot even prepare fails alone
            return PageRecord.failed(f"{type(e).__name__}: {e}")

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

    async def aread(self, page: PageImage) -> PageRecord:
        """Async :meth:`read`: the model's requests are awaited on the loop, the rest runs in a thread."""
        if self.reader is None or page.error is not None or not self.needs_model(page):
            return await asyncio.to_thread(self.read, page)
        return await self._arecorded(lambda: self.reader.aread(page), page)  # type: ignore[union-attr]

    def pooled(self, page: PageImage, path: str) -> Callable[[], PageRecord] | None:
        """The job for a page a worker process prepares (submitted now, in page order), or None when the page
        is not for the workers (it has pixels, needs no model, or there is no pool)."""
        reader = self.reader
        if page.image is not None or reader is None or reader.pool is None or self.early(page) is not None:
            return None
        job = reader.job(page, path)
        return lambda: self._recorded(job, page)

    def apooled(self, page: PageImage, path: str) -> Callable[[], Awaitable[PageRecord]] | None:
        """Async :meth:`pooled`."""
        reader = self.reader
        if page.image is not None or reader is None or reader.pool is None or self.early(page) is not None:
            return None
        job = reader.ajob(page, path)
        return lambda: self._arecorded(job, page)

    def _recorded(self, job: Callable[[], OCRPage], page: PageImage) -> PageRecord:
        try:
            return self._record(job(), page)
        except Exception as e:
            return PageRecord.failed(f"{type(e).__name__}: {e}")

    async def _arecorded(self, job: Callable[[], Awaitable[OCRPage]], page: PageImage) -> PageRecord:
        try:
            return self._record(await job(), page)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            return PageRecord.failed(f"{type(e).__name__}: {e}")


__all__ = ["LoaderMode", "PageRecorder"]
