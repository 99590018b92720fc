"""Benchmark metrics checked against hand-worked cases and reference implementations' published examples."""

from __future__ import annotations

import functools
import random

import pytest

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.eval.metrics import (
    OCRBENCH_CATEGORIES,
    OCRBENCH_HME_CATEGORY,
    anls,
    anls_score,
    answer_letter,
    cer,
    choice_accuracy,
    choice_correct,
    corpus_cer,
    corpus_wer,
    edit_distance,
    extract_number,
    mathvista_correct,
    ocrbench_match,
    ocrbench_score,
    parse_choice,
    relaxed_accuracy,
    relaxed_correctness,
    relaxed_correctness_any,
    wer,
)

# pix2struct/metrics_test.py::test_pix2struct_metrics, published expectations:
# relaxed_accuracy 62.5, anls 47.5 (8 items).
PIX2STRUCT_PREDICTIONS = ["abc", "abc", "Abc", "100%", "100%", "100%", "100%", "Don't"]
PIX2STRUCT_TARGETS = [["abc"], ["Abc"], ["abc"], ["96%"], ["94%"], ["0.96"], ["0.94"], ["Won't"]]


# ------------------------------------------------------------------------------------------ edit distance
def _naive_lev(a: str, b: str) -> int:
    @functools.cache
    def d(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))

    return d(len(a), len(b))


def test_edit_distance_textbook_cases() -> None:
    assert edit_distance("kitten", "sitting") == 3  # k->s, e->i, +g
    assert edit_distance("flaw", "lawn") == 2  # -f, +n
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "abc") == 0
    assert edit_distance(["the", "cat"], ["the", "dog", "cat"]) == 1  # works on token lists


def test_edit_distance_matches_naive_recursion_on_random_strings() -> None:
    rng = random.Random(1234)
    for _ in range(300):
        a = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 9)))
        b = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 9)))
        assert edit_distance(a, b) == _naive_lev(a, b) == edit_distance(b, a), (a, b)


# ------------------------------------------------------------------------------------------ ChartQA
def test_pix2struct_published_relaxed_accuracy_example() -> None:
    # abc/abc, abc/Abc, Abc/abc: case-free equal (3). 100% vs 96%: 1.0 vs 0.96 -> 4.2% <= 5% (4).
    # 100% vs 94%: 6.4% (no). 100% vs 0.96: 1.0 vs 0.96 (5). 100% vs 0.94 (no). Don't/Won't (no). 5/8 = 62.5.
    assert relaxed_accuracy(PIX2STRUCT_PREDICTIONS, PIX2STRUCT_TARGETS) == pytest.approx(62.5)
    assert relaxed_accuracy(PIX2STRUCT_PREDICTIONS, PIX2STRUCT_TARGETS, lenient=True) == pytest.approx(62.5)


@pytest.mark.parametrize(
    ("target", "prediction", "expected"),
    [
        ("12.5", "12", True),  # |12 - 12.5| / 12.5 = 0.04
        ("100", "105", True),  # exactly 5% is allowed (<=)
        ("100", "105.01", False),  # 5.01%
        ("100", "94.9", False),  # 5.1%
        ("-20", "-19.5", True),  # 2.5% of |-20|
        ("Yes", "yes", True),  # strings: case-insensitive
        ("Yes", "yes.", False),  # ... but otherwise exact
        ("1,234", "1234", True),  # thousands separator
        ("1234", "1,250", True),  # 16 / 1234 = 1.3%
        ("45", "45%", True),  # one side %: also read as the bare 45
        ("0.45", "45%", True),  # ... or as 0.45, as pix2struct does
        ("50%", "5000%", False),  # both %: compared as written (50 vs 5000)
        ("0", "0.0", True),  # target 0: numeric equality
        ("0", "0.01", False),  # target 0: nothing within a relative tolerance of 0
        (" 17 ", "17", True),  # surrounding whitespace
    ],
)
def test_relaxed_correctness_lenient_opt_in(target: str, prediction: str, expected: bool) -> None:
    assert relaxed_correctness(target, prediction, lenient=True) is expected


@pytest.mark.parametrize(
    ("target", "prediction", "expected"),
    [
        ("1,234", "1234", False),  # float("1,234") fails -> string compare
        ("45", "45%", False),  # 45 vs 0.45
        ("0", "0.0", False),  # target_float == 0 is falsy -> string compare "0" vs "0.0"
        ("0", "0", True),
        ("12.5", "12", True),
    ],
)
def test_relaxed_correctness_default_is_pix2struct(target: str, prediction: str, expected: bool) -> None:
    assert relaxed_correctness(target, prediction) is expected


