"""Evaluation: benchmark metrics, dataset readers, the runner that scores the tools, and the report.

Metrics, readers and the report table are imported eagerly (standard library and pydantic only); the
runner and CLI names load on first use, since they pull in the tools and LangChain.
"""

from __future__ import annotations

from .._lazy import lazy_exports
from .datasets import (  # noqa: F401 - re-exported through _datasets_all
    DATASET_LAYOUTS,
    EvalItem,
    ReadOptions,
    file_sha256,
    load_ai2d,
    load_benchmark,
    load_chartqa,
    load_docvqa,
    load_jsonl,
    load_mathvista,
    load_ocr_cer,
    load_ocrbench,
    sample,
)
from .datasets import __all__ as _datasets_all
from .metrics import (
    OCRBENCH_CATEGORIES,
    ErrorCounts,
    OCRBenchScore,
    anls,
    anls_score,
    cer,
    choice_accuracy,
    corpus_cer,
    corpus_wer,
    final_answer,
    mathvista_correct,
    ocrbench_match,
    ocrbench_score,
    parse_choice,
    relaxed_accuracy,
    relaxed_correctness,
    wer,
)
from .report import PUBLISHED, PUBLISHED_METRICS, format_report, format_run_report, wilson_interval

_LAZY = {
    "EvalConfig": "runner",
    "EvalResult": "runner",
    "EvalRunner": "runner",
    "EvalSummary": "runner",
    "ItemRecord": "runner",
    "OCRBENCH_OCR_CATEGORIES": "runner",
    "TASKS": "runner",
    "TASK_UNITS": "runner",
    "TokenCounts": "runner",
    "load_task": "runner",
    "benchmark_prompt": "runner",
    "read_records": "runner",
    "rescore": "runner",
    "score_reply": "runner",
    "run_eval": "runner",
    "summarize": "runner",
    "configure_parser": "cli",
    "run": "cli",
}

__all__ = [
    "OCRBENCH_CATEGORIES",
    "PUBLISHED",
    "PUBLISHED_METRICS",
    "ErrorCounts",
    "OCRBenchScore",
    "anls",
    "anls_score",
    "cer",
    "choice_accuracy",
    "corpus_cer",
    "corpus_wer",
    "final_answer",
    "format_report",
    "format_run_report",
    "mathvista_correct",
    "ocrbench_match",
    "ocrbench_score",
    "parse_choice",
    "relaxed_accuracy",
    "relaxed_correctness",
    "wer",
    "wilson_interval",
    *_datasets_all,
    *_LAZY,
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
