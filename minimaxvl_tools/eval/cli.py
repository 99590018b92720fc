"""``minimaxvl eval``: run a benchmark on a local copy of its dataset and print the score table.

Thin over :mod:`minimaxvl_tools.eval.runner`: :func:`configure_parser` adds the arguments to any
:class:`argparse.ArgumentParser` (the ``minimaxvl`` CLI registers it as its ``eval`` subcommand, and
``python -m minimaxvl_tools.eval`` uses it stand-alone) and :func:`run` executes parsed arguments.
Common options (``--base-url``, ``--model``, ``--api-key``, ``--json``) are read with defaults, since the
parent CLI may or may not have defined them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import JobAbortedError, MiniMaxVLError
from ..settings import Settings, current
from .datasets import DATASET_LAYOUTS
from .runner import TASKS, EvalConfig, EvalResult, EvalRunner, load_task, rescore

__all__ = ["build_parser", "configure_parser", "main", "run"]

_EPILOG = (
    "expected layouts:\n"
    + "\n".join(f"  {k}: {v}" for k, v in DATASET_LAYOUTS.items())
    + ("\n  ocr-cer: a born-digital PDF (or a folder of them); each page's text layer is the gold text")
    + ("\n  rescore: DATA is a results JSONL; its saved replies are scored again, nothing is sent")
)


_FLAG: dict[str, Any] = {"action": "store_true"}

#: The ``eval`` options as ``(flag, help, add_argument keywords)``, in help order.
_OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--limit", "keep the first N items of the file", {"type": int}),
    ("--sample", "a seeded sample of N items", {"type": int, "metavar": "N"}),
    ("--seed", "seed of --sample (default 0)", {"type": int, "default": 0}),
    ("--out", "results JSONL, appended to (default: eval-<TASK>.jsonl)", {"type": Path}),
    ("--concurrency", "items in flight (default: the client's limit)", {"type": int}),
    (
        "--max-failure-rate",
        "stop once more than this fraction (0-1) of the items run fail; a rerun resumes",
        {"type": float, "metavar": "X"},
    ),
    (
        "--engine",
        "ocr-cer: MiniMax-VL-01 or local Tesseract",
        {"choices": ("vlm", "local"), "default": "vlm"},
    ),
    ("--no-resume", "run every item again, ignoring --out", _FLAG),
    ("--dpi", "PDF render resolution (default: MINIMAXVL_DPI, else 200)", {"type": int}),
    ("--split", "dataset split (default: test; docvqa val; mathvista testmini)", {}),
    (
        "--images-dir",
        "where the images are (docvqa spdocvqa_images/, OCRBench_Images/) or go (parquet exports)",
        {"type": Path},
    ),
    (
        "--prompt-mode",
        "benchmark: the benchmarks' own prompts (default); tools: through the package's tools",
        {"choices": ("benchmark", "tools"), "default": "benchmark"},
    ),
    ("--no-cot", "benchmark mode: short-answer prompts instead of 0-shot CoT", _FLAG),
    (
        "--chartqa-lenient",
        "also report ChartQA's lenient variant (not pix2struct's metric) as its own row",
        _FLAG,
    ),
    (
        "--mathvista-fallback",
        "what replaces MathVista's GPT extraction step offline (default: the reply's Answer: line)",
        {"choices": ("answer_line", "none"), "default": "answer_line"},
    ),
    ("--lang", "Tesseract language(s) for --engine local", {"default": "eng"}),
    ("--max-tokens", "completion budget per request", {"type": int}),
    ("--no-tile", "OCR: send each page as one image, never in crops", _FLAG),
    ("--case-fold", "ocr-cer: ignore case", _FLAG),
    (
        "--keep-whitespace",
        "ocr-cer: count line-break and spacing differences as errors (default: collapsed)",
        _FLAG,
    ),
    (
        "--ocrbench-docqa-only",
        "ocrbench, tools mode: answer every item with document_qa (default: recognition uses OCRTool)",
        _FLAG,
    ),
    ("--report", "also write the markdown table here", {"type": Path}),
)

#: Options the parent ``minimaxvl`` CLI may define already (then its definition stands).
_COMMON: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--base-url", "vLLM OpenAI endpoint (default: MINIMAXVL_BASE_URL)", {}),
    ("--model", "served model name (default: MINIMAXVL_MODEL)", {}),
    ("--api-key", "bearer token (default: MINIMAXVL_API_KEY)", {}),
    ("--json", "print the summaries as JSON", _FLAG),
    ("--allow-root", "ocr-cer: also allow documents under DIR", {"action": "append", "metavar": "DIR"}),
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``eval`` arguments to ``parser`` (which may be a subcommand's parser)."""
    parser.description = parser.description or "Evaluate MiniMax-VL-01 through the tools on a benchmark."
    parser.epilog = parser.epilog or _EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    choices = (*TASKS, "rescore")
    parser.add_argument("task", metavar="TASK", choices=choices, help="one of: " + ", ".join(choices))
    parser.add_argument("data", metavar="DATA", type=Path, help="local dataset path (see layouts below)")
    for flag, text, kw in _OPTIONS:
        parser.add_argument(flag, help=text, **kw)
    for flag, text, kw in _COMMON:
        with contextlib.suppress(argparse.ArgumentError):  # the parent CLI may define it already
            parser.add_argument(flag, help=text, **kw)


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser (``python -m minimaxvl_tools.eval``)."""
    parser = argparse.ArgumentParser(prog="python -m minimaxvl_tools.eval")
    configure_parser(parser)
    return parser


#: The client settings a command line may set (the parent CLI's options, where it defines them).
_SETTINGS_ARGS = ("base_url", "model", "api_key", "timeout", "max_retries", "max_concurrency")


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from ``MINIMAXVL_*``, the command line's options winning where given."""
    return Settings.from_env(**{name: getattr(args, name, None) for name in _SETTINGS_ARGS})