def test_relaxed_multiple_gold_answers_take_the_max() -> None:
    assert relaxed_correctness_any(["Brazil", "31"], "30") is True  # 1/31 = 3.2%
    assert relaxed_correctness_any(["Brazil", "31"], "Chile") is False
    assert relaxed_correctness_any("31", "3") is False  # a bare string is one answer, not "3" and "1"
    # 2 items: first right via its second gold, second wrong -> 50%.
    assert relaxed_accuracy(["30", "x"], [["a", "31"], ["y"]]) == pytest.approx(50.0)


def test_relaxed_accuracy_rejects_mismatched_inputs() -> None:
    with pytest.raises(InvalidInputError, match="differ in length"):
        relaxed_accuracy(["1"], [["1"], ["2"]])
    with pytest.raises(InvalidInputError, match="no items"):
        relaxed_accuracy([], [])
    with pytest.raises(InvalidInputError, match="no gold answer"):
        relaxed_accuracy(["1"], [[]])


# ------------------------------------------------------------------------------------------ ANLS
@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        # ST-VQA paper's Coca-Cola example (see shunk031/ANLS tests); golds "Coca Cola", "Coca Cola Company".
        ("The Coca", 0.0),  # best: lev("the coca", "coca cola") = 5, 1 - 5/9 = 0.44 < 0.5 -> 0
        ("CocaCola", 8 / 9),  # lev("cocacola", "coca cola") = 1 -> 1 - 1/9 = 0.889
        ("Coca cola", 1.0),  # case-free exact
        ("Cola", 0.0),  # 1 - 5/9 = 0.44 -> 0
        ("Cat", 0.0),  # 1 - 7/9 = 0.22 -> 0
        ("  coca   COLA ", 1.0),  # strip + collapse whitespace + lowercase
    ],
)
def test_anls_st_vqa_paper_example(prediction: str, expected: float) -> None:
    golds = ["Coca Cola", "Coca Cola Company"]
    assert anls_score(prediction, golds, variant="paper") == pytest.approx(expected)
    if prediction.strip() == prediction:  # no raw/normalized length difference -> both variants agree
        assert anls_score(prediction, golds) == pytest.approx(expected)


def test_anls_similarities_below_threshold_of_the_paper_table() -> None:
    # The paper's per-gold similarities, recovered by setting threshold 0 (nothing is cut).
    assert anls_score("The Coca", ["Coca Cola Company"], threshold=0.0) == pytest.approx(1 - 12 / 17)  # 0.29
    assert anls_score("CocaCola", ["Coca Cola Company"], threshold=0.0) == pytest.approx(1 - 9 / 17)  # 0.47
    assert anls_score("Cat", ["Coca Cola"], threshold=0.0) == pytest.approx(1 - 7 / 9)  # 0.22


def test_anls_mean_over_questions() -> None:
    # (0 + 8/9 + 1 + 0 + 0) / 5 = 0.3778 -> 37.78 %
    preds = ["The Coca", "CocaCola", "Coca cola", "Cola", "Cat"]
    golds = [["Coca Cola", "Coca Cola Company"]] * 5
    assert anls(preds, golds) == pytest.approx(100 * (8 / 9 + 1) / 5)


def test_anls_pix2struct_published_example() -> None:
    # pix2struct expects 47.5: three exact matches (3.0), the four "100%" items are >= 0.5 NL (0),
    # "don't" vs "won't": 1 edit / 5 -> 0.8. (3 + 0.8) / 8 = 47.5 %.
    assert anls(PIX2STRUCT_PREDICTIONS, PIX2STRUCT_TARGETS) == pytest.approx(47.5)


def test_anls_threshold_edge_official_vs_paper() -> None:
    # lev("ab", "ax") = 1, NL = 1/2 exactly. Official script: similarity 0.5 is not < 0.5, kept.
    # Paper Eq. 1: NL < 0.5 is required, so 0.
    assert anls_score("ax", ["ab"]) == pytest.approx(0.5)
    assert anls_score("ax", ["ab"], variant="paper") == 0.0


def test_anls_official_uses_raw_lengths() -> None:
    # Normalized: "42x" vs "42" -> 1 edit. Official divides by the raw length max(2, len("  42x  ") = 7):
    # 1 - 1/7 = 0.857. Paper divides by max(2, 3): 1 - 1/3 = 0.667.
    assert anls_score("  42x  ", ["42"]) == pytest.approx(6 / 7)
    assert anls_score("  42x  ", ["42"], variant="paper") == pytest.approx(2 / 3)


def test_anls_max_over_golds_and_errors() -> None:
    assert anls_score("1989", ["12/15/89", "1989"]) == 1.0
    assert anls_score("", [""]) == 1.0  # both empty: NL defined as 0
    with pytest.raises(InvalidInputError, match="no gold answer"):
        anls_score("x", [])
    with pytest.raises(InvalidInputError, match="variant"):
        anls_score("x", ["x"], variant="other")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ multiple choice
