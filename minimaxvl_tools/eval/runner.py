"""Run a benchmark against MiniMax-VL-01 and score it with the reference scorers: the evaluation harness.

Two protocols (``EvalConfig.prompt_mode``, part of the run's configuration hash):

- ``benchmark`` (default): each item is sent as the benchmark's own prompt, one image and one user turn,
  greedy (temperature 0). ChartQA, DocVQA, AI2D and MathVista, which the MiniMax-01 report scores 0-shot
  chain-of-thought, get the question (AI2D: with lettered options; MathVista: the dataset's ``query``)
  plus an instruction to reason and end with ``Answer: ...`` (``cot=False``: the standard short-answer or
  option-letter suffix instead); OCRBench sends each item's own question unchanged.
  :func:`benchmark_prompt` builds them.
- ``tools``: each item goes through the package's LangChain tool, invoked as a tool call, and the
  prediction is read from the tool's artifact (ChartReaderTool, DocumentVQATool short answer,
  DiagramReasoningTool, OCRTool / DocumentVQATool for OCRBench). This measures what agents get.

:func:`score_reply` turns a reply into the item's score, the same function for a live run and for
:func:`rescore` (``minimaxvl eval rescore OUT.jsonl``): ChartQA pix2struct relaxed correctness, DocVQA ANLS,
AI2D VLMEvalKit's rule-based choice extraction, OCRBench's substring rule, MathVista's extraction and
normalization (see :mod:`minimaxvl_tools.eval.metrics`). ``ocr-cer`` (PDF text layer vs OCRTool or
Tesseract) is this package's own task and is unaffected by the prompt mode.

Mechanics: items run concurrently (at most ``concurrency`` at once). Every finished item is appended to a
JSONL file as one :class:`ItemRecord` (raw reply, prompt, prompt mode, split, data file and its hash) and
flushed, so an interrupted run loses nothing; a rerun skips the items already recorded under the same
configuration hash, split, data file and data-file SHA-256, so another split's or file's records are never
reused. A failed item is recorded with its error and score 0 and never stops the run. Token counts per item
are collected by hooking the client's usage accounting in a :mod:`contextvars` scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import ToolMessage
from pydantic import BaseModel, Field

from ..client import MiniMaxVLClient, Usage
from ..errors import InvalidInputError
from ..local_ocr import LocalOCREngine
from ..pdf import iter_pdf_pages
from ..settings import Settings
from ..tools import ChartReaderTool, DiagramReasoningTool, DocumentVQATool, OCRTool
from ..tools.base import MiniMaxVLBaseTool
from .datasets import EvalItem, file_sha256, load_benchmark, sample
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
from .report import ReportRow, format_run_report

__all__ = [
    "OCRBENCH_OCR_CATEGORIES",
    "TASKS",
    "TASK_UNITS",
    "EvalConfig",
    "EvalResult",
    "EvalRunner",
    "EvalSummary",
    "ItemRecord",
    "TokenCounts",
    "benchmark_prompt",
    "cer_counts",
    "load_ocr_cer",
    "load_task",
    "read_records",
    "report_rows",
    "rescore",
    "run_eval",
    "score_reply",
    "summarize",
]

#: Task names the runner and the CLI accept.
TASKS: tuple[str, ...] = ("chartqa", "docvqa", "ai2d", "ocrbench", "mathvista", "ocr-cer", "jsonl")

#: The unit each task's :attr:`EvalSummary.score` is in (the published benchmark's unit).
TASK_UNITS: dict[str, str] = {
    "chartqa": "relaxed accuracy, %",
    "docvqa": "ANLS, %",
    "ai2d": "accuracy, %",
    "ocrbench": "points / 1000",
    "mathvista": "accuracy, %",
    "ocr-cer": "CER, % of reference characters (lower is better)",
    "choice": "accuracy, %",
}

#: OCRBench categories that only ask to read the text: answered by OCRTool's transcription (plain text).
OCRBENCH_OCR_CATEGORIES: frozenset[str] = frozenset(
    {
        "Regular Text Recognition",
        "Irregular Text Recognition",
        "Artistic Text Recognition",
        "Handwriting Recognition",
        "Digit String Recognition",
        "Non-Semantic Text Recognition",
    }
)

Engine = Literal["vlm", "local"]
PromptMode = Literal["benchmark", "tools"]


# ----------------------------------------------------------------------------------------------- records
class TokenCounts(BaseModel):
    """Tokens and requests one item (or a whole run) cost, as the server reported them."""

    prompt: int = 0
    completion: int = 0
    image: int = 0
    requests: int = 0

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            prompt=self.prompt + other.prompt,
            completion=self.completion + other.completion,
            image=self.image + other.image,
            requests=self.requests + other.requests,
        )

    @classmethod
    def from_usage(cls, usage: Usage) -> TokenCounts:
        """The counts of a client :class:`~minimaxvl_tools.client.Usage`."""
        return cls(
            prompt=usage.prompt_tokens,
            completion=usage.completion_tokens,
            image=usage.image_tokens,
            requests=usage.requests,
        )


class ItemRecord(BaseModel):
    """One scored item, as written (one JSON line) to the results file.

    ``score`` is the item's score in [0, 1] (for ``ocr-cer``: the page's CER, which may exceed 1);
    ``prediction`` is what the scorer compared (the extracted answer); ``raw`` is the model's reply as
    received (tools mode: the tool's message) and ``prompt`` the text sent (benchmark mode), so a file can
    be re-scored; ``detail`` holds what aggregates need (CER/WER edit counts, ChartQA lenient score);
    ``config`` is the :meth:`EvalConfig.config_hash` it was run under, and ``split``, ``data_file``,
    ``data_sha256`` say which dataset file it came from (all four key the resume).
    """

    id: str
    task: str
    prediction: str | None = None
    gold: list[str] = Field(default_factory=list)
    score: float = 0.0
    tokens: TokenCounts = Field(default_factory=TokenCounts)
    latency_s: float = 0.0
    error: str | None = None
    config: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)
    detail: dict[str, Any] = Field(default_factory=dict)
    raw: str | None = None
    prompt: str | None = None
    prompt_mode: str = ""
    cot: bool = False
    split: str = ""
    data_file: str = ""
    data_sha256: str = ""
    options: list[str] | None = None

    def resume_key(self) -> tuple[str, str, str, str]:
        """What must match for this record to stand in for an item of a new run."""
        return (self.config, self.split, self.data_file, self.data_sha256)


class EvalSummary(BaseModel):
    """One task's result: ``score`` in the benchmark's ``unit``, item and error counts, cost and time.

    ``seconds`` is the wall time of this run (items resumed from the file cost none); ``resumed`` counts
    the items taken from an earlier run; ``extra`` holds secondary numbers (OCRBench per category, CER/WER
    rates and edit counts for ``ocr-cer``).
    """

    task: str
    n: int
    score: float
    unit: str
    split: str = ""
    errors: int = 0
    tokens: TokenCounts = Field(default_factory=TokenCounts)
    seconds: float = 0.0
    resumed: int = 0
    extra: dict[str, Any] = Field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class EvalConfig:
    """What decides a run's predictions; its hash tags every record so resume never mixes two setups.

    ``engine`` and ``lang``/``psm`` matter for ``ocr-cer`` only; ``dpi`` is the PDF render resolution (the
    tools' ``dpi``); ``tile`` is OCRTool's cropping mode; ``case_fold``/``collapse_whitespace`` are the CER
    normalization (default: whitespace runs collapsed, since line breaks and blank lines differ between a
    text layer and any OCR without being recognition errors); ``ocrbench_ocr_tool=False`` sends every
    OCRBench item to DocumentVQATool (tools mode). ``max_tokens`` (None: each tool's or the client's
    default) is the completion budget. ``prompt_mode`` picks the protocol (module docstring); ``cot`` the
    0-shot chain-of-thought prompts of benchmark mode; ``chartqa_lenient`` adds the (non-reference)
    lenient ChartQA score as an extra report row; ``mathvista_fallback`` is what stands in for
    MathVista's GPT extraction step (:func:`~minimaxvl_tools.eval.metrics.mathvista_extract`).
    """

    task: str
    model: str = ""
    engine: Engine = "vlm"
    dpi: int = 200
    tile: Literal["auto"] | bool = "auto"
    lang: str = "eng"
    psm: int = 3
    case_fold: bool = False
    collapse_whitespace: bool = True
    ocrbench_ocr_tool: bool = True
    max_tokens: int | None = None
    prompt_mode: PromptMode = "benchmark"
    cot: bool = True
    chartqa_lenient: bool = False
    mathvista_fallback: Literal["answer_line", "none"] = "answer_line"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InvalidInputError(f"unknown eval task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.engine not in ("vlm", "local"):
            raise InvalidInputError(f"engine must be 'vlm' or 'local', got {self.engine!r}")
        if self.engine == "local" and self.task != "ocr-cer":
            raise InvalidInputError("engine='local' (Tesseract) only applies to the ocr-cer task")
        if not 50 <= self.dpi <= 600:
            raise InvalidInputError(f"dpi must be in 50..600, got {self.dpi}")
        if self.prompt_mode not in ("benchmark", "tools"):
            raise InvalidInputError(f"prompt_mode must be 'benchmark' or 'tools', got {self.prompt_mode!r}")
        if self.mathvista_fallback not in ("answer_line", "none"):
            raise InvalidInputError(
                f"mathvista_fallback must be 'answer_line' or 'none', got {self.mathvista_fallback!r}"
            )

    def as_dict(self) -> dict[str, Any]:
        """The fields that matter for this task (irrelevant ones are dropped so they do not split hashes)."""
        data = asdict(self)
        drop: set[str] = set()
        if self.task != "ocr-cer":
            drop |= {"engine", "lang", "psm", "case_fold", "collapse_whitespace"}
        if self.task not in ("ocrbench", "jsonl"):
            drop.add("ocrbench_ocr_tool")
        if self.task not in ("ocr-cer", "ocrbench", "jsonl"):
            drop.add("tile")  # only OCRTool crops pages
        if self.engine == "local":
            drop |= {"model", "tile", "max_tokens"}
        else:
            drop |= {"lang", "psm"}
        if self.task == "ocr-cer":
            drop |= {"prompt_mode", "cot"}
        elif self.prompt_mode == "benchmark":
            drop |= {"ocrbench_ocr_tool", "tile"}
        else:
            drop.add("cot")
        # scoring options: records are re-scored on resume, so they never split the hash
        drop |= {"chartqa_lenient", "mathvista_fallback"}
        for key in drop:
            data.pop(key, None)
        return data

    def config_hash(self) -> str:
        """A short, stable hash of :meth:`as_dict` (12 hex digits)."""
        blob = json.dumps(self.as_dict(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------------------------- items
def load_ocr_cer(path: str | Path, *, limit: int | None = None) -> list[EvalItem]:
    """One ``ocr-cer`` item per page of a born-digital PDF (or of every ``*.pdf`` in a folder).

    The page's text layer is the gold transcription, so any born-digital PDF is a free OCR test set. Pages
    without a text layer (scans, figures) have no ground truth and are skipped. Ids are ``<file>#p<n>``.
    """
    p = Path(path)
    if p.is_dir():
        pdfs = sorted(p.rglob("*.pdf"))
        root = p
    elif p.is_file():
        pdfs, root = [p], p.parent
    else:
        raise InvalidInputError(f"ocr-cer: {p} does not exist; pass a born-digital PDF or a folder of them")
    items: list[EvalItem] = []
    for pdf in pdfs:
        rel = pdf.relative_to(root).as_posix()
        digest = file_sha256([pdf])
        for page in iter_pdf_pages(pdf, render=False, policy=_policy_for([pdf.parent])):
            if not page.has_text_layer:
                continue
            items.append(
                EvalItem(
                    id=f"{rel}#p{page.number}",
                    task="ocr-cer",
                    question="",
                    answers=[page.text],
                    image_path=pdf,
                    page=page.number,
                    meta={"pdf": rel, "page": page.number},
                    source=str(pdf.resolve()),
                    source_sha256=digest,
                )
            )
            if limit is not None and len(items) >= limit:
                return items
    if not items:
        raise InvalidInputError(
            f"ocr-cer: no page of {p} has a text layer; the task needs born-digital PDFs (text is the gold)"
        )
    return items


def load_task(
    task: str,
    path: str | Path,
    *,
    limit: int | None = None,
    sample_n: int | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> list[EvalItem]:
    """Items of ``task`` from a local copy of its dataset (``ocr-cer``: a PDF or folder of PDFs)."""
    if task == "ocr-cer":
        items = load_ocr_cer(path, limit=limit)
        return sample(items, sample_n, seed) if sample_n is not None else items
    if task not in TASKS:
        raise InvalidInputError(f"unknown eval task {task!r}; choose one of {', '.join(TASKS)}")
    return load_benchmark(task, path, limit=limit, sample_n=sample_n, seed=seed, **kwargs)


def _policy_for(roots: Sequence[Path]) -> Any:
    from ..images.policy import InputPolicy

    return InputPolicy(allowed_roots=[r.resolve() for r in roots])


def _item_kind(item: EvalItem) -> str:
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
    kind = _item_kind(item)
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
    kind = _item_kind(item)
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


# ----------------------------------------------------------------------------------------------- usage
_ITEM_USAGE: contextvars.ContextVar[list[Usage] | None] = contextvars.ContextVar(
    "minimaxvl_eval_item_usage", default=None
)
_TOOL_RAW: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "minimaxvl_eval_tool_raw", default=None
)


def _hook_usage(client: MiniMaxVLClient) -> None:
    """Make ``client`` also add each request's usage to the current item's accumulator (if any).

    The client keeps one cumulative :class:`Usage`; with items running concurrently a before/after
    difference would mix items. The item's task sets a context variable holding a list; requests made in
    that task (and threads started from it) see the list and append to it. Idempotent per client.
    """
    if getattr(client, "_eval_usage_hooked", False):
        return
    original: Callable[[Usage], None] = client._record

    def record(usage: Usage) -> None:
        original(usage)
        acc = _ITEM_USAGE.get()
        if acc is not None:
            acc.append(usage)

    client._record = record  # type: ignore[method-assign]
    client._eval_usage_hooked = True  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------------------------- results file
def read_records(path: str | Path) -> Iterator[ItemRecord]:
    """Every well-formed record of a results file, in file order (a torn last line is skipped)."""
    p = Path(path)
    if not p.is_file():
        return
    with p.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                yield ItemRecord.model_validate_json(line)
            except ValueError:
                continue  # a line cut by a crash mid-write: that item simply runs again


# ----------------------------------------------------------------------------------------------- summary
def summarize(records: Sequence[ItemRecord], *, seconds: float = 0.0) -> list[EvalSummary]:
    """One :class:`EvalSummary` per task found in ``records`` (in first-seen order).

    Percent tasks: 100 x the mean item score. OCRBench: 1000 x the share of items matched (points out of
    1000, exact on the full benchmark, a projection on a subset), with per-category counts in ``extra``.
    ``ocr-cer``: the corpus CER (all character edits / all reference characters) in percent, with the
    rates, edit counts and WER in ``extra``. Errors count as score 0 (CER: an empty transcription).
    """
    by_task: dict[tuple[str, str], list[ItemRecord]] = {}
    for r in records:
        by_task.setdefault((r.task, r.split), []).append(r)
    out: list[EvalSummary] = []
    for (task, split), recs in by_task.items():
        n = len(recs)
        errors = sum(1 for r in recs if r.error)
        tokens = sum((r.tokens for r in recs), TokenCounts())
        extra: dict[str, Any] = {}
        if task == "ocr-cer":
            edits = sum(int(r.detail.get("edits", 0)) for r in recs)
            chars = sum(int(r.detail.get("chars", 0)) for r in recs)
            w_edits = sum(int(r.detail.get("word_edits", 0)) for r in recs)
            words = sum(int(r.detail.get("words", 0)) for r in recs)
            cer = edits / chars if chars else 0.0
            extra = {
                "cer": cer,
                "wer": w_edits / words if words else 0.0,
                "edits": edits,
                "chars": chars,
                "word_edits": w_edits,
                "words": words,
            }
            score, unit = 100.0 * cer, TASK_UNITS["ocr-cer"]
        elif task == "ocrbench":
            per_cat: dict[str, int] = {}
            per_cat_n: dict[str, int] = {}
            for r in recs:
                cat = str(r.meta.get("category", "?"))
                per_cat[cat] = per_cat.get(cat, 0) + int(r.score >= 1.0)
                per_cat_n[cat] = per_cat_n.get(cat, 0) + 1
            total = sum(per_cat.values())
            extra = {"total": total, "per_category": per_cat, "per_category_n": per_cat_n}
            score, unit = 1000.0 * total / n, TASK_UNITS["ocrbench"]
        else:
            score = 100.0 * sum(r.score for r in recs) / n
            choice = any(r.detail.get("choice") for r in recs)
            unit = TASK_UNITS.get(task, "accuracy, %" if choice else "ANLS, %")
            if task == "chartqa":
                subsets: dict[str, list[float]] = {}
                for r in recs:
                    subsets.setdefault(str(r.meta.get("subset", "?")), []).append(r.score)
                extra["subsets"] = {
                    k: {"n": len(v), "score": 100.0 * sum(v) / len(v)} for k, v in subsets.items()
                }
                if all("lenient" in r.detail or r.error for r in recs) and any(
                    "lenient" in r.detail for r in recs
                ):
                    extra["lenient"] = 100.0 * sum(float(r.detail.get("lenient", 0.0)) for r in recs) / n
        out.append(
            EvalSummary(
                task=task,
                n=n,
                score=score,
                unit=unit,
                split=split,
                errors=errors,
                tokens=tokens,
                seconds=seconds,
                extra=extra,
            )
        )
    return out


@dataclass
class EvalResult:
    """What a run hands back: the records of the requested items and one summary per task."""

    records: list[ItemRecord]
    summaries: list[EvalSummary]
    config: EvalConfig | None
    out: Path | None = None
    ran: int = 0
    resumed: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> EvalSummary:
        """The single summary of a one-task run (the first one otherwise)."""
        return self.summaries[0]

    def report(self) -> str:
        """The markdown report: per benchmark n, score, 95% Wilson interval, published number and diff.

        ChartQA shows all items, then human and augmented apart (and the lenient variant when asked for);
        DocVQA is labelled with its split, since the published 96.4 is a test-server number; ``ocr-cer`` has
        no published counterpart (its row is the CER in percent, without an interval).
        """
        return format_run_report(report_rows(self.summaries))


_PUBLISHED_NAME = {
    "chartqa": "ChartQA",
    "docvqa": "DocVQA",
    "ai2d": "AI2D",
    "ocrbench": "OCRBench",
    "mathvista": "MathVista",
}


def report_rows(summaries: Sequence[EvalSummary]) -> list[ReportRow]:
    """The :class:`~minimaxvl_tools.eval.report.ReportRow` lines of :meth:`EvalResult.report`."""
    rows: list[ReportRow] = []
    for s in summaries:
        name = _PUBLISHED_NAME.get(s.task)
        if s.task == "ocr-cer":
            rows.append(ReportRow("OCR CER %", s.n, s.score, interval=False))
            continue
        if s.task == "ocrbench":
            rows.append(ReportRow("OCRBench", s.n, s.score, scale=1000.0, published="OCRBench", note=s.split))
            continue
        note = s.split
        if s.task == "docvqa":
            note = f"{s.split or '?'} split; published: test server"
        rows.append(ReportRow(name or s.task, s.n, s.score, published=name, note=note))
        if s.task == "chartqa":
            for subset in ("human", "augmented"):
                sub = s.extra.get("subsets", {}).get(subset)
                if sub:
                    rows.append(ReportRow(f"ChartQA {subset}", sub["n"], sub["score"], note=s.split))
            if "lenient" in s.extra:
                rows.append(ReportRow("ChartQA lenient", s.n, s.extra["lenient"], note="not pix2struct"))
    return rows


def _item_from_record(rec: ItemRecord) -> EvalItem:
    """The scoring view of a saved record (gold, options, meta), for :func:`score_reply`."""
    return EvalItem(
        id=rec.id,
        task=rec.task,
        question=rec.prompt or "",
        answers=list(rec.gold),
        options=rec.options,
        image_path=Path(rec.data_file or "."),
        meta=dict(rec.meta),
    )


def _rescored(rec: ItemRecord, item: EvalItem | None, scoring: dict[str, Any]) -> ItemRecord:
    """``rec`` scored again from its saved reply (benchmark mode: ``raw``; tools mode: the tool's answer)."""
    if rec.error is not None or rec.task == "ocr-cer":
        return rec
    text = rec.raw if rec.prompt_mode == "benchmark" else rec.detail.get("tool_answer", rec.prediction)
    if text is None:
        return rec
    opts = {**scoring, "prompt_mode": rec.prompt_mode or "tools", "cot": rec.cot}
    score, prediction, more = score_reply(item or _item_from_record(rec), str(text), **opts)
    detail = {k: v for k, v in rec.detail.items() if k not in ("lenient", "extraction")}
    return rec.model_copy(update={"score": score, "prediction": prediction, "detail": {**detail, **more}})


def rescore(
    path: str | Path,
    *,
    out: str | Path | None = None,
    chartqa_lenient: bool = False,
    mathvista_fallback: Literal["answer_line", "none"] = "answer_line",
) -> EvalResult:
    """Re-score a results file's saved replies with the current scorers (``minimaxvl eval rescore``).

    The last record per (id, configuration, split, data file, hash) is kept; ``out`` (optional) receives the
    re-scored records. Nothing is sent to a server.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(
            f"rescore: {p} does not exist; pass a results JSONL written by minimaxvl eval"
        )
    latest: dict[tuple[str, tuple[str, str, str, str]], ItemRecord] = {}
    for rec in read_records(p):
        latest[(rec.id, rec.resume_key())] = rec
    if not latest:
        raise InvalidInputError(f"rescore: {p} holds no records")
    scoring = {"chartqa_lenient": chartqa_lenient, "mathvista_fallback": mathvista_fallback}
    records = [_rescored(r, None, scoring) for r in latest.values()]
    if out is not None:
        o = Path(out)
        o.parent.mkdir(parents=True, exist_ok=True)
        o.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")
    return EvalResult(
        records=records, summaries=summarize(records), config=None, out=Path(out) if out else None
    )


# ----------------------------------------------------------------------------------------------- runner
class EvalRunner:
    """Runs items of one task through the tools, concurrently, appending a record per item to ``out``.

    Args:
        config: what to run (task, engine, dpi, ...); see :class:`EvalConfig`.
        client: the MiniMax-VL-01 client (built from ``settings``/``MINIMAXVL_*`` when None; unused by the
            ``local`` engine).
        out: results JSONL file (appended to; None keeps records in memory only).
        concurrency: items in flight at once (default: the client's ``max_concurrency``; for the local
            engine, the CPU count).
        resume: skip items whose id is already in ``out`` with the same config hash.
        retry_errors: on resume, run again the items whose earlier record is an error.
        local_engine: the Tesseract engine for ``engine="local"`` (default ``LocalOCREngine(lang, psm)``).
    """

    def __init__(
        self,
        config: EvalConfig,
        *,
        client: MiniMaxVLClient | None = None,
        settings: Settings | None = None,
        out: str | Path | None = None,
        concurrency: int | None = None,
        resume: bool = True,
        retry_errors: bool = True,
        local_engine: LocalOCREngine | None = None,
    ) -> None:
        self.config = config
        self._client = client
        self._settings = settings
        self.out = Path(out) if out is not None else None
        if concurrency is not None and concurrency < 1:
            raise InvalidInputError(f"concurrency must be >= 1, got {concurrency}")
        self._concurrency = concurrency
        self.resume = resume
        self.retry_errors = retry_errors
        self._local = local_engine
        self._tools: dict[str, MiniMaxVLBaseTool] = {}

    # ------------------------------------------------------------------ plumbing
    @property
    def client(self) -> MiniMaxVLClient:
        """The client (built on first use, so the local engine never needs an endpoint)."""
        if self._client is None:
            self._client = MiniMaxVLClient(self._settings or Settings.from_env())
        return self._client

    @property
    def concurrency(self) -> int:
        """Items in flight at once."""
        if self._concurrency is not None:
            return self._concurrency
        if self.config.engine == "local":
            return max(1, os.cpu_count() or 1)
        return self.client.settings.max_concurrency

    def _tool(self, name: str, roots: list[Path]) -> MiniMaxVLBaseTool:
        """The tool ``name``: built once per run, over the shared client, the dataset as allowed root."""
        tool = self._tools.get(name)
        if tool is not None:
            return tool
        common: dict[str, Any] = {"client": self.client, "allowed_roots": roots, "dpi": self.config.dpi}
        mt = {"max_tokens": self.config.max_tokens} if self.config.max_tokens is not None else {}
        if name == "chart":
            tool = ChartReaderTool(**common, **mt)
        elif name == "docvqa":
            tool = DocumentVQATool(**common, **mt)
        elif name == "diagram":
            tool = DiagramReasoningTool(**common, **mt)
        elif name == "ocr":
            tool = OCRTool(**common, **mt, tile=self.config.tile)
        else:  # pragma: no cover - internal names only
            raise InvalidInputError(f"unknown tool {name!r}")
        self._tools[name] = tool
        return tool

    @staticmethod
    async def _call(tool: MiniMaxVLBaseTool, args: dict[str, Any]) -> Any:
        """Invoke ``tool`` exactly as an agent does (a tool call) and return its artifact.

        A failure the tool reports (``ToolMessage.status == "error"``) is raised as ``RuntimeError`` with
        the tool's message, which is what gets recorded.
        """
        call = {"type": "tool_call", "id": "eval", "name": tool.name, "args": args}
        msg = await tool.ainvoke(call)
        if not isinstance(msg, ToolMessage):  # pragma: no cover - tool-call input always gives a message
            raise RuntimeError(f"{tool.name} returned {type(msg).__name__}, not a ToolMessage")
        raw = _TOOL_RAW.get()
        if raw is not None:
            raw.append(str(msg.content))
        if msg.status == "error" or msg.artifact is None:
            raise RuntimeError(str(msg.content))
        return msg.artifact

    async def _ask(self, item: EvalItem, prompt: str, roots: list[Path]) -> str:
        """Benchmark mode: one user turn (the prompt and the item's image), greedy; the reply's text."""
        if item.image_path.suffix.lower() == ".pdf":
            page_no = item.page or 1

            def render() -> Any:
                pages = iter_pdf_pages(
                    item.image_path, pages=[page_no], dpi=self.config.dpi, policy=_policy_for(roots)
                )
                return next(iter(pages)).image

            image: Any = await asyncio.to_thread(render)
        else:
            image = await asyncio.to_thread(item.image_path.read_bytes)
        result = await self.client.achat(
            prompt, images=[image], max_tokens=self.config.max_tokens, temperature=0.0
        )
        return result.text

    async def _predict(self, item: EvalItem, roots: list[Path]) -> tuple[str, dict[str, Any]]:
        """The prediction for one item, and detail worth keeping."""
        kind = _item_kind(item)
        src = str(item.image_path)
        if kind == "chartqa":
            args: dict[str, Any] = {"source": src, "question": item.question}
            if item.page:
                args["pages"] = str(item.page)
            chart = await self._call(self._tool("chart", roots), args)
            return chart.answer or "", {}
        if kind == "choice" or (kind == "mathvista" and item.options):
            ans = await self._call(
                self._tool("diagram", roots),
                {"source": src, "question": item.question, "options": item.options},
            )
            return ans.option or "", {"choice": True, "answer_text": ans.answer}
        if kind == "ocrbench" and self._ocrbench_ocr(item):
            res = await self._call(self._tool("ocr", roots), {"source": src, "plain": True})
            return res.to_text(), {"tool": "ocr_transcribe"}
        if kind == "ocr-cer":
            return await self._transcribe_page(item, roots), {}
        args = {"question": item.question, "source": src, "short_answer": True}
        if item.page:
            args["pages"] = str(item.page)
        doc = await self._call(self._tool("docvqa", roots), args)
        return doc.short_answer or doc.answer or "", {"tool": "document_qa"}

    def _ocrbench_ocr(self, item: EvalItem) -> bool:
        """Whether an OCRBench item goes to OCRTool (pure recognition) rather than DocumentVQATool."""
        return self.config.ocrbench_ocr_tool and item.meta.get("category") in OCRBENCH_OCR_CATEGORIES

    async def _transcribe_page(self, item: EvalItem, roots: list[Path]) -> str:
        """The text of one PDF page: OCRTool (plain, that page only) or Tesseract on the same rendering."""
        page_no = item.page or 1
        if self.config.engine == "vlm":
            res = await self._call(
                self._tool("ocr", roots),
                {"source": str(item.image_path), "pages": str(page_no), "plain": True},
            )
            return res.to_text()
        engine = self._local or LocalOCREngine(lang=self.config.lang, psm=self.config.psm)
        self._local = engine

        def read() -> str:
            pages = iter_pdf_pages(
                item.image_path, pages=[page_no], dpi=self.config.dpi, policy=_policy_for(roots)
            )
            page = next(iter(pages))
            assert page.image is not None
            return engine.ocr(page.image).text

        return await asyncio.to_thread(read)

    async def _one(self, item: EvalItem, roots: list[Path], config_hash: str) -> ItemRecord:
        """Run and score one item; any exception becomes the record's ``error`` (score 0)."""
        acc: list[Usage] = []
        raws: list[str] = []
        token = _ITEM_USAGE.set(acc)
        raw_token = _TOOL_RAW.set(raws)
        start = time.perf_counter()
        kind = _item_kind(item)
        benchmark = self.config.prompt_mode == "benchmark" and kind != "ocr-cer"
        prompt = benchmark_prompt(item, cot=self.config.cot) if benchmark else None
        text: str | None = None
        raw: str | None = None
        detail: dict[str, Any] = {}
        error: str | None = None
        try:
            if prompt is not None:
                text = raw = await self._ask(item, prompt, roots)
            else:
                text, detail = await self._predict(item, roots)
                detail["tool_answer"] = text
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure is data for the report, never a crash
            error = str(exc) if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}"
        finally:
            _ITEM_USAGE.reset(token)
            _TOOL_RAW.reset(raw_token)
        if raw is None and raws:
            raw = "\n".join(raws)
        latency = time.perf_counter() - start
        usage = sum(acc, Usage())
        prediction: str | None = text
        if kind == "ocr-cer":
            counts = cer_counts(
                item.answers[0],
                text if error is None and text is not None else "",
                case_fold=self.config.case_fold,
                collapse_whitespace=self.config.collapse_whitespace,
            )
            detail = {**detail, **counts}
            score = counts["edits"] / counts["chars"] if counts["chars"] else 0.0
        elif error is None and text is not None:
            score, prediction, more = score_reply(item, text, **self._scoring())
            detail = {**detail, **more}
        else:
            score = 0.0
        return ItemRecord(
            id=item.id,
            task=item.task,
            prediction=prediction,
            gold=list(item.answers),
            score=score,
            tokens=TokenCounts.from_usage(usage),
            latency_s=round(latency, 4),
            error=error,
            config=config_hash,
            meta=dict(item.meta),
            detail=detail,
            raw=raw,
            prompt=prompt,
            prompt_mode="tools"
            if kind != "ocr-cer" and not benchmark
            else ("benchmark" if benchmark else ""),
            cot=bool(benchmark and self.config.cot),
            split=item.split,
            data_file=item.source,
            data_sha256=item.source_sha256,
            options=item.options,
        )

    def _scoring(self) -> dict[str, Any]:
        """The scoring options of this run, as :func:`score_reply` keywords."""
        return {
            "prompt_mode": self.config.prompt_mode,
            "cot": self.config.cot,
            "chartqa_lenient": self.config.chartqa_lenient,
            "mathvista_fallback": self.config.mathvista_fallback,
        }

    def _done(self, config_hash: str, items: Sequence[EvalItem]) -> dict[str, ItemRecord]:
        """Records in ``out`` that stand in for ``items`` (last one per id), re-scored with today's scorers.

        A record counts only when its config hash, split, data file and data-file hash all match the item
        (``retry_errors`` also drops earlier errors), so another split's or file's records are never used.
        """
        done: dict[str, ItemRecord] = {}
        if not (self.resume and self.out is not None):
            return done
        wanted = {it.id: (config_hash, it.split, it.source, it.source_sha256) for it in items}
        for rec in read_records(self.out):
            if wanted.get(rec.id) == rec.resume_key():
                done[rec.id] = rec
        if self.retry_errors:
            done = {k: r for k, r in done.items() if r.error is None}
        by_id = {it.id: it for it in items}
        return {k: _rescored(r, by_id[k], self._scoring()) for k, r in done.items()}

    # ------------------------------------------------------------------ running
    async def arun(self, items: Sequence[EvalItem]) -> EvalResult:
        """Run ``items`` (skipping those already recorded), append their records, and summarize."""
        if not items:
            raise InvalidInputError("no items to evaluate (check the data path, --limit and --sample)")
        ids = [it.id for it in items]
        if len(set(ids)) != len(ids):
            raise InvalidInputError("item ids must be unique within a run (resume is keyed by id)")
        empty = [it.id for it in items if not it.answers]
        if empty:
            raise InvalidInputError(
                f"{len(empty)} item(s) have no gold answers (e.g. {empty[0]!r}): a test split without "
                "answers cannot be scored locally; use the validation split"
            )
        config_hash = self.config.config_hash()
        if self.config.engine == "vlm":
            _hook_usage(self.client)
        done = self._done(config_hash, items)
        todo = [it for it in items if it.id not in done]
        roots = _roots(items)
        gate = asyncio.Semaphore(self.concurrency)
        fresh: dict[str, ItemRecord] = {}
        start = time.perf_counter()
        with self._open_out() as fh:

            async def run_one(item: EvalItem) -> None:
                async with gate:
                    rec = await self._one(item, roots, config_hash)
                fresh[item.id] = rec
                if fh is not None:
                    fh.write(rec.model_dump_json() + "\n")
                    fh.flush()

            await asyncio.gather(*(run_one(it) for it in todo))
        seconds = time.perf_counter() - start
        records = [fresh.get(it.id) or done[it.id] for it in items]
        summaries = summarize(records, seconds=seconds)
        for s in summaries:
            s.resumed = sum(
                1 for r in records if (r.task, r.split) == (s.task, s.split) and r.id not in fresh
            )
        return EvalResult(
            records=records,
            summaries=summaries,
            config=self.config,
            out=self.out,
            ran=len(todo),
            resumed=len(items) - len(todo),
            seconds=seconds,
        )

    def run(self, items: Sequence[EvalItem]) -> EvalResult:
        """Blocking :meth:`arun` (do not call from inside a running event loop)."""
        return asyncio.run(self.arun(items))

    @contextlib.contextmanager
    def _open_out(self) -> Iterator[Any]:
        if self.out is None:
            yield None
            return
        self.out.parent.mkdir(parents=True, exist_ok=True)
        with self.out.open("a", encoding="utf-8") as fh:
            yield fh


def _roots(items: Sequence[EvalItem]) -> list[Path]:
    """The one folder holding every item's file: the tools' allowed root for this run."""
    parents = {str(it.image_path.resolve().parent) for it in items}
    return [Path(os.path.commonpath(sorted(parents)))]


def run_eval(
    task: str,
    data: str | Path,
    *,
    out: str | Path | None = None,
    limit: int | None = None,
    sample_n: int | None = None,
    seed: int = 0,
    concurrency: int | None = None,
    resume: bool = True,
    client: MiniMaxVLClient | None = None,
    settings: Settings | None = None,
    loader_kwargs: dict[str, Any] | None = None,
    **config: Any,
) -> EvalResult:
    """Load ``task`` from ``data``, run it and score it: the one-call form of :class:`EvalRunner`.

    Extra keyword arguments are :class:`EvalConfig` fields (``engine="local"``, ``dpi=150``, ...); the model
    name defaults to the client's or settings' model.
    """
    items = load_task(task, data, limit=limit, sample_n=sample_n, seed=seed, **(loader_kwargs or {}))
    if "model" not in config and config.get("engine", "vlm") == "vlm":
        config["model"] = (client.settings if client else settings or Settings.from_env()).model
    cfg = EvalConfig(task=task, **config)
    runner = EvalRunner(
        cfg, client=client, settings=settings, out=out, concurrency=concurrency, resume=resume
    )
    return runner.run(items)
