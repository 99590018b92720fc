"""Benchmark: fixed concurrency limits vs the adaptive (AIMD on vLLM /metrics) limiter.

Against the vLLM test double (``LocalVLLMServer``, ``slots`` requests run at once, each takes ``latency``
seconds, the rest wait in its queue), each configuration runs a closed loop for ``duration`` seconds:
``workers`` coroutines call ``achat`` back to back and the client's limiter caps what is in flight.
Reported per configuration: throughput (requests completed within the window / window) and the server's
waiting queue (max and mean of samples every 5 ms). Too low a limit starves the server; too high a limit
only lengthens its queue. The adaptive limiter should match the best fixed limit's throughput (target
ratio >= 0.95) with a short queue, from a cold start below capacity and from far above it.

Run: ``python -m benchmarks.backpressure`` (writes ``benchmarks/results/backpressure.txt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

from minimaxvl_tools.backpressure import AdaptiveConcurrencyLimiter
from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.testing import LocalVLLMServer

SLOTS = 16
LATENCY = 0.5
DURATION = 5.0
WORKERS = 96
FIXED = (4, 8, 16, 24, 32, 64)
ADAPTIVE_STARTS = (8, 64)
RESULTS = Path(__file__).parent / "results" / "backpressure.txt"


class _Sampler:
    """Samples the server's waiting count every 5 ms in a thread while the window is open."""

    def __init__(self, server: LocalVLLMServer) -> None:
        self.server = server
        self.values: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.values.append(self.server.waiting)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


async def run_config(
    name: str,
    *,
    adaptive: bool,
    limit: int,
    duration: float = DURATION,
    slots: int = SLOTS,
    latency: float = LATENCY,
    workers: int = WORKERS,
) -> dict[str, Any]:
    """One configuration on a fresh server: throughput and waiting-queue stats over ``duration`` s."""
    with LocalVLLMServer(latency=latency, slots=slots) as server:
        client = MiniMaxVLClient(
            base_url=server.base_url, max_concurrency=limit, adaptive=adaptive, timeout=30.0, max_retries=2
        )
        await client.achat("warm-up")  # max_model_len cached, connection pool warm, limiter not yet run
        done = 0
        deadline = 0.0

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await client.achat("benchmark request")
                if time.perf_counter() <= deadline:
                    done += 1

        sampler = _Sampler(server)
        t0 = time.perf_counter()
        deadline = t0 + duration
        sampler.start()
        tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
        await asyncio.sleep(duration)
        sampler.stop()
        max_running = server.max_running  # before stop() releases the queue
        for t in tasks:  # requests still in flight at the deadline are not counted
            t.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()
    lim = client.limiter
    waits = sampler.values or [0]
    row: dict[str, Any] = {
        "config": name,
        "throughput": done / duration,
        "completed": done,
        "max_waiting": max(waits),
        "mean_waiting": sum(waits) / len(waits),
        "max_running": max_running,
        "max_in_flight": lim.max_in_flight,
    }
    if isinstance(lim, AdaptiveConcurrencyLimiter):
        limits = [s.limit for s in lim.history]
        row.update(
            mode=lim.mode,
            final_limit=lim.limit,
            limit_range=(min(limits), max(limits)) if limits else (lim.limit, lim.limit),
            polls=lim.polls,
        )
    return row


async def _run_all(duration: float) -> list[dict[str, Any]]:
    rows = [await run_config(f"fixed {n}", adaptive=False, limit=n, duration=duration) for n in FIXED]
    for start in ADAPTIVE_STARTS:
        name = f"adaptive (start {start})"
        rows.append(await run_config(name, adaptive=True, limit=start, duration=duration))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The results as a fixed-width text table."""
    head = f"{'config':<22} {'req/s':>7} {'done':>5} {'max wait':>8} {'mean wait':>9} {'max run':>7}  limit"
    lines = [head, "-" * len(head)]
    for r in rows:
        extra = ""
        if "final_limit" in r:
            lo, hi = r["limit_range"]
            extra = f"{r['mode']}, {lo}..{hi}, final {r['final_limit']}"
        lines.append(
            f"{r['config']:<22} {r['throughput']:>7.2f} {r['completed']:>5} {r['max_waiting']:>8} "
            f"{r['mean_waiting']:>9.2f} {r['max_running']:>7}  {extra}"
        )
    return "\n".join(lines)


def main(duration: float = DURATION) -> dict[str, Any]:
    """Run the sweep, print the table and the adaptive / best-fixed ratios; returns them as a dict."""
    logging.getLogger("minimaxvl_tools").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    rows = asyncio.run(_run_all(duration))
    fixed = [r for r in rows if r["config"].startswith("fixed")]
    best = max(fixed, key=lambda r: r["throughput"])
    ratios = {
        r["config"]: r["throughput"] / best["throughput"] for r in rows if r["config"].startswith("adaptive")
    }
    out = [
        f"LocalVLLMServer slots={SLOTS} latency={LATENCY}s; {WORKERS} closed-loop workers, {duration:.0f} s "
        f"window per config; python {platform.python_version()}, {os.cpu_count()} CPUs",
        format_table(rows),
        f"best fixed: {best['config']} at {best['throughput']:.2f} req/s",
    ]
    out += [
        f"{name} / best fixed throughput = {ratio:.3f} (target >= 0.95)" for name, ratio in ratios.items()
    ]
    out.append(f"total wall time {time.perf_counter() - t0:.1f} s")
    text = "\n".join(out)
    print(text)
    return {"rows": rows, "best_fixed": best["config"], "ratios": ratios, "text": text}


if __name__ == "__main__":
    result = main()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(result["text"] + "\n")
    print(f"written to {RESULTS}", file=sys.stderr)
