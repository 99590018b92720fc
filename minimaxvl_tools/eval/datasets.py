"""Readers for the benchmarks' published local file layouts, yielding one :class:`EvalItem` per question.

Nothing here downloads anything: point a reader at a folder you already have. A missing file or folder raises
:class:`~minimaxvl_tools.errors.InvalidInputError` naming the path and the layout that was expected, so the
fix is obvious from the message. ``limit`` keeps the first N items in file order; :func:`sample` picks a
seeded, reproducible subset.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidInputError
from .metrics import answer_letter

__all__ = [
    "DATASET_LAYOUTS",
    "EvalItem",
    "load_ai2d",
    "load_benchmark",
    "load_chartqa",
    "load_docvqa",
    "load_jsonl",
    "load_ocrbench",
    "sample",
]

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class EvalItem(BaseModel):
    """One benchmark question: the image to send, the question, gold answers and (multiple choice) options.

    ``answers`` always holds strings (for multiple choice: the gold option letter); ``page`` is the 1-based
    page of a multi-page source when the item points at a PDF, else None; ``meta`` keeps dataset fields that
    the scorers or the report need (category, split, source ids).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    task: str
    question: str
    answers: list[str]
    options: list[str] | None = None
    image_path: Path
    page: int | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


#: The file layout each reader expects, quoted in error messages.
DATASET_LAYOUTS: dict[str, str] = {
    "chartqa": (
        "ChartQA GitHub release: <root>/test/test_human.json and <root>/test/test_augmented.json "
        '(lists of {"imgname", "query", "label"}) with images in <root>/test/png/<imgname>'
    ),
    "docvqa": (
        'DocVQA official: <root>/val_v1.0.json (or <root>/val/val_v1.0.json) = {"data": [{"questionId", '
        '"question", "image": "documents/xxx.png", "answers": [...]}]}; images relative to the JSON file'
    ),
    "ai2d": (
        'AI2D: a JSONL file with one {"question", "options": [...], "answer": 0-based index or letter, '
        '"image": path relative to the file} per line, or the original release <root>/questions/*.json + '
        "<root>/images/ (optionally <root>/ai2d_test_ids.csv for the test split)"
    ),
    "ocrbench": (
        'OCRBench: <root>/OCRBench.json (a list of {"image_path", "question", "answers", "type", '
        '"dataset_name"}) with images under <root>/OCRBench_Images/<image_path>'
    ),
    "jsonl": (
        'generic JSONL: one {"id", "image", "question", "answers": str or list, "options"?: list, '
        '"page"?: int} per line; image paths relative to the file'
    ),
}


# ----------------------------------------------------------------------------------------------- helpers
def _missing(kind: str, path: Path) -> InvalidInputError:
    """The error for an absent file or folder, naming it and the layout that was expected."""
    return InvalidInputError(f"{kind}: {path} does not exist; expected layout: {DATASET_LAYOUTS[kind]}")


