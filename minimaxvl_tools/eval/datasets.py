"""Readers for the benchmarks' published local file layouts, yielding one :class:`EvalItem` per question.

Nothing here downloads anything: point a reader at a folder you already have. Each reader accepts the
original release and the Hugging Face parquet export (read with pyarrow, the ``eval`` extra; images stored
as ``{bytes, path}`` structs are written once, content-addressed, to an ``<file>.images/`` folder beside the
parquet or to ``images_dir``). A missing file or folder raises
:class:`~minimaxvl_tools.errors.InvalidInputError` naming the path and every layout the reader accepts.
Every item carries its split, its data file and that file's SHA-256, which key the runner's resume.
``limit`` keeps the first N items in file order; :func:`sample` picks a seeded, reproducible subset.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidInputError
from .metrics import answer_letter

__all__ = [
    "DATASET_LAYOUTS",
    "EvalItem",
    "file_sha256",
    "load_ai2d",
    "load_benchmark",
    "load_chartqa",
    "load_docvqa",
    "load_jsonl",
    "load_mathvista",
    "load_ocrbench",
    "sample",
]

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class EvalItem(BaseModel):
    """One benchmark question: the image to send, the question, gold answers and (multiple choice) options.

    ``answers`` always holds strings (for multiple choice: the gold option letter; MathVista: the answer
    as written); ``page`` is the 1-based page of a multi-page source when the item points at a PDF, else
    None; ``meta`` keeps dataset fields that the scorers or the report need (category, subset, source ids).
    ``split``, ``source`` (the data file, absolute) and ``source_sha256`` (its content hash) identify where
    the item came from; ids are unique within one split of one file.
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
    split: str = ""
    source: str = ""
    source_sha256: str = ""


_PARQUET = (
    "Hugging Face parquet export: a .parquet file, or a folder of them (files named <split>-*.parquet are "
    "picked by --split), images as {bytes, path} structs"
)

