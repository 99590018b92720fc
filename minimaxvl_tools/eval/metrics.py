"""Scoring functions for the benchmarks MiniMax-VL-01 publishes, written to each benchmark's own definition.

Pure functions over strings, standard library only. Per-item functions return ``bool`` or a float in [0, 1];
corpus aggregates return the unit the benchmark is published in (percent, or OCRBench's points out of 1000)
so that they compare directly with :data:`minimaxvl_tools.eval.report.PUBLISHED`. CER/WER are rates (0..).

References followed (behaviour, not code):
- ChartQA relaxed accuracy: ``pix2struct/metrics.py::relaxed_correctness`` (google-research/pix2struct).
- ANLS: the DocVQA / ST-VQA RRC evaluation script (also copied by lmms-eval and Qwen-VL's eval_mm) and the
  formula of Biten et al. 2019 (ST-VQA), Eq. 1.
- OCRBench: the scoring loop of ``OCRBench/scripts/*.py`` in Yuliang-Liu/MultimodalOCR.
- Multiple choice: the layered parsing of MMMU's ``parse_multi_choice_response`` (minus its random guess).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..errors import InvalidInputError

__all__ = [
    "OCRBENCH_CATEGORIES",
    "OCRBENCH_HME_CATEGORY",
    "ErrorCounts",
    "OCRBenchScore",
    "anls",
    "anls_score",
    "answer_letter",
    "cer",
    "choice_accuracy",
    "choice_correct",
    "corpus_cer",
    "corpus_wer",
    "edit_distance",
    "extract_number",
    "final_answer",
    "mathvista_correct",
    "mathvista_extract",
    "mathvista_normalize",
    "ocrbench_match",
    "ocrbench_score",
    "parse_choice",
    "relaxed_accuracy",
    "relaxed_correctness",
    "relaxed_correctness_any",
    "wer",
]

GoldAnswers = str | Sequence[str]


# ----------------------------------------------------------------------------------------------- helpers
def _as_list(answers: GoldAnswers, *, what: str) -> list[str]:
    """One gold answer or several, as a non-empty list (a bare ``str`` is one answer, not its characters)."""
    out = [answers] if isinstance(answers, str) else [str(a) for a in answers]
    if not out:
        raise InvalidInputError(f"{what}: an item has no gold answer; every item needs at least one")
    return out


def _check_lengths(what: str, **seqs: Sequence[object]) -> int:
    """All sequences the same length and not empty; returns that length."""
    lengths = {name: len(s) for name, s in seqs.items()}
    if len(set(lengths.values())) != 1:
        raise InvalidInputError(f"{what}: sequences differ in length: {lengths}")
    n = next(iter(lengths.values()))
    if n == 0:
        raise InvalidInputError(f"{what}: no items to score")
    return n


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance (unit-cost insert/delete/substitute) between two strings or token lists."""
    # Common prefix/suffix cost nothing and are frequent in OCR output; trimming them keeps long pages fast.
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = a[start:end_a], b[start:end_b]
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


# ----------------------------------------------------------------------------------------------- ChartQA
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_GROUPED_NUMBER = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _pix2struct_float(text: str) -> float | None:
    """pix2struct's ``_to_float``: Python ``float()``; a trailing "%" (all of them) divides by 100."""
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def _lenient_number(text: str) -> tuple[float, bool] | None:
    """``(value, had_percent)`` of a string that is one finite number (thousands separators allowed)."""
    percent = text.endswith("%")
    body = (text[:-1] if percent else text).strip()
    if _GROUPED_NUMBER.fullmatch(body):
        body = body.replace(",", "")
    if not _PLAIN_NUMBER.fullmatch(body):
        return None
    value = float(body)
    return (value, percent) if math.isfinite(value) else None


def _relaxed_lenient(target: str, prediction: str, max_relative_change: float) -> bool:
    """The opt-in lenient reading (see :func:`relaxed_correctness`); not pix2struct's metric."""
    target, prediction = target.strip(), prediction.strip()
    t, p = _lenient_number(target), _lenient_number(prediction)
    if t is None or p is None:
        return prediction.lower() == target.lower()
    (tv, tp), (pv, pp) = t, p
    if tp and pp:  # both percentages: same scale, compare as written
        t_vals, p_vals = [tv], [pv]
    else:
        t_vals = [tv / 100, tv] if tp else [tv]
        p_vals = [pv / 100, pv] if pp else [pv]
    for x in t_vals:
        for y in p_vals:
            if x == 0:
                if y == 0:
                    return True
            elif abs(y - x) / abs(x) <= max_relative_change:
                return True
    return False


