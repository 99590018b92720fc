"""ChartQA: the GitHub release (``<split>/<split>_{human,augmented}.json`` + ``<split>/png``) and the
lmms-lab/ChartQA parquet export."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from typing_extensions import Unpack

from ...errors import InvalidInputError
from .common import EvalItem, Layout, ReadOptions, Row, missing, parquet_rows, read_json, read_layouts

_CHARTQA_TYPES = {
    "human_test": "human",
    "augmented_test": "augmented",
    "human": "human",
    "augmented": "augmented",
}
Subset = Literal["human", "augmented"]


def _item(row: Row, subset: str, index: int, image_path: Path, meta: dict[str, str]) -> EvalItem:
    """One ChartQA question; ChartQA has no question ids, so items are ``<subset>-<index>``."""
    return EvalItem(
        id=f"{subset}-{index}",
        task="chartqa",
        question=row.text("question", "query"),
        answers=row.answers("answer", "label"),
        image_path=image_path,
        meta={"subset": subset, **meta},
    )


def load_chartqa(
    root: str | Path,
    *,
    split: str = "test",
    subsets: Sequence[Subset] = ("human", "augmented"),
    **options: Unpack[ReadOptions],
) -> list[EvalItem]:
    """ChartQA from its GitHub release folder (``<split>/<split>_{human,augmented}.json`` + ``<split>/png``)
    or the lmms-lab/ChartQA parquet export.

    ``root`` may be the release folder (holding ``test/``), the split folder itself, a parquet file or a
    folder of them. Items are numbered ``<subset>-<index>`` since ChartQA has no question ids;
    ``meta["subset"]`` tells human from augmented, which the report shows separately (the headline number
    is the mean over all items).
    """
    for subset in subsets:
        if subset not in ("human", "augmented"):
            raise InvalidInputError(f"chartqa subset must be 'human' or 'augmented', got {subset!r}")

    def from_parquet(layout: Layout, files: list[Path]) -> list[EvalItem]:
        """lmms-lab/ChartQA: one row per question, ``type`` telling human from augmented."""
        items: list[EvalItem] = []
        counts: dict[str, int] = {}
        for _, row in parquet_rows("chartqa", files):
            kind = row.text("type")
            subset = _CHARTQA_TYPES.get(kind, kind.removesuffix(f"_{split}"))
            if subset not in subsets:
                continue
            n = counts.get(subset, 0)
            counts[subset] = n + 1
            image = row.image(files, layout.images_dir, "image")
            items.append(_item(row, subset, n, image, {"type": kind}))
        return items

    def from_release(layout: Layout) -> tuple[list[EvalItem], list[Path]]:
        base = layout.path
        split_dir = base / split if (base / split).is_dir() else base
        if not split_dir.is_dir():
            raise missing("chartqa", split_dir)
        items: list[EvalItem] = []
        paths: list[Path] = []
        for subset in subsets:
            path = split_dir / f"{split}_{subset}.json"
            paths.append(path)
            data = read_json("chartqa", path)
            if not isinstance(data, list):
                raise InvalidInputError(f"chartqa: {path} should hold a JSON list of question records")
            for i, rec in enumerate(data):
                row = Row("chartqa", f"{path} item {i}", rec)
                img = row.text("imgname")
                image = (layout.images_dir or split_dir / "png") / img
                items.append(_item(row, subset, i, image, {"imgname": img}))
        return items, paths

    release = (Path(root) / split).is_dir()  # a release folder is read as such even beside parquet files
    return read_layouts(
        "chartqa", root, split, options, files=from_release, parquet=None if release else from_parquet
    )
