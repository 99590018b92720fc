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
from collections.abc import Hashable, Mapping, Sequence
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
    "mathvista_correct",
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


def _parse_number(text: str, *, strict: bool) -> tuple[float, bool] | None:
    """``(value, had_percent)`` for a string that is one number, else None.

    ``strict`` reproduces pix2struct's ``_to_float`` (Python ``float()``, a "%" suffix divides by 100).
    Otherwise surrounding whitespace and thousands separators ("1,234.5") are accepted too.
    """
    percent = text.endswith("%")
    body = text.rstrip("%") if strict else (text[:-1] if percent else text)
    if strict:
        try:
            value = float(body)
        except ValueError:
            return None
        return value, percent
    body = body.strip()
    if _GROUPED_NUMBER.fullmatch(body):
        body = body.replace(",", "")
    if not _PLAIN_NUMBER.fullmatch(body):
        return None
    value = float(body)
    return (value, percent) if math.isfinite(value) else None


def relaxed_correctness(
    target: str, prediction: str, max_relative_change: float = 0.05, *, strict: bool = False
) -> bool:
    """ChartQA relaxed correctness: numbers within 5% relative error of the target, else case-free equality.

    ``strict=True`` is pix2struct's function verbatim in behaviour. The default adds, for numbers only:
    whitespace and thousands separators are ignored; when just one side carries "%", both readings of it
    (``45% = 0.45`` as in pix2struct, or ``45``) are tried, so "45%" matches a bare "45" label; and a
    target of 0 (where pix2struct falls back to string equality, so "0.0" != "0") needs a prediction of 0.
    """
    if not strict:
        target, prediction = target.strip(), prediction.strip()
    t = _parse_number(target, strict=strict)
    p = _parse_number(prediction, strict=strict)
    if strict:
        if p is not None and t is not None and t[0] != 0:
            tv = t[0] / 100 if t[1] else t[0]
            pv = p[0] / 100 if p[1] else p[0]
            return abs(pv - tv) / abs(tv) <= max_relative_change
        return prediction.lower() == target.lower()
    if t is not None and p is not None:
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
    return prediction.lower() == target.lower()


def relaxed_correctness_any(
    answers: GoldAnswers, prediction: str, max_relative_change: float = 0.05, *, strict: bool = False
) -> bool:
    """Relaxed correctness against several gold answers: correct if any matches (pix2struct takes the max)."""
    return any(
        relaxed_correctness(t, prediction, max_relative_change, strict=strict)
        for t in _as_list(answers, what="relaxed_correctness_any")
    )


