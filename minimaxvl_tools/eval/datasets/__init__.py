"""Readers for the benchmarks' published local file layouts, yielding one :class:`EvalItem` per question.

Nothing here downloads anything: point a reader at a folder you already have. Each reader accepts the
original release and the Hugging Face parquet export (read with pyarrow, the ``eval`` extra; images stored
as ``{bytes, path}`` structs are written once, content-addressed, to an ``<file>.images/`` folder beside the
parquet or to ``images_dir``). A missing file or folder raises
:class:`~minimaxvl_tools.errors.InvalidInputError` naming the path and every layout the reader accepts.
Every item carries its split, its data file and that file's SHA-256, which key the runner's resume.
``limit`` keeps the first N items in file order; :func:`sample` picks a seeded, reproducible subset.

One module per family of layouts (:mod:`.chartqa`, :mod:`.docvqa`, :mod:`.ai2d`, :mod:`.ocrbench`,
:mod:`.mathvista`, :mod:`.generic` for JSONL and ``ocr-cer`` PDFs), over the reading code they share
(:mod:`.common`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import InvalidInputError
from .ai2d import load_ai2d
from .chartqa import load_chartqa
from .common import DATASET_LAYOUTS, EvalItem, ReadOptions, file_sha256, sample
from .docvqa import load_docvqa
from .generic import load_jsonl, load_ocr_cer
from .mathvista import load_mathvista
from .ocrbench import load_ocrbench

__all__ = [
    "DATASET_LAYOUTS",
    "EvalItem",
    "ReadOptions",
    "file_sha256",
    "load_ai2d",
    "load_benchmark",
    "load_chartqa",
    "load_docvqa",
    "load_jsonl",
    "load_mathvista",
    "load_ocr_cer",
    "load_ocrbench",
    "sample",
]

_LOADERS: dict[str, Callable[..., list[EvalItem]]] = {
    "chartqa": load_chartqa,
    "docvqa": load_docvqa,
    "ai2d": load_ai2d,
    "ocrbench": load_ocrbench,
    "mathvista": load_mathvista,
    "ocr-cer": load_ocr_cer,
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
    """Read a task's items by name (chartqa, docvqa, ai2d, ocrbench, mathvista, ocr-cer, jsonl), then
    optionally sample.

    ``limit`` keeps the first N items of the file; ``sample_n`` then draws N of those with :func:`sample`.
    Extra keyword arguments go to the reader (``split=...``, ``check_images=False``, ...).
    """
    loader = _LOADERS.get(name.lower())
    if loader is None:
        raise InvalidInputError(f"unknown benchmark {name!r}; choose one of {sorted(_LOADERS)}")
    items = loader(path, limit=limit, **kwargs)
    return sample(items, sample_n, seed) if sample_n is not None else items
