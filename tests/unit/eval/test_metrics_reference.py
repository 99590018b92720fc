"""Differential tests: each production scorer against a line-by-line port of its reference, 0 disagreements.

The ports live in ``_reference_ports.py`` (kept apart from the production code). Cases are generated
from a fixed seed and always include the edge cases the audit found (a percent sign on one side only,
``1,234`` vs ``1234``, ``0`` vs ``0.0``, surrounding whitespace, ``inf``/``nan``, "B and C", ...).
"""

from __future__ import annotations

import random
import re

import _reference_ports as ref
import pytest

from minimaxvl_tools.eval.metrics import (
    mathvista_correct,
    parse_choice,
    relaxed_accuracy,
    relaxed_correctness,
)

N_CASES = 2500


# ----------------------------------------------------------------------------------------------- ChartQA
CHART_EDGE = [
    ("45", "45%"),
    ("0.45", "45%"),
    ("45%", "45"),
    ("45%", "0.45"),
    ("50%", "5000%"),
    ("1,234", "1234"),
    ("1234", "1,234"),
    ("1234", "1,250"),
    ("0", "0.0"),
    ("0", "0"),
    ("0.0", "0"),
    ("0", "0.01"),
    (" 17 ", "17"),
    ("17", " 17 "),
    ("17", "17 "),
    ("inf", "inf"),
    ("inf", "1e308"),
    ("nan", "nan"),
    ("NaN", "nan"),
    ("12", "nan"),
    ("nan", "12"),
    ("-inf", "-inf"),
    ("Infinity", "inf"),
    ("12.5", "12"),
    ("100", "105"),
    ("100", "105.01"),
    ("100", "94.9"),
    ("-20", "-19.5"),
    ("Yes", "yes"),
    ("Yes", "yes."),
    ("", ""),
    ("", "0"),
    ("0%", "0"),
    ("5%", "5%%"),
    ("1_000", "1000"),
    ("1e3", "1000"),
    (".5", "0.5"),
    ("5.", "5"),
    ("+3", "3"),
    ("٣", "3"),
    ("North", "north"),
    ("12", "12.6"),
    ("12", "12.61"),
]
NUMBERS = ["0", "0.0", "1", "12", "12.5", "100", "1234", "1,234", "0.45", "45", "-20", "3.5", "1e3", "7.25"]
WORDS = ["Yes", "yes", "No", "North", "Asia", "inf", "nan", "-inf", "", " ", "N/A"]


