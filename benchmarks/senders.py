"""How OCRTool's sender processes scale: pages/s as the sender count grows, at a fixed share of slots each.

Not part of ``python -m benchmarks`` (a diagnosis, not a target): ``python -m benchmarks.senders 1,4,8,15
60`` runs, for each count N, OCRTool (``tile=False``, letter pages at 200 dpi, ``workers=N``, senders on)
over ``60 x N`` pages against test doubles (:class:`LocalVLLMServer`, 1.0 s a request) holding ``17 x N``
slots (``MINIMAXVL_BENCH_SLOTS`` per sender), so each sender has the same work. Per count: pages/s over the
wall time, the production rate (pages over the wall less the last request's second), its share per sender,
each sender's busy cores and CPU per page, and the machine's busy cores. A flat per-sender rate means the
senders scale; a per-sender CPU per page that grows with N means they slow each other down.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from .common import busy_cpu_seconds, make_text_pdf, process_cpu_seconds, server_process
from .workers import LATENCY, _client


async def _run(pdf: Path, ports: list[int], pages: int, slots: int, senders: int) -> dict[str, Any]:
    from minimaxvl_tools.page_senders import shared_senders
    from minimaxvl_tools.tools.ocr import OCRTool

    client = _client(ports, slots, senders, True)
    tool = OCRTool(client=client, allowed_roots=[pdf.parent], max_pages=pages, tile=False, fix_rotation=False)
    await tool._arun(str(pdf), pages=f"1-{2 * senders}")  # starts the senders and their connections
    pids = shared_senders(senders).pids()
    c0, b0, t0 = [process_cpu_seconds(p) for p in pids], busy_cpu_seconds(), time.perf_counter()
    _, result = await tool._arun(str(pdf), pages=f"1-{pages}")
    wall = time.perf_counter() - t0
    busy = (busy_cpu_seconds() - b0) / wall
    spent = [process_cpu_seconds(p) - c for p, c in zip(pids, c0, strict=True)]
    await client.aclose()
    shared_senders(senders).shutdown()
    ok = sum(p.status == "ok" for p in result.pages)
    if ok != pages:
        raise RuntimeError(f"{senders} senders: {ok} ok pages of {pages}")
    rate = pages / max(wall - LATENCY, 1e-9)
    return {
        "senders": senders,
        "pages": pages,
        "wall_s": wall,
        "pages_per_s": pages / wall,
        "rate": rate,
        "per_sender": rate / senders,
        "sender_cores": sum(spent) / len(spent) / wall,
        "sender_ms_per_page": sum(spent) / pages * 1000,
        "busy_cores": busy,
    }


def main(counts: list[int], per_sender: int = 60) -> list[dict[str, Any]]:
    """One run per sender count (fresh doubles each); prints a line and a JSON record per count."""
    share = int(os.environ.get("MINIMAXVL_BENCH_SLOTS", "17"))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "senders.pdf"
        make_text_pdf(pdf, per_sender * max(counts), font_size=10, page_format="letter", ttf=False)
        for n in counts:
            slots = share * n
            servers = max(1, -(-slots // 64))
            each = -(-slots // servers)
            with ExitStack() as stack:
                procs = [stack.enter_context(server_process(LATENCY, each)) for _ in range(servers)]
                r = asyncio.run(_run(pdf, [p.port for p in procs], per_sender * n, slots, n))
            out.append(r)
            print(json.dumps(r), flush=True)
            print(
                f"senders {n:2d}: {r['pages_per_s']:.1f} pages/s (rate {r['rate']:.1f}, "
                f"{r['per_sender']:.1f} a sender); sender cores {r['sender_cores']:.2f}, "
                f"{r['sender_ms_per_page']:.1f} ms CPU/page; machine busy {r['busy_cores']:.1f} cores",
                flush=True,
            )
    return out


if __name__ == "__main__":
    main([int(x) for x in sys.argv[1].split(",")], int(sys.argv[2]) if len(sys.argv) > 2 else 60)
