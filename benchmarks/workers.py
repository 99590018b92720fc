"""Page work in worker processes: OCRTool pages/s with ``workers=0`` (in-process) vs ``workers=N``.

``workers=N`` runs twice: the workers read whole pages and send them (``worker_send``, the default:
:mod:`minimaxvl_tools.page_senders`), and the workers only prepare pages while the main process sends
(``worker_send=False``: :mod:`minimaxvl_tools.page_workers`). Three measurements, each with all three
settings in the same run:

* **32 slots**: ``OCRTool._arun`` (``tile=False``: one image per letter page at 200 dpi,
  ``fix_rotation=False``, ``max_concurrency`` 32) against :class:`LocalVLLMServer` (a test double) in a
  child process answering in 1.0 s with 32 slots: ideal 32 pages/s. Target >= 0.95 of ideal.
* **256 slots**: the same tool with ``max_concurrency`` 256 against four test-double processes of 64 slots
  each (1.0 s; given as ``base_urls``): ideal 256 pages/s. The double reads only image headers
  (``image_check="header"``) and the 256 slots are spread over four processes, so its own work (one
  GIL per process) stays small beside the client's. Target >= 200 pages/s for one client process tree
  (the client process and its page workers). Reported beside it: the time before each request's slot
  (from its headers read: the body's upload and the double's parsing) and after it (the reply
  written), and the job's pages per sender.
* **memory**: the loader (``vlm`` mode, ``alazy_load``, 100 dpi as in ``benchmarks/memory.py``) on a 10-
  and a large-page PDF with ``workers=N``, each in a fresh process; peak RSS of the tree is the client's
  ``VmHWM`` plus each worker's. Target: large <= 1.5 x small.

``N`` is :func:`minimaxvl_tools.page_workers.default_workers` (the cores less one; 1 on 2 cores, where the
default itself is 0) unless given.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from .common import MODEL, BenchResult, Row, busy_cpu_seconds, make_text_pdf, quantiles_ms, server_process

LATENCY = 1.0
DPI = 200
MEMORY_DPI = 100


def _client(ports: list[int], concurrency: int, workers: int, send: bool = True) -> Any:
    from minimaxvl_tools.client import MiniMaxVLClient
    from minimaxvl_tools.settings import Settings

    settings = Settings(
        base_urls=[f"http://127.0.0.1:{p}/v1" for p in ports],
        api_key="benchmark",
        model=MODEL,
        max_concurrency=concurrency,
        max_model_len=32768,
        max_retries=0,
        timeout=120,
        workers=workers,
        worker_send=send,
    )
    return MiniMaxVLClient(settings)


async def _tool_run(
    pdf: Path, ports: list[int], pages: int, concurrency: int, workers: int, send: bool
) -> dict[str, Any]:
    """One ``OCRTool._arun`` over ``pages`` pages (after a warm-up call that also starts the workers)."""
    from minimaxvl_tools.tools.ocr import OCRTool

    client = _client(ports, concurrency, workers, send)
    tool = OCRTool(client=client, allowed_roots=[pdf.parent], max_pages=pages, tile=False, fix_rotation=False)
    await tool._arun(str(pdf), pages=f"1-{min(pages, 2 * max(1, workers))}")  # connections, imports, pool
    t0, c0, m0, b0 = time.perf_counter(), time.process_time(), time.monotonic(), busy_cpu_seconds()
    _, result = await tool._arun(str(pdf), pages=f"1-{pages}")
    wall = time.perf_counter() - t0
    busy = (busy_cpu_seconds() - b0) / wall
    cpu = time.process_time() - c0
    await client.aclose()
    ok = sum(p.status == "ok" for p in result.pages)
    requests = sum(p.requests for p in result.pages)
    if ok != pages or requests != pages:
        raise RuntimeError(f"workers={workers}: {ok} ok pages, {requests} requests of {pages}")
    return {
        "wall_s": wall,
        "pages_per_s": pages / wall,
        "main_cpu_ms_per_page": cpu / pages * 1000,
        "started": m0,
        "busy_cores": busy,
    }


def occupancy(spans: list[tuple[float, float]], slots: int, started: float, wall: float) -> dict[str, float]:
    """Where a run's time went, from the double's slot spans after ``started`` (monotonic): the first
    request's arrival, when the slots were first (and last) >= 95% full, and the busy share of the slots
    over the run (1.0: every slot busy from the call's start to its end)."""
    spans = sorted((a, b) for a, b in spans if a >= started and b)
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    running, full, last_full = 0, None, None
    for t, step in events:
        running += step
        if running >= 0.95 * slots:
            full = t if full is None else full
            last_full = t
    busy = sum(b - a for a, b in spans)
    return {
        "first_request_s": spans[0][0] - started if spans else float("nan"),
        "full_at_s": (full - started) if full is not None else float("nan"),
        "full_until_s": (last_full - started) if last_full is not None else float("nan"),
        "slot_busy_share": busy / (slots * wall),
        "mean_request_s": busy / len(spans) if spans else float("nan"),
    }


def _label(workers: int, send: bool) -> str:
    return f"workers={workers}" + ("" if send or not workers else ", main process sends")


def _throughput(
    pdf: Path, pages: int, slots: int, servers: int, settings: list[tuple[int, bool]]
) -> dict[str, Any]:
    """OCRTool runs for each (workers, worker_send) setting, by label."""
    from minimaxvl_tools.page_senders import shared_senders
    from minimaxvl_tools.page_workers import shared_pool

    out: dict[str, Any] = {}
    for w, send in settings:
        with ExitStack() as stack:  # fresh servers per setting: no state carried over
            procs = [stack.enter_context(server_process(LATENCY, slots // servers)) for _ in range(servers)]
            ports = [p.port for p in procs]
            r = out[_label(w, send)] = asyncio.run(_tool_run(pdf, ports, pages, slots, w, send))
            started = r.pop("started")
            both = [(span, read) for p in procs for span, read in zip(p.spans(), p.reads(), strict=True)]
            r |= occupancy([span for span, _ in both], slots, started, r["wall_s"])
            mine = [read for (a, _), read in both if a >= started]  # this run's requests
            r["read_ms"] = quantiles_ms([a for a, _ in mine])
            r["write_ms"] = quantiles_ms([b for _, b in mine])
            if w and send:  # the job's pages per sender (a sender with more than its share: a round more)
                r["split"] = shared_senders(w).given()
        if w:
            shared_pool(w).shutdown()
            shared_senders(w).shutdown()
    return out


def _vm_hwm_kib(pid: int | str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def child(pdf: str, port: int, workers: int, dpi: int = MEMORY_DPI) -> dict[str, Any]:
    """Load every page of ``pdf`` with the loader (vlm, ``workers``): pages and the tree's peak RSS (MiB)."""
    from minimaxvl_tools.loaders import MiniMaxVLDocumentLoader
    from minimaxvl_tools.page_senders import shared_senders
    from minimaxvl_tools.page_workers import shared_pool

    from .common import make_client

    loader = MiniMaxVLDocumentLoader(
        pdf,
        mode="vlm",
        client=make_client(port, 8),
        dpi=dpi,
        use_cache=False,
        detect_rotation=False,
        workers=workers,
    )
    statuses: dict[str, int] = {}

    async def drain() -> None:
        async for doc in loader.alazy_load():
            status = str(doc.metadata.get("status"))
            statuses[status] = statuses.get(status, 0) + 1

    asyncio.run(drain())
    pools = [shared_senders(workers), shared_pool(workers)] if workers else []  # whichever read the pages
    worker_kib = [_vm_hwm_kib(pid) for pool in pools for pid in pool.pids()]
    main_kib = _vm_hwm_kib()
    for pool in pools:
        pool.shutdown()
    return {
        "pages": sum(statuses.values()),
        "statuses": statuses,
        "main_mib": main_kib / 1024,
        "workers_mib": [k / 1024 for k in worker_kib],
        "tree_mib": (main_kib + sum(worker_kib)) / 1024,
    }


def _memory(pdfs: dict[int, Path], workers: int) -> dict[int, Any]:
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = {}
    with server_process(0.0, None) as server:
        for n, pdf in pdfs.items():
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.workers",
                    "--child",
                    str(pdf),
                    str(server.port),
                    str(workers),
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=root,
                env=env,
            )
            out[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def run(
    quick: bool = False,
    *,
    workers: int | None = None,
    pages: int | None = None,
    big_pages: int | None = None,
    memory_pages: int | None = None,
) -> BenchResult:
    """OCRTool throughput (32 and 256 slots) and loader memory, ``workers=0`` vs ``workers=N``."""
    from minimaxvl_tools.page_workers import default_workers

    logging.getLogger("minimaxvl_tools").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    n = workers or max(1, default_workers())
    pages = pages or (64 if quick else 160)
    big_pages = big_pages or (256 if quick else 1280)
    memory_pages = memory_pages or (100 if quick else 500)
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "workers.pdf"
        make_text_pdf(pdf, max(pages, big_pages), font_size=10, page_format="letter", ttf=False)
        settings = [(0, True), (n, False), (n, True)]
        small = _throughput(pdf, pages, 32, 1, settings)
        big = _throughput(pdf, big_pages, 256, 4, settings)
        pdfs = {}
        for count in (10, memory_pages):
            pdfs[count] = Path(tmp) / f"mem{count}.pdf"
            make_text_pdf(pdfs[count], count, font_size=10, page_format="letter", ttf=False, seed=count)
        mem = _memory(pdfs, n)
    for count, r in mem.items():
        if r["pages"] != count or r["statuses"].get("ok", 0) != count:
            raise RuntimeError(f"memory run on {count} pages is not valid: {r}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"{cores} cores; N = {n} worker processes; letter pages at {DPI} dpi, tile=False (1 request/page)",
        f"32 slots (1 test-double process, {LATENCY} s/request), OCRTool._arun, {pages} pages, ideal 32/s:",
    ]
    for w, r in small.items():
        lines.append(
            f"  {w}: wall {r['wall_s']:.2f} s -> {r['pages_per_s']:.2f} pages/s = "
            f"{r['pages_per_s'] / 32:.3f} of ideal; main process CPU {r['main_cpu_ms_per_page']:.1f} ms/page"
        )
    lines.append(
        f"256 slots (4 test-double processes x 64), max_concurrency 256, {big_pages} pages, ideal 256/s:"
    )
    for w, r in big.items():
        lines.append(
            f"  {w}: wall {r['wall_s']:.2f} s -> {r['pages_per_s']:.1f} pages/s = "
            f"{r['pages_per_s'] / 256:.3f} of ideal; main process CPU {r['main_cpu_ms_per_page']:.1f} ms/page"
        )
    lines.append(
        "where the time went (the doubles' slot spans): first request after F s; slots >= 95% full from A "
        "to B s; busy share of the slots over the wall time; mean time a request held its slot; "
        "the machine's busy cores (all processes) over the run; pages per sender (min-max); "
        "median/p99/max ms before a request's slot (from its headers read: the body's upload, the "
        "double's parsing) and after it (the reply written)"
    )
    for label, runs in (("32", small), ("256", big)):
        for w, r in runs.items():
            lines.append(
                f"  {label} slots, {w}: first request {r['first_request_s']:.2f} s; full {r['full_at_s']:.2f}"
                f"-{r['full_until_s']:.2f} s of {r['wall_s']:.2f}; busy share {r['slot_busy_share']:.3f}; "
                f"request {r['mean_request_s']:.3f} s; busy cores {r['busy_cores']:.1f}"
                + (f"; pages per sender {min(r['split'])}-{max(r['split'])}" if r.get("split") else "")
                + "; before/after the slot {:.1f}/{:.1f}/{:.1f} and {:.1f}/{:.1f}/{:.1f} ms".format(
                    *r["read_ms"], *r["write_ms"]
                )
            )
    lines.append(f"memory: loader vlm alazy_load at {MEMORY_DPI} dpi, workers={n}, fresh process per size:")
    for count, r in mem.items():
        lines.append(
            f"  {count:4d} pages: tree peak RSS {r['tree_mib']:.1f} MiB (client {r['main_mib']:.1f} MiB + "
            f"workers {', '.join(f'{m:.1f}' for m in r['workers_mib'])} MiB)"
        )
    rows = [
        Row(f"workers: OCRTool 32 slots, {w}", r["pages_per_s"], 32.0, "pages/s", ">=", 0.95)
        for w, r in small.items()
    ]
    rows += [
        Row(f"workers: OCRTool 256 slots, {w}", r["pages_per_s"], 200.0, "pages/s", ">=", 1.0)
        for w, r in big.items()
    ]
    rows.append(
        Row(
            f"workers: tree peak RSS {memory_pages} vs 10 pages (workers={n})",
            mem[memory_pages]["tree_mib"],
            mem[10]["tree_mib"],
            "MiB",
            "<=",
            1.5,
        )
    )
    details = {"workers": n, "slots32": small, "slots256": big, "memory": mem}
    return BenchResult("workers", rows, "\n".join(lines), time.perf_counter() - t0, details)


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        print(run(quick="--quick" in sys.argv).raw)
