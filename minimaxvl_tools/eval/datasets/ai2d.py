"""AI2D multiple choice: a JSONL export (lmms-eval style), the original release (``questions/*.json`` +
``images/``), and the lmms-lab/ai2d parquet export. Gold answers become option letters."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Literal

from typing_extensions import Unpack

from ...errors import InvalidInputError
from ..metrics import answer_letter
from .common import (
    DATASET_LAYOUTS,
    EvalItem,
    Layout,
    ReadOptions,
    Row,
    jsonl_rows,
    missing,
    parquet_rows,
    read_json,
    read_layouts,
)

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _item(
    row: Row, id: str, options: list[str], letter: str, image_path: Path, meta: dict[str, Any] | None = None
) -> EvalItem:
    """One AI2D question; ``meta`` keeps the gold option's text."""
    return EvalItem(
        id=id,
        task="ai2d",
        question=row.text("question"),
        answers=[letter],
        options=options,
        image_path=image_path,
        meta={**(meta or {}), "answer_text": options[_LETTERS.index(letter)]},
    )


def _from_parquet(layout: Layout, files: list[Path]) -> list[EvalItem]:
    """lmms-lab/ai2d: ``answer`` is a 0-based option index."""
    items: list[EvalItem] = []
    for i, row in parquet_rows("ai2d", files):
        options = [str(o) for o in row.get("options")]
        letter = row.letter(row.get("answer"), options)
        items.append(_item(row, f"ai2d-{i}", options, letter, row.image(files, layout.images_dir, "image")))
    return items


def _from_jsonl(path: Path) -> list[EvalItem]:
    """AI2D exported as JSONL (lmms-eval style): question, options, answer index/letter, image path."""
    items: list[EvalItem] = []
    for lineno, row in jsonl_rows("ai2d", path):
        options = row.get("options", "choices")
        if not isinstance(options, list) or not options:
            raise InvalidInputError(f"ai2d: {row.where}: 'options' must be a non-empty list")
        options = [str(o) for o in options]
        letter = row.letter(row.get("answer"), options)
        item_id = str(row.data.get("id", row.data.get("question_id", f"ai2d-{lineno}")))
        image = path.parent / row.text("image", "image_path")
        items.append(_item(row, item_id, options, letter, image))
    return items


def _from_original(root: Path, split: Literal["test", "all"]) -> list[EvalItem]:
    """AI2D's own release: ``questions/<image>.json`` holding every question about ``images/<image>``."""
    qdir = root / "questions"
    if not qdir.is_dir():
        raise missing("ai2d", qdir)
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
        image_file = Row("ai2d", str(qfile), read_json("ai2d", qfile))
        image_name = image_file.text("imageName")
        if test_ids is not None and image_name.split(".")[0] not in test_ids:
            continue
        for text, q in image_file.get("questions").items():
            row = Row("ai2d", f"{qfile} question {text!r}", {**q, "question": text})
            options = [str(o) for o in row.get("answerTexts")]
            correct = row.get("correctAnswer")
            try:
                letter = answer_letter(int(correct), options)
            except (InvalidInputError, ValueError) as exc:
                raise InvalidInputError(f"ai2d: {row.where}: bad correctAnswer {correct!r} ({exc})") from exc
            item_id = str(q.get("questionId", f"{image_name}-{len(items)}"))
            meta = {"abc_label": bool(q.get("abcLabel", False))}
            items.append(_item(row, item_id, options, letter, root / "images" / image_name, meta))
    return items


def _from_files(layout: Layout) -> tuple[list[EvalItem], list[Path]]:
    """The JSONL file, the original release folder, or a folder holding exactly one JSONL file."""
    p, split = layout.path, layout.split
    if p.is_file():
        return _from_jsonl(p), [p]
    if p.is_dir() and (p / "questions").is_dir():
        if split not in ("test", "all"):
            raise InvalidInputError(
                f"ai2d: split must be 'test' or 'all' for the original layout, got {split!r}"
            )
        return _from_original(p, split), sorted((p / "questions").glob("*.json"))  # type: ignore[arg-type]
    if p.is_dir():
        jsonls = sorted(p.glob("*.jsonl"))
        if len(jsonls) != 1:
            raise InvalidInputError(
                f"ai2d: {p} has {len(jsonls)} .jsonl files, no parquet and no questions/ folder; pass "
                f"the file itself. Expected layouts: {DATASET_LAYOUTS['ai2d']}"
            )
        return _from_jsonl(jsonls[0]), jsonls[0:1]
    raise missing("ai2d", p)


def load_ai2d(path: str | Path, *, split: str = "test", **options: Unpack[ReadOptions]) -> list[EvalItem]:
    """AI2D multiple choice from a JSONL export (``path`` is the file), the original release folder, or the
    lmms-lab/ai2d parquet export.

    Gold answers become option letters; a numeric ``answer`` is a 0-based option index (lmms-eval's
    convention). ``split`` picks the original layout's test ids ("all": every question) and the parquet
    split; a JSONL file is already one split. ``options``: ``images_dir``, ``limit``, ``check_images``.
    """
    return read_layouts("ai2d", path, split, options, files=_from_files, parquet=_from_parquet)
