"""Backpressure: an in-flight request limit that follows vLLM's own load gauges (AIMD).

A fixed ``max_concurrency`` is either too low (the GPU idles) or too high (requests pile up in vLLM's
waiting queue, where they only add latency and, once the KV cache is full, cause preemptions).
:class:`AdaptiveConcurrencyLimiter` reads vLLM's Prometheus ``/metrics`` (server root, not ``/v1``) in a
background task at most every ``poll_interval`` seconds, shared by all waiters and never on the request
path, and moves the limit like TCP congestion control: grow while the waiting queue is empty and the KV
cache has room, cut multiplicatively when requests queue or the KV cache is nearly full. Without
``/metrics`` (404, connection error) it falls back to the fixed limit and says so in :attr:`mode`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from .errors import InvalidInputError

log = logging.getLogger(__name__)

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")  # new name first (vLLM >= 0.10)
_LINE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")


class RequestLimiter(Protocol):
    """What the client needs from a limiter: ``async with limiter:`` plus in-flight accounting."""

    limit: int
    in_flight: int
    max_in_flight: int

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc: object) -> None: ...


@dataclass(frozen=True)
class ServerLoad:
    """vLLM's load gauges: requests running and waiting (summed) and KV cache use (0..1, max), if exported."""

    running: float
    waiting: float
    kv_cache: float | None = None


@dataclass(frozen=True)
class LimitSample:
    """One controller step, kept for tests and benchmarks: when, the limit after it, the load it saw."""

    time: float
    limit: int
    running: float | None
    waiting: float | None


def parse_vllm_metrics(text: str) -> ServerLoad | None:
    """Running/waiting request counts (summed over label sets) and KV cache use from Prometheus text.

    Label sets differ per model name / engine, so counts are summed; the KV cache fraction is the maximum
    (the fullest engine is the one that preempts). Returns None when neither count is exported, so the
    caller can tell "no vLLM metrics here" from "idle server". Unknown or malformed lines are skipped.
    """
    sums: dict[str, float] = {}
    seen: set[str] = set()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line.strip())
        if m is None:
            continue
        name = m.group("name")
        if name not in (RUNNING, WAITING, *KV_USAGE):
            continue
        try:
            value = float(m.group("value"))
        except ValueError:
            continue
        if math.isnan(value):
            continue
        seen.add(name)
        if name in KV_USAGE:
            sums[name] = max(sums.get(name, 0.0), value)
        else:
            sums[name] = sums.get(name, 0.0) + value
    if RUNNING not in seen and WAITING not in seen:
        return None
    kv = next((sums[k] for k in KV_USAGE if k in seen), None)
    return ServerLoad(running=sums.get(RUNNING, 0.0), waiting=sums.get(WAITING, 0.0), kv_cache=kv)


def merge_loads(loads: Sequence[ServerLoad]) -> ServerLoad | None:
    """Several replicas' loads as one: counts summed, KV cache use the maximum (None if none exported)."""
    if not loads:
        return None
    kvs = [ld.kv_cache for ld in loads if ld.kv_cache is not None]
    return ServerLoad(
        running=sum(ld.running for ld in loads),
        waiting=sum(ld.waiting for ld in loads),
        kv_cache=max(kvs) if kvs else None,
    )


@dataclass
class _LoopState:
    cond: asyncio.Condition
    poller: asyncio.Task[None] | None = None


