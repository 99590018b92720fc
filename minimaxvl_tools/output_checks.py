"""Checks on model output that decide whether a call should be retried: truncation and looping.

Why: at temperature 0 a vision-language model sometimes falls into a loop ("the the the ...", one
table row again and again) until ``max_tokens`` cuts it off. Such output must not be returned as a
transcription; a retry at a higher temperature usually escapes the loop. :func:`check_output` gives the
verdict, :func:`temperature_schedule` the temperatures to retry with.

What is *not* a loop: a table whose rows share a layout but differ in their numbers, a numbered list
of short items, a dotted TOC leader or a markdown separator row. The detectors below therefore compare
exact repeated units (after whitespace normalisation) and demand both many repeats and enough repeated
text, and they discount units without any letter or digit.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .errors import InvalidInputError

__all__ = [
    "OutputCheck",
    "RepetitionCheck",
    "check_output",
    "detect_repetition",
    "temperature_schedule",
]

_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class RepetitionCheck:
    """Result of :func:`detect_repetition`: ``repeated`` is the looping unit (``None`` when not looping)."""

    repeating: bool
    reason: str | None
    repeated: str | None = None


@dataclass(frozen=True)
class OutputCheck:
    """Verdict of :func:`check_output`: ``ok`` False means "retry"; ``reason`` says why.

    ``kind`` is ``"ok"``, ``"truncated"``, ``"repetition"`` or ``"empty"`` for programmatic use.
    """

    ok: bool
    reason: str | None
    kind: str = "ok"
    repetition: RepetitionCheck | None = None


def _has_content(unit: str) -> bool:
    return any(ch.isalnum() for ch in unit)


def _short(unit: str, limit: int = 60) -> str:
    unit = unit.strip()
    return unit if len(unit) <= limit else unit[: limit - 1] + "…"


def _tail_period(
    text: str, *, max_period: int, min_repeats: int, min_chars: int, window: int
) -> RepetitionCheck | None:
    """Find the shortest unit that the end of ``text`` repeats (the typical max_tokens loop).

    For each period p, the suffix is p-periodic as long as ``t[i] == t[i + p]``; numpy finds the last
    mismatch, so the whole scan costs O(max_period * window) vectorised comparisons.
    """
    tail = text[-window:]
    n = len(tail)
    if n < 2:
        return None
    codes = np.frombuffer(tail.encode("utf-32-le"), dtype=np.uint32)
    for p in range(1, min(max_period, n // 2) + 1):
        eq = codes[:-p] == codes[p:]
        mismatches = np.flatnonzero(~eq)
        run = len(eq) - (int(mismatches[-1]) + 1) if mismatches.size else len(eq)
        length = run + p  # characters of the periodic suffix
        repeats = length / p
        if repeats < min_repeats:
            continue
        start = n - length
        # report the unit in a natural phase: starting at a word, not in the middle of one
        for k in range(min(p, length - p)):
            i = start + k
            if not tail[i].isspace() and (i == 0 or tail[i - 1].isspace()):
                start = i
                break
        unit = tail[start : start + p]
        needed = min_chars if _has_content(unit) else 4 * min_chars
        if length < needed:
            continue
        return RepetitionCheck(
            True,
            f"the output ends with {_short(unit)!r} repeated {repeats:.0f} times ({length} chars)",
            unit,
        )
    return None


def _repeated_lines(lines: list[str], *, min_repeats: int, min_line_chars: int) -> RepetitionCheck | None:
    """The same non-trivial line many times in a row anywhere in the output (a loop that stopped)."""
    best_line, best_run, run = "", 1, 1
    for prev, cur in itertools.pairwise(lines):
        run = run + 1 if cur == prev else 1
        if run > best_run and len(cur) >= min_line_chars and _has_content(cur):
            best_line, best_run = cur, run
    if best_run >= 2 * min_repeats:
        return RepetitionCheck(
            True, f"the line {_short(best_line)!r} is repeated {best_run} times in a row", best_line
        )
    return None


def _ngram_coverage(
    words: list[str], *, n: int, min_repeats: int, min_coverage: float
) -> RepetitionCheck | None:
    """Most of the text made of a few word n-grams that each occur many times (a loop of any length)."""
    if len(words) < n * min_repeats:
        return None
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = sum(1 for g in grams if counts[g] >= min_repeats)
    coverage = covered / len(grams)
    if coverage < min_coverage:
        return None
    gram, count = counts.most_common(1)[0]
    if not _has_content("".join(gram)):
        return None
    unit = " ".join(gram)
    return RepetitionCheck(
        True,
        f"{coverage:.0%} of the output is {n}-word phrases repeated {min_repeats}+ times "
        f"(e.g. {_short(unit)!r} x{count})",
        unit,
    )


def detect_repetition(
    text: str,
    *,
    n: int = 8,
    min_repeats: int = 5,
    min_chars: int = 100,
    max_period: int = 400,
    min_coverage: float = 0.5,
    min_line_chars: int = 8,
    window: int = 4000,
) -> RepetitionCheck:
    """Detect looping output.

    Three detectors, cheapest and most specific first (whitespace runs are collapsed first):

    * **tail period**: the last ``window`` characters end with one unit (1-``max_period`` chars)
      repeated at least ``min_repeats`` times over at least ``min_chars`` characters — "the the the",
      "0000…", a table row again and again until ``max_tokens``. Units without letters or digits
      (dot leaders, ``|---|`` rows) need 4x ``min_chars``.
    * **repeated lines**: one line of ``min_line_chars``+ characters repeated ``2 * min_repeats`` times
      in a row anywhere (a loop the model escaped from).
    * **n-gram coverage**: at least ``min_coverage`` of all word ``n``-grams occur ``min_repeats``+
      times (a multi-line block looping with small breaks).

    Tables whose rows differ in their values and numbered lists never form exact repeated units, so they
    pass all three.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"detect_repetition() needs a str, got {type(text).__name__}")
    if n < 1 or min_repeats < 2 or max_period < 1 or min_chars < 1 or window < 2:
        raise InvalidInputError(
            f"bad parameters: n={n} (>=1), min_repeats={min_repeats} (>=2), max_period={max_period} (>=1), "
            f"min_chars={min_chars} (>=1), window={window} (>=2)"
        )
    if not 0 < min_coverage <= 1:
        raise InvalidInputError(f"min_coverage={min_coverage} must be in (0, 1]")
    flat = _WS.sub(" ", text).strip()
    if not flat:
        return RepetitionCheck(False, None, None)
    found = _tail_period(
        flat, max_period=max_period, min_repeats=min_repeats, min_chars=min_chars, window=window
    )
    if found is None:
        lines = [_WS.sub(" ", line).strip() for line in text.splitlines()]
        found = _repeated_lines(
            [line for line in lines if line], min_repeats=min_repeats, min_line_chars=min_line_chars
        )
    if found is None:
        found = _ngram_coverage(flat.split(" "), n=n, min_repeats=min_repeats, min_coverage=min_coverage)
    return found or RepetitionCheck(False, None, None)