OPTS = ["red", "blue", "green", "yellow"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # VLMEvalKit's rule-based extraction (can_infer): an uppercase option letter among the words ...
        ("B", "B"),
        ("B.", "B"),
        ("(C)", "C"),
        ("**C**", "C"),
        ("The answer is (B)", "B"),
        ("Answer: D", "D"),
        ("B. blue", "B"),
        ("It is (B) here", "B"),
        ("A is correct", "A"),
        ("Looking at the arrows... The answer is A.", "A"),
        # ... else "answer is X" (X in A-D, any case), else the one option text found in the reply
        ("The answer is a bird", "A"),  # VLMEvalKit's verbose-answer pattern is case-insensitive
        ("blue", "B"),
        ("Green.", "C"),
        ("I think it's green.", "C"),
        # Not answers:
        ("(c)", None),  # lowercase letters are not option letters
        ("d", None),
        ("Answer: d", None),
        ("The correct option is C because the leaf is green", None),  # "C" is not among the last 4 words
        ("First I thought (A), but the answer is (C).", None),  # two letters
        ("option 2", None),  # option numbers are not read
        ("A diagram shows the sun", None),
        ("To answer this, look at A and B", None),  # two letters, no decision
        ("B and C", None),
        ("E", None),  # out of range for 4 options
        ("Z", None),  # VLMEvalKit's "no answer" letter
        ("", None),
        ("I don't know", None),
    ],
)
def test_parse_choice(text: str, expected: str | None) -> None:
    assert parse_choice(text, OPTS) == expected


def test_parse_choice_prefers_longer_option_text_and_needs_options() -> None:
    opts = ["10", "10 cm", "20 cm"]
    # VLMEvalKit's text match needs exactly one option text inside the reply: "10" and "10 cm" both are
    assert parse_choice("It measures 10 cm in total", opts) is None
    assert parse_choice("20 cm", opts) == "C"
    with pytest.raises(InvalidInputError, match=r"1\.\.26 options"):
        parse_choice("A", [])


def test_answer_letter_normalizes_gold_answers() -> None:
    assert answer_letter(2, OPTS) == "C"  # 0-based index
    assert answer_letter("2", OPTS) == "C"  # lmms-eval stores AI2D answers as index strings
    assert answer_letter("b", OPTS) == "B"
    assert answer_letter("Yellow", OPTS) == "D"
    for bad in (7, "Z", "purple", True):
        with pytest.raises(InvalidInputError):
            answer_letter(bad, OPTS)  # type: ignore[arg-type]


def test_choice_accuracy() -> None:
    preds = ["The answer is (B)", "green", "no idea", "Answer: A"]
    answers: list[str | int] = ["B", 2, "A", "yellow"]
    # right, right, unparsed (wrong), wrong -> 2/4
    assert choice_accuracy(preds, answers, [OPTS] * 4) == pytest.approx(50.0)
    assert choice_correct("(D)", "yellow", OPTS) is True


# ------------------------------------------------------------------------------------------ OCRBench
def test_ocrbench_match_substring_lowercased() -> None:
    assert ocrbench_match("The word is centre.", "CENTRE") is True  # lowercased substring
    assert ocrbench_match("cent", "CENTRE") is False  # gold must be inside the prediction, not vice versa
    assert ocrbench_match("hello\nworld", ["hello world"]) is True  # newline -> space
    assert ocrbench_match("nothing", ["a b", "thin"]) is True  # any gold answer
    assert ocrbench_match("x", ["  X  "]) is True  # gold stripped


def test_ocrbench_match_handwritten_math_removes_spaces_keeps_case() -> None:
    gold = "x ^ { 2 } + \\frac { 1 } { y }"
    assert ocrbench_match("$x^{2}+\\frac{1}\n{y}$", gold, dataset_name="HME100k") is True
    assert ocrbench_match("$x^{2}+\\frac{1}\n{y}$", gold, category=OCRBENCH_HME_CATEGORY) is True
    assert ocrbench_match("X^{2}+\\frac{1}{y}", gold, category=OCRBENCH_HME_CATEGORY) is False  # case kept
    # The same prediction in a normal category keeps its spaces -> no match.
    assert ocrbench_match("x^{2}+\\frac{1}{y}", gold, category="Doc-oriented VQA") is False


