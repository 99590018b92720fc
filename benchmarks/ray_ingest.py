"""Ray ingest scaling: N local Ray workers vs 1 on CPU-bound page work (the server answers at once).

Folders of 4-page text PDFs (letter, rendered at 200 dpi) go through
:func:`~minimaxvl_tools.distributed.ray_ingest.ray_ingest` in ``vlm`` mode (fresh page cache each run, no
rotation check) against :class:`LocalVLLMServer` in a child process with no latency, so the time is the
page work: rendering, blank check, fitting and encoding, request building. One local Ray with
``num_cpus = N`` runs both, interleaved (1, N, 1, N, ...; medians), after a warm-up run that starts the
worker processes. Target (issue 21): 4 workers >= 3.2x one worker, on the 16-core machine. ``N`` is
``min(4, cores)``; on a 2-core machine it is 2 and the row's target is scaled to 0.8 x N = 1.6x.

A second row runs N workers over one-page files against a double answering in 0.5 s: a page task keeps
a window of requests across its files, so the server's time hides behind the page work (>= 0.8 of the
CPU-bound rate; a task that sent one file at a time spent most of its time waiting).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from .common import MODEL, BenchResult, Row, busy_cpu_seconds, make_text_pdf, median, server_subprocess

PAGES_PER_FILE = 4
DPI = 200
LATENCY = 0.5


def _folder(root: Path, files: int, pages: int = PAGES_PER_FILE) -> Path:
    folder = root / f"docs-{files}x{pages}"
    folder.mkdir()
    for i in range(files):
        make_text_pdf(folder / f"doc_{i:03d}.pdf", pages, font_size=10, seed=i, ttf=False)
    return folder


def _run(folder: Path, out: Path, port: int, workers: int) -> tuple[float, int, float]:
    """Wall seconds, pages and busy cores (the whole machine's) of one ray_ingest run with ``workers``
    page tasks at once (one CPU each)."""
    from minimaxvl_tools.distributed.ray_ingest import ray_ingest
    from minimaxvl_tools.settings import Settings

    settings = Settings(
        base_url=f"http://127.0.0.1:{port}/v1",
        model=MODEL,
        max_model_len=32768,
        max_retries=0,
        timeout=60,
        max_concurrency=8,
    )
    t0, busy0 = time.perf_counter(), busy_cpu_seconds()
    s = ray_ingest(
        folder,
        out,
        settings=settings,
        mode="vlm",
        fallbacks=(),
        detect_rotation=False,
        dpi=DPI,
        workers=workers,
        pages_per_task=PAGES_PER_FILE,
    )
    wall = time.perf_counter() - t0
    if s.ok != s.pages or s.cached:
        raise RuntimeError(f"ray ingest run is not valid: {s}")
    return wall, s.pages, (busy_cpu_seconds() - busy0) / wall


def run(
    quick: bool = False, *, files: int | None = None, workers: int | None = None, reps: int | None = None
) -> BenchResult:
    """Measure pages/s of Ray ingest with ``workers`` (default min(4, cores)) vs one worker."""
    import ray

    logging.getLogger("minimaxvl_tools").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    cores = os.cpu_count() or 1
    n = workers or min(4, cores)
    nfiles = files or (4 * n if quick else 24 * n)
    reps = reps or (1 if quick else 3)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        with tempfile.TemporaryDirectory() as tmp, server_subprocess(latency=0.0) as port:
            root = Path(tmp)
            folder = _folder(root, nfiles)
            _run(_folder(root, n), root / "warm", port, n)  # worker processes up, imports done
            one_walls: list[float] = []
            n_walls: list[float] = []
            one_cores: list[float] = []
            n_cores: list[float] = []
            for i in range(reps):
                one_wall, pages, cores_busy = _run(folder, root / f"one{i}", port, 1)
                one_walls.append(one_wall)
                one_cores.append(cores_busy)
                n_wall, _, cores_busy = _run(folder, root / f"many{i}", port, n)
                n_walls.append(n_wall)
                n_cores.append(cores_busy)
            # one-page files against a double answering in LATENCY s: the same page work, now with the
            # server's time to hide behind it (each page task keeps a window of requests across files)
            singles = _folder(root, PAGES_PER_FILE * nfiles // 2, 1)
            with server_subprocess(latency=LATENCY) as slow:
                lat_wall, lat_pages, lat_cores = _run(singles, root / "latency", slow, n)
    finally:
        if started_here:
            ray.shutdown()
    one_rate, n_rate = pages / median(one_walls), pages / median(n_walls)
    lat_rate = lat_pages / lat_wall
    target = 0.8 * n
    raw = "\n".join(
        [
            f"{nfiles} PDFs x {PAGES_PER_FILE} pages (letter, text, {DPI} dpi), ray_ingest mode vlm, fresh "
            f"cache per run, no rotation check; server (child process) answers at once; local Ray "
            f"num_cpus={n} on a {cores}-core machine (load average at end "
            f"{os.getloadavg()[0]:.2f})",
            f"1 worker: {pages} pages, median of {reps} runs -> {one_rate:.2f} pages/s   runs (s): "
            + ", ".join(f"{w:.1f}" for w in one_walls)
            + "   busy cores: "
            + ", ".join(f"{c:.2f}" for c in one_cores),
            f"{n} workers: {pages} pages, median of {reps} runs -> {n_rate:.2f} pages/s "
            f"= {n_rate / one_rate:.2f}x   runs (s): "
            + ", ".join(f"{w:.1f}" for w in n_walls)
            + "   busy cores: "
            + ", ".join(f"{c:.2f}" for c in n_cores),
            f"{n} workers, {lat_pages} one-page files, double answering in {LATENCY} s: "
            f"{lat_rate:.2f} pages/s = {lat_rate / n_rate:.2f} of the CPU-bound rate ({lat_wall:.1f} s, busy "
            f"cores {lat_cores:.2f})",
            "busy cores: the whole machine's (page tasks, the read/split/write tasks, Ray, the driver, the "
            "double) over each run; a page task keeps its page work to its one CPU (task_cpus=1)",
            f"target here {target:.1f}x ({n} workers at 0.8 each); the issue's target (4 workers >= 3.2x) "
            "needs the 16-core machine: run `python -m benchmarks --only ray_ingest` there",
        ]
    )
    rows = [
        Row(f"ray ingest: {n} workers vs 1 (CPU-bound pages)", n_rate, one_rate, "pages/s", ">=", target),
        Row(f"ray ingest: 1-page files, {LATENCY} s double vs none", lat_rate, n_rate, "pages/s", ">=", 0.8),
    ]
    details = {
        "workers": n,
        "one_pages_per_s": one_rate,
        "n_pages_per_s": n_rate,
        "one_busy_cores": median(one_cores),
        "n_busy_cores": median(n_cores),
        "latency_pages_per_s": lat_rate,
    }
    return BenchResult("ray_ingest", rows, raw, time.perf_counter() - t0, details)
