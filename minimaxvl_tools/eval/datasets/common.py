"""The reading code every dataset reader shares: :class:`EvalItem`, the layouts quoted in errors, JSON,
JSONL and parquet records (:class:`Row`), images stored in parquet, limits, hashes, and :func:`sample`.

:func:`read_layouts` is the one skeleton of a reader: the parquet export when ``path`` holds one, the
release's own files otherwise, then the limit, split, data-file hash and image check on every item.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from ...errors import InvalidInputError
from ...hashing import file_digest
from ..metrics import answer_letter

__all__ = [
    "DATASET_LAYOUTS",
    "EvalItem",
    "Layout",
    "ReadOptions",
    "Row",
    "file_sha256",
    "read_layouts",
    "sample",
]


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
def missing(kind: str, path: Path) -> InvalidInputError:
    """The error for an absent file or folder, naming it and the layout that was expected."""
    return InvalidInputError(f"{kind}: {path} does not exist; expected layout: {DATASET_LAYOUTS[kind]}")


def read_json(kind: str, path: Path) -> Any:
    """Parse a JSON file, turning I/O and syntax errors into InvalidInputError naming the file."""
    if not path.is_file():
        raise missing(kind, path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{kind}: cannot read {path} as JSON ({exc})") from exc


def jsonl_rows(kind: str, path: Path) -> Iterator[tuple[int, Row]]:
    """``(line number, record)`` for each non-blank line of a JSONL file."""
    if not path.is_file():
        raise missing(kind, path)
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
        yield lineno, Row(kind, f"{path} line {lineno}", obj)


@dataclass(frozen=True)
class Row:
    """One record of a data file: its fields, where it is (named in errors) and the reader reading it."""

    kind: str
    where: str
    data: dict[str, Any]

    def get(self, *names: str) -> Any:
        """The first present field among ``names``; a missing one is an error naming the record."""
        for name in names:
            if name in self.data and self.data[name] is not None:
                return self.data[name]
        raise InvalidInputError(f"{self.kind}: {self.where} has no {' / '.join(map(repr, names))} field")

    def text(self, *names: str) -> str:
        """:meth:`get` as a string."""
        return str(self.get(*names))

    def answers(self, *names: str) -> list[str]:
        """:meth:`get` as a list of gold answer strings."""
        return answer_list(self.get(*names))

    def letter(self, answer: Any, options: Sequence[str]) -> str:
        """The option letter of a gold ``answer`` (index, letter or text); a bad one names the record."""
        try:
            return answer_letter(answer, options)
        except (InvalidInputError, ValueError) as exc:
            raise InvalidInputError(f"{self.kind}: {self.where}: {exc}") from exc

    def image(self, files: Sequence[Path], images_dir: Path | None, *names: str) -> Path:
        """The image of a parquet row (the first present column of ``names``), written out once."""
        value = next((self.data[n] for n in names if self.data.get(n)), None)
        return _parquet_image(self.kind, value, files, images_dir, self.where)


def answer_list(value: Any) -> list[str]:
    """Gold answers as a list of strings (a single answer may be stored as a bare string or number)."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def check_limit(limit: int | None) -> None:
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


def finish(
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


class ReadOptions(TypedDict, total=False):
    """The keyword options every benchmark reader takes besides its path and split."""

    images_dir: str | Path | None
    limit: int | None
    check_images: bool


@dataclass(frozen=True)
class Layout:
    """What a reader's layout functions are given: the dataset path and split, the image folder override
    (``images_dir``) and whether missing images are an error."""

    kind: str
    path: Path
    split: str
    images_dir: Path | None
    check_images: bool


def read_layouts(
    kind: str,
    path: str | Path,
    split: str,
    options: ReadOptions,
    *,
    files: Callable[[Layout], tuple[list[EvalItem], Sequence[Path]]],
    parquet: Callable[[Layout, list[Path]], list[EvalItem]] | None = None,
    parquet_split: str | Sequence[str] | None = None,
) -> list[EvalItem]:
    """The items of ``kind`` at ``path``: from its parquet export when ``path`` holds one for the split
    (``parquet``, given the files of ``parquet_split``, default ``split``), else from the release's own
    files (``files`` returns the items and the data files they came from); limit, stamps and checks last.
    """
    unknown = sorted(set(options) - set(ReadOptions.__annotations__))
    if unknown:
        raise TypeError(f"load_{kind}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}")
    limit = options.get("limit")
    check_limit(limit)
    images_dir = options.get("images_dir")
    img_dir = Path(images_dir) if images_dir is not None else None
    layout = Layout(kind, Path(path), split, img_dir, options.get("check_images", True))
    found = _parquet_files(kind, layout.path, parquet_split or split) if parquet is not None else None
    if parquet is not None and found:
        items, sources = parquet(layout, found), found
    else:
        items, sources = files(layout)
    return finish(kind, items, limit, layout.check_images, split=split, sources=sources)


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(paths: Sequence[Path]) -> str:
    """SHA-256 over the contents of ``paths`` in order (cached per path, size and mtime within a process)."""
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        digest = _HASHES.get(key)
        if digest is None:
            digest = _HASHES[key] = file_digest(p)
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


def parquet_rows(kind: str, files: Sequence[Path]) -> Iterator[tuple[int, Row]]:
    """``(index, row)`` for the rows of ``files``, a record batch at a time (pyarrow, the ``eval`` extra)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is in the eval and dev extras
        raise InvalidInputError(
            f"{kind}: reading parquet needs pyarrow: pip install 'minimaxvl-tools[eval]'"
        ) from exc
    index = 0
    for f in files:
        try:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=256):
                for rec in batch.to_pylist():
                    yield index, Row(kind, f"{files[0]} row {index}", rec)
                    index += 1
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
