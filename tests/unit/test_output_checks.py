"""Output checks: looping output is flagged, legitimate tables and lists are not; retry schedule."""

from __future__ import annotations

import time

import pytest

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.output_checks import (
    OutputCheck,
    RepetitionCheck,
    check_output,
    detect_repetition,
    temperature_schedule,
)

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
TABLE = "| Month | Revenue | Cost |\n|---|---|---|\n" + "\n".join(
    f"| {m} | {1000 + 37 * i} | {400 + 11 * i} |" for i, m in enumerate(MONTHS)
)
TOC = [("Introduction", 1), ("Methods", 4), ("Results", 9), ("Discussion", 15), ("References", 21)]
PROSE = (
    "The report covers the third quarter. Revenue rose in every region, and the northern office "
    "closed two large contracts. Costs were flat; the board expects the same trend next quarter. "
    "The appendix lists the figures by month and by product line, with notes on currency effects."
)

LOOPS = {
    "word loop": "The invoice total is the the " + "the " * 60,
    "row loop": "| Item | Qty |\n|---|---|\n| Bolt M4 | 12 |\n" + "| Bolt M4 | 12 | total |\n" * 50,
    "digit run": "Account: 0." + "0" * 150,
    "sentence loop cut mid-unit": PROSE + " " + "Please see the attached table. " * 20 + "Please see th",
    "loop that stopped": "Header\n" + "Repeat this sentence please.\n" * 12 + "Then the model recovered.",
    "multi-line block loop": ("Name: John Smith\nAddress: 12 Main Street\nCity: Springfield\n" * 8) + "Name",
    "dash flood": "Totals\n" + "-" * 600,
}

LEGIT = {
    "table of distinct rows": TABLE,
    "table with repeated values": "| Year | Status |\n|---|---|\n"
    + "\n".join(f"| {2000 + i} | OK |" for i in range(30)),
    "numbered list": "\n".join(f"{i}. Yes" for i in range(1, 41)),
    "checkbox form": "\n".join(f"[ ] Question {i}: answer yes or no" for i in range(1, 25)),
    "dotted toc": "\n".join(f"{title} {'.' * (70 - len(title))} {page}" for title, page in TOC),
    "markdown separator": "| " + " | ".join(f"c{i}" for i in range(30)) + " |\n|" + "---|" * 30,
    "empty table cells": "| a | b |\n" + "|  |  |\n" * 12,
    "short stutter": "ha ha ha ha ha ha",
    "prose": PROSE * 2,
    "empty": "",
}


@pytest.mark.parametrize("name", list(LOOPS))
def test_loops_are_flagged(name: str) -> None:
    check = detect_repetition(LOOPS[name])
    assert isinstance(check, RepetitionCheck)
    assert check.repeating, name
    assert check.reason and check.repeated


@pytest.mark.parametrize("name", list(LEGIT))
def test_legitimate_output_is_not_flagged(name: str) -> None:
    assert detect_repetition(LEGIT[name]) == RepetitionCheck(False, None, None), name


def test_repeated_unit_is_reported() -> None:
    check = detect_repetition("Result: " + "ab12 " * 40)
    assert check.repeated is not None and check.repeated.strip() in {"ab12", "12 ab"} | {"b12 a", "2 ab1"}
    assert "repeated" in (check.reason or "")
    assert detect_repetition(LOOPS["word loop"]).repeated == "the "


def test_thresholds_are_parameters() -> None:
    text = "Intro. " + "go on " * 10  # 60 chars of loop
    assert not detect_repetition(text).repeating
    assert detect_repetition(text, min_chars=40).repeating
    assert not detect_repetition(text, min_chars=40, min_repeats=20).repeating


def test_long_output_is_fast() -> None:
    text = " ".join(f"token{i}" for i in range(30_000))
    start = time.perf_counter()
    assert not detect_repetition(text).repeating
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    "kwargs", [{"n": 0}, {"min_repeats": 1}, {"max_period": 0}, {"min_coverage": 0}, {"window": 1}]
)
def test_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(InvalidInputError):
        detect_repetition("text", **kwargs)


def test_non_string_is_rejected() -> None:
    with pytest.raises(InvalidInputError):
        detect_repetition(b"bytes")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- check_output
def test_check_output_ok() -> None:
    assert check_output(TABLE, "stop") == OutputCheck(True, None, "ok", RepetitionCheck(False, None, None))


def test_check_output_truncated() -> None:
    check = check_output(PROSE, "length")
    assert not check.ok
    assert check.reason == "truncated (finish_reason=length)"
    assert check.kind == "truncated"


def test_check_output_repetition_wins_over_truncation() -> None:
    check = check_output(LOOPS["row loop"], "length")
    assert not check.ok and check.kind == "repetition"
    assert check.reason is not None and check.reason.startswith("repetition: ")
    assert "finish_reason=length" in check.reason
    stopped = check_output(LOOPS["loop that stopped"], "stop")
    assert not stopped.ok and stopped.reason is not None and stopped.reason.startswith("repetition: ")


def test_check_output_empty() -> None:
    assert check_output("", "stop").ok
    check = check_output("  \n", "stop", allow_empty=False)
    assert (check.ok, check.reason, check.kind) == (False, "empty output", "empty")


# ------------------------------------------------------------------------------------ temperature_schedule
@pytest.mark.parametrize(
    "base, attempts, expected",
    [
        (0.0, 4, [0.0, 0.2, 0.5, 0.8]),
        (0.0, 1, [0.0]),
        (0.0, 6, [0.0, 0.2, 0.5, 0.8, 1.0, 1.0]),
        (0.6, 3, [0.6, 0.8, 1.0]),
        (1.3, 3, [1.3, 1.3, 1.3]),
    ],
)
def test_temperature_schedule(base: float, attempts: int, expected: list[float]) -> None:
    assert temperature_schedule(base, attempts) == expected


@pytest.mark.parametrize("base, attempts", [(0.0, 0), (-0.1, 3), (2.5, 2)])
def test_temperature_schedule_rejects_bad_input(base: float, attempts: int) -> None:
    with pytest.raises(InvalidInputError):
        temperature_schedule(base, attempts)
