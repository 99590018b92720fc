"""What a run writes and hands back: per-item records, the results file, per-task summaries, rescore.

A results file is JSONL, one :class:`ItemRecord` a line; :func:`read_records` reads it back (a torn last
line is skipped), :func:`summarize` turns records into one :class:`EvalSummary` per task and split, and
:func:`rescore` scores a file's saved replies again with today's scorers, sending nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from ..errors import InvalidInputError
from .config import TASK_UNITS, EvalConfig
from .datasets import EvalItem
from .report import ReportRow, format_run_report
from .scoring import score_reply

if TYPE_CHECKING:
    from ..client import Usage

__all__ = [
    "EvalResult",
    "EvalSummary",
    "ItemRecord",
    "TokenCounts",
    "read_records",
    "report_rows",
    "rescore",
    "summarize",
]


class TokenCounts(BaseModel):
    """Tokens and requests one item (or a whole run) cost, as the server reported them."""

    prompt: int = 0
    completion: int = 0
    image: int = 0
    requests: int = 0

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(**{k: getattr(self, k) + getattr(other, k) for k in _USAGE_FIELDS})

    @classmethod
    def from_usage(cls, usage: Usage) -> TokenCounts:
        """The counts of a client :class:`~minimaxvl_tools.client.Usage`."""
        return cls(**{k: getattr(usage, name) for k, name in _USAGE_FIELDS.items()})


#: Each :class:`TokenCounts` field and the :class:`~minimaxvl_tools.client.Usage` field it counts.
_USAGE_FIELDS = {
    "prompt": "prompt_tokens",
    "completion": "completion_tokens",
    "image": "image_tokens",
    "requests": "requests",
}


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


def rescored(rec: ItemRecord, item: EvalItem | None, scoring: dict[str, Any]) -> ItemRecord:
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
    records = [rescored(r, None, scoring) for r in latest.values()]
    if out is not None:
        o = Path(out)
        o.parent.mkdir(parents=True, exist_ok=True)
        o.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")
    return EvalResult(
        records=records, summaries=summarize(records), config=None, out=Path(out) if out else None
    )
