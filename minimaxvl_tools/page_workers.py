"""Page work in worker processes: render -> blank/rotation/print-size checks -> plan -> cut -> encode.

One core under one GIL cannot feed a server that answers 32 or 256 requests at once: the page work
(about 25-75 ms of CPU a page) has to leave the process that sends the requests. A :class:`PagePool`
runs :func:`prepare_page` on a ``concurrent.futures.ProcessPoolExecutor`` (``forkserver`` where the
platform has it, else ``spawn``; never ``fork`` from a process whose threads are running). Workers open
the file themselves (jobs carry a path the caller's :class:`~.images.policy.InputPolicy` has already
checked, never pixels) and hand back a :class:`PreparedPage`: the encoded crops as data URLs built once,
their exact token costs, the plan's boxes, the text layer, flags and warnings; never PIL objects.

:meth:`PagePool.map` (sync) and :meth:`PagePool.amap` (async) stream outcomes in page order with at most
``window`` pages submitted ahead (memory stays flat), each page's failure captured as a typed error for
that page alone. :func:`ocr_prepared` / :func:`aocr_prepared` send a prepared page with the same
requests, retries and merge as :func:`~.pages.ocr_page`, so the caller's thread or event loop only sends
and receives.

``workers`` (``Settings.workers``, ``MINIMAXVL_WORKERS``, ``--workers``): an int is taken as it is (0 =
in-process, the callers' own path); ``None`` means :func:`default_workers` for a job of at least
:data:`SMALL_JOB_PAGES` pages and in-process below that (starting worker processes costs about 0.3 s,
more than a few pages of work).
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
import pickle
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import InvalidInputError, MiniMaxVLError
from .pages import (
    PageImage,
    PreparedCrop,
    PreparedPage,
    PrepareOptions,
    aread_prepared,
    iter_pages,
    portable,
    prepare,
    read_prepared,
    single_fit,
)
from .settings import DEFAULT_DPI

if TYPE_CHECKING:  # pragma: no cover
    pass

Box = tuple[int, int, int, int]
SMALL_JOB_PAGES = 8
"""Below this many pages a job with ``workers=None`` runs in-process (worker start-up outweighs the work)."""
auto_min_pages = SMALL_JOB_PAGES
"""The threshold :func:`resolve_workers` applies; this repository's tests raise it (``tests/conftest.py``)
so ``workers=None`` stays in-process there and the worker tests ask for workers explicitly."""
_DOCUMENTS_KEPT = 2
"""PDFs a worker process keeps open between its page jobs (:func:`~.pdf.keep_documents`)."""

__all__ = [
    "SMALL_JOB_PAGES",
    "PageJob",
    "PageOutcome",
    "PagePool",
    "PreparedCrop",
    "PreparedPage",
    "aocr_prepared",
    "default_workers",
    "ocr_prepared",
    "prepare_page",
    "resolve_workers",
    "shared",
    "shared_pool",
]


# ---------------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class PageJob:
    """One page's work order: a checked file path, the 1-based page, how to render it and the preparation
    options (:class:`~.pages.PrepareOptions`, the same as in-process).

    ``fit`` renders a page sent as one image straight at the size sent (as OCRTool does);
    ``image_max_tokens`` is the image budget of that fit.
    """

    path: str
    number: int
    dpi: int = DEFAULT_DPI
    password: str | None = None
    fit: bool = True
    image_max_tokens: int | None = None
    options: PrepareOptions = field(default_factory=PrepareOptions)

    @classmethod
    def of(cls, path: str, number: int, **kwargs: Any) -> PageJob:
        """A job from flat keywords: the render ones (dpi, password, fit, image_max_tokens) and any
        :class:`~.pages.PrepareOptions` field (tile, plain, fix_rotation, ...)."""
        render = {k: kwargs.pop(k) for k in ("dpi", "password", "fit", "image_max_tokens") if k in kwargs}
        return cls(path, number, options=PrepareOptions(**kwargs), **render)


@dataclass(frozen=True)
class PageOutcome:
    """One page's result from the pool: ``page`` when the work succeeded, else ``error`` (typed)."""

    number: int
    page: PreparedPage | None = None
    error: MiniMaxVLError | None = None

    def unwrap(self) -> PreparedPage:
        """The prepared page, or raise its error."""
        if self.error is not None:
            raise self.error
        assert self.page is not None
        return self.page