def relaxed_accuracy(
    predictions: Sequence[str],
    answers: Sequence[GoldAnswers],
    max_relative_change: float = 0.05,
    *,
    strict: bool = False,
) -> float:
    """ChartQA relaxed accuracy in percent: mean over items of the max over each item's gold answers."""
    n = _check_lengths("relaxed_accuracy", predictions=predictions, answers=answers)
    hits = sum(
        relaxed_correctness_any(a, p, max_relative_change, strict=strict)
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
_MARKDOWN = re.compile(r"(\*\*|__|`|\\boxed\{|\\text\{|\$)")
_ANSWER_PHRASE = re.compile(
    r"\b(?:final\s+answer|correct\s+answer|correct\s+option|correct\s+choice|best\s+answer|answer|"
    r"option|choice)\b\s*(?:is|would\s+be|should\s+be|=)?\s*[:\-]?\s*"
    r"(?P<open>[\(\[])?(?P<letter>[A-Za-z])(?P<close>[\)\]])?(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_OPTION_NUMBER = re.compile(r"\b(?:option|choice)\s*[\(\[#]?\s*(\d{1,2})\b", re.IGNORECASE)
_BARE = re.compile(r"\s*[\(\[]?([A-Za-z])[\)\]]?[.:)]?\s*")
_LEADING = re.compile(r"\s*[\(\[]?([A-Z])(?:[\)\]]|[.:])\s+\S")
_PAREN = re.compile(r"\(([A-Z])\)")
# "A"/"I" followed by a lowercase word is the article/pronoun ("A cell", "I think"), unless that word is a
# connective that follows a letter label ("A and B", "A is correct").
_WORD_AFTER = re.compile(r"\s+(?!(?:and|or|is|was|are|because|since|as|if)\b)[a-z]")
_STANDALONE = re.compile(r"(?<![A-Za-z0-9'’])([A-Z])(?![A-Za-z0-9'’])")


def _norm_text(text: str) -> str:
    """Lowercase, strip punctuation at the ends and collapse whitespace (for option-text comparison)."""
    return " ".join(text.lower().split()).strip(" .,:;!?\"'()[]")


def _phrase_ok(m: re.Match[str], text: str) -> bool:
    """Whether an "answer is X" hit names a letter rather than starting a word ("the answer is a bird")."""
    if m["open"] and m["close"]:
        return True
    rest = text[m.end() :]
    if not rest.strip() or rest[0] in ".,;:!?)]\n":
        return True
    # A capital followed by more words ("The answer is B because ...") counts; "a"/"i" are words, not letters.
    return m["letter"].isupper() and rest[0].isspace() and m["letter"] not in "AI"


def _in_range(letter: str, n: int) -> str | None:
    """The uppercase letter if it names one of ``n`` options, else None."""
    up = letter.upper()
    return up if up in _LETTERS[:n] else None


def parse_choice(text: str, options: Sequence[str]) -> str | None:
    """The option letter ("A", "B", ...) a free-text answer picks, or None when it picks none clearly.

    Tried in order (first hit wins): a bare letter ("B", "(c)", "d."); an explicit phrase ("The answer is
    (B)", "Answer: d", "Final answer: **C**", last one wins); "option 2" / "choice (3)" (1-based); a leading
    "B. ..."; the reply equal to one option's text; a single "(B)"; a single standalone capital letter;
    the option texts found in the reply (the one appearing last, as MMMU does). Never guesses at random.
    """
    n = len(options)
    if n == 0 or n > len(_LETTERS):
        raise InvalidInputError(f"parse_choice needs 1..26 options, got {n}")
    if not text or not text.strip():
        return None
    clean = _MARKDOWN.sub("", text).replace("}", " ").strip()

    m = _BARE.fullmatch(clean)
    if m and (letter := _in_range(m.group(1), n)):
        return letter

    phrase_hits = [
        h for m in _ANSWER_PHRASE.finditer(clean) if _phrase_ok(m, clean) and (h := _in_range(m["letter"], n))
    ]
    if phrase_hits:
        return phrase_hits[-1]

    numbers = [int(m.group(1)) for m in _OPTION_NUMBER.finditer(clean)]
    numbers = [k for k in numbers if 1 <= k <= n]
    if numbers:
        return _LETTERS[numbers[-1] - 1]

    m = _LEADING.match(clean)
    if m and (letter := _in_range(m.group(1), n)):
        return letter

    norm = _norm_text(clean)
    exact = [i for i, opt in enumerate(options) if _norm_text(str(opt)) == norm and norm]
    if len(exact) == 1:
        return _LETTERS[exact[0]]

    paren = {h for m in _PAREN.finditer(clean) if (h := _in_range(m.group(1), n))}
    if len(paren) == 1:
        return paren.pop()

    # "A" and "I" are also English words; a capital followed by a lowercase word is read as one of those.
    alone = {
        h
        for m in _STANDALONE.finditer(clean)
        if (h := _in_range(m.group(1), n)) and not (h in "AI" and _WORD_AFTER.match(clean, m.end()))
    }
    if len(alone) == 1:
        return alone.pop()

    lowered = " " + " ".join(clean.lower().split()) + " "
    found: list[tuple[int, int, int]] = []  # (last position, -length, index)
    for i, opt in enumerate(options):
        o = _norm_text(str(opt))
        if not o:
            continue
        pattern = r"(?<![a-z0-9])" + re.escape(o) + r"(?![a-z0-9])"
        positions = [m.start() for m in re.finditer(pattern, lowered)]
        if positions:
            found.append((positions[-1], -len(o), i))
    if found:
        # Drop options whose text only occurs inside a longer matching option ("10" inside "10 cm").
        texts = {i: _norm_text(str(options[i])) for _, _, i in found}
        kept = [f for f in found if not any(texts[f[2]] in texts[g[2]] and f[2] != g[2] for g in found)]
        best = max(kept or found)
        return _LETTERS[best[2]]
    return None


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


def corpus_cer(
    references: Sequence[str],
    hypotheses: Sequence[str],
    *,
    case_fold: bool = False,
    collapse_whitespace: bool = False,
) -> ErrorCounts:
    """Corpus CER: total character edits / total reference characters (not a mean of per-item rates)."""
    return _corpus(references, hypotheses, "char", case_fold, collapse_whitespace)


def corpus_wer(
    references: Sequence[str],
    hypotheses: Sequence[str],
    *,
    case_fold: bool = False,
    collapse_whitespace: bool = False,
) -> ErrorCounts:
    """Corpus WER: total word edits / total reference words (not a mean of per-item rates)."""
    return _corpus(references, hypotheses, "word", case_fold, collapse_whitespace)


# ---------------------------------------------------------------------------------------- MathVista (light)
_NUMBER_IN_TEXT = re.compile(r"(?:(?<![\w)])[-+])?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?")


def extract_number(text: str) -> float | None:
    """The last number written in a reply ("... so x = 1,234.5" -> 1234.5), or None if there is none."""
    nums = [m.group(0) for m in _NUMBER_IN_TEXT.finditer(text) if any(c.isdigit() for c in m.group(0))]
    if not nums:
        return None
    try:
        return float(nums[-1].replace(",", ""))
    except ValueError:  # pragma: no cover - the regex only yields parseable numbers
        return None


def mathvista_correct(
    prediction: str,
    answer: str,
    *,
    options: Sequence[str] | None = None,
    answer_type: Literal["integer", "float", "text"] | None = None,
    precision: int | None = None,
) -> bool:
    """Light MathVista check: choices via :func:`parse_choice`; numbers compared after MathVista's rounding.

    MathVista normalizes integer answers with ``int()`` and float answers with ``round(x, precision)`` before
    an exact comparison; free-form text falls back to a case-insensitive exact match.
    """
    if options:
        return parse_choice(prediction, options) == answer_letter(answer, options)
    if answer_type is None:
        gold_num = _parse_number(answer.strip(), strict=False)
        answer_type = "text" if gold_num is None else ("integer" if gold_num[0].is_integer() else "float")
    if answer_type == "text":
        return _norm_text(prediction) == _norm_text(answer)
    pred = extract_number(prediction)
    gold = _parse_number(answer.strip(), strict=False)
    if pred is None or gold is None:
        return False
    if answer_type == "integer":
        return int(pred) == int(gold[0])
    digits = precision if precision is not None else max(len(answer.strip().partition(".")[2]), 0)
    return round(pred, digits) == round(gold[0], digits)
