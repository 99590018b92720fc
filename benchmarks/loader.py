"""Loader throughput on a folder of one-page scans: ``lazy_load`` (sync) and ``alazy_load`` vs the ideal.

A folder of one-page PNG scans (letter pages rendered at 150 dpi) goes through
:class:`~minimaxvl_tools.loaders.MiniMaxVLDocumentLoader` in ``vlm`` mode (no cache, no rotation check)
against :class:`LocalVLLMServer` in a child process with a fixed 0.5 s per request and 16 slots, client
``max_concurrency`` 16: the ideal is 32 pages/s. Pages overlap across files (each file has one page), so
this measures the loader's pipeline, not one PDF's. For reference the same loader one page at a time
(``max_concurrency`` 1, the behaviour before pages overlapped) on fewer files. Target: sync
``lazy_load`` >= 0.80 of ideal (it renders and encodes on worker threads of one 2-core process).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .common import BenchResult, Row, make_client, make_text_pdf, server_subprocess

if TYPE_CHECKING:
    from minimaxvl_tools.loaders import MiniMaxVLDocumentLoader

LATENCY = 0.5
SLOTS = 16
DPI = 150


def _scans(folder: Path, n: int) -> None:
    """``n`` one-page PNG scans of distinct text pages (rendered from a generated PDF)."""
    from minimaxvl_tools.pdf import iter_pdf_pages

    pdf = folder.parent / "source.pdf"
    make_text_pdf(pdf, n, font_size=11, page_format="letter", ttf=False)
    for page in iter_pdf_pages(pdf, dpi=DPI):
        assert page.image is not None
        page.image.convert("L").save(folder / f"scan_{page.number:04d}.png")


def _loader(paths: list[Path], port: int, concurrency: int) -> MiniMaxVLDocumentLoader:
    from minimaxvl_tools.loaders import MiniMaxVLDocumentLoader

    return MiniMaxVLDocumentLoader(
        paths, mode="vlm", client=make_client(port, concurrency), use_cache=False, detect_rotation=False
    )


def _sync(folder: Path, port: int, concurrency: int, limit: int | None = None) -> tuple[float, int]:
    """Wall seconds and pages of ``lazy_load`` over the folder's files (or its first ``limit``)."""
    ld = _loader(sorted(folder.iterdir())[:limit], port, concurrency)
    t0 = time.perf_counter()
    docs = list(ld.lazy_load())
    wall = time.perf_counter() - t0
    if any(d.metadata["status"] != "ok" for d in docs):
        raise RuntimeError(f"loader run is not valid: {[d.metadata['status'] for d in docs]}")
    return wall, len(docs)


async def _async(folder: Path, port: int, concurrency: int) -> tuple[float, int]:
    ld = _loader(sorted(folder.iterdir()), port, concurrency)
    t0 = time.perf_counter()
    docs = [d async for d in ld.alazy_load()]
    wall = time.perf_counter() - t0
    if any(d.metadata["status"] != "ok" for d in docs):
        raise RuntimeError("async loader run is not valid")
    return wall, len(docs)


def run(quick: bool = False, *, files: int | None = None, seq_files: int | None = None) -> BenchResult:
    """Measure the loader's pages/s on one-page files against the 0.5 s / 16-slot server."""
    logging.getLogger("minimaxvl_tools").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    n = files or (48 if quick else 128)
    seq_n = seq_files or (8 if quick else 16)
    ideal = SLOTS / LATENCY
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "scans"
        folder.mkdir()
        _scans(folder, n)
        with server_subprocess(latency=LATENCY, slots=SLOTS) as port:
            _sync(folder, port, SLOTS, limit=2)  # warm: imports, connection, /v1/models
            sync_wall, sync_pages = _sync(folder, port, SLOTS)
            async_wall, async_pages = asyncio.run(_async(folder, port, SLOTS))
            seq_wall, seq_pages = _sync(folder, port, 1, limit=seq_n)
    sync_rate, async_rate, seq_rate = sync_pages / sync_wall, async_pages / async_wall, seq_pages / seq_wall
    raw = "\n".join(
        [
            f"folder of {n} one-page PNG scans (letter at {DPI} dpi, gray), loader mode vlm, no cache, "
            f"no rotation check; server (child process) {LATENCY} s/request, {SLOTS} slots -> ideal "
            f"{ideal:.1f} pages/s; client max_concurrency {SLOTS}",
            f"lazy_load (worker threads): {sync_pages} pages in {sync_wall:.2f} s -> {sync_rate:.2f} pages/s "
            f"= {sync_rate / ideal:.3f} of ideal",
            f"alazy_load: {async_pages} pages in {async_wall:.2f} s -> {async_rate:.2f} pages/s "
            f"= {async_rate / ideal:.3f} of ideal",
            f"lazy_load one page at a time (max_concurrency 1), {seq_pages} files: {seq_wall:.2f} s -> "
            f"{seq_rate:.2f} pages/s; lazy_load now / one at a time = {sync_rate / seq_rate:.1f}x",
        ]
    )
    rows = [
        Row(
            "loader: lazy_load, one-page files vs ideal (0.5 s, 16 slots)",
            sync_rate,
            ideal,
            "pages/s",
            ">=",
            0.8,
        ),
        Row("loader: alazy_load, one-page files (info)", async_rate, ideal, "pages/s", "info"),
        Row("loader: lazy_load vs one page at a time (info)", sync_rate, seq_rate, "pages/s", "info"),
    ]
    details = {
        "sync_pages_per_s": sync_rate,
        "async_pages_per_s": async_rate,
        "sequential_pages_per_s": seq_rate,
    }
    return BenchResult("loader", rows, raw, time.perf_counter() - t0, details)