def relaxed_correctness(
    target: str, prediction: str, max_relative_change: float = 0.05, *, lenient: bool = False
) -> bool:
    """ChartQA relaxed correctness, exactly pix2struct's (the default): 5% relative error, else equality.

    Follows google-research/pix2struct ``pix2struct/metrics.py::relaxed_correctness`` at commit
    5b086ef5269a80d89fbdd37bdba263e492e83149 (the same function lmms-eval's ChartQA task and Qwen-VL's
    eval_mm copy): both sides go through ``float()`` (a "%" suffix divides by 100); when the prediction
    parses and the target parses to a non-zero number, the relative change must be ``<= 0.05``; otherwise
    (including a target of 0, "inf"/"nan" mismatches, "1,234", surrounding spaces) the lowercased strings
    must be equal. ``lenient=True`` is our own, more forgiving variant (whitespace and thousands separators
    ignored, a "%" on one side read both ways, target 0 compared numerically); it is not the published
    metric and is reported under another name ("ChartQA lenient").
    """
    if lenient:
        return _relaxed_lenient(target, prediction, max_relative_change)
    prediction_float = _pix2struct_float(prediction)
    target_float = _pix2struct_float(target)
    if prediction_float is not None and target_float:
        return abs(prediction_float - target_float) / abs(target_float) <= max_relative_change
    return prediction.lower() == target.lower()


def relaxed_correctness_any(
    answers: GoldAnswers, prediction: str, max_relative_change: float = 0.05, *, lenient: bool = False
) -> bool:
    """Relaxed correctness against several gold answers: correct if any matches (pix2struct takes the max)."""
    return any(
        relaxed_correctness(t, prediction, max_relative_change, lenient=lenient)
        for t in _as_list(answers, what="relaxed_correctness_any")
    )


def relaxed_accuracy(
    predictions: Sequence[str],
    answers: Sequence[GoldAnswers],
    max_relative_change: float = 0.05,
    *,
    lenient: bool = False,
) -> float:
    """ChartQA relaxed accuracy in percent: mean over items of the max over each item's gold answers."""
    n = _check_lengths("relaxed_accuracy", predictions=predictions, answers=answers)
    hits = sum(
        relaxed_correctness_any(a, p, max_relative_change, lenient=lenient)
        for p, a in zip(predictions, answers, strict=True)
    )
    return 100.0 * hits / n


# ----------------------------------------------------------------------------------------------- ANLS
def _anls_norm(text: str) -> str:
    """The official ANLS preprocessing: strip, lowercase, collapse runs of whitespace to one space."""
    return " ".join(text.strip().lower().split())


def anls_score(
    prediction: str,
    answers: GoldAnswers,
    threshold: float = 0.5,
    *,
    variant: Literal["official", "paper"] = "official",
) -> float:
    """ANLS of one question: max over gold answers of ``1 - NL``, or 0 when the match is too poor.

    ``NL = lev(norm(gold), norm(pred)) / max(len, len)`` with ``norm`` = strip + lowercase + collapse spaces.
    ``variant="official"`` follows the DocVQA/ST-VQA RRC script that produced the leaderboards: the length
    is taken from the *raw* strings and a similarity ``1 - NL`` below ``threshold`` scores 0 (so NL == 0.5
    keeps 0.5). ``variant="paper"`` is Eq. 1 of the ST-VQA paper: lengths of the normalized strings and
    ``NL >= threshold`` scores 0. Both agree except on those two edges.
    """
    golds = _as_list(answers, what="anls_score")
    det = _anls_norm(prediction)
    best = 0.0
    for gold in golds:
        g = _anls_norm(gold)
        dist = edit_distance(g, det)
        if variant == "official":
            length = max(len(gold.upper()), len(prediction.upper()))
        elif variant == "paper":
            length = max(len(g), len(det))
        else:
            raise InvalidInputError(f"anls variant must be 'official' or 'paper', got {variant!r}")
        nl = 0.0 if length == 0 else dist / length
        sim = 1.0 - nl
        keep = sim >= threshold if variant == "official" else nl < threshold
        score = sim if keep else 0.0
        best = max(best, score)
    return best


