"""One OCRTool run of ``benchmarks.workers`` (worker senders) with a setting's numbers printed on one line:
``python -m benchmarks.trace.run SENDERS SLOTS PAGES SERVERS`` (e.g. 15 256 1280 4 on the GPU machine).

With the package patched by ``trace.patch`` and ``MVL_TRACE=PREFIX`` set, every process of the run also
writes its page events to ``PREFIX.<pid>`` for :mod:`benchmarks.trace.analyze`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from benchmarks.common import make_text_pdf
from benchmarks.workers import _throughput


def main(argv: list[str]) -> None:
    senders, slots, pages, servers = (int(a) for a in argv[:4])
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "w.pdf"
        make_text_pdf(pdf, pages, font_size=10, page_format="letter", ttf=False)
        for label, r in _throughput(pdf, pages, slots, servers, [(senders, True)]).items():
            split = r.get("split") or [0]
            print(
                f"{label} slots={slots}: {r['pages_per_s']:.1f} p/s wall {r['wall_s']:.2f} first "
                f"{r['first_request_s']:.2f} full {r['full_at_s']:.2f}-{r['full_until_s']:.2f} busy "
                f"{r['busy_cores']:.1f} pages per sender {min(split)}-{max(split)} before the slot "
                + "{:.1f}/{:.1f}/{:.1f} ms".format(*r["read_ms"]),
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
