"""The page pipeline every caller runs: page -> prepared (here or in a worker process) -> sent -> fallback.

A :class:`PageReader` holds how pages are read (preparation options, budgets, retries, fallbacks, the
worker pool) and makes one job per page for the in-flight window (:func:`~.window.in_order` /
:func:`~.window.ain_order`): OCRTool, the loader (and through it ingest and Ray ingest) and the eval
runner (through the tools) all read pages with it, sync and async with the same decisions.

Rendering stays with the caller's page stream (PDFium is not thread-safe: pages are rendered in order on
one thread); a page with pixels is prepared by the job, a page without them (``render=False``) is
prepared by a worker process from its file.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, MiniMaxVLError
from ..images.quality import correct_rotation
from ..results import OCRPage
from ..settings import DEFAULT_DPI
from .fallback import Fallbacks
from .plan import MIN_X_HEIGHT
from .prepare import PreparedPage, PrepareOptions, prepare_deferred
from .read import _profile_of, _quality_of
from .send import SendOptions, aread_prepared, failed_page, read_prepared
from .source import PageImage, TileMode

if TYPE_CHECKING:  # pragma: no cover
    from concurrent.futures import Future

    from PIL import Image

    from ..client import MiniMaxVLClient
    from ..local_ocr import LocalOCREngine
    from ..page_senders import ReadOrder, SenderPool
    from ..page_workers import PageJob, PageOutcome, PagePool
    from .blocks import BlockGeometry

    Deferred = tuple[PreparedPage | OCRPage, Callable[[], BlockGeometry] | None]
    """A page prepared but for its block geometry, and the call that computes it (None: none to compute)."""


@dataclass
class PageReader:
    """How a job reads its pages, in one place.

    ``dpi``/``password``/``fit`` are what a worker process renders with (the same as the caller's page
    stream); ``render`` renders one page again in this process (the local fallback of a page a worker
    prepared); ``send``: how requests go out (:class:`~.send.SendOptions`); ``release`` drops a page's
    pixels once it is read (a job of many pages keeps memory flat). ``pool``: worker processes that
    prepare pages without pixels (this process sends); ``senders``: worker processes that read such pages
    whole (:mod:`~minimaxvl_tools.page_senders`; used instead of ``pool`` when given). ``cpu``: held
    around a page's CPU work here (preparation, fallbacks; see :func:`cpu_gate`), so a job given N cores
    (a Ray task) uses N however many pages are in flight; requests are sent outside it.
    """

    client: MiniMaxVLClient
    options: PrepareOptions = field(default_factory=PrepareOptions)
    send: SendOptions = field(default_factory=SendOptions)
    fallbacks: Fallbacks = field(default_factory=Fallbacks)
    rotation_engine: LocalOCREngine | None = None
    pool: PagePool | None = None
    senders: SenderPool | None = None
    dpi: int = DEFAULT_DPI
    password: str | None = None
    fit: bool = False
    release: bool = True
    render: Callable[[PageImage], PageImage | None] | None = field(default=None, repr=False)
    cpu: AbstractContextManager[Any] = field(default_factory=nullcontext, repr=False)
    _client_blob: bytes | None = field(default=None, init=False, repr=False)

    @classmethod
    def build(
        cls,
        client: MiniMaxVLClient,
        *,
        plain: bool = False,
        tile: TileMode = "auto",
        min_x_height: float = MIN_X_HEIGHT,
        skip_blank: bool = True,
        blank_uses_text_layer: bool = True,
        fix_rotation: bool = False,
        max_tokens: int | None = None,
        max_attempts: int = 3,
        raise_errors: bool = False,
        stop_on_failure: bool = True,
        **kwargs: Any,
    ) -> PageReader:
        """A reader for ``client`` from flat options (the client gives the model profile and JPEG quality)."""
        options = PrepareOptions(
            plain=plain,
            tile=tile,
            min_x_height=min_x_height,
            skip_blank=skip_blank,
            blank_uses_text_layer=blank_uses_text_layer,
            fix_rotation=fix_rotation,
            profile=_profile_of(client),
            quality=_quality_of(client),
        )
        send = SendOptions(plain, max_tokens, raise_errors, max_attempts, stop_on_failure)
        return cls(client, options, send, **kwargs)

    @property
    def in_workers(self) -> bool:
        """True when pages without pixels are prepared (or read whole) by worker processes."""
        return self.pool is not None or self.senders is not None

    @property
    def max_tokens(self) -> int | None:
        """The completion budget per request (None: the client's settings)."""
        return self.send.max_tokens

    # ------------------------------------------------------------------ one page, in this process
    def prepare(self, page: PageImage) -> PreparedPage | OCRPage:
        """The page's preparation, or its ``failed`` OCRPage (raised instead: input errors, raise_errors)."""
        prepared, geometry = self.prepare_deferred(page)
        if geometry is None or isinstance(prepared, OCRPage):
            return prepared
        return replace(prepared, geometry=self._geometry(geometry))

    def prepare_deferred(self, page: PageImage) -> Deferred:
        """:meth:`prepare` less the block geometry, and the call that computes it (None: no geometry)."""
        try:
            with self.cpu:
                return prepare_deferred(page, self.options, self.rotation_engine)
        except MiniMaxVLError as e:
            if self.send.raise_errors or isinstance(e, InvalidInputError):
                raise
            return failed_page(page, e, None, page.warnings), None

    def _geometry(self, geometry: Callable[[], BlockGeometry]) -> BlockGeometry:
        """The deferred block geometry, computed under the page-work gate."""
        with self.cpu:
            return geometry()

    def _turned(self, page: PageImage, ocr: OCRPage) -> Callable[[], Image.Image | None]:
        """The pixels the local fallback reads: the page turned as the model saw it, rendered again when
        the page came without pixels (prepared by a worker)."""

        def pixels() -> Image.Image | None:
            source = page if page.image is not None else (self.render(page) if self.render else None)
            if source is None or source.image is None:
                return None
            turn = (ocr.rotation - page.rotation) % 360
            return correct_rotation(source.image, turn) if turn else source.image

        return pixels

    def finish(self, page: PageImage, ocr: OCRPage, *, rendered: bool = True) -> OCRPage:
        """``ocr`` after the fallback chain (a failed page only); ``rendered=False``: the page did not
        render, so the local fallback does not render it again (it reads only pixels ``page`` has)."""
        if ocr.status != "failed":
            return ocr
        with self.cpu:
            return self.fallbacks.apply(page, ocr, self._turned(page, ocr) if rendered else None)

    def read(self, page: PageImage) -> OCRPage:
        """One rendered page, end to end, on this thread."""
        try:
            prepared = self.prepare(page)
            if isinstance(prepared, OCRPage):
                return self.finish(page, prepared)
            return self.finish(page, read_prepared(self.client, prepared, self.send))
        finally:
            if self.release:
                page.image = None  # the pixels are not needed once the page is read

    async def aread(self, page: PageImage, deferred: Deferred | None = None) -> OCRPage:
        """Async :meth:`read`: page work and fallbacks in a thread, the requests on the loop (the block
        geometry in a thread once the replies are in). ``deferred``: the page's :meth:`prepare_deferred`,
        when the caller has done it already (a sender, on its page thread right after the render)."""
        try:
            prepared, later = deferred or await asyncio.to_thread(self.prepare_deferred, page)
            if isinstance(prepared, OCRPage):
                return await asyncio.to_thread(self.finish, page, prepared)
            # the block geometry only once the replies are in: the page's request goes out sooner (the
            # first round of a job is bound by page work) and a page that fails never computes it
            geometry = None if later is None else partial(asyncio.to_thread, self._geometry, later)
            ocr = await aread_prepared(self.client, prepared, self.send, geometry)
            return ocr if ocr.status != "failed" else await asyncio.to_thread(self.finish, page, ocr)
        finally:
            if self.release:
                page.image = None

    # ------------------------------------------------------------------ one page, in a worker process
    def page_job(self, path: str, page: PageImage) -> PageJob:
        """The worker's order for ``page`` of the (policy-checked) file ``path``."""
        from ..page_workers import PageJob

        return PageJob(path, page.number, self.dpi, self.password, self.fit, self.max_tokens, self.options)

    def _outcome(self, page: PageImage, outcome: PageOutcome) -> PreparedPage | OCRPage:
        if outcome.error is not None:
            return failed_page(page, outcome.error, None, page.warnings)
        assert outcome.page is not None
        return outcome.page

    def _settled(self, fut: Future[PageOutcome], order: PageJob, page: PageImage) -> OCRPage:
        assert self.pool is not None
        prepared = self._outcome(page, self.pool.settle(fut, order))
        if isinstance(prepared, OCRPage):  # preparation failed in the worker: the same chain as in-process
            return self.finish(page, prepared)
        ocr = read_prepared(self.client, prepared, self.send)
        return self.finish(_with_layer(prepared, page), ocr)

    async def _asettled(self, order: PageJob, page: PageImage) -> OCRPage:
        assert self.pool is not None
        prepared = self._outcome(page, await self.pool.aprepare(order))
        if isinstance(prepared, OCRPage):
            return await asyncio.to_thread(self.finish, page, prepared)
        ocr = await aread_prepared(self.client, prepared, self.send)
        if ocr.status != "failed":
            return ocr
        return await asyncio.to_thread(self.finish, _with_layer(prepared, page), ocr)

    # ------------------------------------------------------------------ one page, read in a sender process
    def read_order(self, path: str, page: PageImage) -> ReadOrder:
        """The sender's order for ``page`` of the (policy-checked) file ``path``."""
        from ..page_senders import ReadOrder, client_blob

        assert self.senders is not None
        if self._client_blob is None:
            self._client_blob = client_blob(self.client)
        if self._client_blob is None:
            raise InvalidInputError("this client cannot be rebuilt in a sender process: pass senders=None")
        return ReadOrder(
            self.page_job(path, page),
            self.send,
            self.fallbacks,
            self._client_blob,
            self.rotation_engine,
            page.text_layer,
            page.page_count,
            self.client.settings.max_concurrency,
        )

    def _sent(self, order: ReadOrder) -> Future[OCRPage]:
        assert self.senders is not None
        return self.senders.submit(order, self.client.record_usage)

    # ------------------------------------------------------------------ jobs for the window
    def job(self, page: PageImage, path: str | None = None) -> Callable[[], OCRPage]:
        """The window's job for ``page``: a page without pixels goes to the sender processes or the worker
        pool now (in page order, so the workers run ahead), a rendered page is read by the job itself."""
        if page.image is None and self.senders is not None and path is not None:
            fut = self._sent(self.read_order(path, page))
            return _Job(fut.result, fut)
        if page.image is None and self.pool is not None and path is not None:
            order = self.page_job(path, page)
            fut = self.pool.submit(order)
            return _Job(partial(self._settled, fut, order, page), fut)
        return partial(self.read, page)

    def ajob(self, page: PageImage, path: str | None = None) -> Callable[[], Awaitable[OCRPage]]:
        """Async :meth:`job`."""
        if page.image is None and self.senders is not None and path is not None:
            return partial(self._asent, self.read_order(path, page))
        if page.image is None and self.pool is not None and path is not None:
            return partial(self._asettled, self.page_job(path, page), page)
        return partial(self.aread, page)

    async def _asent(self, order: ReadOrder) -> OCRPage:
        fut = self._sent(order)
        try:
            return await asyncio.wrap_future(fut)
        finally:
            fut.cancel()


def cpu_gate(threads: int | None) -> AbstractContextManager[Any]:
    """What a :class:`PageReader` (and :func:`gated`) holds around page work: at most ``threads`` threads
    at once; None: no bound."""
    if threads is None:
        return nullcontext()
    if threads < 1:
        raise InvalidInputError(f"page threads={threads} must be at least 1, or None for no bound")
    return threading.BoundedSemaphore(threads)


def gated(pages: Iterator[PageImage], gate: AbstractContextManager[Any]) -> Iterator[PageImage]:
    """``pages`` with each page's rendering (the iterator's step) done under ``gate``."""
    while True:
        with gate:
            page = next(pages, None)
        if page is None:
            return
        yield page


class _Job:
    """A window job whose page work already runs in a worker process: cancelling it drops that work."""

    def __init__(self, fn: Callable[[], OCRPage], fut: Future[Any]) -> None:
        self._fn = fn
        self._fut = fut

    def __call__(self) -> OCRPage:
        return self._fn()

    def cancel(self) -> None:
        self._fut.cancel()


def _with_layer(prepared: PreparedPage, page: PageImage) -> PageImage:
    """The caller's page (rotation, text layer as the caller knows it) for a worker-prepared page."""
    out = prepared.page_image()
    out.rotation = page.rotation
    out.text_layer = page.text_layer or prepared.text_layer
    out.source = page.source or prepared.source
    return out


__all__ = ["PageReader", "cpu_gate", "gated"]