def anls(
    predictions: Sequence[str],
    answers: Sequence[GoldAnswers],
    threshold: float = 0.5,
    *,
    variant: Literal["official", "paper"] = "official",
) -> float:
    """DocVQA ANLS in percent (96.4 style): mean of :func:`anls_score` over questions."""
    n = _check_lengths("anls", predictions=predictions, answers=answers)
    total = sum(
        anls_score(p, a, threshold, variant=variant) for p, a in zip(predictions, answers, strict=True)
    )
    return 100.0 * total / n


# ------------------------------------------------------------------------------------------ multiple choice
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Port of VLMEvalKit's rule-based choice extraction: open-compass/VLMEvalKit
# ``vlmeval/utils/matching_util.py`` (can_infer, can_infer_option, can_infer_text) at commit
# e8e78f05f3080fe28154f2130321f17951c3be94, as ``vlmeval/dataset/utils/multiple_choice.py``
# (extract_answer_from_item / eval_vanilla) uses it with no judge model ("exact_matching"): the reply is
# matched against the option letters, then the option texts; anything else is 'Z', which is never correct.
_VLMEVAL_REJECTS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_VLMEVAL_PUNCT = ".()[],:;!*#{}"
_VLMEVAL_VERBOSE = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")
_VLMEVAL_TRANSLATE = str.maketrans(dict.fromkeys(_VLMEVAL_PUNCT, " "))


def _infer_option(answer: str, choices: Mapping[str, str]) -> str | None:
    """VLMEvalKit ``can_infer_option`` (VERBOSE unset): a letter, 'Z' (refusal), or None."""
    if "Failed to obtain answer via API" in answer:
        return None
    if any(err in answer for err in _VLMEVAL_REJECTS):
        return "Z"
    splits = [x.strip() for x in answer.translate(_VLMEVAL_TRANSLATE).split()]
    count = sum(1 for c in choices if c in splits)
    if count == 1:
        for ch in choices:
            if ch in splits and splits.index(ch) > len(splits) - 5:
                return ch
    elif count == 0 and "Z" in splits:
        return "Z"
    m = _VLMEVAL_VERBOSE.search(answer)
    if m and m.group(1).upper() in choices:
        return m.group(1).upper()
    return None


def _infer_text(answer: str, choices: Mapping[str, str]) -> str | None:
    """VLMEvalKit ``can_infer_text``: the one option whose lowercased text occurs in the reply."""
    answer = answer.lower()
    if len(answer) > 2 * sum(len(str(v)) for v in choices.values()):
        return None
    cands = [k for k, v in choices.items() if str(v).lower() in answer]
    return cands[0] if len(cands) == 1 else None


def parse_choice(text: str, options: Sequence[str]) -> str | None:
    """The option letter a reply picks by VLMEvalKit's rule-based extraction, or None (VLMEvalKit's 'Z').

    The one extractor the runner and :func:`choice_correct` use. Steps (VLMEvalKit ``can_infer``): a
    refusal phrase gives no answer; punctuation ``.()[],:;!*#{}`` becomes spaces and the reply is split on
    whitespace; if exactly one option letter is among the words and it is one of the last four words, that
    letter; else "answer is X" (X in A-D); else the single option whose text occurs in the reply (replies
    longer than twice the options' total length never match by text). "B and C" names two letters and
    scores as no answer; a reply of the letter "Z" (or a refusal) is no answer too.
    """
    n = len(options)
    if n == 0 or n > len(_LETTERS):
        raise InvalidInputError(f"parse_choice needs 1..26 options, got {n}")
    choices = {_LETTERS[i]: str(opt) for i, opt in enumerate(options)}
    answer = str(text)
    letter = _infer_option(answer, choices) or _infer_text(answer, choices)
    return None if letter in (None, "Z") else letter


def _norm_text(text: str) -> str:
    """Lowercase, strip punctuation at the ends and collapse whitespace (for option-text comparison)."""
    return " ".join(text.lower().split()).strip(" .,:;!?\"'()[]")


def _in_range(letter: str, n: int) -> str | None:
    """The uppercase letter if it names one of ``n`` options, else None."""
    up = letter.upper()
    return up if up in _LETTERS[:n] else None


def answer_letter(answer: str | int, options: Sequence[str]) -> str:
    """Normalize a gold answer to its option letter: a 0-based index, a letter, or the option's text."""
    n = len(options)
    if isinstance(answer, bool):
        raise InvalidInputError(f"gold answer {answer!r} is not an option index, letter or option text")
    if isinstance(answer, int):
        if 0 <= answer < n:
            return _LETTERS[answer]
        raise InvalidInputError(f"gold answer index {answer} is out of range for {n} options (0-based)")
    s = str(answer).strip()
    if len(s) == 1 and (letter := _in_range(s, n)):
        return letter
    if s.isdigit() and 0 <= int(s) < n:
        return _LETTERS[int(s)]
    matches = [i for i, opt in enumerate(options) if _norm_text(str(opt)) == _norm_text(s)]
    if len(matches) == 1:
        return _LETTERS[matches[0]]
    raise InvalidInputError(
        f"gold answer {answer!r} is not a letter A-{_LETTERS[n - 1]}, a 0-based index or one option's text"
    )


