"""Memory: peak RSS of the loader on a 500-page PDF vs a 10-page PDF (pages must stream, not pile up).

Each size runs in a fresh child process (``python -m benchmarks.memory --child PDF PORT DPI``) that loads
the PDF with :class:`~minimaxvl_tools.loaders.MiniMaxVLDocumentLoader` in ``vlm`` mode with
``alazy_load`` (8 pages in flight; every page is rendered, planned, encoded and sent) against
:class:`LocalVLLMServer` with zero latency in another child process, then prints
its peak RSS. Cache and rotation detection are off (they would measure
the disk and Tesseract, not the page stream). Target: RSS(500 pages) <= 1.5 x RSS(10 pages).

Pages are rendered at 100 dpi, not 200: at 200 dpi a letter page is 4 crops and 500 pages take ~150 s on
2 cores, over the suite's 5-minute budget (``run(dpi=200)`` measures that when time allows).

Peak RSS is ``VmHWM`` from ``/proc/self/status``. ``getrusage(RUSAGE_SELF).ru_maxrss`` is recorded too but
not used: Linux carries the parent's high-water mark across fork + execve into ``ru_maxrss``, so a child
started by a big parent reports the parent's peak (seen here: both sizes read the parent's 940 MiB).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import BenchResult, Row, make_text_pdf, server_subprocess

DPI = 100  # 200 dpi costs 4 crops per page: 500 pages would not fit the 5-minute budget on 2 cores


def _vm_hwm_kib() -> int:
    """This process's peak RSS in KiB (``VmHWM``), 0 where /proc is not available."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def child(pdf: str, port: int, dpi: int = DPI) -> dict[str, Any]:
    """Load every page of ``pdf`` through the loader (vlm mode): pages, statuses and peak RSS (MiB)."""
    import resource

    from minimaxvl_tools.loaders import MiniMaxVLDocumentLoader

    from .common import make_client

    t0 = time.perf_counter()
    loader = MiniMaxVLDocumentLoader(
        pdf,
        mode="vlm",
        client=make_client(port, 8),
        dpi=dpi,
        use_cache=False,
        detect_rotation=False,
    )
    statuses: dict[str, int] = {}
    requests = 0

    async def drain() -> None:
        nonlocal requests
        async for doc in loader.alazy_load():
            status = str(doc.metadata.get("status"))
            statuses[status] = statuses.get(status, 0) + 1
            requests += int(doc.metadata.get("requests") or 0)

    asyncio.run(drain())
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "pages": sum(statuses.values()),
        "statuses": statuses,
        "requests": requests,
        "hwm_mib": _vm_hwm_kib() / 1024 if _vm_hwm_kib() else rss_kib / 1024,
        "ru_maxrss_mib": rss_kib / 1024,
        "seconds": time.perf_counter() - t0,
    }


def measure(pdf: Path, port: int, dpi: int = DPI) -> dict[str, Any]:
    """Run :func:`child` in a fresh Python process and return its JSON answer."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--child", str(pdf), str(port), str(dpi)],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False, *, small: int = 10, large: int | None = None, dpi: int = DPI) -> BenchResult:
    """Peak RSS of the loader for a ``large``-page vs a ``small``-page PDF, each in a fresh process."""
    t0 = time.perf_counter()
    large = large or (100 if quick else 500)
    with tempfile.TemporaryDirectory() as tmp:
        pdfs = {}
        for n in (small, large):
            pdfs[n] = Path(tmp) / f"mem{n}.pdf"
            make_text_pdf(pdfs[n], n, font_size=10, page_format="letter", ttf=False, seed=n)
        with server_subprocess(latency=0.0, slots=None) as port:
            res = {n: measure(pdfs[n], port, dpi) for n in (small, large)}
    for n, r in res.items():
        if r["pages"] != n or r["statuses"].get("ok", 0) != n:
            raise RuntimeError(f"memory run on {n} pages is not valid: {r}")
    lines = [
        f"loader mode=vlm at {dpi} dpi (letter, 10 pt text), fresh process per size, zero-latency server"
    ]
    for n, r in res.items():
        lines.append(
            f"{n:4d} pages: peak RSS (VmHWM) {r['hwm_mib']:.1f} MiB "
            f"(ru_maxrss {r['ru_maxrss_mib']:.1f} MiB), "
            f"{r['requests']} requests, "
            f"{r['seconds']:.1f} s, statuses {r['statuses']}"
        )
    rows = [
        Row(
            f"memory: peak RSS {large} vs {small} pages",
            res[large]["hwm_mib"],
            res[small]["hwm_mib"],
            "MiB",
            "<=",
            1.5,
        )
    ]
    return BenchResult("memory", rows, "\n".join(lines), time.perf_counter() - t0, {"runs": res})


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        print(
            json.dumps(child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else DPI))
        )
    else:
        print(run(quick="--quick" in sys.argv).raw)
