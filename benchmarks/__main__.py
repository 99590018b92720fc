"""``python -m benchmarks [--only NAME ...] [--quick]``: run the benchmarks, print ONE table of ratios.

Every number in the table is measured in this run. Raw output goes to ``benchmarks/results/<name>.txt``
and the combined report (table, raw sections, machine, load, command, wall time) to
``benchmarks/results/latest.md``. ``--only`` accepts render, overhead, memory, tokens, loader, tiling,
workers, rotation (repeatable or comma-separated); ``backpressure`` and ``ray_ingest`` run when named.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence

from .common import RESULTS_DIR, BenchResult, Row, format_table, write_result

NAMES = ("render", "overhead", "memory", "tokens", "loader", "tiling", "workers", "rotation", "rag")
OPTIONAL = ("backpressure", "ray_ingest")


def _backpressure(quick: bool) -> BenchResult:
    """Wrap the backpressure benchmark (owned elsewhere) as rows of this table."""
    from . import backpressure

    t0 = time.perf_counter()
    out = backpressure.main(2.0 if quick else backpressure.DURATION)
    best = next(r for r in out["rows"] if r["config"] == out["best_fixed"])
    rows = [
        Row(
            f"backpressure: {name} vs best fixed",
            ratio * best["throughput"],
            best["throughput"],
            "req/s",
            ">=",
            0.95,
        )
        for name, ratio in out["ratios"].items()
    ]
    return BenchResult("backpressure", rows, str(out["text"]), time.perf_counter() - t0)


def runners() -> dict[str, Callable[[bool], BenchResult]]:
    """Benchmark name -> ``run(quick)``."""
    from . import loader, memory, overhead, rag, render, rotation, tiling, tokens, workers

    def ray_ingest(quick: bool) -> BenchResult:
        from . import ray_ingest as bench  # imports Ray only when asked for

        return bench.run(quick)

    return {
        "render": render.run,
        "overhead": overhead.run,
        "memory": memory.run,
        "tokens": tokens.run,
        "loader": loader.run,
        "workers": workers.run,
        "rotation": rotation.run,
        "tiling": tiling.run,
        "rag": rag.run,
        "backpressure": _backpressure,
        "ray_ingest": ray_ingest,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="NAME",
        help=f"run only these ({', '.join(NAMES + OPTIONAL)}); repeat or comma-separate",
    )
    p.add_argument("--quick", action="store_true", help="smaller inputs (a smoke run, noisier numbers)")
    return p.parse_args(argv)


def _machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return (
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks, print the table, write the results files; exit 0 (even if missed)."""
    args = parse_args(argv)
    logging.getLogger("minimaxvl_tools").setLevel(logging.ERROR)
    selected = list(NAMES)
    if args.only:
        selected = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
        unknown = [n for n in selected if n not in NAMES + OPTIONAL]
        if unknown:
            print(
                f"unknown benchmark(s) {unknown}: choose from {', '.join(NAMES + OPTIONAL)}", file=sys.stderr
            )
            return 2
    command = "python -m benchmarks" + (" " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else "")
    before = _machine()
    t0 = time.perf_counter()
    table = runners()
    results: list[BenchResult] = []
    for name in selected:
        print(f"[{name}] running ...", file=sys.stderr, flush=True)
        res = table[name](args.quick)
        write_result(res)
        print(f"[{name}] {res.seconds:.1f} s", file=sys.stderr, flush=True)
        results.append(res)
    total = time.perf_counter() - t0
    rows = [r for res in results for r in res.rows]
    text = format_table(rows)
    print(text)
    missed = [r.benchmark for r in rows if r.met is False]
    summary = f"{sum(r.met is True for r in rows)} met, {len(missed)} missed; total {total:.1f} s"
    print(summary)
    sections = "\n\n".join(f"## {r.name} ({r.seconds:.1f} s)\n\n```\n{r.raw.rstrip()}\n```" for r in results)
    md = (
        f"# Benchmark results\n\n`{command}`{' (quick)' if args.quick and '--quick' not in command else ''}"
        "\n\n"
        f"Machine at start: {before}  \nMachine at end: {_machine()}\n\n{text}\n\n{summary}\n\n{sections}\n"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "latest.md").write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
