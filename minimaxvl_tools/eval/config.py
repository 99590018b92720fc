"""What a run is: the task names, their score units, and :class:`EvalConfig`, whose hash keys resume."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..errors import InvalidInputError
from ..settings import DEFAULT_DPI, check_dpi

__all__ = ["OCRBENCH_OCR_CATEGORIES", "TASKS", "TASK_UNITS", "Engine", "EvalConfig", "PromptMode"]


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
    dpi: int = DEFAULT_DPI
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
        check_dpi(self.dpi)
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