def choice_correct(prediction: str, answer: str | int, options: Sequence[str]) -> bool:
    """Whether a free-text reply picks the gold option (via :func:`parse_choice`; unparsed = wrong)."""
    return parse_choice(prediction, options) == answer_letter(answer, options)


def choice_accuracy(
    predictions: Sequence[str], answers: Sequence[str | int], options: Sequence[Sequence[str]]
) -> float:
    """Multiple-choice accuracy in percent (AI2D, MMMU): unparseable replies count as wrong."""
    n = _check_lengths("choice_accuracy", predictions=predictions, answers=answers, options=options)
    hits = sum(choice_correct(p, a, o) for p, a, o in zip(predictions, answers, options, strict=True))
    return 100.0 * hits / n


# ----------------------------------------------------------------------------------------------- OCRBench
OCRBENCH_HME_CATEGORY = "Handwritten Mathematical Expression Recognition"
#: The ten OCRBench categories and how many of the 1000 items each holds.
OCRBENCH_CATEGORIES: Mapping[str, int] = {
    "Regular Text Recognition": 50,
    "Irregular Text Recognition": 50,
    "Artistic Text Recognition": 50,
    "Handwriting Recognition": 50,
    "Digit String Recognition": 50,
    "Non-Semantic Text Recognition": 50,
    "Scene Text-centric VQA": 200,
    "Doc-oriented VQA": 200,
    "Key Information Extraction": 200,
    OCRBENCH_HME_CATEGORY: 100,
}


def ocrbench_match(
    prediction: str, answers: GoldAnswers, *, category: str | None = None, dataset_name: str | None = None
) -> bool:
    """OCRBench's rule: 1 if any gold answer is a substring of the prediction after normalization.

    Normally both sides are lowercased, stripped and have newlines turned into spaces. For handwritten math
    (dataset HME100k, category "Handwritten Mathematical Expression Recognition") all spaces and newlines are
    removed instead and case is kept, since LaTeX is case-sensitive, exactly as the official script does.
    """
    golds = _as_list(answers, what="ocrbench_match")
    if dataset_name == "HME100k" or category == OCRBENCH_HME_CATEGORY:
        pred = prediction.strip().replace("\n", " ").replace(" ", "")
        return any(g.strip().replace("\n", " ").replace(" ", "") in pred for g in golds)
    pred = prediction.lower().strip().replace("\n", " ")
    return any(g.lower().strip().replace("\n", " ") in pred for g in golds)


@dataclass(frozen=True)
class OCRBenchScore:
    """OCRBench points: ``total`` correct of ``n`` scored, with per-category counts."""

    total: int
    n: int
    per_category: dict[str, int] = field(default_factory=dict)
    per_category_n: dict[str, int] = field(default_factory=dict)

    @property
    def scaled(self) -> float:
        """Points out of 1000 (equal to ``total`` on the full benchmark; a projection on a subset)."""
        return 1000.0 * self.total / self.n if self.n else 0.0


def ocrbench_score(
    predictions: Sequence[str],
    answers: Sequence[GoldAnswers],
    categories: Sequence[str],
    dataset_names: Sequence[str | None] | None = None,
) -> OCRBenchScore:
    """Score OCRBench items: one point per :func:`ocrbench_match`, summed overall and per category."""
    names: Sequence[str | None] = dataset_names if dataset_names is not None else [None] * len(predictions)
    _check_lengths(
        "ocrbench_score", predictions=predictions, answers=answers, categories=categories, dataset_names=names
    )
    per_cat: dict[str, int] = {}
    per_cat_n: dict[str, int] = {}
    for pred, ans, cat, name in zip(predictions, answers, categories, names, strict=True):
        hit = ocrbench_match(pred, ans, category=cat, dataset_name=name)
        per_cat[cat] = per_cat.get(cat, 0) + int(hit)
        per_cat_n[cat] = per_cat_n.get(cat, 0) + 1
    return OCRBenchScore(sum(per_cat.values()), len(predictions), per_cat, per_cat_n)