# ---------------------------------------------------------------------------------------------- work
def render_page(job: PageJob) -> PageImage:
    """The job's page rendered (a page sent as one image straight at the size sent); errors are
    MiniMaxVLError."""
    opts = job.options
    fit = single_fit(opts.tile, max_tokens=job.image_max_tokens, profile=opts.profile) if job.fit else None
    pages = iter_pages(job.path, pages=[job.number], dpi=job.dpi, password=job.password, fit=fit)
    return next(iter(pages))


def prepare_page(job: PageJob) -> PreparedPage:
    """Do one page's client-side work (in whichever process calls it): render, then :func:`~.pages.prepare`;
    errors are MiniMaxVLError. The result carries encoded bytes only (no pixels)."""
    return portable(prepare(render_page(job), job.options))


def _outcome(job: PageJob) -> PageOutcome:
    """Run :func:`prepare_page`, any failure captured for this page (picklable: type name and message)."""
    try:
        return PageOutcome(job.number, page=prepare_page(job))
    except MiniMaxVLError as e:
        return PageOutcome(job.number, error=_portable(e))
    except Exception as e:  # a library bug on one page must not lose the others
        return PageOutcome(job.number, error=MiniMaxVLError(f"page {job.number} of {job.path}: {e!r}"))


def _died(job: PageJob) -> MiniMaxVLError:
    return MiniMaxVLError(
        f"page {job.number} of {job.path}: the worker process died on it twice (a crash in the renderer?); "
        "the other pages are kept; try workers=0 to see the error in-process"
    )


def _portable(e: MiniMaxVLError) -> MiniMaxVLError:
    """``e`` as an error that survives pickling: its own class when it round-trips, else the nearest base
    class that does (our errors with keyword-only arguments would not unpickle)."""
    for cls in type(e).__mro__:
        if not (isinstance(cls, type) and issubclass(cls, MiniMaxVLError)):
            continue
        try:
            candidate = cls(str(e))
            if type(pickle.loads(pickle.dumps(candidate))) is cls:
                return candidate
        except Exception:
            continue
    return MiniMaxVLError(str(e))  # pragma: no cover - MiniMaxVLError itself round-trips


# ---------------------------------------------------------------------------------------------- pool
def default_workers() -> int:
    """Worker processes for this machine: the usable cores less one (the sender's), at most 32; 0 (in-process)
    with 2 cores or fewer, where one worker only adds pickling to the same two cores (on a loaded 2-core
    machine it measured slower than in-process: ``benchmarks/results/workers.txt``)."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+: the cores this process may use
    cores = count() if count else None
    if not cores and hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    cores = cores or os.cpu_count() or 1
    return 0 if cores <= 2 else min(32, cores - 1)


def resolve_workers(workers: int | None, pages: int | None = None, *, min_pages: int | None = None) -> int:
    """The worker count to use: an int as given (0 = in-process); None = :func:`default_workers`, or 0
    when the job is known to have fewer than ``min_pages`` pages (default :data:`auto_min_pages`)."""
    if workers is not None:
        if workers < 0:
            raise InvalidInputError(f"workers={workers} must be 0 (in-process) or a positive number")
        return workers
    if pages is not None and pages < (auto_min_pages if min_pages is None else min_pages):
        return 0
    return default_workers()


def _context() -> multiprocessing.context.BaseContext:
    """``forkserver`` (its server imports the page stack once; workers fork from it, ready) else ``spawn``.

    Both start workers by importing the caller's main module, as ``multiprocessing`` always does without
    ``fork``: a script that starts jobs must keep its top level under ``if __name__ == "__main__":``.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(
            ["minimaxvl_tools.page_workers", "minimaxvl_tools.page_senders", "minimaxvl_tools.images.quality"]
        )
        return ctx
    return multiprocessing.get_context("spawn")


