"""AdaptiveConcurrencyLimiter: metrics parsing, the AIMD control law, and a live batch against slots."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from minimaxvl_tools.backpressure import AdaptiveConcurrencyLimiter, ServerLoad, parse_vllm_metrics
from minimaxvl_tools.client import ConcurrencyLimiter, MiniMaxVLClient
from minimaxvl_tools.testing import LocalVLLMServer

pytestmark = pytest.mark.timeout(30)


class WaitingSampler:
    """Samples the test server's own waiting/running counts every 5 ms in a thread (max kept)."""

    def __init__(self, server: LocalVLLMServer) -> None:
        self.server = server
        self.max_waiting = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.max_waiting = max(self.max_waiting, self.server.waiting)
            self.samples += 1

    def __enter__(self) -> WaitingSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)


def make_client(server: LocalVLLMServer, **kw: object) -> MiniMaxVLClient:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("max_retries", 2)
    return MiniMaxVLClient(base_url=server.base_url, backoff_base=0.01, backoff_max=0.05, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- parsing
def test_parse_sums_label_sets_and_prefers_kv_name() -> None:
    text = (
        "# HELP vllm:num_requests_running x\n"
        'vllm:num_requests_running{model_name="a",engine="0"} 3.0\n'
        'vllm:num_requests_running{model_name="a",engine="1"} 4.0\n'
        'vllm:num_requests_waiting{model_name="a b"} 2\n'
        'vllm:gpu_cache_usage_perc{model_name="a"} 0.2\n'
        'vllm:kv_cache_usage_perc{model_name="a",engine="0"} 0.5\n'
        'vllm:kv_cache_usage_perc{model_name="a",engine="1"} 0.7\n'
        "garbage line\n"
    )
    load = parse_vllm_metrics(text)
    assert load == ServerLoad(running=7.0, waiting=2.0, kv_cache=0.7)


def test_parse_tolerates_missing_metrics() -> None:
    assert parse_vllm_metrics("process_cpu_seconds_total 1.0\n") is None
    load = parse_vllm_metrics("vllm:num_requests_waiting 5\nvllm:gpu_cache_usage_perc 0.3\n")
    assert load == ServerLoad(running=0.0, waiting=5.0, kv_cache=0.3)
    assert parse_vllm_metrics("vllm:num_requests_running 1\n") == ServerLoad(1.0, 0.0, None)


# ---------------------------------------------------------------------------------------------- control law
def saturated(limiter: AdaptiveConcurrencyLimiter) -> None:
    """Pretend every slot is used, so growth is allowed."""
    limiter.in_flight = limiter.limit


def test_aimd_grows_when_idle_queue_and_cuts_on_waiting() -> None:
    lim = AdaptiveConcurrencyLimiter("http://unused", fixed_limit=4, max_limit=40)
    saturated(lim)
    lim.observe(ServerLoad(4, 0, 0.1))
    assert lim.limit == 6  # slow start: x1.5
    saturated(lim)
    lim.observe(ServerLoad(6, 0, 0.1))
    assert lim.limit == 9
    saturated(lim)
    lim.observe(ServerLoad(8, 8, 0.5))  # half the requests wait: cut to 9 * 8/16
    assert lim.limit == 4
    lim.in_flight = 9  # the cut has not drained yet: no second cut
    lim.observe(ServerLoad(8, 8, 0.5))
    assert lim.limit == 4
    lim.in_flight = 4
    lim.observe(ServerLoad(4, 0, 0.1))  # after the first cut growth is additive
    assert lim.limit == 5
    lim.in_flight = 1  # not saturated: no growth without demand
    lim.observe(ServerLoad(1, 0, 0.1))
    assert lim.limit == 5
    assert [s.limit for s in lim.history] == [6, 9, 4, 4, 5, 5]


def test_no_growth_while_requests_are_in_transit_or_server_is_full() -> None:
    lim = AdaptiveConcurrencyLimiter("http://unused", fixed_limit=20)
    saturated(lim)
    lim.observe(ServerLoad(running=10, waiting=0, kv_cache=0.1))  # half of ours not at the server yet
    assert lim.limit == 20
    lim.observe(ServerLoad(running=20, waiting=0, kv_cache=0.1))  # all ours run: slow start x1.5
    assert lim.limit == 30
    saturated(lim)
    lim.observe(ServerLoad(running=26, waiting=0, kv_cache=0.1))  # >= 0.85 but < 0.95 of ours: +1 only
    assert lim.limit == 31
    saturated(lim)
    lim.observe(ServerLoad(running=31, waiting=0, kv_cache=0.1))  # slow start is over: additive
    assert lim.limit == 32


def test_aimd_holds_on_small_queue_and_cuts_on_full_kv() -> None:
    lim = AdaptiveConcurrencyLimiter("http://unused", fixed_limit=10, min_limit=2, max_limit=12)
    saturated(lim)
    lim.observe(ServerLoad(10, 1, 0.5))  # waiting within max(2, 10% running): hold
    assert lim.limit == 10
    lim.observe(ServerLoad(10, 0, 0.95))  # KV between kv_high and kv_full: hold
    assert lim.limit == 10
    lim.observe(ServerLoad(10, 0, 0.99))  # KV nearly full: x0.8
    assert lim.limit == 8
    for _ in range(20):
        saturated(lim)
        lim.observe(ServerLoad(lim.limit, 0, 0.0))
    assert lim.limit == 12  # bounded by max_limit
    for _ in range(20):
        lim.in_flight = 0
        lim.observe(ServerLoad(1, 100, 0.0))
    assert lim.limit == 2  # bounded by min_limit


def test_observe_none_falls_back_to_fixed_and_recovers() -> None:
    lim = AdaptiveConcurrencyLimiter("http://unused", fixed_limit=7, initial_limit=3)
    assert lim.mode == "adaptive" and lim.limit == 3
    lim.observe(None, reason="http://x/metrics answered 404")
    assert lim.mode == "fixed" and lim.limit == 7 and "404" in (lim.fallback_reason or "")
    lim.observe(ServerLoad(1, 0, 0.0))
    assert lim.mode == "adaptive" and lim.fallback_reason is None


def test_bad_bounds_rejected() -> None:
    with pytest.raises(ValueError):
        AdaptiveConcurrencyLimiter("http://x", min_limit=5, max_limit=2)


# ---------------------------------------------------------------------------------------------- live
def test_server_metrics_follow_slots() -> None:
    """The test double's gauges: running <= slots, the rest waiting, KV use = running / (1.25 slots)."""
    # a latency long enough that all five requests sit in the server together even on a loaded machine
    # (the first two hold their slots for 2 s while the other three arrive and wait)
    with LocalVLLMServer(latency=2.0, slots=2) as server:
        threads = [
            threading.Thread(
                target=lambda: httpx.post(
                    server.base_url + "/chat/completions",
                    json={"model": server.model, "messages": [{"role": "user", "content": "x"}]},
                    timeout=15,
                )
            )
            for _ in range(5)
        ]
        for t in threads:
            t.start()
        load = None
        for _ in range(300):
            load = parse_vllm_metrics(httpx.get(server.root_url + "/metrics").text)
            if load is not None and load.running + load.waiting >= 5:
                break
            threading.Event().wait(0.01)
        for t in threads:
            t.join(15)
    assert load == ServerLoad(running=2.0, waiting=3.0, kv_cache=0.8)


async def test_adaptive_batch_bounds_waiting_and_reaches_capacity() -> None:
    slots = 8
    with LocalVLLMServer(latency=0.2, slots=slots) as server:
        c = make_client(server, adaptive=True, max_concurrency=2)
        assert isinstance(c.limiter, AdaptiveConcurrencyLimiter)
        with WaitingSampler(server) as sampler:
            results = await asyncio.wait_for(c.abatch([{"text": f"q{i}"} for i in range(120)]), 25)
        await c.aclose()
    lim = c.limiter
    assert all(not isinstance(r, BaseException) for r in results)
    assert lim.mode == "adaptive" and lim.polls >= 3
    assert server.max_running == slots  # capacity reached (starting from a limit of 2)
    assert sampler.samples > 50
    # the queue stays short: the cut threshold is max(2, 10% running), plus one growth step of overshoot
    assert sampler.max_waiting <= slots // 2, sampler.max_waiting
    assert max(s.limit for s in lim.history) > 2 and lim.max_in_flight >= slots
    assert any(s.running == slots for s in lim.history)


async def test_fixed_oversized_limit_floods_the_queue() -> None:
    """Control for the test above: the same batch with a fixed limit of 32 does queue deeply."""
    with LocalVLLMServer(latency=0.2, slots=8) as server:
        c = make_client(server, max_concurrency=32)
        assert isinstance(c.limiter, ConcurrencyLimiter)
        with WaitingSampler(server) as sampler:
            await asyncio.wait_for(c.abatch([{"text": "q"}] * 64), 25)
        await c.aclose()
    assert sampler.max_waiting > 8


async def test_metrics_disabled_falls_back_to_fixed_limit() -> None:
    with LocalVLLMServer(latency=0.05, slots=8, metrics=False) as server:
        assert httpx.get(server.root_url + "/metrics").status_code == 404
        c = make_client(server, adaptive=True, max_concurrency=3)
        results = await asyncio.wait_for(c.abatch([{"text": "q"}] * 12), 20)
        await c.aclose()
    lim = c.limiter
    assert isinstance(lim, AdaptiveConcurrencyLimiter)
    assert all(not isinstance(r, BaseException) for r in results)
    assert lim.mode == "fixed" and lim.limit == 3 and "404" in (lim.fallback_reason or "")
    assert lim.max_in_flight == 3 and server.max_running == 3


async def test_unreachable_metrics_fall_back() -> None:
    with LocalVLLMServer() as dead:
        root = dead.root_url
    lim = AdaptiveConcurrencyLimiter(root, fixed_limit=5, initial_limit=2, timeout=0.5)
    assert await lim.poll_once() is None
    assert lim.mode == "fixed" and lim.limit == 5 and "unreachable" in (lim.fallback_reason or "")