def check_output(text: str, finish_reason: str | None, *, allow_empty: bool = True) -> OutputCheck:
    """Decide whether a model answer is usable or should be retried.

    Not ok when the output loops (``"repetition: ..."``; checked first, because a loop is what usually
    runs into the token limit and a retry should raise the temperature), when it was cut off
    (``"truncated (finish_reason=length)"``), or, with ``allow_empty=False``, when it is empty.
    """
    if text is None:
        text = ""
    rep = detect_repetition(text)
    if rep.repeating:
        suffix = " (truncated, finish_reason=length)" if finish_reason == "length" else ""
        return OutputCheck(False, f"repetition: {rep.reason}{suffix}", "repetition", rep)
    if finish_reason == "length":
        return OutputCheck(False, "truncated (finish_reason=length)", "truncated", rep)
    if not allow_empty and not text.strip():
        return OutputCheck(False, "empty output", "empty", rep)
    return OutputCheck(True, None, "ok", rep)


_LADDER = (0.2, 0.5, 0.8, 1.0)


def temperature_schedule(base: float, attempts: int) -> list[float]:
    """Temperatures for ``attempts`` tries: ``base`` first, then the steps 0.2/0.5/0.8/1.0 above it.

    ``temperature_schedule(0.0, 4) == [0.0, 0.2, 0.5, 0.8]``; a higher base skips the lower steps
    (``temperature_schedule(0.6, 3) == [0.6, 0.8, 1.0]``); once past 1.0 the last value repeats
    (never hotter than ``max(base, 1.0)``, which keeps transcriptions readable).
    """
    if attempts < 1:
        raise InvalidInputError(f"attempts={attempts} must be at least 1")
    if not 0 <= base <= 2:
        raise InvalidInputError(f"base={base} is not a sampling temperature in [0, 2]")
    out = [float(base)]
    steps = [t for t in _LADDER if t > base + 1e-9]
    while len(out) < attempts:
        out.append(steps.pop(0) if steps else out[-1])
    return out
