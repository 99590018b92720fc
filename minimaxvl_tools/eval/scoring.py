"""How one reply is scored: the prompt benchmark mode sends, the reference rule per benchmark, CER counts.

:func:`score_reply` is the one scoring function for a live run and for
:func:`~minimaxvl_tools.eval.records.rescore`; the rules themselves are the reference ports of
:mod:`minimaxvl_tools.eval.metrics`.
"""

from __future__ import annotations

from typing import Any, Literal

from ..errors import InvalidInputError
from .config import PromptMode
from .datasets import EvalItem
from .metrics import (
    anls_score,
    edit_distance,
    final_answer,
    mathvista_correct,
    mathvista_extract,
    mathvista_normalize,
    ocrbench_match,
    parse_choice,
    relaxed_correctness_any,
)

__all__ = [
    "COT_LETTER",
    "COT_MATH",
    "COT_SHORT",
    "OPTION_LETTER",
    "SHORT_ANSWER",
    "benchmark_prompt",
    "cer_counts",
    "item_kind",
    "score_reply",
]


def item_kind(item: EvalItem) -> str:
    """How an item is answered and scored: chartqa, docvqa, choice, ocrbench, mathvista or ocr-cer."""
    task = item.task.lower()
    if task in ("chartqa", "docvqa", "ocrbench", "mathvista", "ocr-cer"):
        return task
    if task == "ai2d" or item.options:
        return "choice"
    return "docvqa"


# ----------------------------------------------------------------------------------------------- prompts
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: The short-answer suffix of LLaVA / lmms-eval's ChartQA and DocVQA tasks.
SHORT_ANSWER = "Answer the question using a single word or phrase."
#: The option-letter suffix of LLaVA / lmms-eval's AI2D task.
OPTION_LETTER = "Answer with the option's letter from the given choices directly."
COT_SHORT = (
    'Think step by step, then give the final answer on the last line as "Answer: <a single word or phrase>".'
)
COT_LETTER = (
    'Think step by step, then give the final answer on the last line as "Answer: <the option\'s letter>".'
)
COT_MATH = 'Think step by step, then give the final answer on the last line as "Answer: <answer>".'


def benchmark_prompt(item: EvalItem, *, cot: bool = True) -> str:
    """The text benchmark mode sends with the item's image (the module docstring says which and why)."""
    kind = item_kind(item)
    question = item.question.strip()
    if kind == "ocrbench":
        return question  # lmms-eval's ocrbench_doc_to_text: the item's own question
    if kind == "mathvista":
        return f"{item.question}\n{COT_MATH}" if cot else item.question  # the dataset's own query
    if kind == "choice":
        opts = "\n".join(f"{_LETTERS[i]}. {o}" for i, o in enumerate(item.options or []))
        return f"{question}\n{opts}\n{COT_LETTER if cot else OPTION_LETTER}"
    return f"{question}\n{COT_SHORT if cot else SHORT_ANSWER}"


def score_reply(
    item: EvalItem,
    text: str,
    *,
    prompt_mode: PromptMode = "benchmark",
    cot: bool = True,
    chartqa_lenient: bool = False,
    mathvista_fallback: Literal["answer_line", "none"] = "answer_line",
) -> tuple[float, str, dict[str, Any]]:
    """``(score in [0, 1], the prediction scored, detail)`` of one reply, by the benchmark's reference rule.

    ``text`` is the raw reply in benchmark mode (a chain-of-thought reply is cut to its final ``Answer:``
    with :func:`~minimaxvl_tools.eval.metrics.final_answer` first, except OCRBench, which is not CoT, and
    MathVista, whose own extraction reads the whole reply) and the tool's answer in tools mode. The runner
    and :func:`rescore` both call it.
    """
    kind = item_kind(item)
    cut = prompt_mode == "benchmark" and cot and kind not in ("ocrbench", "mathvista")
    answer = final_answer(text) if cut else text
    detail: dict[str, Any] = {}
    if kind == "chartqa":
        score = float(relaxed_correctness_any(item.answers, answer))
        if chartqa_lenient:
            detail["lenient"] = float(relaxed_correctness_any(item.answers, answer, lenient=True))
        return score, answer, detail
    if kind == "docvqa":
        return anls_score(answer, item.answers), answer, detail
    if kind == "choice":
        letter = parse_choice(answer, item.options or [])
        detail["choice"] = True
        return float(letter is not None and letter == item.answers[0].strip().upper()), letter or "", detail
    if kind == "ocrbench":
        hit = ocrbench_match(
            text, item.answers, category=item.meta.get("category"), dataset_name=item.meta.get("dataset_name")
        )
        return float(hit), text, detail
    if kind == "mathvista":
        m = item.meta
        qtype = str(m.get("question_type", "free_form"))
        atype = str(m.get("answer_type", "text"))
        extraction = mathvista_extract(
            text.strip(),
            question_type=qtype,
            answer_type=atype,
            choices=item.options,
            llm_fallback=mathvista_fallback,
        )
        prediction = mathvista_normalize(extraction, item.options, qtype, atype, m.get("precision"))
        ok = mathvista_correct(
            text,
            item.answers[0],
            question_type=qtype,
            answer_type=atype,
            choices=item.options,
            precision=m.get("precision"),
            llm_fallback=mathvista_fallback,
        )
        detail["extraction"] = extraction
        return float(ok), "" if prediction is None else str(prediction), detail
    raise InvalidInputError(f"no scorer for {kind!r}")  # pragma: no cover - ocr-cer is scored apart


# ----------------------------------------------------------------------------------------------- scoring
def cer_counts(
    reference: str, hypothesis: str, *, case_fold: bool = False, collapse_whitespace: bool = True
) -> dict[str, int]:
    """Character and word edit counts of one page: ``{"edits", "chars", "word_edits", "words"}``.

    The same normalization as :func:`~minimaxvl_tools.eval.metrics.corpus_cer` (``case_fold``,
    ``collapse_whitespace``), kept per page so a resumed run can sum them into the corpus rates.
    """
    ref, hyp = reference, hypothesis
    if case_fold:
        ref, hyp = ref.casefold(), hyp.casefold()
    if collapse_whitespace:
        ref, hyp = " ".join(ref.split()), " ".join(hyp.split())
    return {
        "edits": edit_distance(ref, hyp),
        "chars": len(ref),
        "word_edits": edit_distance(ref.split(), hyp.split()),
        "words": len(ref.split()),
    }
