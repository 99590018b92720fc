"""OCRBench's 1000 items: ``OCRBench.json`` (beside or under ``json_files/``) with ``OCRBench_Images/``, and
the echo840/OCRBench parquet export."""

from __future__ import annotations

from pathlib import Path

from typing_extensions import Unpack

from ...errors import InvalidInputError
from .common import (
    DATASET_LAYOUTS,
    EvalItem,
    Layout,
    ReadOptions,
    Row,
    missing,
    parquet_rows,
    read_json,
    read_layouts,
)


def _item(row: Row, index: int, image_path: Path) -> EvalItem:
    """One item, numbered by its position in the file (the source ``id`` repeats across datasets)."""
    return EvalItem(
        id=f"ocrbench-{index}",
        task="ocrbench",
        question=row.text("question"),
        answers=row.answers("answer", "answers"),
        image_path=image_path,
        meta={
            "category": row.text("question_type", "type"),
            "dataset_name": str(row.data.get("dataset", row.data.get("dataset_name", ""))),
            "source_id": row.data.get("id"),
        },
    )


def _from_parquet(layout: Layout, files: list[Path]) -> list[EvalItem]:
    rows = parquet_rows("ocrbench", files)
    return [_item(row, i, row.image(files, layout.images_dir, "image")) for i, row in rows]


def _from_json(layout: Layout) -> tuple[list[EvalItem], list[Path]]:
    base = layout.path
    candidates = [
        base / "OCRBench.json",
        base / "json_files" / "OCRBench.json",
        base / "OCRBench" / "OCRBench.json",
        base / "OCRBench" / "json_files" / "OCRBench.json",
    ]
    path = base if base.is_file() else next((c for c in candidates if c.is_file()), candidates[0])
    data = read_json("ocrbench", path)
    if not isinstance(data, list):
        raise InvalidInputError(f"ocrbench: {path} should hold a JSON list; {DATASET_LAYOUTS['ocrbench']}")
    if layout.images_dir is not None:
        img_root = layout.images_dir
    else:
        found = [path.parent / "OCRBench_Images", path.parent.parent / "OCRBench_Images"]
        img_root = next((c for c in found if c.is_dir()), found[0])
    if layout.check_images and not img_root.is_dir():
        raise missing("ocrbench", img_root)
    items = []
    for i, rec in enumerate(data):
        row = Row("ocrbench", f"{path} item {i}", rec)
        items.append(_item(row, i, img_root / row.text("image_path")))
    return items, [path]


def load_ocrbench(root: str | Path, *, split: str = "test", **options: Unpack[ReadOptions]) -> list[EvalItem]:
    """OCRBench's 1000 items: ``OCRBench.json`` (beside or under ``json_files/``) with ``OCRBench_Images/``,
    or the echo840/OCRBench parquet export.

    ``root`` may be the JSON file, its folder, the repository folder holding ``json_files/`` or
    ``OCRBench/``, or parquet; ``images_dir`` overrides the image root. The JSON's ``id`` repeats across
    source datasets, so items are numbered by position in their file (``ocrbench-<index>``); the resume key
    holds the file and its hash, so positions never collide across files. ``meta`` carries ``category``
    (the scoring category), ``dataset_name`` and the source ``source_id``.
    """
    return read_layouts("ocrbench", root, split, options, files=_from_json, parquet=_from_parquet)
