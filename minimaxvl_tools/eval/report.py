"""MiniMax-VL-01's published benchmark numbers and a markdown table comparing a run against them.

Numbers come from the MiniMax-01 report / model card (see the shared ``minimax-vl-01.md``): percentages,
except OCRBench, which is points out of 1000. Results passed to :func:`format_report` must use the same units
(the aggregates in :mod:`minimaxvl_tools.eval.metrics` do; use ``OCRBenchScore.scaled`` for OCRBench).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from ..errors import InvalidInputError

__all__ = [
    "PUBLISHED",
    "PUBLISHED_METRICS",
    "ReportRow",
    "format_report",
    "format_run_report",
    "wilson_interval",
]

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


# ------------------------------------------------------------------------------------------ run report
#: z for a two-sided 95% interval.
_Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = _Z95) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a binomial proportion, as fractions in [0, 1].

    ``successes`` may be fractional (a mean ANLS times ``n``): the interval is then the Wilson interval of
    that mean read as a proportion, an approximation the report labels as such.
    """
    if n <= 0:
        raise InvalidInputError(f"wilson_interval needs n >= 1, got {n}")
    if not 0 <= successes <= n:
        raise InvalidInputError(f"wilson_interval: successes must be in 0..{n}, got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ReportRow:
    """One line of the run report: ``score`` in the benchmark's unit (percent, or points out of 1000).

    ``scale`` is 100 for percent and 1000 for OCRBench points; ``published`` names the entry of
    :data:`PUBLISHED` to compare with (None: no published counterpart); ``note`` is shown after the label.
    """

    label: str
    n: int
    score: float
    scale: float = 100.0
    published: str | None = None
    note: str = ""
    interval: bool = True


def format_run_report(rows: Sequence[ReportRow], published: Mapping[str, float] = PUBLISHED) -> str:
    """A markdown table ``benchmark | n | score | 95% CI | published | diff`` (diff = ours - published).

    The interval is Wilson's for the share of items right (for ANLS: of the mean similarity); OCRBench's
    points are scaled to 1000, so its interval is too.
    """
    lines = ["| benchmark | n | score | 95% CI | published | diff |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        decimals = 0 if r.scale == 1000 else 1
        if r.interval and r.n > 0 and r.scale > 0:
            share = min(max(r.score / r.scale, 0.0), 1.0)
            lo, hi = wilson_interval(share * r.n, r.n)
            ci = f"{lo * r.scale:.{decimals}f}–{hi * r.scale:.{decimals}f}"
        else:
            ci = "—"
        pub = published.get(r.published) if r.published else None
        pub_s = _fmt(pub, decimals) if pub is not None else "—"
        diff_s = f"{r.score - pub:+.{decimals}f}" if pub is not None else "—"
        label = f"{r.label} ({r.note})" if r.note else r.label
        lines.append(f"| {label} | {r.n} | {_fmt(r.score, decimals)} | {ci} | {pub_s} | {diff_s} |")
    return "\n".join(lines) + "\n"