#: The file layouts each reader accepts, quoted in error messages.
DATASET_LAYOUTS: dict[str, str] = {
    "chartqa": (
        "(1) ChartQA GitHub release: <root>/test/test_human.json and <root>/test/test_augmented.json "
        '(lists of {"imgname", "query", "label"}) with images in <root>/test/png/<imgname>; (2) '
        f"lmms-lab/ChartQA {_PARQUET} (columns type = human_test/augmented_test, question, answer, image)"
    ),
    "docvqa": (
        '(1) DocVQA official: <root>/val_v1.0.json (or <root>/val/val_v1.0.json) = {"data": [{"questionId", '
        '"question", "image": "documents/xxx.png", "answers": [...]}]}, images relative to the JSON file; '
        "(2) the newer release: <root>/spdocvqa_qas/val_v1.0_withQT.json with images in "
        "<root>/spdocvqa_images/ (or --images-dir); (3) lmms-lab/DocVQA "
        f"{_PARQUET} (split validation; columns questionId, question, answers, image)"
    ),
    "ai2d": (
        '(1) a JSONL file with one {"question", "options": [...], "answer": 0-based index or letter, '
        '"image": path relative to the file} per line; (2) the original release <root>/questions/*.json + '
        "<root>/images/ (optionally <root>/ai2d_test_ids.csv for the test split); (3) lmms-lab/ai2d "
        f"{_PARQUET} (columns question, options, answer = 0-based index, image)"
    ),
    "ocrbench": (
        '(1) <root>/OCRBench.json (a list of {"image_path", "question", "answers", "type", '
        '"dataset_name"}) with images under <root>/OCRBench_Images/<image_path>; (2) the repository layout '
        "<root>/json_files/OCRBench.json with <root>/OCRBench_Images/ (or --images-dir for either); (3) "
        f"echo840/OCRBench {_PARQUET} (columns dataset, question, question_type, answer, image)"
    ),
    "mathvista": (
        "(1) AI4Math/MathVista "
        f"{_PARQUET} (split testmini; columns pid, query, decoded_image, choices, precision, answer, "
        'question_type, answer_type); (2) the GitHub release <root>/testmini.json ({"<pid>": {"image": '
        '"images/<pid>.jpg", "query", "answer", ...}}) with images relative to the JSON file'
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


def _finish(
    kind: str,
    items: list[EvalItem],
    limit: int | None,
    check_images: bool,
    *,
    split: str,
    sources: Sequence[Path],
) -> list[EvalItem]:
    """Apply ``limit``, stamp split/data file/hash on every item, check ids and images (every reader)."""
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InvalidInputError(f"{kind}: id {dup!r} occurs twice in {sources[0]}; ids must be unique")
    if limit is not None:
        items = items[:limit]
    source = str(sources[0].resolve()) if sources else ""
    digest = file_sha256(sources)
    items = [
        it.model_copy(update={"split": split, "source": source, "source_sha256": digest}) for it in items
    ]
    if check_images:
        _check_images(kind, items)
    return items


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(paths: Sequence[Path]) -> str:
    """SHA-256 over the contents of ``paths`` in order (cached per path, size and mtime within a process)."""
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        digest = _HASHES.get(key)
        if digest is None:
            fh_hash = hashlib.sha256()
            with p.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    fh_hash.update(block)
            digest = _HASHES[key] = fh_hash.hexdigest()
        h.update(digest.encode())
    return h.hexdigest()


def _parquet_files(kind: str, path: Path, split: str | Sequence[str]) -> list[Path] | None:
    """The parquet files of ``split`` at ``path`` (a file or a folder), or None when there are none."""
    if path.is_file():
        return [path] if path.suffix == ".parquet" else None
    if not path.is_dir():
        return None
    files = sorted(path.rglob("*.parquet"))
    if not files:
        return None
    names = [split] if isinstance(split, str) else list(split)
    picked = [
        f
        for f in files
        if any(f.name.startswith(f"{n}-") or f.stem == n or f.parent.name == n for n in names)
    ]
    if not picked:
        raise InvalidInputError(
            f"{kind}: {path} holds parquet files but none for split {names[0]!r} (looked for "
            f"{names[0]}-*.parquet); found {', '.join(f.name for f in files[:4])}. Expected layouts: "
            f"{DATASET_LAYOUTS[kind]}"
        )
    return picked


def _read_parquet(kind: str, files: Sequence[Path]) -> Iterator[dict[str, Any]]:
    """The rows of ``files`` as dicts, one record batch at a time (pyarrow; the ``eval`` extra)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is in the eval and dev extras
        raise InvalidInputError(
            f"{kind}: reading parquet needs pyarrow: pip install 'minimaxvl-tools[eval]'"
        ) from exc
    for f in files:
        try:
            batches = pq.ParquetFile(f).iter_batches(batch_size=256)
            for batch in batches:
                yield from batch.to_pylist()
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise InvalidInputError(f"{kind}: cannot read {f} as parquet ({exc})") from exc


def _parquet_image(kind: str, value: Any, files: Sequence[Path], images_dir: Path | None, where: str) -> Path:
    """Write an ``{bytes, path}`` image once (named by its SHA-256) and return the file to send."""
    if isinstance(value, dict) and value.get("bytes"):
        data: bytes = value["bytes"]
        name = str(value.get("path") or "")
        ext = Path(name).suffix.lower() if Path(name).suffix else ".png"
        folder = images_dir or files[0].with_name(files[0].stem + ".images")
        out = folder / f"{hashlib.sha256(data).hexdigest()[:24]}{ext}"
        if not (out.is_file() and out.stat().st_size == len(data)):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = out.with_suffix(out.suffix + ".tmp")
                tmp.write_bytes(data)
                tmp.replace(out)
            except OSError as exc:
                raise InvalidInputError(
                    f"{kind}: cannot write the images of {files[0]} to {folder} ({exc}); pass --images-dir "
                    "(images_dir=) a writable folder"
                ) from exc
        return out
    if isinstance(value, dict) and value.get("path"):
        return (images_dir or files[0].parent) / str(value["path"])
    if isinstance(value, str) and value:
        return (images_dir or files[0].parent) / value
    raise InvalidInputError(f"{kind}: {where} has no image (expected a {{bytes, path}} struct)")


# ----------------------------------------------------------------------------------------------- ChartQA
_CHARTQA_TYPES = {
    "human_test": "human",
    "augmented_test": "augmented",
    "human": "human",
    "augmented": "augmented",
}


def _chartqa_parquet(
    files: list[Path], split: str, subsets: Sequence[str], images_dir: Path | None
) -> list[EvalItem]:
    """lmms-lab/ChartQA: one row per question, ``type`` telling human from augmented."""
    items: list[EvalItem] = []
    counts: dict[str, int] = {}
    for i, rec in enumerate(_read_parquet("chartqa", files)):
        where = f"{files[0]} row {i}"
        kind = str(_field("chartqa", where, rec, "type"))
        subset = _CHARTQA_TYPES.get(kind, kind.removesuffix(f"_{split}"))
        if subset not in subsets:
            continue
        n = counts.get(subset, 0)
        counts[subset] = n + 1
        items.append(
            EvalItem(
                id=f"{subset}-{n}",
                task="chartqa",
                question=str(_field("chartqa", where, rec, "question", "query")),
                answers=_answer_list(_field("chartqa", where, rec, "answer", "label")),
                image_path=_parquet_image("chartqa", rec.get("image"), files, images_dir, where),
                meta={"subset": subset, "type": kind},
            )
        )
    return items


def load_chartqa(
    root: str | Path,
    *,
    split: str = "test",
    subsets: Sequence[Literal["human", "augmented"]] = ("human", "augmented"),
    images_dir: str | Path | None = None,
    limit: int | None = None,
    check_images: bool = True,
) -> list[EvalItem]:
    """ChartQA from its GitHub release folder (``<split>/<split>_{human,augmented}.json`` + ``<split>/png``)
    or the lmms-lab/ChartQA parquet export.

    ``root`` may be the release folder (holding ``test/``), the split folder itself, a parquet file or a
    folder of them. Items are numbered ``<subset>-<index>`` since ChartQA has no question ids;
    ``meta["subset"]`` tells human from augmented, which the report shows separately (the headline number
    is the mean over all items).
    """
    _check_limit(limit)
    for subset in subsets:
        if subset not in ("human", "augmented"):
            raise InvalidInputError(f"chartqa subset must be 'human' or 'augmented', got {subset!r}")
    base = Path(root)
    img_dir = Path(images_dir) if images_dir is not None else None
    parquet = None if (base / split).is_dir() else _parquet_files("chartqa", base, split)
    if parquet:
        items = _chartqa_parquet(parquet, split, subsets, img_dir)
        return _finish("chartqa", items, limit, check_images, split=split, sources=parquet)
    split_dir = base / split if (base / split).is_dir() else base
    if not split_dir.is_dir():
        raise _missing("chartqa", split_dir)
    items = []
    paths: list[Path] = []
    for subset in subsets:
        path = split_dir / f"{split}_{subset}.json"
        paths.append(path)
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
                    image_path=(img_dir or split_dir / "png") / img,
                    meta={"subset": subset, "imgname": img},
                )
            )
    return _finish("chartqa", items, limit, check_images, split=split, sources=paths)


# ----------------------------------------------------------------------------------------------- DocVQA
_DOCVQA_META = ("docId", "question_types", "ucsf_document_id", "ucsf_document_page_no", "data_split")
_HF_SPLIT = {"val": "validation", "validation": "validation", "test": "test", "train": "train"}


def load_docvqa(
    root: str | Path,
    *,
    split: str = "val",
    images_dir: str | Path | None = None,
    limit: int | None = None,
    check_images: bool = True,
) -> list[EvalItem]:
    """DocVQA (single-page task): the official ``<split>_v1.0.json`` + ``documents/``, the newer
    ``spdocvqa_qas/<split>_v1.0_withQT.json`` + ``spdocvqa_images/``, or the lmms-lab/DocVQA parquet export.

    ``root`` may be the JSON file, the folder holding it, a folder with a ``<split>/`` or ``spdocvqa_qas/``
    subfolder, or parquet. ``images_dir`` overrides where the images are. The test split ships without
    answers: its items have ``answers == []`` (score them on the RRC server).
    """
    _check_limit(limit)
    base = Path(root)
    img_dir = Path(images_dir) if images_dir is not None else None
    parquet = _parquet_files("docvqa", base, [_HF_SPLIT.get(split, split), split])
    if parquet:
        items: list[EvalItem] = []
        for i, rec in enumerate(_read_parquet("docvqa", parquet)):
            where = f"{parquet[0]} row {i}"
            items.append(
                EvalItem(
                    id=str(_field("docvqa", where, rec, "questionId")),
                    task="docvqa",
                    question=str(_field("docvqa", where, rec, "question")),
                    answers=_answer_list(rec.get("answers") or []),
                    image_path=_parquet_image("docvqa", rec.get("image"), parquet, img_dir, where),
                    meta={k: rec[k] for k in _DOCVQA_META if rec.get(k) is not None},
                )
            )
        return _finish("docvqa", items, limit, check_images, split=split, sources=parquet)
    name, qt_name = f"{split}_v1.0.json", f"{split}_v1.0_withQT.json"
    candidates = [base / name, base / split / name, base / "spdocvqa_qas" / qt_name, base / qt_name]
    path = base if base.is_file() else next((c for c in candidates if c.is_file()), candidates[0])
    data = _read_json("docvqa", path)
    records = data.get("data") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise InvalidInputError(f'docvqa: {path} should be {{"data": [...]}}; {DATASET_LAYOUTS["docvqa"]}')
    if img_dir is None and path.parent.name == "spdocvqa_qas":
        img_dir = path.parent.parent / "spdocvqa_images"
    items = []
    for i, rec in enumerate(records):
        where = f"{path} data[{i}]"
        qid = _field("docvqa", where, rec, "questionId")
        image = str(_field("docvqa", where, rec, "image"))
        # spdocvqa_images/ is flat: its files are the basenames of the JSON's "documents/xxx.png"
        image_path = img_dir / Path(image).name if img_dir is not None else path.parent / image
        items.append(
            EvalItem(
                id=str(qid),
                task="docvqa",
                question=str(_field("docvqa", where, rec, "question")),
                answers=_answer_list(rec.get("answers") or []),
                image_path=image_path,
                meta={k: rec[k] for k in _DOCVQA_META if k in rec},
            )
        )
    return _finish("docvqa", items, limit, check_images, split=split, sources=[path])


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
    split: str = "test",
    images_dir: str | Path | None = None,
    limit: int | None = None,
    check_images: bool = True,
) -> list[EvalItem]:
    """AI2D multiple choice from a JSONL export (``path`` is the file), the original release folder, or the
    lmms-lab/ai2d parquet export.

    Gold answers become option letters; a numeric ``answer`` is a 0-based option index (lmms-eval's
    convention). ``split`` picks the original layout's test ids ("all": every question) and the parquet
    split; a JSONL file is already one split.
    """
    _check_limit(limit)
    p = Path(path)
    img_dir = Path(images_dir) if images_dir is not None else None
    parquet = _parquet_files("ai2d", p, split)
    if parquet:
        items: list[EvalItem] = []
        for i, rec in enumerate(_read_parquet("ai2d", parquet)):
            where = f"{parquet[0]} row {i}"
            options = [str(o) for o in _field("ai2d", where, rec, "options")]
            try:
                letter = answer_letter(_field("ai2d", where, rec, "answer"), options)
            except InvalidInputError as exc:
                raise InvalidInputError(f"ai2d: {where}: {exc}") from exc
            items.append(
                EvalItem(
                    id=f"ai2d-{i}",
                    task="ai2d",
                    question=str(_field("ai2d", where, rec, "question")),
                    answers=[letter],
                    options=options,
                    image_path=_parquet_image("ai2d", rec.get("image"), parquet, img_dir, where),
                    meta={"answer_text": options[_LETTERS.index(letter)]},
                )
            )
        return _finish("ai2d", items, limit, check_images, split=split, sources=parquet)
    if p.is_file():
        items, source = _ai2d_jsonl(p), p
    elif p.is_dir() and (p / "questions").is_dir():
        if split not in ("test", "all"):
            raise InvalidInputError(
                f"ai2d: split must be 'test' or 'all' for the original layout, got {split!r}"
            )
        items, source = _ai2d_original(p, split), p / "questions"  # type: ignore[arg-type]
    elif p.is_dir():
        jsonls = sorted(p.glob("*.jsonl"))
        if len(jsonls) != 1:
            raise InvalidInputError(
                f"ai2d: {p} has {len(jsonls)} .jsonl files, no parquet and no questions/ folder; pass "
                f"the file itself. Expected layouts: {DATASET_LAYOUTS['ai2d']}"
            )
        items, source = _ai2d_jsonl(jsonls[0]), jsonls[0]
    else:
        raise _missing("ai2d", p)
    sources = sorted(source.glob("*.json")) if source.is_dir() else [source]
    return _finish("ai2d", items, limit, check_images, split=split, sources=sources)


# ----------------------------------------------------------------------------------------------- OCRBench
def load_ocrbench(
    root: str | Path,
    *,
    split: str = "test",
    images_dir: str | Path | None = None,
    limit: int | None = None,
    check_images: bool = True,
) -> list[EvalItem]:
    """OCRBench's 1000 items: ``OCRBench.json`` (beside or under ``json_files/``) with ``OCRBench_Images/``,
    or the echo840/OCRBench parquet export.

    ``root`` may be the JSON file, its folder, the repository folder holding ``json_files/`` or
    ``OCRBench/``, or parquet; ``images_dir`` overrides the image root. The JSON's ``id`` repeats across
    source datasets, so items are numbered by position in their file (``ocrbench-<index>``); the resume key
    holds the file and its hash, so positions never collide across files. ``meta`` carries ``category``
    (the scoring category), ``dataset_name`` and the source ``source_id``.
    """
    _check_limit(limit)
    base = Path(root)
    img_dir = Path(images_dir) if images_dir is not None else None
    parquet = _parquet_files("ocrbench", base, split)
    if parquet:
        items: list[EvalItem] = []
        for i, rec in enumerate(_read_parquet("ocrbench", parquet)):
            where = f"{parquet[0]} row {i}"
            items.append(
                EvalItem(
                    id=f"ocrbench-{i}",
                    task="ocrbench",
                    question=str(_field("ocrbench", where, rec, "question")),
                    answers=_answer_list(_field("ocrbench", where, rec, "answer", "answers")),
                    image_path=_parquet_image("ocrbench", rec.get("image"), parquet, img_dir, where),
                    meta={
                        "category": str(_field("ocrbench", where, rec, "question_type", "type")),
                        "dataset_name": str(rec.get("dataset", rec.get("dataset_name", ""))),
                        "source_id": rec.get("id"),
                    },
                )
            )
        return _finish("ocrbench", items, limit, check_images, split=split, sources=parquet)
    candidates = [
        base / "OCRBench.json",
        base / "json_files" / "OCRBench.json",
        base / "OCRBench" / "OCRBench.json",
        base / "OCRBench" / "json_files" / "OCRBench.json",
    ]
    path = base if base.is_file() else next((c for c in candidates if c.is_file()), candidates[0])
    data = _read_json("ocrbench", path)
    if not isinstance(data, list):
        raise InvalidInputError(f"ocrbench: {path} should hold a JSON list; {DATASET_LAYOUTS['ocrbench']}")
    if img_dir is not None:
        img_root = img_dir
    else:
        found = [path.parent / "OCRBench_Images", path.parent.parent / "OCRBench_Images"]
        img_root = next((c for c in found if c.is_dir()), found[0])
    if check_images and not img_root.is_dir():
        raise _missing("ocrbench", img_root)
    items = []
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
    return _finish("ocrbench", items, limit, check_images, split=split, sources=[path])


# ----------------------------------------------------------------------------------------------- MathVista
def _mathvista_item(pid: str, rec: dict[str, Any], image_path: Path, where: str) -> EvalItem:
    """One MathVista problem; the prompt is the dataset's own ``query`` (question, choices and hint)."""
    choices = rec.get("choices")
    options = [str(c) for c in choices] if choices else None
    precision = rec.get("precision")
    if isinstance(precision, float) and precision != precision:  # NaN in parquet
        precision = None
    return EvalItem(
        id=str(pid),
        task="mathvista",
        question=str(_field("mathvista", where, rec, "query")),
        answers=_answer_list(_field("mathvista", where, rec, "answer")),
        options=options,
        image_path=image_path,
        meta={
            "question_type": str(_field("mathvista", where, rec, "question_type")),
            "answer_type": str(_field("mathvista", where, rec, "answer_type")),
            "precision": int(precision) if precision is not None else None,
            "unit": rec.get("unit"),
            "raw_question": rec.get("question"),
        },
    )


def load_mathvista(
    path: str | Path,
    *,
    split: str = "testmini",
    images_dir: str | Path | None = None,
    limit: int | None = None,
    check_images: bool = True,
) -> list[EvalItem]:
    """MathVista (testmini by default) from the AI4Math/MathVista parquet export or the GitHub
    ``<split>.json``; scored with :func:`~minimaxvl_tools.eval.metrics.mathvista_correct`.
    """
    _check_limit(limit)
    base = Path(path)
    img_dir = Path(images_dir) if images_dir is not None else None
    parquet = _parquet_files("mathvista", base, split)
    items: list[EvalItem] = []
    if parquet:
        for i, rec in enumerate(_read_parquet("mathvista", parquet)):
            where = f"{parquet[0]} row {i}"
            pid = _field("mathvista", where, rec, "pid")
            image = rec.get("decoded_image") or rec.get("image")
            items.append(
                _mathvista_item(pid, rec, _parquet_image("mathvista", image, parquet, img_dir, where), where)
            )
        return _finish("mathvista", items, limit, check_images, split=split, sources=parquet)
    jpath = (
        base
        if base.is_file()
        else next(
            (c for c in (base / f"{split}.json", base / "data" / f"{split}.json") if c.is_file()),
            base / f"{split}.json",
        )
    )
    data = _read_json("mathvista", jpath)
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"mathvista: {jpath} should map pid -> problem; {DATASET_LAYOUTS['mathvista']}"
        )
    for pid, rec in data.items():
        where = f"{jpath} pid {pid}"
        image = str(_field("mathvista", where, rec, "image"))
        items.append(_mathvista_item(pid, rec, (img_dir or jpath.parent) / image, where))
    return _finish("mathvista", items, limit, check_images, split=split, sources=[jpath])


# ----------------------------------------------------------------------------------------------- generic
_GENERIC_KEYS = {"id", "image", "question", "answers", "answer", "options", "page", "task"}


def load_jsonl(
    path: str | Path,
    *,
    task: str = "generic",
    split: str = "",
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
    return _finish("jsonl", items, limit, check_images, split=split, sources=[p])


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
    "mathvista": load_mathvista,
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
    """Read a benchmark by name (chartqa, docvqa, ai2d, ocrbench, mathvista, jsonl), then optionally sample.

    ``limit`` keeps the first N items of the file; ``sample_n`` then draws N of those with :func:`sample`.
    Extra keyword arguments go to the reader (``split=...``, ``check_images=False``, ...).
    """
    loader = _LOADERS.get(name.lower())
    if loader is None:
        raise InvalidInputError(f"unknown benchmark {name!r}; choose one of {sorted(_LOADERS)}")
    items = loader(path, limit=limit, **kwargs)
    return sample(items, sample_n, seed) if sample_n is not None else items
