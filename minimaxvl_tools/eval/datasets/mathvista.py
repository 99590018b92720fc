"""MathVista (testmini by default): the AI4Math/MathVista parquet export and the GitHub ``<split>.json``."""

from __future__ import annotations

from pathlib import Path

from typing_extensions import Unpack

from ...errors import InvalidInputError
from .common import DATASET_LAYOUTS, EvalItem, Layout, ReadOptions, Row, parquet_rows, read_json, read_layouts


def _item(pid: str, row: Row, image_path: Path) -> EvalItem:
    """One MathVista problem; the prompt is the dataset's own ``query`` (question, choices and hint)."""
    rec = row.data
    choices = rec.get("choices")
    options = [str(c) for c in choices] if choices else None
    precision = rec.get("precision")
    if isinstance(precision, float) and precision != precision:  # NaN in parquet
        precision = None
    return EvalItem(
        id=str(pid),
        task="mathvista",
        question=row.text("query"),
        answers=row.answers("answer"),
        options=options,
        image_path=image_path,
        meta={
            "question_type": row.text("question_type"),
            "answer_type": row.text("answer_type"),
            "precision": int(precision) if precision is not None else None,
            "unit": rec.get("unit"),
            "raw_question": rec.get("question"),
        },
    )


def _from_parquet(layout: Layout, files: list[Path]) -> list[EvalItem]:
    items: list[EvalItem] = []
    for _, row in parquet_rows("mathvista", files):
        pid = row.get("pid")
        items.append(_item(pid, row, row.image(files, layout.images_dir, "decoded_image", "image")))
    return items


def _from_json(layout: Layout) -> tuple[list[EvalItem], list[Path]]:
    base, split = layout.path, layout.split
    if base.is_file():
        jpath = base
    else:
        found = (base / f"{split}.json", base / "data" / f"{split}.json")
        jpath = next((c for c in found if c.is_file()), found[0])
    data = read_json("mathvista", jpath)
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"mathvista: {jpath} should map pid -> problem; {DATASET_LAYOUTS['mathvista']}"
        )
    items = []
    for pid, rec in data.items():
        row = Row("mathvista", f"{jpath} pid {pid}", rec)
        image = row.text("image")
        items.append(_item(pid, row, (layout.images_dir or jpath.parent) / image))
    return items, [jpath]


def load_mathvista(
    path: str | Path, *, split: str = "testmini", **options: Unpack[ReadOptions]
) -> list[EvalItem]:
    """MathVista (testmini by default) from the AI4Math/MathVista parquet export or the GitHub
    ``<split>.json``; scored with :func:`~minimaxvl_tools.eval.metrics.mathvista_correct`.
    """
    return read_layouts("mathvista", path, split, options, files=_from_json, parquet=_from_parquet)
