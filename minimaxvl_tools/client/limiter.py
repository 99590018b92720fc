"""The in-flight cap shared by the sync and async paths of one client."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from ..errors import InvalidInputError


class ConcurrencyLimiter:
    """Caps in-flight requests: ``async with limiter:`` per async request, ``with limiter:`` per sync one.

    Both count against one ``in_flight``; async waiters queue on a semaphore per event loop, sync callers
    (threads) on a condition. An adaptive limiter (AIMD on vLLM's queue depth) can take its place.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise InvalidInputError(f"max_concurrency must be >= 1, got {limit}")
        self.limit = limit
        self.in_flight = 0
        self.max_in_flight = 0
        self._sems: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)

    def _sem(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._lock:
            sem = self._sems.get(loop)
            if sem is None:
                sem = self._sems[loop] = asyncio.Semaphore(self.limit)
            return sem

    async def __aenter__(self) -> ConcurrencyLimiter:
        await self._sem().acquire()
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()
        self._sem().release()

    def __enter__(self) -> ConcurrencyLimiter:
        with self._cond:
            self._cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()


@contextlib.contextmanager
def sync_slot(limiter: Any, poll: float = 0.05) -> Iterator[None]:
    """Hold one slot of ``limiter`` on the calling thread.

    Limiters with a sync protocol (:class:`ConcurrencyLimiter`) are entered directly; for async-only ones
    (the adaptive limiter) the thread waits until ``in_flight < limit`` and books itself in their counts.
    """
    if hasattr(limiter, "__enter__"):
        with limiter:
            yield
        return
    lock = getattr(limiter, "_lock", None) or threading.Lock()
    while True:
        with lock:
            if limiter.in_flight < limiter.limit:
                limiter.in_flight += 1
                limiter.max_in_flight = max(limiter.max_in_flight, limiter.in_flight)
                break
        threading.Event().wait(poll)
    try:
        yield
    finally:
        with lock:
            limiter.in_flight -= 1


__all__ = ["ConcurrencyLimiter", "sync_slot"]
