"""pages.window: the in-flight window (order, bound, errors, ready items) and the one failure-rate rule."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from minimaxvl_tools.errors import InvalidInputError, JobAbortedError
from minimaxvl_tools.pages.window import FailureRule, Ready, ain_order, in_order


def _job(i: int, running: list[int], peak: list[int], lock: threading.Lock, delay: float) -> int:
    with lock:
        running.append(i)
        peak[0] = max(peak[0], len(running))
    time.sleep(delay)
    with lock:
        running.remove(i)
    return i * 10


def test_sync_window_keeps_order_and_bound() -> None:
    running: list[int] = []
    peak = [0]
    lock = threading.Lock()
    delays = [0.05, 0.0, 0.03, 0.0, 0.02, 0.0, 0.01, 0.0]
    items = [(i, (lambda i=i: _job(i, running, peak, lock, delays[i]))) for i in range(8)]
    items.insert(3, (99, Ready(-1)))  # a cached result keeps its place
    out = list(in_order(items, 3))
    assert [m for m, _ in out] == [0, 1, 2, 99, 3, 4, 5, 6, 7]
    assert [r for _, r in out] == [0, 10, 20, -1, 30, 40, 50, 60, 70]
    assert 1 < peak[0] <= 3


def test_sync_window_raises_a_jobs_error_in_its_turn() -> None:
    def boom() -> int:
        raise ValueError("page 2 broke")

    items = [(1, lambda: 1), (2, boom), (3, lambda: 3)]
    it = in_order(items, 2)
    assert next(it) == (1, 1)
    with pytest.raises(ValueError, match="page 2"):
        next(it)


async def test_async_window_same_order_and_bound() -> None:
    running = 0
    peak = 0

    async def job(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01 * (5 - i % 5))
        running -= 1
        return i * 10

    items = [(i, (lambda i=i: job(i))) for i in range(8)]
    out = [x async for x in ain_order(items, 3)]
    assert [m for m, _ in out] == list(range(8)) and [r for _, r in out] == [i * 10 for i in range(8)]
    assert 1 < peak <= 3


async def test_async_jobs_start_as_they_are_made() -> None:
    # items that come without a pause (pages handed to worker processes): each job takes its first step
    # before the next item is made, so the first page is on its way before the window is full
    log: list[str] = []

    def items():  # a plain iterator: nothing in it gives the loop a turn
        for i in range(4):
            log.append(f"made {i}")

            async def job(i: int = i) -> int:
                log.append(f"started {i}")
                await asyncio.sleep(0.01)
                return i

            yield i, job

    got = [r async for _, r in ain_order(items(), 4)]
    assert got == [0, 1, 2, 3]
    assert log[:4] == ["made 0", "started 0", "made 1", "started 1"]


def test_failure_rule_with_and_without_a_known_total() -> None:
    rule = FailureRule(0.5, min_pages=4)
    rule.check(failed=2, done=2, total=6)  # 2 of 6 can still end under half
    with pytest.raises(JobAbortedError, match="of 6 pages"):
        rule.check(failed=4, done=5, total=6)
    rule.check(failed=2, done=2)  # unknown total: over at least min_pages pages
    with pytest.raises(JobAbortedError):
        rule.check(failed=3, done=3)
    FailureRule(None).check(failed=9, done=9, total=9)
    with pytest.raises(InvalidInputError):
        FailureRule(1.5)
    with pytest.raises(InvalidInputError):
        list(in_order([], 0))


def test_closing_the_window_drops_the_outside_work_of_jobs_still_running() -> None:
    """A job that started work elsewhere (a worker process) has ``cancel``: when the consumer stops, the
    jobs still in flight have that work cancelled too; finished ones are left alone."""
    import threading
    from contextlib import closing

    from minimaxvl_tools.pages.window import in_order

    release = threading.Event()
    cancelled: list[int] = []

    class Job:
        def __init__(self, i: int) -> None:
            self.i = i

        def __call__(self) -> int:
            if self.i == 0:
                threading.Event().wait(0.2)  # long enough for jobs 1 and 2 to be submitted behind it
            else:
                release.wait(5)  # jobs 1 and 2 are still running when the consumer stops
            return self.i

        def cancel(self) -> None:
            cancelled.append(self.i)

    with closing(in_order(((i, Job(i)) for i in range(6)), 3)) as out:
        assert next(out) == (0, 0)
    release.set()
    assert sorted(cancelled) == [1, 2]  # the window held 3: jobs 0-2; job 0 was handed out
