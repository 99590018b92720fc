"""The parts of Ray ingest that need no cluster: splitting files into page tasks, reading by URI or by
file-system bytes, and shards (JSONL as local ingest writes it; Parquet with one schema for all shards)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from minimaxvl_tools.distributed import ray_ingest as ri
from minimaxvl_tools.errors import AccessDeniedError
from minimaxvl_tools.images.policy import InputPolicy
from minimaxvl_tools.settings import Settings
from minimaxvl_tools.testing.server import LocalVLLMServer, Reply


def _opts(tmp_path: Path, pages_per_task: int = 2, **kw: Any) -> ri._Options:
    kw.setdefault("mode", "text-layer")
    kw.setdefault("settings", None)
    return ri._Options(
        dpi=72,
        plain=False,
        fallbacks=(),
        detect_rotation=False,
        cache_dir=str(tmp_path / "cache"),
        policy=None,
        pages_per_task=pages_per_task,
        staging=str(tmp_path / "staging"),
        output="jsonl",
        **kw,
    )


def _pdf(pages: int) -> bytes:
    doc = FPDF()
    doc.set_font("helvetica", size=12)
    for i in range(pages):
        doc.add_page()
        doc.cell(0, 10, f"page {i + 1}")
    return bytes(doc.output())


def test_split_into_page_tasks_and_corrupt_files(tmp_path: Path) -> None:
    rows = ri._split({"bytes": _pdf(5), "path": "/d/a.pdf"}, _opts(tmp_path))
    assert [r["pages"] for r in rows] == [[1, 2], [3, 4], [5]]
    assert len({r["digest"] for r in rows}) == 1 and all(r["count"] == 5 for r in rows)
    assert all(r["data"] == b"" for r in rows)  # several tasks re-read the file, no copies
    (one,) = ri._split({"bytes": _pdf(1), "path": "/d/b.pdf"}, _opts(tmp_path))
    assert one["data"].startswith(b"%PDF") and one["raw"] == b"/d/b.pdf"
    (bad,) = ri._split({"bytes": b"\x89PNG\r\n\x1a\n broken", "path": "/d/c.png"}, _opts(tmp_path))
    assert bad["pages"] == [] and "MediaError" in bad["error"]


def test_text_layer_pages_through_the_worker_and_the_cache(tmp_path: Path) -> None:
    src = tmp_path / "a.pdf"
    src.write_bytes(_pdf(3))
    opts = _opts(tmp_path)
    worker = ri._PageWorker(opts)
    rows = ri._split({"bytes": src.read_bytes(), "path": str(src)}, opts)
    recs = [json.loads(r["record"]) for r in worker(rows)]
    assert [(r["page"], r["text"].strip()) for r in recs] == [(1, "page 1"), (2, "page 2"), (3, "page 3")]
    assert {r["metadata"]["cached"] for r in recs} == {False}
    again = [json.loads(r["record"]) for r in worker(rows)]
    assert [r["text"] for r in again] == [r["text"] for r in recs]
    assert {r["metadata"]["cached"] for r in again} == {True}
    assert {r["metadata"]["total_pages"] for r in again} == {3}


def _scan_pdf(pages: int) -> bytes:
    """Image-only pages (no text layer), so every page goes to the model."""
    from PIL import Image, ImageDraw

    doc = FPDF(unit="pt", format=(612, 792))
    for i in range(pages):
        img = Image.new("RGB", (612, 792), "white")
        ImageDraw.Draw(img).text((60, 60), f"scanned page {i + 1} with a few words", fill="black")
        doc.add_page()
        doc.image(img, x=0, y=0, w=612, h=792)
    return bytes(doc.output())


def test_a_page_task_keeps_its_page_work_to_its_cpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # task_cpus=1: one page rendered or prepared at a time in the task, while its requests overlap
    import minimaxvl_tools.pages.pipeline as pipeline

    busy = {"now": 0, "peak": 0}
    lock = threading.Lock()
    real = pipeline.prepare_deferred

    def prepare(*a: Any, **kw: Any) -> Any:
        with lock:
            busy["now"] += 1
            busy["peak"] = max(busy["peak"], busy["now"])
        try:
            time.sleep(0.02)
            return real(*a, **kw)
        finally:
            with lock:
                busy["now"] -= 1

    monkeypatch.setattr(pipeline, "prepare_deferred", prepare)
    with LocalVLLMServer() as server:
        server.set_responder(lambda body: Reply(text="# scanned page", delay=0.2))
        settings = Settings(base_url=server.base_url, max_concurrency=4, max_retries=0)
        src = tmp_path / "scan.pdf"
        src.write_bytes(_scan_pdf(4))
        opts = _opts(tmp_path, 4, mode="vlm", settings=settings, threads=4, task_cpus=1)
        assert opts.loader().page_threads == 1
        (row,) = ri._split({"bytes": src.read_bytes(), "path": str(src)}, opts)
        recs = [json.loads(r["record"]) for r in ri._PageWorker(opts)([row])]
        assert [(r["page"], r["metadata"]["status"]) for r in recs] == [(n, "ok") for n in range(1, 5)]
        assert busy["peak"] == 1
        assert server.max_running >= 3


def test_one_page_files_of_a_batch_are_in_flight_together(tmp_path: Path) -> None:
    # a batch of task rows shares one window: six one-page files keep several requests in flight, and a
    # corrupt file among them is one failed record in its place
    with LocalVLLMServer() as server:
        server.set_responder(lambda body: Reply(text="# one page", delay=0.3))
        settings = Settings(base_url=server.base_url, max_concurrency=4, max_retries=0)
        opts = _opts(tmp_path, 8, mode="vlm", settings=settings, threads=4)
        rows = []
        for i in range(6):
            src = tmp_path / f"scan{i}.pdf"
            src.write_bytes(_scan_pdf(1) if i != 2 else b"%PDF-1.4 broken")
            rows += ri._split({"bytes": src.read_bytes(), "path": str(src)}, opts)
        recs = [json.loads(r["record"]) for r in ri._PageWorker(opts)(rows)]
        assert [Path(r["source"]).name for r in recs] == [f"scan{i}.pdf" for i in range(6)]
        assert [r["metadata"]["status"] for r in recs] == ["ok", "ok", "failed", "ok", "ok", "ok"]
        assert server.max_running >= 3
    assert ri._task_rows(96, 4, 8) == 12 and ri._task_rows(10_000, 4, 8) == 32
    assert ri._task_rows(3, 4, 8) == 1 and ri._task_rows(None, 4, 8) == 32
    assert ri._read_blocks(96, 4) == 32 and ri._read_blocks(10, 4) == 10 and ri._read_blocks(8000, 4) == 1000


def test_task_cpus_below_one_is_refused(tmp_path: Path) -> None:
    from minimaxvl_tools.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="task_cpus=0"):
        ri.ray_ingest(tmp_path, tmp_path / "out", task_cpus=0)


def test_read_by_uri_and_by_bytes_with_the_policy(tmp_path: Path) -> None:
    f = tmp_path / "x.pdf"
    f.write_bytes(b"%PDF-1.4 x")
    assert ri._read(f.as_uri(), b"", None) == b"%PDF-1.4 x"  # a pyarrow filesystem URI
    odd = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9.pdf")))
    odd.write_bytes(b"odd")
    assert ri._read("ignored", os.fsencode(odd), InputPolicy(allowed_roots=[tmp_path])) == b"odd"
    with pytest.raises(AccessDeniedError):
        ri._read("ignored", os.fsencode(f), InputPolicy(allowed_roots=[tmp_path / "elsewhere"]))


def test_shards_jsonl_exact_and_parquet_one_schema(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    a = {"source": "a", "page": 1, "text": "t", "metadata": {"status": "ok", "fallback": "local"}}
    b = {"source": "b", "page": None, "text": "", "metadata": {"status": "failed", "error": "E: x"}}
    name = ri.write_shard([a, b], tmp_path, "jsonl")
    lines = (tmp_path / name).read_text("utf-8").splitlines()
    assert [json.loads(x) for x in lines] == [a, b]
    p1 = ri.write_shard([a], tmp_path / "p", "parquet")
    p2 = ri.write_shard([b], tmp_path / "p", "parquet")
    s1, s2 = pq.read_schema(tmp_path / "p" / p1), pq.read_schema(tmp_path / "p" / p2)
    assert s1 == s2 == ri.parquet_schema()  # one schema, whatever the rows held
    assert s1.field("metadata").type.names == list(ri.METADATA_KEYS)
    assert pq.read_table(tmp_path / "p" / p1).to_pylist()[0]["metadata"]["fallback"] == "local"
    assert not list(tmp_path.glob(".*.tmp"))
