"""MiniMax-VL-01's published benchmark numbers and a markdown table comparing a run against them.

Numbers come from the MiniMax-01 report / model card (see the shared ``minimax-vl-01.md``): percentages,
except OCRBench, which is points out of 1000. Results passed to :func:`format_report` must use the same units
(the aggregates in :mod:`minimaxvl_tools.eval.metrics` do; use ``OCRBenchScore.scaled`` for OCRBench).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from ..errors import InvalidInputError

__all__ = ["PUBLISHED", "PUBLISHED_METRICS", "format_report"]

#: MiniMax-VL-01's published scores (ChartQA, DocVQA, AI2D, MathVista and MMMU are 0-shot CoT).
PUBLISHED: Mapping[str, float] = MappingProxyType(
    {
        "ChartQA": 91.7,
        "DocVQA": 96.4,
        "OCRBench": 865.0,
        "AI2D": 83.3,
        "MathVista": 68.6,
        "MMMU": 68.5,
    }
)

#: What each published number measures.
PUBLISHED_METRICS: Mapping[str, str] = MappingProxyType(
    {
        "ChartQA": "relaxed accuracy, %",
        "DocVQA": "ANLS, %",
        "OCRBench": "points / 1000",
        "AI2D": "accuracy, %",
        "MathVista": "accuracy, %",
        "MMMU": "accuracy, %",
    }
)


def _fmt(value: float, decimals: int) -> str:
    """A number with fixed decimals."""
    return f"{value:.{decimals}f}"


def format_report(
    results: dict[str, float],
    published: Mapping[str, float] = PUBLISHED,
    *,
    counts: Mapping[str, int] | None = None,
) -> str:
    """A markdown table ``benchmark | ours | published | delta | n`` for the benchmarks in ``results``.

    Benchmark names match ``published`` case-insensitively ("chartqa" finds "ChartQA"); rows follow the
    published table's order, then any extra benchmarks alphabetically. ``counts`` gives the number of items
    each result was computed on (shown as ``n``; a dash when unknown), since a 50-item run is not comparable
    to the full benchmark. Delta is ours minus published.
    """
    canonical = {name.casefold(): name for name in published}
    rows: dict[str, tuple[float, float | None, int | None]] = {}
    count_by_key = {k.casefold(): v for k, v in (counts or {}).items()}
    for name, value in results.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise InvalidInputError(f"result for {name!r} must be a finite number, got {value!r}")
        key = name.casefold()
        label = canonical.get(key, name)
        if label in rows:
            raise InvalidInputError(f"results name {label!r} twice (names are matched case-insensitively)")
        rows[label] = (float(value), published.get(label), count_by_key.get(key))
    order = [n for n in published if n in rows] + sorted(n for n in rows if n not in published)
    lines = ["| benchmark | ours | published | delta | n |", "|---|---:|---:|---:|---:|"]
    for label in order:
        ours, pub, n = rows[label]
        decimals = 0 if label == "OCRBench" else 1
        pub_s = _fmt(pub, decimals) if pub is not None else "—"
        delta_s = f"{ours - pub:+.{decimals}f}" if pub is not None else "—"
        n_s = str(n) if n is not None else "—"
        lines.append(f"| {label} | {_fmt(ours, decimals)} | {pub_s} | {delta_s} | {n_s} |")
    return "\n".join(lines) + "\n"