def _print_human(result: EvalResult) -> None:
    for s in result.summaries:
        tok = s.tokens
        line = (
            f"{s.task} ({s.split or '-'}): {s.score:.2f} ({s.unit}) on {s.n} items, {s.errors} errors, "
            f"{result.ran} run / {s.resumed} resumed in {s.seconds:.1f}s; tokens prompt {tok.prompt} "
            f"completion {tok.completion} image {tok.image}"
        )
        print(line)
        if s.task == "ocr-cer":
            e = s.extra
            print(
                f"  CER {e['cer']:.4f} ({e['edits']}/{e['chars']} chars), "
                f"WER {e['wer']:.4f} ({e['word_edits']}/{e['words']} words)"
            )
        if s.task == "ocrbench":
            for cat, hits in sorted(s.extra["per_category"].items()):
                print(f"  {cat}: {hits}/{s.extra['per_category_n'][cat]}")
    errs = [r for r in result.records if r.error]
    for r in errs[:5]:
        print(f"  error {r.id}: {r.error[:200] if r.error else ''}", file=sys.stderr)
    if result.out is not None:
        print(f"records: {result.out}")
    print()
    print(result.report(), end="")


def _emit(
    args: argparse.Namespace, result: EvalResult, human: Callable[[EvalResult], None], **extra: Any
) -> None:
    """Print ``result`` (``--json``: the summaries, ``extra``, the records file and the report; else
    ``human``) and write the report to ``--report`` when asked."""
    if getattr(args, "json", False):
        payload = {
            "summaries": [s.model_dump() for s in result.summaries],
            **extra,
            "out": str(result.out) if result.out else None,
            "report": result.report(),
        }
        print(json.dumps(payload, indent=2))
    else:
        human(result)
    if args.report is not None:
        args.report.write_text(result.report(), encoding="utf-8")


def _rescore(args: argparse.Namespace) -> int:
    """``eval rescore OUT.jsonl``: print the report of the saved replies scored by the current scorers."""
    try:
        result = rescore(
            args.data,
            out=args.out,
            chartqa_lenient=args.chartqa_lenient,
            mathvista_fallback=args.mathvista_fallback,
        )
    except MiniMaxVLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def human(result: EvalResult) -> None:
        for s in result.summaries:
            print(f"{s.task} ({s.split or '-'}): {s.score:.2f} ({s.unit}) on {s.n} items, {s.errors} errors")
        print()
        print(result.report(), end="")

    _emit(args, result, human)
    return 0


def run(args: argparse.Namespace) -> int:
    """Execute parsed ``eval`` arguments; 0 on success, 1 when every item failed or the failure-rate stop
    ended the run, 2 on bad input."""
    task: str = args.task
    if task == "rescore":
        return _rescore(args)
    loader_kwargs: dict[str, Any] = {}
    if getattr(args, "split", None) and task not in ("ocr-cer",):
        loader_kwargs["split"] = args.split
    if getattr(args, "images_dir", None) is not None and task not in ("ocr-cer", "jsonl"):
        loader_kwargs["images_dir"] = args.images_dir
    try:
        if task == "ocr-cer":  # a document path: the same input policy as every other command
            from ..cli import _policy

            _policy(args).check_path(args.data)
        items = load_task(
            task, args.data, limit=args.limit, sample_n=args.sample, seed=args.seed, **loader_kwargs
        )
        settings = _settings(args) if args.engine == "vlm" else None
        config = EvalConfig(
            task=task,
            model=settings.model if settings else "",
            engine=args.engine,
            dpi=args.dpi if args.dpi is not None else current(settings).dpi,
            tile=False if args.no_tile else "auto",
            lang=args.lang,
            case_fold=args.case_fold,
            collapse_whitespace=not args.keep_whitespace,
            ocrbench_ocr_tool=not args.ocrbench_docqa_only,
            max_tokens=args.max_tokens,
            prompt_mode=args.prompt_mode,
            cot=not args.no_cot,
            chartqa_lenient=args.chartqa_lenient,
            mathvista_fallback=args.mathvista_fallback,
        )
        out = args.out if args.out is not None else Path(f"eval-{task}.jsonl")
        runner = EvalRunner(
            config,
            settings=settings,
            out=out,
            concurrency=args.concurrency,
            resume=not args.no_resume,
            max_failure_rate=getattr(args, "max_failure_rate", None),
        )
        result = runner.run(items)
    except JobAbortedError as exc:  # the failure-rate stop: the records so far are in --out
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except MiniMaxVLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _emit(args, result, _print_human, config=config.as_dict(), config_hash=config.config_hash())
    all_failed = all(s.errors == s.n for s in result.summaries)
    return 1 if all_failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m minimaxvl_tools.eval``."""
    return run(build_parser().parse_args(argv))
