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

Mechanics: items run through the package's one in-flight window
(:func:`~minimaxvl_tools.pages.window.ain_order`): at most ``concurrency`` at once, records handed out in item
order. Each record is appended to a JSONL file as one :class:`ItemRecord` (raw reply, prompt, prompt mode,
split, data file and its hash) and flushed as it is handed out, so an interrupted run loses at most the
items in flight; a rerun skips the items already recorded under the same configuration hash, split, data
file and data-file SHA-256, so another split's or file's records are never reused. A failed item is
recorded with its error and score 0; the run goes on unless ``max_failure_rate`` (the project's
:class:`~minimaxvl_tools.pages.window.FailureRule`) says stop, which raises
:class:`~minimaxvl_tools.errors.JobAbortedError` with the records so far kept for the rerun. Token counts
per item are collected by hooking the client's usage accounting in a :mod:`contextvars` scope.

The parts: :mod:`.config` (tasks, :class:`EvalConfig`), :mod:`.scoring` (prompts, :func:`score_reply`),
:mod:`.records` (records, results file, summaries, :func:`rescore`); this module runs items.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import ToolMessage

from ..client import MiniMaxVLClient, Usage
from ..errors import InvalidInputError
from ..images.policy import InputPolicy
from ..local_ocr import LocalOCREngine
from ..pages import iter_pages
from ..pages.window import FailureRule, ain_order
from ..settings import Settings
from ..tools import ChartReaderTool, DiagramReasoningTool, DocumentVQATool, OCRTool
from ..tools.base import MiniMaxVLBaseTool
from .config import OCRBENCH_OCR_CATEGORIES, TASK_UNITS, TASKS, Engine, EvalConfig, PromptMode
from .datasets import EvalItem, load_ocr_cer
from .datasets import load_benchmark as load_task
from .records import (
    EvalResult,
    EvalSummary,
    ItemRecord,
    TokenCounts,
    read_records,
    report_rows,
    rescore,
    rescored,
    summarize,
)
from .scoring import benchmark_prompt, cer_counts, item_kind, score_reply

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "OCRBENCH_OCR_CATEGORIES",
    "TASKS",
    "TASK_UNITS",
    "Engine",
    "EvalConfig",
    "EvalResult",
    "EvalRunner",
    "EvalSummary",
    "ItemRecord",
    "PromptMode",
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


def _policy_for(roots: Sequence[Path]) -> InputPolicy:
    """The run's input policy: the folder holding every item's file is the one allowed root."""
    return InputPolicy(allowed_roots=[r.resolve() for r in roots])


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
        max_failure_rate: stop the run (:class:`~minimaxvl_tools.errors.JobAbortedError`) once more than
            this fraction of the items it runs are certain to fail; None (default) never stops. The
            records handed out so far stay in ``out``, so a rerun resumes.
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
        max_failure_rate: float | None = None,
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
        self.failure_rule = FailureRule(max_failure_rate)
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
        """Benchmark mode: one user turn (the prompt and the item's image), greedy; the reply's text.

        A PDF item's page is rendered through :func:`~minimaxvl_tools.pages.iter_pages`; an image file is
        sent as its bytes; both under the run's input policy.
        """
        policy = _policy_for(roots)
        if item.image_path.suffix.lower() == ".pdf":
            image: Any = await asyncio.to_thread(self._render, item, policy)
        else:
            image = await asyncio.to_thread(policy.check_path(item.image_path).read_bytes)
        result = await self.client.achat(
            prompt, images=[image], max_tokens=self.config.max_tokens, temperature=0.0
        )
        return result.text

    def _render(self, item: EvalItem, policy: InputPolicy) -> Image.Image:
        """The item's PDF page (``item.page``, default 1) at the run's dpi, from the one page source."""
        pages = iter_pages(
            item.image_path, pages=[item.page or 1], dpi=self.config.dpi, policy=policy, text=False
        )
        return next(iter(pages)).pixels()

    async def _predict(self, item: EvalItem, roots: list[Path]) -> tuple[str, dict[str, Any]]:
        """The prediction for one item, and detail worth keeping."""
        kind = item_kind(item)
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
        policy = _policy_for(roots)
        return await asyncio.to_thread(lambda: engine.ocr(self._render(item, policy)).text)

    async def _one(self, item: EvalItem, roots: list[Path], config_hash: str) -> ItemRecord:
        """Run and score one item; any exception becomes the record's ``error`` (score 0)."""
        acc: list[Usage] = []
        raws: list[str] = []
        token = _ITEM_USAGE.set(acc)
        raw_token = _TOOL_RAW.set(raws)
        start = time.perf_counter()
        kind = item_kind(item)
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
        return {k: rescored(r, by_id[k], self._scoring()) for k, r in done.items()}

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
        fresh: dict[str, ItemRecord] = {}
        failed = 0
        start = time.perf_counter()
        jobs = ((it.id, functools.partial(self._one, it, roots, config_hash)) for it in todo)
        with self._open_out() as fh:
            async with contextlib.aclosing(ain_order(jobs, self.concurrency)) as handed_out:
                async for item_id, rec in handed_out:
                    fresh[item_id] = rec
                    if fh is not None:
                        fh.write(rec.model_dump_json() + "\n")
                        fh.flush()
                    failed += rec.error is not None
                    self.failure_rule.check(failed, len(fresh), total=len(todo), detail=self._resume_hint())
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

    def _resume_hint(self) -> str:
        """What the failure-rate stop adds to its message: where the records so far are."""
        return f"the records so far are in {self.out}; rerun to resume" if self.out is not None else ""

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
    max_failure_rate: float | None = None,
    client: MiniMaxVLClient | None = None,
    settings: Settings | None = None,
    loader_kwargs: dict[str, Any] | None = None,
    **config: Any,
) -> EvalResult:
    """Load ``task`` from ``data``, run it and score it: the one-call form of :class:`EvalRunner`.

    Extra keyword arguments are :class:`EvalConfig` fields (``engine="local"``, ``dpi=150``, ...); the model
    name defaults to the client's or settings' model; ``max_failure_rate`` is :class:`EvalRunner`'s stop rule.
    """
    items = load_task(task, data, limit=limit, sample_n=sample_n, seed=seed, **(loader_kwargs or {}))
    if "model" not in config and config.get("engine", "vlm") == "vlm":
        config["model"] = (client.settings if client else settings or Settings.from_env()).model
    cfg = EvalConfig(task=task, **config)
    runner = EvalRunner(
        cfg,
        client=client,
        settings=settings,
        out=out,
        concurrency=concurrency,
        resume=resume,
        max_failure_rate=max_failure_rate,
    )
    return runner.run(items)