def test_ocrbench_score_totals_and_categories() -> None:
    assert sum(OCRBENCH_CATEGORIES.values()) == 1000
    score = ocrbench_score(
        ["CENTRE", "wrong", "a^{2}", "$5.00"],
        ["centre", "palace", "a ^ { 2 }", ["5.00", "$5"]],
        [
            "Regular Text Recognition",
            "Regular Text Recognition",
            OCRBENCH_HME_CATEGORY,
            "Key Information Extraction",
        ],
        ["IIIT5K", "svt", "HME100k", "SROIE"],
    )
    assert score.total == 3 and score.n == 4
    assert score.per_category == {
        "Regular Text Recognition": 1,
        OCRBENCH_HME_CATEGORY: 1,
        "Key Information Extraction": 1,
    }
    assert score.per_category_n["Regular Text Recognition"] == 2
    assert score.scaled == pytest.approx(750.0)  # 3/4 projected to 1000 points


# ------------------------------------------------------------------------------------------ CER / WER
def test_cer_wer_hand_worked() -> None:
    assert cer("kitten", "sitting") == pytest.approx(3 / 6)
    # the cat sat on the mat -> the cat sit on mat: 1 substitution + 1 deletion over 6 words
    assert wer("the cat sat on the mat", "the cat sit on mat") == pytest.approx(2 / 6)
    assert wer("a b", "a b c d") == pytest.approx(1.0)  # 2 insertions over 2 reference words
    assert wer("a", "a b c") == pytest.approx(2.0)  # insertions can push a rate past 1


def test_cer_normalization_options() -> None:
    ref, hyp = "Hello  World", "hello world"
    # raw: H->h, W->w, one space deleted = 3 edits over 12 characters
    assert cer(ref, hyp) == pytest.approx(3 / 12)
    assert cer(ref, hyp, case_fold=True) == pytest.approx(1 / 12)
    assert cer(ref, hyp, case_fold=True, collapse_whitespace=True) == 0.0
    assert wer(ref, hyp) == pytest.approx(1.0)  # both words differ in case
    assert wer(ref, hyp, case_fold=True) == 0.0


def test_corpus_rates_sum_edits_not_mean_of_rates() -> None:
    counts = corpus_cer(["abc", "de"], ["abd", "de"])
    assert (counts.edits, counts.ref_len) == (1, 5)
    assert counts.rate == pytest.approx(0.2)  # a mean of per-item rates would be (1/3 + 0) / 2 = 0.167
    w = corpus_wer(["one two", "three"], ["one", "three four"])
    assert (w.edits, w.ref_len) == (2, 3)


def test_error_rate_with_empty_references() -> None:
    assert cer("", "") == 0.0
    assert corpus_cer(["", "ab"], ["x", "ab"]).rate == pytest.approx(1 / 2)  # an empty ref's insertions count
    with pytest.raises(InvalidInputError, match="undefined"):
        cer("", "abc")


# ------------------------------------------------------------------------------------------ MathVista (light)
def test_extract_number() -> None:
    assert extract_number("so the total is 1,234.5 dollars") == pytest.approx(1234.5)
    assert extract_number("x = -3") == pytest.approx(-3.0)
    assert extract_number("pages 10-12") == pytest.approx(12.0)  # a range's hyphen is not a minus sign
    assert extract_number("no digits") is None


def test_mathvista_correct() -> None:
    free = {"question_type": "free_form", "choices": None}
    assert mathvista_correct("3.5", "3.5", answer_type="float", precision=1, **free) is True
    assert mathvista_correct("Answer: 3.50", "3.5", answer_type="float", precision=1, **free) is True
    assert mathvista_correct("The answer is 3.50", "3.5", answer_type="float", precision=1, **free) is False
    assert mathvista_correct("Answer: 12", "12", answer_type="integer", **free) is True
    assert mathvista_correct(" 12 ", "12", answer_type="integer", **free) is True
    assert mathvista_correct("Answer: 13", "12", answer_type="integer", **free) is False
    assert (
        mathvista_correct("Answer: 12", "12", answer_type="integer", llm_fallback="none", **free) is False
    )  # the reference with its GPT step unavailable extracts ""
    mc = {"question_type": "multi_choice", "answer_type": "text", "choices": OPTS}
    assert mathvista_correct("(B)", "blue", **mc) is True  # choice answers are option texts
    assert mathvista_correct("blue", "blue", **mc) is True
    assert mathvista_correct("Answer: C", "green", **mc) is True
    assert mathvista_correct("0.333", "0.33", answer_type="float", precision=2, **free) is True


# ------------------------------------------------------------------------------------------ report interval
def test_wilson_interval_known_values() -> None:
    from minimaxvl_tools.eval.report import ReportRow, format_run_report, wilson_interval

    lo, hi = wilson_interval(8, 10)  # textbook example: 0.490 .. 0.943
    assert (round(lo, 3), round(hi, 3)) == (0.49, 0.943)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    with pytest.raises(InvalidInputError):
        wilson_interval(1, 0)
    table = format_run_report([ReportRow("OCRBench", 10, 800.0, scale=1000.0, published="OCRBench")])
    assert "| OCRBench | 10 | 800 | 490–943 | 865 | -65 |" in table