def _chart_value(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.45:
        v = rng.choice([0, 0, 1, 3.5, 12, 45, 100, 1234, -20, 0.45, 99.9]) * rng.choice(
            [1, 1, 1.03, 0.96, 1.05, 1.2]
        )
        text = rng.choice([f"{v}", f"{v:.0f}", f"{v:.1f}", f"{v:.2f}", f"{v:,.0f}", f"{v:g}"])
    elif kind < 0.75:
        text = rng.choice(NUMBERS)
    else:
        text = rng.choice(WORDS)
    if rng.random() < 0.2:
        text += "%"
    if rng.random() < 0.1:
        text = rng.choice([" ", "  ", "\n"]) + text + rng.choice(["", " "])
    if rng.random() < 0.05:
        text = text.upper()
    return text


def _chart_cases() -> list[tuple[str, str]]:
    rng = random.Random(18)
    cases = list(CHART_EDGE)
    while len(cases) < N_CASES:
        t = _chart_value(rng)
        p = _chart_value(rng) if rng.random() < 0.6 else t + rng.choice(["", "%", " ", ".0", "0"])
        cases.append((t, p))
    return cases


def test_relaxed_correctness_equals_pix2struct_on_generated_cases() -> None:
    cases = _chart_cases()
    assert len(cases) >= 2000
    disagreements = [(t, p) for t, p in cases if relaxed_correctness(t, p) != ref.relaxed_correctness(t, p)]
    assert disagreements == []
    # the cases do exercise both outcomes and the edges the lenient variant reads differently
    outcomes = {ref.relaxed_correctness(t, p) for t, p in cases}
    assert outcomes == {True, False}
    lenient_differs = sum(
        relaxed_correctness(t, p, lenient=True) != ref.relaxed_correctness(t, p) for t, p in cases
    )
    assert lenient_differs > 50


def test_relaxed_accuracy_equals_pix2struct_aggregate() -> None:
    rng = random.Random(7)
    cases = _chart_cases()
    preds = [p for _, p in cases]
    targets = [[t] + ([_chart_value(rng)] if rng.random() < 0.3 else []) for t, _ in cases]
    assert relaxed_accuracy(preds, targets) == pytest.approx(ref.aggregate_relaxed(targets, preds), abs=1e-12)


@pytest.mark.parametrize(
    ("target", "prediction", "expected"),
    [
        ("45", "45%", False),
        ("1,234", "1234", False),
        ("0", "0.0", False),
        (" 17 ", "17", True),
        (" yes", "yes", False),
        ("inf", "inf", False),
        ("nan", "nan", False),
        ("12", "nan", False),
        ("0.45", "45%", True),
        ("0", "0", True),
    ],
)
def test_pix2struct_edge_cases_by_hand(target: str, prediction: str, expected: bool) -> None:
    # float() accepts surrounding spaces; inf/inf and nan give a nan relative change, and nan <= 0.05 is False
    assert relaxed_correctness(target, prediction) is expected


# ----------------------------------------------------------------------------------------------- AI2D
OPTION_SETS = [
    ["sun", "grass", "rabbit", "fox"],
    ["A", "B", "C", "D"],
    ["10", "10 cm", "20 cm"],
    ["evaporation", "condensation"],
    ["the moon", "a star", "the earth", "a planet", "none of the above"],
    ["producer", "consumer", "decomposer", "Z"],
]
AI2D_EDGE = [
    "B",
    "B.",
    "(C)",
    "b",
    "**C**",
    "B and C",
    "A or B",
    "The answer is B",
    "The correct answer is **C**.",
    "Answer: D",
    "Answer: (B) grass",
    "Z",
    "I'm sorry, but without the image provided I cannot answer",
    "Cannot determine the answer",
    "Failed to obtain answer via API",
    "grass",
    "Grass.",
    "the rabbit",
    "A diagram shows the sun",
    "A",
    "a",
    "E",
    "",
    " ",
    "option 2",
    "B is correct because the arrow points left",
    "Looking at it, the answer is A since the sun gives energy.",
    "sun and grass",
    "D) fox",
]
FILLER = [
    "the",
    "diagram",
    "shows",
    "arrow",
    "energy",
    "because",
    "so",
    "answer",
    "is",
    "option",
    "and",
    "or",
    "I",
    "think",
    "it",
    "a",
    "Answer:",
    "correct",
    "choice",
    "(",
    ")",
    ".",
    ",",
    "**",
    "#",
    "{",
    "}",
]


def _ai2d_reply(rng: random.Random, options: list[str]) -> str:
    letters = "ABCDE"[: len(options)]
    kind = rng.random()
    letter = rng.choice(letters + "Zab")
    if kind < 0.25:
        return rng.choice(["{}", "({})", "{}.", "**{}**", "{})", "[{}]", " {} "]).format(letter)
    if kind < 0.45:
        return rng.choice(
            ["The answer is {}.", "Answer: {}", "The correct answer is **{}**", "answer is {}"]
        ).format(letter)
    if kind < 0.6:
        return rng.choice(options) + rng.choice(["", ".", " is right", ""])
    if kind < 0.7:
        return f"{letter} and {rng.choice(letters)}"
    words = [rng.choice(FILLER) for _ in range(rng.randint(1, 14))]
    for _ in range(rng.randint(0, 2)):
        words.insert(rng.randint(0, len(words)), rng.choice([letter, rng.choice(options)]))
    return " ".join(words)


def test_parse_choice_equals_vlmevalkit_on_generated_replies() -> None:
    rng = random.Random(2)
    cases: list[tuple[str, list[str]]] = [(r, o) for o in OPTION_SETS for r in AI2D_EDGE]
    while len(cases) < N_CASES:
        options = rng.choice(OPTION_SETS)
        cases.append((_ai2d_reply(rng, options), options))
    assert len(cases) >= 2000
    disagreements = []
    for reply, options in cases:
        expected = ref.extract_answer_from_item(reply, list(options))
        got = parse_choice(reply, options)
        if (got or "Z") != expected:
            disagreements.append((reply, options, got, expected))
    assert disagreements == []
    picked = {parse_choice(r, o) for r, o in cases}
    assert None in picked and {"A", "B", "C"} <= picked


def test_ambiguous_reply_is_no_answer() -> None:
    opts = ["sun", "grass", "rabbit", "fox"]
    assert parse_choice("B and C", opts) is None
    assert parse_choice("B", opts) == "B"
    assert parse_choice("The correct answer is **C**.", opts) == "C"


# ----------------------------------------------------------------------------------------------- MathVista
def _stand_in(response: str) -> str:
    """Offline stand-in for the reference's GPT step: the text after the last 'Answer:', else all."""
    last = None
    for last in re.finditer(r"answer\s*:", response, flags=re.IGNORECASE):  # noqa: B007
        pass
    if last is None:
        return response.strip()
    rest = response[last.end() :].strip()
    return rest.splitlines()[0].strip() if rest else ""


MV_PROBLEMS = [
    {
        "question_type": "multi_choice",
        "answer_type": "text",
        "choices": ["3/11", "8/11", "6/11", "3/5"],
        "answer": "8/11",
        "precision": None,
    },
    {
        "question_type": "multi_choice",
        "answer_type": "text",
        "choices": ["Yes", "No"],
        "answer": "No",
        "precision": None,
    },
    {
        "question_type": "free_form",
        "answer_type": "integer",
        "choices": None,
        "answer": "14",
        "precision": None,
    },
    {
        "question_type": "free_form",
        "answer_type": "integer",
        "choices": None,
        "answer": "0",
        "precision": None,
    },
    {"question_type": "free_form", "answer_type": "float", "choices": None, "answer": "0.6", "precision": 1},
    {"question_type": "free_form", "answer_type": "float", "choices": None, "answer": "1.45", "precision": 2},
    {
        "question_type": "free_form",
        "answer_type": "list",
        "choices": None,
        "answer": "[2007, 2008]",
        "precision": None,
    },
]
MV_EDGE = [
    "",
    " ",
    "14",
    " 14 ",
    "14.0",
    "1,234",
    "inf",
    "nan",
    "-0",
    "0.0",
    "1e3",
    "0.6",
    "0.60",
    ".6",
    "1.449",
    "1.45",
    "Answer: 14",
    "Answer: 14.",
    'The answer is "14".',
    "(B) 8/11",
    "8/11",
    "B",
    "b",
    "(b)",
    "No",
    "no",
    "Answer: (B)",
    "Answer: B",
    "So the answer is 8/11",
    "Answer: [2007, 2008]",
    "[2007, 2008]",
    "Step 1... Answer: 0.6\nDone",
    "answer:1.45",
    "Answer:",
    "14 apples",
]


def _mv_response(rng: random.Random, problem: dict) -> str:
    kind = rng.random()
    gold = problem["answer"]
    if kind < 0.3:
        return rng.choice(MV_EDGE)
    if kind < 0.5:
        return rng.choice(["{}", " {} ", "Answer: {}", "answer: {}.", 'The answer is "{}".', "({})"]).format(
            gold
        )
    if kind < 0.65 and problem["choices"]:
        i = rng.randrange(len(problem["choices"]))
        return rng.choice(["{l}", "({l})", "({l}) {t}", "{t}", "Answer: {l}", "I pick {t}"]).format(
            l="ABCD"[i], t=problem["choices"][i]
        )
    v = rng.choice([0, 14, 13.6, 0.6, 0.64, 1.45, 1.4501, 2007, -3])
    return rng.choice(["{}", "Answer: {}", "x = {}", "{} units", "Answer: {}\nbecause"]).format(v)


@pytest.mark.parametrize("fallback", ["answer_line", "none"])
def test_mathvista_equals_lmms_eval_on_generated_replies(fallback: str) -> None:
    rng = random.Random(5)
    cases = [(r, p) for p in MV_PROBLEMS for r in MV_EDGE]
    while len(cases) < N_CASES:
        p = rng.choice(MV_PROBLEMS)
        cases.append((_mv_response(rng, p), p))
    assert len(cases) >= 2000
    llm = _stand_in if fallback == "answer_line" else (lambda _r: "")
    disagreements = []
    for response, p in cases:
        expected = ref.mv_process(response, p, llm)
        got = mathvista_correct(
            response,
            p["answer"],
            question_type=p["question_type"],
            answer_type=p["answer_type"],
            choices=p["choices"],
            precision=p["precision"],
            llm_fallback=fallback,  # type: ignore[arg-type]
        )
        if got != expected:
            disagreements.append((response, p["answer"], got, expected))
    assert disagreements == []
    assert {ref.mv_process(r, p, llm) for r, p in cases} == {True, False}
