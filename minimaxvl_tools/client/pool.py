"""The endpoint pool: one entry per vLLM replica, least-in-flight choice, cool-down after faults."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

import openai

from .error_map import root_of

log = logging.getLogger("minimaxvl_tools.client")


def secret_value(value: Any) -> str:
    """The plain text of a key given as ``str`` or pydantic ``SecretStr``."""
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if getter is not None else value)


_CLOSING: set[asyncio.Task[None]] = set()
"""Close tasks of retired async clients (the loop keeps only weak references to its tasks)."""


def _close_later(client: openai.AsyncOpenAI) -> None:
    """On the client's own loop: close it in a task."""
    task = asyncio.get_running_loop().create_task(client.close())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


class Endpoint:
    """One vLLM replica: its OpenAI clients (sync, and async per event loop), load and health state.

    ``in_flight`` drives least-loaded choice; ``down_until`` (monotonic seconds) is the end of the
    cool-down after a connection error or 5xx, during which other replicas are preferred.
    """

    def __init__(self, base_url: str, api_key: Any, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.root_url = root_of(self.base_url)
        self._api_key = api_key
        self._timeout = timeout
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=secret_value(api_key), timeout=timeout, max_retries=0
        )
        self._aclient: openai.AsyncOpenAI | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        self.in_flight = 0
        self.requests = 0
        self.failures = 0
        self.down_until = 0.0
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"Endpoint({self.base_url!r}, in_flight={self.in_flight}, failures={self.failures})"

    def aclient(self) -> openai.AsyncOpenAI:
        """The AsyncOpenAI client bound to the running event loop (a new one per loop; the previous
        loop's is retired: :meth:`retire_aclient`)."""
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient_loop is not loop:
            self.retire_aclient()
            self._aclient = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=secret_value(self._api_key),
                timeout=self._timeout,
                max_retries=0,
                # the SDK's own default client closes itself when collected by starting a task on whatever
                # loop runs then: for a client of a closed loop that task fails ("Event loop is closed")
                http_client=openai.DefaultAsyncHttpxClient(timeout=self._timeout),
            )
            self._aclient_loop = loop
        return self._aclient

    def retire_aclient(self) -> None:
        """Let go of the async client: closed on its own loop while that loop still runs; a closed loop's
        connections cannot be closed through it, and their sockets close when collected."""
        old, loop = self._aclient, self._aclient_loop
        self._aclient = self._aclient_loop = None
        if old is None or loop is None or loop.is_closed() or not loop.is_running():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_close_later, old)

    async def aclose(self) -> None:
        """Close the async client on this loop; another loop's is retired (:meth:`retire_aclient`)."""
        if self._aclient is not None and self._aclient_loop is asyncio.get_running_loop():
            client, self._aclient, self._aclient_loop = self._aclient, None, None
            with contextlib.suppress(Exception):
                await client.close()
        self.retire_aclient()

    def healthy(self, now: float) -> bool:
        """True unless a recent failure put the endpoint in its cool-down."""
        return self.down_until <= now

    def mark_down(self, cooldown: float, error: str) -> None:
        """Start (or extend) a cool-down after a connection error / 5xx."""
        if self.down_until <= time.monotonic():
            log.warning("endpoint %s unhealthy for %.1fs: %s", self.base_url, cooldown, error)
        self.failures += 1
        self.last_error = error
        self.down_until = time.monotonic() + cooldown

    def mark_up(self) -> None:
        """A success: the endpoint serves again."""
        self.down_until = 0.0
        self.last_error = None


class EndpointPool:
    """The replicas of one client; thread-safe choice and release (the sync and async paths share it)."""

    def __init__(self, base_urls: list[str], api_key: Any, timeout: float, cooldown: float = 10.0) -> None:
        self.endpoints: list[Endpoint] = [Endpoint(u, api_key, timeout) for u in dict.fromkeys(base_urls)]
        self.cooldown = cooldown
        self._rr = 0
        self._lock = threading.Lock()

    def pick(self, avoid: Endpoint | None = None) -> Endpoint:
        """Healthy endpoint with the fewest requests in flight (not ``avoid`` if another is healthy).

        With every endpoint cooling down, the one whose cool-down ends first is tried (a single-endpoint
        client therefore always uses its endpoint).
        """
        now = time.monotonic()
        with self._lock:
            eps = self.endpoints
            healthy = [e for e in eps if e.healthy(now)]
            if avoid is not None and len(healthy) > 1:
                healthy = [e for e in healthy if e is not avoid]
            if not healthy:
                healthy = [min(eps, key=lambda e: e.down_until)]
            self._rr += 1
            n = len(healthy)
            order = healthy[self._rr % n :] + healthy[: self._rr % n]
            ep = min(order, key=lambda e: e.in_flight)
            ep.in_flight += 1
            ep.requests += 1
            return ep

    def release(self, ep: Endpoint) -> None:
        """Give back the slot :meth:`pick` booked on ``ep``."""
        with self._lock:
            ep.in_flight -= 1

    def other_healthy(self, ep: Endpoint) -> bool:
        """Whether a replica other than ``ep`` is out of its cool-down."""
        now = time.monotonic()
        return any(e is not ep and e.healthy(now) for e in self.endpoints)

    def healthy_roots(self) -> list[str]:
        """Server roots of the healthy endpoints (all of them when none is healthy)."""
        now = time.monotonic()
        eps = [e for e in self.endpoints if e.healthy(now)] or self.endpoints
        return [e.root_url for e in eps]

    def close(self) -> None:
        """Close the sync HTTP clients."""
        for ep in self.endpoints:
            ep.client.close()

    async def aclose(self) -> None:
        """Close every HTTP client, async ones first (another loop's are retired)."""
        for ep in self.endpoints:
            await ep.aclose()
        self.close()


__all__ = ["Endpoint", "EndpointPool", "secret_value"]
