"""The in-flight window every page caller uses: up to ``size`` jobs running at once, results in input
order, finished heads handed out at once, nothing more than ``size`` held; and the one failure-rate rule.

Sync jobs run on daemon threads (unlike ``ThreadPoolExecutor``'s, they do not hold the interpreter at exit
until in-flight requests end, so Ctrl-C stops a job at once); async jobs are tasks on the running loop.
An item is either a job to run (a callable, or for the async window a coroutine function) or a result that
is ready already (a cached page, a file's error record): both keep their place in the order.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import InvalidInputError, JobAbortedError

M = TypeVar("M")
_END: Any = object()
R = TypeVar("R")


@dataclass(frozen=True)
class Ready(Generic[R]):
    """A result that needs no work (cached, or a record of an input that failed before any work)."""

    value: R


class _Threads:
    """Daemon worker threads started on demand, up to ``size``."""

    def __init__(self, size: int) -> None:
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        self._size = size
        self._started = 0

    def submit(self, fn: Callable[[], R]) -> Future[R]:
        if self._started < self._size:
            threading.Thread(target=self._work, name=f"minimaxvl-page-{self._started}", daemon=True).start()
            self._started += 1
        fut: Future[R] = Future()
        self._queue.put((fut, fn))
        return fut

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            fut, fn = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as e:  # delivered to the consumer by Future.result()
                fut.set_exception(e)

    def shutdown(self) -> None:
        for _ in range(self._started):
            self._queue.put(None)


def window_for(slots: int, *, workers: bool, ahead: int = 0) -> int:
    """Items to keep in flight for ``slots`` request slots: with worker processes, twice the slots (their
    pages are rendered and prepared while the slots are busy; a sender's slots are its own, so a freed
    slot must find its next page there, ready); else ``ahead`` more."""
    slots = max(1, slots)
    return 2 * slots if workers else slots + ahead


def _check_size(size: int) -> int:
    if not isinstance(size, int) or size < 1:
        raise InvalidInputError(f"window size must be a positive integer, got {size!r}")
    return size


def in_order(items: Iterable[tuple[M, Callable[[], R] | Ready[R]]], size: int) -> Iterator[tuple[M, R]]:
    """Run the items' jobs ``size`` at a time on threads; yield ``(meta, result)`` in input order.

    A job's exception is raised when its turn comes (the jobs still running are cancelled or left to end
    on their daemon threads). With ``size == 1`` jobs run on the calling thread, one after another.
    """
    size = _check_size(size)
    pool = _Threads(size) if size > 1 else None
    pending: deque[tuple[M, Future[R] | Ready[R]]] = deque()
    outside: dict[Future[R], Any] = {}

    def head_ready() -> bool:
        job = pending[0][1]
        return isinstance(job, Ready) or job.done()

    def drain(keep: int) -> Iterator[tuple[M, R]]:
        while pending and (len(pending) > keep or head_ready()):
            meta, job = pending.popleft()
            yield meta, (job.value if isinstance(job, Ready) else job.result())

    it = iter(items)
    try:
        while True:
            yield from drain(size - 1)  # room first, before the next item is made: never more than ``size``
            item = next(it, _END)
            if item is _END:
                break
            meta, job = item
            if isinstance(job, Ready):
                pending.append((meta, job))
            elif pool is None:
                pending.append((meta, Ready(job())))
            else:
                fut = pool.submit(job)
                if hasattr(job, "cancel"):  # the job started work elsewhere (a worker process)
                    outside[fut] = job
                pending.append((meta, fut))
        yield from drain(0)
    finally:
        for _, job in pending:
            if isinstance(job, Future) and not job.cancel() and not job.done() and job in outside:
                outside[job].cancel()  # running, waiting on a worker process: drop that work if queued
        if pool is not None:
            pool.shutdown()


async def ain_order(
    items: Iterable[tuple[M, Callable[[], Awaitable[R]] | Ready[R]]] | AsyncIterator[tuple[M, Any]],
    size: int,
) -> AsyncIterator[tuple[M, R]]:
    """Async :func:`in_order`: jobs are tasks, ``size`` at a time; closing the iterator cancels the rest."""
    size = _check_size(size)
    pending: deque[tuple[M, asyncio.Future[R] | Ready[R]]] = deque()

    def head_ready() -> bool:
        job = pending[0][1]
        return isinstance(job, Ready) or job.done()

    async def drain(keep: int) -> AsyncIterator[tuple[M, R]]:
        while pending and (len(pending) > keep or head_ready()):
            meta, job = pending.popleft()
            yield meta, (job.value if isinstance(job, Ready) else await job)

    async def each() -> AsyncIterator[tuple[M, Any]]:
        if hasattr(items, "__aiter__"):
            async for it in items:  # type: ignore[union-attr]
                yield it
        else:
            for it in items:  # type: ignore[union-attr]
                yield it

    it = each()
    try:
        while True:
            async for out in drain(size - 1):  # room first, before the next item is made
                yield out
            item = await anext(it, _END)
            if item is _END:
                break
            meta, job = item
            if isinstance(job, Ready):
                pending.append((meta, job))
            else:
                pending.append((meta, asyncio.ensure_future(job())))
                # let the job start now (its first step may hand the page to a worker process): items
                # that come without a pause would otherwise fill the whole window before any job runs
                await asyncio.sleep(0)
        async for out in drain(0):
            yield out
    finally:
        for _, job in pending:
            if isinstance(job, asyncio.Future):
                job.cancel()


@dataclass(frozen=True)
class FailureRule:
    """When a job of many pages stops: failed pages over ``max_rate`` of the pages.

    With the job's total known, it stops as soon as the final rate is certain to pass (failed > max_rate
    x total), and never stops a job that would end under it; with the total unknown (a stream of files)
    the rate is taken over the pages done, at least ``min_pages`` of them. ``max_rate=None`` never stops.
    """

    max_rate: float | None = None
    min_pages: int = 10

    def __post_init__(self) -> None:
        if self.max_rate is not None and not 0.0 <= self.max_rate <= 1.0:
            raise InvalidInputError(f"max_failure_rate must be in [0, 1], got {self.max_rate}")

    def check(self, failed: int, done: int, total: int | None = None, detail: str = "") -> None:
        """Raise :class:`JobAbortedError` when the rule says stop."""
        if self.max_rate is None or failed == 0:
            return
        base = total if total is not None else max(done, self.min_pages)
        if failed > self.max_rate * base:
            of = f" of {total}" if total is not None else ""
            raise JobAbortedError(
                f"stopped after {done}{of} pages: {failed} failed ({failed / max(base, 1):.0%}) is over "
                f"max_failure_rate {self.max_rate:.0%}" + (f"; {detail}" if detail else "")
            )


__all__ = ["FailureRule", "Ready", "ain_order", "in_order", "window_for"]
