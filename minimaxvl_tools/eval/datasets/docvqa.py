"""DocVQA (single-page task): the official ``<split>_v1.0.json`` + ``documents/``, the newer
``spdocvqa_qas/<split>_v1.0_withQT.json`` + ``spdocvqa_images/``, and the lmms-lab/DocVQA parquet export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typing_extensions import Unpack

from ...errors import InvalidInputError
from .common import (
    DATASET_LAYOUTS,
    EvalItem,
    Layout,
    ReadOptions,
    Row,
    answer_list,
    parquet_rows,
    read_json,
    read_layouts,
)

_DOCVQA_META = ("docId", "question_types", "ucsf_document_id", "ucsf_document_page_no", "data_split")
_HF_SPLIT = {"val": "validation", "validation": "validation", "test": "test", "train": "train"}


def _item(row: Row, image_path: Path, meta: dict[str, Any]) -> EvalItem:
    """One DocVQA question; the test split ships without answers (``answers == []``)."""
    return EvalItem(
        id=row.text("questionId"),
        task="docvqa",
        question=row.text("question"),
        answers=answer_list(row.data.get("answers") or []),
        image_path=image_path,
        meta=meta,
    )


def _from_parquet(layout: Layout, files: list[Path]) -> list[EvalItem]:
    items = []
    for _, row in parquet_rows("docvqa", files):
        meta = {k: row.data[k] for k in _DOCVQA_META if row.data.get(k) is not None}
        items.append(_item(row, row.image(files, layout.images_dir, "image"), meta))
    return items


def _from_release(layout: Layout) -> tuple[list[EvalItem], list[Path]]:
    base, split, img_dir = layout.path, layout.split, layout.images_dir
    name, qt_name = f"{split}_v1.0.json", f"{split}_v1.0_withQT.json"
    candidates = [base / name, base / split / name, base / "spdocvqa_qas" / qt_name, base / qt_name]
    path = base if base.is_file() else next((c for c in candidates if c.is_file()), candidates[0])
    data = read_json("docvqa", path)
    records = data.get("data") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise InvalidInputError(f'docvqa: {path} should be {{"data": [...]}}; {DATASET_LAYOUTS["docvqa"]}')
    if img_dir is None and path.parent.name == "spdocvqa_qas":
        img_dir = path.parent.parent / "spdocvqa_images"
    items = []
    for i, rec in enumerate(records):
        row = Row("docvqa", f"{path} data[{i}]", rec)
        image = row.text("image")
        # spdocvqa_images/ is flat: its files are the basenames of the JSON's "documents/xxx.png"
        image_path = img_dir / Path(image).name if img_dir is not None else path.parent / image
        items.append(_item(row, image_path, {k: rec[k] for k in _DOCVQA_META if k in rec}))
    return items, [path]


def load_docvqa(root: str | Path, *, split: str = "val", **options: Unpack[ReadOptions]) -> list[EvalItem]:
    """DocVQA (single-page task): the official ``<split>_v1.0.json`` + ``documents/``, the newer
    ``spdocvqa_qas/<split>_v1.0_withQT.json`` + ``spdocvqa_images/``, or the lmms-lab/DocVQA parquet export.

    ``root`` may be the JSON file, the folder holding it, a folder with a ``<split>/`` or ``spdocvqa_qas/``
    subfolder, or parquet. ``images_dir`` (``options``, with ``limit`` and ``check_images``) overrides where
    the images are. The test split ships without answers: its items have ``answers == []`` (score them on
    the RRC server).
    """
    hf_split = [_HF_SPLIT.get(split, split), split]
    return read_layouts(
        "docvqa", root, split, options, files=_from_release, parquet=_from_parquet, parquet_split=hf_split
    )