# ----------------------------------------------------------------------------------------------- CER / WER
@dataclass(frozen=True)
class ErrorCounts:
    """Edits and reference length summed over a corpus; ``rate`` is their ratio (CER or WER)."""

    edits: int
    ref_len: int

    @property
    def rate(self) -> float:
        """``edits / ref_len``; 0 for an empty reference matched by an empty hypothesis."""
        if self.ref_len == 0:
            if self.edits == 0:
                return 0.0
            raise InvalidInputError(
                "error rate is undefined: all references are empty but a hypothesis is not"
            )
        return self.edits / self.ref_len


def _prep(text: str, case_fold: bool, collapse_whitespace: bool) -> str:
    """Optional normalization shared by CER and WER."""
    if case_fold:
        text = text.casefold()
    if collapse_whitespace:
        text = " ".join(text.split())
    return text


def _corpus(
    references: Sequence[str],
    hypotheses: Sequence[str],
    unit: Literal["char", "word"],
    case_fold: bool,
    collapse_whitespace: bool,
) -> ErrorCounts:
    """Sum of edit distances and of reference lengths at character or word level."""
    _check_lengths(f"{unit} error rate", references=references, hypotheses=hypotheses)
    edits = ref_len = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        r, h = _prep(ref, case_fold, collapse_whitespace), _prep(hyp, case_fold, collapse_whitespace)
        if unit == "word":
            r_units: Sequence[str] = r.split()
            h_units: Sequence[str] = h.split()
        else:
            r_units, h_units = r, h
        edits += edit_distance(r_units, h_units)
        ref_len += len(r_units)
    return ErrorCounts(edits, ref_len)


def cer(
    reference: str, hypothesis: str, *, case_fold: bool = False, collapse_whitespace: bool = False
) -> float:
    """Character error rate of one pair: character edit distance / reference length."""
    return _corpus([reference], [hypothesis], "char", case_fold, collapse_whitespace).rate


def wer(
    reference: str, hypothesis: str, *, case_fold: bool = False, collapse_whitespace: bool = False
) -> float:
    """Word error rate of one pair: edit distance over whitespace-split words / reference word count."""
    return _corpus([reference], [hypothesis], "word", case_fold, collapse_whitespace).rate


def _corpus_rate(unit: Literal["char", "word"], name: str, doc: str) -> Callable[..., ErrorCounts]:
    """The public corpus rate at ``unit`` level: ``name(references, hypotheses, *, case_fold=False,
    collapse_whitespace=False) -> ErrorCounts``."""

    def rate(
        references: Sequence[str],
        hypotheses: Sequence[str],
        *,
        case_fold: bool = False,
        collapse_whitespace: bool = False,
    ) -> ErrorCounts:
        return _corpus(references, hypotheses, unit, case_fold, collapse_whitespace)

    rate.__name__ = rate.__qualname__ = name
    rate.__doc__ = doc
    return rate


corpus_cer = _corpus_rate(
    "char",
    "corpus_cer",
    "Corpus CER: total character edits / total reference characters (not a mean of per-item rates).",
)
corpus_wer = _corpus_rate(
    "word",
    "corpus_wer",
    "Corpus WER: total word edits / total reference words (not a mean of per-item rates).",
)


# ---------------------------------------------------------------------------------------------- MathVista
_NUMBER_IN_TEXT = re.compile(r"(?:(?<![\w)])[-+])?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?")
_ANSWER_LINE = re.compile(r"answer\s*:", re.IGNORECASE)


def extract_number(text: str) -> float | None:
    """The last number written in a reply ("... so x = 1,234.5" -> 1234.5), or None if there is none."""
    nums = [m.group(0) for m in _NUMBER_IN_TEXT.finditer(text) if any(c.isdigit() for c in m.group(0))]
    if not nums:
        return None
    try:
        return float(nums[-1].replace(",", ""))
    except ValueError:  # pragma: no cover - the regex only yields parseable numbers
        return None


def final_answer(reply: str) -> str:
    """The text after the last "Answer:" of a chain-of-thought reply (first line, stripped); else the reply.

    The benchmark prompts ask for reasoning that ends in ``Answer: ...``; the scorers then see just that
    answer, as they would see a direct short answer.
    """
    hits = list(_ANSWER_LINE.finditer(reply))
    if not hits:
        return reply.strip()
    rest = reply[hits[-1].end() :].strip()
    return rest.splitlines()[0].strip() if rest else ""