def _read_json(kind: str, path: Path) -> Any:
    """Parse a JSON file, turning I/O and syntax errors into InvalidInputError naming the file."""
    if not path.is_file():
        raise _missing(kind, path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{kind}: cannot read {path} as JSON ({exc})") from exc


def _read_jsonl(kind: str, path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL file."""
    if not path.is_file():
        raise _missing(kind, path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{kind}: cannot read {path} ({exc})") from exc
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{kind}: {path} line {lineno} is not JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise InvalidInputError(f"{kind}: {path} line {lineno} is not a JSON object")
        yield lineno, obj


def _field(kind: str, where: str, obj: dict[str, Any], *names: str) -> Any:
    """The first present field among ``names``; a missing one is an error naming the record."""
    for name in names:
        if name in obj and obj[name] is not None:
            return obj[name]
    raise InvalidInputError(f"{kind}: {where} has no {' / '.join(repr(n) for n in names)} field")


def _answer_list(value: Any) -> list[str]:
    """Gold answers as a list of strings (a single answer may be stored as a bare string or number)."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _check_limit(limit: int | None) -> None:
    """``limit`` must be None or a non-negative int."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInputError(f"limit must be None or an integer >= 0, got {limit!r}")


def _check_images(kind: str, items: Sequence[EvalItem]) -> None:
    """Fail early, naming the first missing images, rather than mid-run after paid requests."""
    missing = [item.image_path for item in items if not item.image_path.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:3])
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise InvalidInputError(
            f"{kind}: {len(missing)} image(s) not found: {shown}{more}; expected layout: "
            f"{DATASET_LAYOUTS[kind]}"
        )


def _finish(kind: str, items: list[EvalItem], limit: int | None, check_images: bool) -> list[EvalItem]:
    """Apply ``limit`` and the image check shared by every reader."""
    if limit is not None:
        items = items[:limit]
    if check_images:
        _check_images(kind, items)
    return items


# ----------------------------------------------------------------------------------------------- ChartQA
def load_chartqa(
    root: str | Path,
    *,
    split: str = "test",
    subsets: Sequence[Literal["human", "augmented"]] = ("human", "augmented"),
    limit: int | None = None,
    check_images: bool = True,
) -> list[EvalItem]:
    """ChartQA from its GitHub release folder: ``<split>/<split>_{human,augmented}.json`` + ``<split>/png``.

    ``root`` may be the release folder (holding ``test/``) or the split folder itself. Items are numbered
    ``<subset>-<index>`` since ChartQA has no question ids; ``meta["subset"]`` tells human from augmented,
    which the paper reports separately (the headline number is their average over all items).
    """
    _check_limit(limit)
    base = Path(root)
    split_dir = base / split if (base / split).is_dir() else base
    if not split_dir.is_dir():
        raise _missing("chartqa", split_dir)
    items: list[EvalItem] = []
    for subset in subsets:
        if subset not in ("human", "augmented"):
            raise InvalidInputError(f"chartqa subset must be 'human' or 'augmented', got {subset!r}")
        path = split_dir / f"{split}_{subset}.json"
        data = _read_json("chartqa", path)
        if not isinstance(data, list):
            raise InvalidInputError(f"chartqa: {path} should hold a JSON list of question records")
        for i, rec in enumerate(data):
            where = f"{path} item {i}"
            img = str(_field("chartqa", where, rec, "imgname"))
            items.append(
                EvalItem(
                    id=f"{subset}-{i}",
                    task="chartqa",
                    question=str(_field("chartqa", where, rec, "query")),
                    answers=_answer_list(_field("chartqa", where, rec, "label")),
                    image_path=split_dir / "png" / img,
                    meta={"subset": subset, "split": split, "imgname": img},
                )
            )
    return _finish("chartqa", items, limit, check_images)


# ----------------------------------------------------------------------------------------------- DocVQA
def load_docvqa(
    root: str | Path,
    *,
    split: Literal["val", "test", "train"] = "val",
    limit: int | None = None,
    check_images: bool = True,
) -> list[EvalItem]:
    """DocVQA (single-page task) from the official ``<split>_v1.0.json`` and its ``documents/`` folder.

    ``root`` may be the JSON file, the folder holding it, or a folder with a ``<split>/`` subfolder. The test
    split ships without answers: its items have ``answers == []`` (score them on the RRC server).
    """
    _check_limit(limit)
    base = Path(root)
    name = f"{split}_v1.0.json"
    if base.is_file():
        path = base
    elif (base / name).is_file():
        path = base / name
    else:
        path = base / split / name
    data = _read_json("docvqa", path)
    records = data.get("data") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise InvalidInputError(f'docvqa: {path} should be {{"data": [...]}}; {DATASET_LAYOUTS["docvqa"]}')
    items: list[EvalItem] = []
    for i, rec in enumerate(records):
        where = f"{path} data[{i}]"
        qid = _field("docvqa", where, rec, "questionId")
        meta = {
            k: rec[k]
            for k in ("docId", "question_types", "ucsf_document_id", "ucsf_document_page_no", "data_split")
            if k in rec
        }
        items.append(
            EvalItem(
                id=str(qid),
                task="docvqa",
                question=str(_field("docvqa", where, rec, "question")),
                answers=_answer_list(rec.get("answers") or []),
                image_path=path.parent / str(_field("docvqa", where, rec, "image")),
                meta=meta,
            )
        )
    return _finish("docvqa", items, limit, check_images)


# ----------------------------------------------------------------------------------------------- AI2D
def _ai2d_jsonl(path: Path) -> list[EvalItem]:
    """AI2D exported as JSONL (lmms-eval style): question, options, answer index/letter, image path."""
    items: list[EvalItem] = []
    for lineno, rec in _read_jsonl("ai2d", path):
        where = f"{path} line {lineno}"
        options = _field("ai2d", where, rec, "options", "choices")
        if not isinstance(options, list) or not options:
            raise InvalidInputError(f"ai2d: {where}: 'options' must be a non-empty list")
        options = [str(o) for o in options]
        raw_answer = _field("ai2d", where, rec, "answer")
        try:
            letter = answer_letter(raw_answer, options)
        except InvalidInputError as exc:
            raise InvalidInputError(f"ai2d: {where}: {exc}") from exc
        items.append(
            EvalItem(
                id=str(rec.get("id", rec.get("question_id", f"ai2d-{lineno}"))),
                task="ai2d",
                question=str(_field("ai2d", where, rec, "question")),
                answers=[letter],
                options=options,
                image_path=path.parent / str(_field("ai2d", where, rec, "image", "image_path")),
                meta={"answer_text": options[_LETTERS.index(letter)]},
            )
        )
    return items


def _ai2d_original(root: Path, split: Literal["test", "all"]) -> list[EvalItem]:
    """AI2D's own release: ``questions/<image>.json`` holding every question about ``images/<image>``."""
    qdir = root / "questions"
    if not qdir.is_dir():
        raise _missing("ai2d", qdir)
    test_ids: set[str] | None = None
    if split == "test":
        ids_file = root / "ai2d_test_ids.csv"
        if not ids_file.is_file():
            raise InvalidInputError(
                f"ai2d: split='test' needs {ids_file} (one image id per line, as in the AI2D release); "
                "pass split='all' to read every question"
            )
        with ids_file.open(newline="", encoding="utf-8") as fh:
            test_ids = {row[0].strip() for row in csv.reader(fh) if row and row[0].strip()}
    items: list[EvalItem] = []
    for qfile in sorted(qdir.glob("*.json"), key=lambda p: (len(p.stem), p.stem)):
        data = _read_json("ai2d", qfile)
        image_name = str(_field("ai2d", str(qfile), data, "imageName"))
        if test_ids is not None and image_name.split(".")[0] not in test_ids:
            continue
        questions = _field("ai2d", str(qfile), data, "questions")
        for text, q in questions.items():
            where = f"{qfile} question {text!r}"
            options = [str(o) for o in _field("ai2d", where, q, "answerTexts")]
            correct = _field("ai2d", where, q, "correctAnswer")
            try:
                letter = answer_letter(int(correct), options)
            except (InvalidInputError, ValueError) as exc:
                raise InvalidInputError(f"ai2d: {where}: bad correctAnswer {correct!r} ({exc})") from exc
            items.append(
                EvalItem(
                    id=str(q.get("questionId", f"{image_name}-{len(items)}")),
                    task="ai2d",
                    question=str(text),
                    answers=[letter],
                    options=options,
                    image_path=root / "images" / image_name,
                    meta={"abc_label": bool(q.get("abcLabel", False)), "answer_text": options[int(correct)]},
                )
            )
    return items


def load_ai2d(
    path: str | Path,
    *,
    split: Literal["test", "all"] = "test",
    limit: int | None = None,
    check_images: bool = True,
) -> list[EvalItem]:
    """AI2D multiple choice from a JSONL export (``path`` is the file) or the original release folder.

    Gold answers become option letters; a numeric ``answer`` is a 0-based option index (lmms-eval's
    convention). ``split`` applies to the original layout only (a JSONL file is already one split).
    """
    _check_limit(limit)
    p = Path(path)
    if p.is_file():
        items = _ai2d_jsonl(p)
    elif p.is_dir() and (p / "questions").is_dir():
        items = _ai2d_original(p, split)
    elif p.is_dir():
        jsonls = sorted(p.glob("*.jsonl"))
        if len(jsonls) != 1:
            raise InvalidInputError(
                f"ai2d: {p} has {len(jsonls)} .jsonl files and no questions/ folder; pass the JSONL file "
                f"itself. Expected layout: {DATASET_LAYOUTS['ai2d']}"
            )
        items = _ai2d_jsonl(jsonls[0])
    else:
        raise _missing("ai2d", p)
    return _finish("ai2d", items, limit, check_images)


# ----------------------------------------------------------------------------------------------- OCRBench
def load_ocrbench(
    root: str | Path,
    *,
    images_dir: str | Path | None = None,
    limit: int | None = None,
    check_images: bool = True,
) -> list[EvalItem]:
    """OCRBench's 1000 items from ``OCRBench.json`` with images under ``OCRBench_Images/``.

    ``root`` may be the JSON file or its folder (``OCRBench/OCRBench.json`` inside is found too). The
    JSON's ``id`` repeats across source datasets, so items are numbered by position (``ocrbench-<index>``);
    ``meta`` carries ``category`` (the scoring category), ``dataset_name`` and the source ``source_id``.
    """
    _check_limit(limit)
    base = Path(root)
    if base.is_file():
        path = base
    elif (base / "OCRBench.json").is_file():
        path = base / "OCRBench.json"
    else:
        path = base / "OCRBench" / "OCRBench.json"
    data = _read_json("ocrbench", path)
    if not isinstance(data, list):
        raise InvalidInputError(f"ocrbench: {path} should hold a JSON list; {DATASET_LAYOUTS['ocrbench']}")
    if images_dir is not None:
        img_root = Path(images_dir)
    else:
        candidates = [path.parent / "OCRBench_Images", path.parent.parent / "OCRBench_Images"]
        img_root = next((c for c in candidates if c.is_dir()), candidates[0])
    if check_images and not img_root.is_dir():
        raise _missing("ocrbench", img_root)
    items: list[EvalItem] = []
    for i, rec in enumerate(data):
        where = f"{path} item {i}"
        items.append(
            EvalItem(
                id=f"ocrbench-{i}",
                task="ocrbench",
                question=str(_field("ocrbench", where, rec, "question")),
                answers=_answer_list(_field("ocrbench", where, rec, "answers")),
                image_path=img_root / str(_field("ocrbench", where, rec, "image_path")),
                meta={
                    "category": str(_field("ocrbench", where, rec, "type")),
                    "dataset_name": str(rec.get("dataset_name", "")),
                    "source_id": rec.get("id"),
                },
            )
        )
    return _finish("ocrbench", items, limit, check_images)


# ----------------------------------------------------------------------------------------------- generic
_GENERIC_KEYS = {"id", "image", "question", "answers", "answer", "options", "page", "task"}


def load_jsonl(
    path: str | Path,
    *,
    task: str = "generic",
    limit: int | None = None,
    check_images: bool = True,
) -> list[EvalItem]:
    """Any benchmark written as JSONL ``{"id", "image", "question", "answers", "options"?, "page"?}``.

    ``answers`` may be a string or a list (``answer`` is accepted too); a record's own ``task`` overrides the
    argument; any other keys land in ``meta``. Missing ids become ``<task>-<line>``.
    """
    _check_limit(limit)
    p = Path(path)
    items: list[EvalItem] = []
    seen: set[str] = set()
    for lineno, rec in _read_jsonl("jsonl", p):
        where = f"{p} line {lineno}"
        item_task = str(rec.get("task", task))
        item_id = str(rec.get("id", f"{item_task}-{lineno}"))
        if item_id in seen:
            raise InvalidInputError(f"jsonl: {where}: duplicate id {item_id!r}; ids must be unique")
        seen.add(item_id)
        options = rec.get("options")
        if options is not None and (not isinstance(options, list) or not options):
            raise InvalidInputError(f"jsonl: {where}: 'options' must be a non-empty list when present")
        page = rec.get("page")
        if page is not None and (isinstance(page, bool) or not isinstance(page, int) or page < 1):
            raise InvalidInputError(f"jsonl: {where}: 'page' must be a 1-based integer, got {page!r}")
        items.append(
            EvalItem(
                id=item_id,
                task=item_task,
                question=str(_field("jsonl", where, rec, "question")),
                answers=_answer_list(_field("jsonl", where, rec, "answers", "answer")),
                options=[str(o) for o in options] if options is not None else None,
                image_path=p.parent / str(_field("jsonl", where, rec, "image")),
                page=page,
                meta={k: v for k, v in rec.items() if k not in _GENERIC_KEYS},
            )
        )
    return _finish("jsonl", items, limit, check_images)


# ----------------------------------------------------------------------------------------------- sampling
def sample(items: Sequence[EvalItem], n: int, seed: int = 0) -> list[EvalItem]:
    """``n`` items chosen by seed, returned in their original order; the same on every machine and Python.

    Each item is ranked by ``sha256(f"{seed}:{task}:{id}")`` (not :mod:`random`), so a subset is stable when
    the dataset grows and a larger ``n`` always contains the smaller sample for the same seed.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidInputError(f"sample size must be an integer >= 0, got {n!r}")
    if n >= len(items):
        return list(items)

    def rank(pair: tuple[int, EvalItem]) -> tuple[bytes, int]:
        i, item = pair
        return hashlib.sha256(f"{seed}:{item.task}:{item.id}".encode()).digest(), i

    chosen = sorted(enumerate(items), key=rank)[:n]
    return [item for _, item in sorted(chosen, key=lambda pair: pair[0])]


_LOADERS: dict[str, Callable[..., list[EvalItem]]] = {
    "chartqa": load_chartqa,
    "docvqa": load_docvqa,
    "ai2d": load_ai2d,
    "ocrbench": load_ocrbench,
    "jsonl": load_jsonl,
}


def load_benchmark(
    name: str,
    path: str | Path,
    *,
    limit: int | None = None,
    sample_n: int | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> list[EvalItem]:
    """Read a benchmark by name ("chartqa", "docvqa", "ai2d", "ocrbench", "jsonl"), then optionally sample.

    ``limit`` keeps the first N items of the file; ``sample_n`` then draws N of those with :func:`sample`.
    Extra keyword arguments go to the reader (``split=...``, ``check_images=False``, ...).
    """
    loader = _LOADERS.get(name.lower())
    if loader is None:
        raise InvalidInputError(f"unknown benchmark {name!r}; choose one of {sorted(_LOADERS)}")
    items = loader(path, limit=limit, **kwargs)
    return sample(items, sample_n, seed) if sample_n is not None else items