class AdaptiveConcurrencyLimiter:
    """In-flight cap that adapts to vLLM's queue and KV cache (AIMD); ``async with limiter:`` per request.

    ``metrics_urls`` are server roots (``http://host:8000``; ``/metrics`` is appended), one per replica.
    Each poll (every ``poll_interval`` s while requests are in flight or waiting) applies :meth:`observe`:

    * grow when vLLM's waiting queue is 0, KV cache use < ``kv_high``, the limit is the bottleneck
      (callers are waiting or every slot is used) and the server runs at least ``running_gate`` x our
      in-flight requests (else they are still in transit, or the server is full, and growing would only
      overshoot): x``growth`` while nearly all of ours run (slow start), then +1;
    * cut when waiting > max(``min_waiting_bound``, ``waiting_fraction`` x running) to
      limit x running / (running + waiting) (clamped to [0.5, 0.9]), or x0.8 when KV cache use >=
      ``kv_full``; no second cut until our own in-flight count has drained under the previous one;
    * otherwise hold. The limit stays in [``min_limit``, ``max_limit``].

    When ``/metrics`` is missing (404) or unreachable, :attr:`mode` becomes ``"fixed"``, :attr:`limit`
    ``fixed_limit`` and :attr:`fallback_reason` says why (logged once); it is probed again every
    ``reprobe_interval`` s. :attr:`history` keeps (time, limit, running, waiting) of each step.
    """

    def __init__(
        self,
        metrics_urls: str | Sequence[str],
        *,
        fixed_limit: int = 16,
        initial_limit: int | None = None,
        min_limit: int = 1,
        max_limit: int = 256,
        poll_interval: float = 0.3,
        kv_high: float = 0.9,
        kv_full: float = 0.98,
        waiting_fraction: float = 0.1,
        min_waiting_bound: int = 2,
        growth: float = 1.5,
        running_gate: float = 0.85,
        reprobe_interval: float = 10.0,
        timeout: float = 2.0,
        headers: Mapping[str, str] | None = None,
        history_size: int = 10_000,
    ) -> None:
        if min_limit < 1 or max_limit < min_limit:
            raise InvalidInputError(f"need 1 <= min_limit <= max_limit, got {min_limit}, {max_limit}")
        if fixed_limit < 1:
            raise InvalidInputError(f"max_concurrency must be >= 1, got {fixed_limit}")
        if poll_interval <= 0 or growth <= 1.0:
            raise InvalidInputError("poll_interval must be > 0 and growth > 1")
        urls = [metrics_urls] if isinstance(metrics_urls, str) else list(metrics_urls)
        if not urls:
            raise InvalidInputError("AdaptiveConcurrencyLimiter needs at least one metrics URL")
        self.metrics_urls: list[str] = [u.rstrip("/") + "/metrics" for u in urls]
        self.fixed_limit = fixed_limit
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.poll_interval = poll_interval
        self.kv_high = kv_high
        self.kv_full = kv_full
        self.waiting_fraction = waiting_fraction
        self.min_waiting_bound = min_waiting_bound
        self.growth = growth
        self.running_gate = running_gate
        self.reprobe_interval = reprobe_interval
        self.timeout = timeout
        self.headers: dict[str, str] = dict(headers or {})
        start = fixed_limit if initial_limit is None else initial_limit
        self.limit: int = self._clamp(start)
        self.mode: str = "adaptive"
        self.fallback_reason: str | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.polls = 0
        self.last_load: ServerLoad | None = None
        self.history: deque[LimitSample] = deque(maxlen=history_size)
        self._slow_start = True
        self._cut_at: int | None = None  # in-flight count when the last cut happened
        self._waiters = 0
        self._next_poll = 0.0
        self._lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    # ------------------------------------------------------------------ control law
    def _clamp(self, value: float) -> int:
        return int(max(self.min_limit, min(self.max_limit, value)))

    def waiting_bound(self, running: float) -> float:
        """Waiting-queue length above which the limit is cut: max(min_waiting_bound, fraction x running)."""
        return max(float(self.min_waiting_bound), self.waiting_fraction * running)

    def observe(self, load: ServerLoad | None, *, now: float | None = None, reason: str | None = None) -> int:
        """Apply one controller step for ``load`` (None: metrics unavailable -> fixed mode); the new limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if load is None:
                if self.mode != "fixed":
                    self.fallback_reason = reason or "vLLM /metrics unavailable"
                    log.warning(
                        "adaptive concurrency: %s; using the fixed limit %d",
                        self.fallback_reason,
                        self.fixed_limit,
                    )
                self.mode = "fixed"
                self.limit = self.fixed_limit
                self.history.append(LimitSample(now, self.limit, None, None))
                return self.limit
            if self.mode == "fixed":
                log.info("adaptive concurrency: /metrics is back, adapting from %d", self.limit)
                self.mode, self.fallback_reason, self._slow_start = "adaptive", None, False
            self.last_load = load
            running, waiting, kv = load.running, load.waiting, load.kv_cache
            congested = waiting > self.waiting_bound(running)
            kv_full = kv is not None and kv >= self.kv_full
            if congested or kv_full:
                # a cut takes effect only as our excess requests finish: do not cut again before that
                if self._cut_at is None or self.in_flight <= self.limit:
                    factor = 0.8
                    if congested and running + waiting > 0:
                        factor = min(0.9, max(0.5, running / (running + waiting)))
                    self.limit = self._clamp(math.floor(self.limit * factor))
                    self._cut_at = self.in_flight
                    self._slow_start = False
            elif waiting < 0.5 and (kv is None or kv < self.kv_high):
                saturated = self._waiters > 0 or self.in_flight >= self.limit
                absorbed = running >= self.running_gate * self.in_flight
                if saturated and absorbed:
                    # slow start needs (nearly) all of ours running; a gap means the server is full
                    if self._slow_start and running >= 0.95 * self.in_flight:
                        step = max(1, math.ceil(self.limit * (self.growth - 1)))
                    else:
                        step, self._slow_start = 1, False
                    self.limit = self._clamp(self.limit + step)
                if self.in_flight <= self.limit:
                    self._cut_at = None
            self.history.append(LimitSample(now, self.limit, running, waiting))
            return self.limit

    # ------------------------------------------------------------------ metrics
    async def _fetch_one(self, hc: httpx.AsyncClient, url: str) -> ServerLoad | str:
        try:
            r = await hc.get(url)
        except httpx.HTTPError as e:
            return f"{url} unreachable ({type(e).__name__})"
        if r.status_code != 200:
            return f"{url} answered {r.status_code}"
        load = parse_vllm_metrics(r.text)
        return load if load is not None else f"{url} exports no vLLM request gauges"

    async def poll_once(self, hc: httpx.AsyncClient | None = None) -> ServerLoad | None:
        """Read every metrics URL now and apply :meth:`observe`; the merged load (None: fixed mode)."""
        own = hc is None
        client = hc or httpx.AsyncClient(timeout=self.timeout, headers=self.headers)
        try:
            answers = await asyncio.gather(*(self._fetch_one(client, u) for u in self.metrics_urls))
        finally:
            if own:
                await client.aclose()
        loads = [a for a in answers if isinstance(a, ServerLoad)]
        merged = merge_loads(loads)
        reason = "; ".join(a for a in answers if isinstance(a, str)) or None
        now = time.monotonic()
        self.polls += 1
        self._next_poll = now + (self.poll_interval if merged is not None else self.reprobe_interval)
        self.observe(merged, now=now, reason=reason)
        return merged

    # ------------------------------------------------------------------ async plumbing
    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._lock:
            st = self._states.get(loop)
            if st is None:
                st = self._states[loop] = _LoopState(asyncio.Condition())
            return st

    def _ensure_poller(self, st: _LoopState) -> None:
        if st.poller is None or st.poller.done():
            st.poller = asyncio.get_running_loop().create_task(self._poll_loop(st))

    async def _poll_loop(self, st: _LoopState) -> None:
        """Poll while this loop has requests in flight or waiting; wakes waiters when the limit moves."""
        hc = httpx.AsyncClient(timeout=self.timeout, headers=self.headers)
        try:
            while self.in_flight > 0 or self._waiters > 0:
                if time.monotonic() >= self._next_poll:
                    self._next_poll = time.monotonic() + self.poll_interval  # one poller at a time
                    try:
                        await self.poll_once(hc)
                    except Exception as e:  # never let a metrics bug break requests
                        log.debug("adaptive concurrency: poll failed: %r", e)
                    async with st.cond:
                        st.cond.notify_all()
                pause = min(self.poll_interval, self._next_poll - time.monotonic())
                await asyncio.sleep(max(0.01, pause))
            st.poller = None  # no await since the idle check: a new request starts a new poller
        finally:
            if st.poller is asyncio.current_task():
                st.poller = None
            with contextlib.suppress(Exception):
                await hc.aclose()

    async def __aenter__(self) -> AdaptiveConcurrencyLimiter:
        st = self._state()
        self._ensure_poller(st)
        async with st.cond:
            self._waiters += 1
            try:
                while self.in_flight >= self.limit:
                    # timed wait: a release on another event loop cannot notify this one
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(st.cond.wait(), self.poll_interval)
                    self._ensure_poller(st)
            finally:
                self._waiters -= 1
            self._book(+1)
        return self

    def _book(self, delta: int) -> None:
        """Count a request into (+1) or out of (-1) flight; the counts are shared across threads and loops."""
        with self._lock:
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    async def __aexit__(self, *exc: object) -> None:
        self._book(-1)
        st = self._state()
        async with st.cond:
            st.cond.notify(max(1, self.limit - self.in_flight))


__all__ = [
    "AdaptiveConcurrencyLimiter",
    "LimitSample",
    "RequestLimiter",
    "ServerLoad",
    "merge_loads",
    "parse_vllm_metrics",
]