def mathvista_extract(
    response: str,
    *,
    question_type: str,
    answer_type: str,
    choices: Sequence[str] | None = None,
    quick_extract: bool = False,
    llm_fallback: Literal["answer_line", "none"] = "answer_line",
) -> str:
    """MathVista's answer extraction with its rule-based steps; the GPT step is replaced (offline).

    Follows EvolvingLMMs-Lab/lmms-eval ``lmms_eval/tasks/mathvista/mathvista_evals.py``
    (``MathVistaEvaluator.extract_answer``) at commit 0893c504b183438c4e4b87496661fe38f6c36753, the same
    steps as lupantech/MathVista ``evaluation/extract_answer.py`` at 0a520c46ca1b41daf4c10656d6fb721b50d15f50:
    empty reply -> ""; a multiple-choice reply equal to one choice -> itself; ``int(reply)`` for integer
    answers, ``str(float(reply))`` for float answers; with ``quick_extract`` the ``The answer is "x".``
    pattern. Where the reference then asks GPT to extract the answer, this runs offline:
    ``llm_fallback="none"`` is what the reference returns when that call fails (""), and
    ``"answer_line"`` (the default) takes :func:`final_answer`: the text after the reply's last
    ``Answer:`` (the format the 0-shot CoT prompt asks for), or the whole stripped reply without one.
    """
    if not response:
        return ""
    if question_type == "multi_choice" and response in list(choices or []):
        return response
    if answer_type == "integer":
        try:
            return str(int(response))
        except ValueError:
            pass
    if answer_type == "float":
        try:
            return str(float(response))
        except ValueError:
            pass
    if quick_extract:
        m = re.search(r'The answer is "(.*)"\.', response)
        if m:
            return m.group(1)
    if llm_fallback == "none":
        return ""
    return final_answer(response)


def mathvista_normalize(
    extraction: object,
    choices: Sequence[str] | None,
    question_type: str,
    answer_type: str,
    precision: int | None,
) -> str | None:
    """MathVista's ``normalize_extracted_answer`` (lmms-eval commit 0893c504, MathVista 2a249bbe).

    Multiple choice: a "(X)" letter or a bare option letter becomes that option's text, anything else the
    option nearest by Levenshtein distance (first on ties); integer: ``str(int(float(x)))``; float:
    ``str(round(float(x), precision))`` (a float precision such as 1.0, as parquet stores it, is used as
    the integer 1); list: ``str(x)``; a failed conversion is None.
    """
    if question_type == "multi_choice":
        opts = [str(c) for c in (choices or [])]
        if not opts:
            raise InvalidInputError("mathvista: a multi_choice problem needs its choices")
        if isinstance(extraction, str):
            ext = extraction.strip()
        else:
            try:
                ext = str(extraction)
            except Exception:
                ext = ""
        letter = re.findall(r"\(([a-zA-Z])\)", ext)
        if letter:
            ext = letter[0].upper()
        options = [chr(ord("A") + i) for i in range(len(opts))]
        if ext in options:
            return opts[options.index(ext)]
        distances = [edit_distance(ext, c) for c in opts]
        return opts[distances.index(min(distances))]
    try:
        if answer_type == "integer":
            return str(int(float(extraction)))  # type: ignore[arg-type]
        if answer_type == "float":
            return str(round(float(extraction), int(precision or 0)))  # type: ignore[arg-type]
        if answer_type == "list":
            return str(extraction)
    except (TypeError, ValueError, OverflowError):
        return None
    return extraction if isinstance(extraction, str) or extraction is None else str(extraction)


def mathvista_correct(
    response: str,
    answer: str,
    *,
    question_type: str,
    answer_type: str,
    choices: Sequence[str] | None = None,
    precision: int | None = None,
    quick_extract: bool = False,
    llm_fallback: Literal["answer_line", "none"] = "answer_line",
) -> bool:
    """Whether a MathVista reply is right, as lmms-eval's ``mathvista_process_results`` decides it.

    The reply is stripped, then :func:`mathvista_extract`, :func:`mathvista_normalize` and lmms-eval's
    ``safe_equal`` (``str(prediction).strip() == str(answer).strip()``).
    """
    extraction = mathvista_extract(
        response.strip(),
        question_type=question_type,
        answer_type=answer_type,
        choices=choices,
        quick_extract=quick_extract,
        llm_fallback=llm_fallback,
    )
    prediction = mathvista_normalize(extraction, choices, question_type, answer_type, precision)
    return str(prediction).strip() == str(answer).strip()