def _warm() -> int:
    """Run in each worker at start: Ctrl-C is the parent's to handle (it shuts the pool down), and the
    page stack is imported once, so the first page is not slower."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .images import quality, sizing, tiling  # noqa: F401
    from .pdf import keep_documents

    keep_documents(_DOCUMENTS_KEPT)  # one page a job: the document stays open for the next page
    return os.getpid()


class PagePool:
    """Worker processes for page work, with ordered, bounded streaming (sync and async).

    Use as a context manager, or :func:`shared_pool` for one pool per process reused across calls.
    ``window`` bounds the pages submitted and not yet consumed (default twice the workers).
    """

    def __init__(self, workers: int, *, window: int | None = None) -> None:
        if workers < 1:
            raise InvalidInputError(f"PagePool needs workers >= 1, got {workers}")
        self.workers = workers
        self.window = max(1, window if window is not None else 2 * workers)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> PagePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def executor(self) -> ProcessPoolExecutor:
        """The process pool, started on first use."""
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self.workers, mp_context=_context(), initializer=_warm)
            return self._executor

    def pids(self) -> list[int]:
        """Process ids of the running workers (empty before the first job)."""
        ex = self._executor
        procs = getattr(ex, "_processes", None) or {}
        return [p.pid for p in procs.values() if p.pid is not None]

    def submit(self, job: PageJob) -> Future[PageOutcome]:
        """Start one page; the Future's result is a :class:`PageOutcome` (it never raises for the page)."""
        try:
            return self.executor.submit(_outcome, job)
        except BrokenProcessPool:  # a worker died earlier: start fresh ones
            self.shutdown(wait=False)
            return self.executor.submit(_outcome, job)

    def settle(self, fut: Future[PageOutcome], job: PageJob) -> PageOutcome:
        """``fut``'s outcome; if a worker process died (a crash in a native library takes the whole pool),
        the page is retried once on fresh workers, and only a page that kills them again is failed."""
        try:
            return fut.result()
        except BrokenProcessPool:
            try:
                return self.submit(job).result()
            except BrokenProcessPool:
                self.shutdown(wait=False)
                return PageOutcome(job.number, error=_died(job))

    async def aprepare(self, job: PageJob) -> PageOutcome:
        """Await one page's outcome on the running loop; cancelling the await cancels the page if queued."""
        fut = self.submit(job)
        try:
            return await self._await(fut, job)
        finally:
            fut.cancel()

    def _fill(
        self, pending: deque[tuple[Future[PageOutcome], PageJob]], jobs: Iterator[PageJob], win: int
    ) -> None:
        """Submit jobs until ``win`` are pending (or the jobs run out)."""
        while len(pending) < win and (job := next(jobs, None)) is not None:
            pending.append((self.submit(job), job))

    def map(self, jobs: Iterable[PageJob], *, window: int | None = None) -> Iterator[PageOutcome]:
        """Outcomes in job order, at most ``window`` submitted ahead of the consumer.

        Closing the iterator cancels the pages not started; a KeyboardInterrupt also shuts the workers down.
        """
        pending: deque[tuple[Future[PageOutcome], PageJob]] = deque()
        it = iter(jobs)
        try:
            while self._fill(pending, it, window or self.window) or pending:
                yield self.settle(*pending.popleft())
        except KeyboardInterrupt:
            self.shutdown()
            raise
        finally:
            for fut, _ in pending:
                fut.cancel()

    async def amap(self, jobs: Iterable[PageJob], *, window: int | None = None) -> AsyncIterator[PageOutcome]:
        """Async :meth:`map`: outcomes in order; cancellation (or closing) cancels the pages not started."""
        pending: deque[tuple[Future[PageOutcome], PageJob]] = deque()
        it = iter(jobs)
        try:
            while self._fill(pending, it, window or self.window) or pending:
                outcome = await self._await(*pending[0])
                pending.popleft()
                yield outcome
        finally:
            for fut, _ in pending:
                fut.cancel()

    async def _await(self, fut: Future[PageOutcome], job: PageJob) -> PageOutcome:
        """``fut``'s outcome on the running loop (a dead worker pool is handled as in :meth:`settle`)."""
        try:
            return await asyncio.wrap_future(fut)
        except BrokenProcessPool:
            return await asyncio.to_thread(self.settle, fut, job)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers: queued pages are cancelled, running ones finish; a later job starts new ones."""
        with self._lock:
            ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=wait, cancel_futures=True)


_SHARED: dict[tuple[Callable[[int], Any], int], Any] = {}
_SHARED_LOCK = threading.Lock()
P = TypeVar("P")


def shared(kind: Callable[[int], P], processes: int) -> P:
    """One pool of ``kind`` (:class:`PagePool`, :class:`~.page_senders.SenderPool`) per process count for
    this process, reused across calls, stopped at exit."""
    with _SHARED_LOCK:
        pool: P | None = _SHARED.get((kind, processes))
        if pool is None:
            pool = _SHARED[(kind, processes)] = kind(processes)
        return pool


def shared_pool(workers: int) -> PagePool:
    """The shared :class:`PagePool` of ``workers`` processes (see :func:`shared`)."""
    return shared(PagePool, workers)


@atexit.register
def _stop_shared() -> None:
    for pool in list(_SHARED.values()):
        pool.shutdown(wait=False)


# ---------------------------------------------------------------------------------------------- send
ocr_prepared = read_prepared
"""Send a page a worker prepared: :func:`~.pages.read_prepared` (the same requests, retries and merge)."""
aocr_prepared = aread_prepared
"""Async :func:`ocr_prepared`: :func:`~.pages.aread_prepared`."""
