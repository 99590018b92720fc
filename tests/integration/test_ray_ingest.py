"""Ray ingest on a local Ray (``ray.init(num_cpus=2)``, one session for the module) against LocalVLLMServer,
the vLLM test double: a corrupt file among good ones, two base URLs with one down, Parquet records, resume
after the driver is killed (nothing done is sent again) and the CLI's ``--engine ray``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from minimaxvl_tools.settings import Settings
from minimaxvl_tools.testing.server import LocalVLLMServer, Reply

ray = pytest.importorskip("ray")
from minimaxvl_tools.distributed.ray_ingest import ray_ingest, read_records  # noqa: E402

pytestmark = pytest.mark.slow
OPTS: dict[str, Any] = {"mode": "vlm", "fallbacks": (), "detect_rotation": False, "dpi": 72}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[str]:
    """One local Ray for every test here (starting one costs seconds); yields its address."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def pdf(path: Path, pages: int) -> Path:
    doc = FPDF(format=(148, 210))
    doc.set_font("helvetica", size=14)
    for i in range(pages):
        doc.add_page()
        name = os.fsencode(path.name).decode("ascii", "ignore")
        doc.multi_cell(0, 10, f"Page {i + 1} of {name}: printed words to read. " * 4)
    doc.output(str(path))
    return path


def dead_url() -> str:
    with LocalVLLMServer() as s:
        url = s.base_url
    return url  # stopped: connections are refused


def test_corrupt_file_among_good_ones_and_one_base_url_down(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    pdf(docs / "a.pdf", 3)
    pdf(docs / "b.pdf", 2)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF")
    with LocalVLLMServer() as live:
        live.set_responder(lambda body: "the page text")
        settings = Settings(base_urls=[dead_url(), live.base_url], max_retries=0, timeout=10)
        s = ray_ingest(docs, tmp_path / "out", settings=settings, pages_per_task=2, **OPTS)
        assert (s.pages, s.ok, s.failed, s.requests, s.documents) == (6, 5, 1, 5, 3)
        recs = read_records(tmp_path / "out")
        by_source = {(Path(r["source"]).name, r["page"]): r for r in recs}
        assert sorted(by_source) == [
            ("a.pdf", 1), ("a.pdf", 2), ("a.pdf", 3), ("b.pdf", 1), ("b.pdf", 2), ("broken.pdf", None),
        ]  # fmt: skip
        assert all(set(r) == {"source", "page", "text", "metadata"} for r in recs)  # local ingest's schema
        assert by_source[("a.pdf", 3)]["text"] == "the page text"
        assert by_source[("a.pdf", 3)]["metadata"]["total_pages"] == 3
        broken = by_source[("broken.pdf", None)]["metadata"]
        assert broken["status"] == "failed" and "PDFError" in broken["error"]
        assert len(live.requests) == 5  # every good page answered by the live replica

        # rerun, Parquet this time: the done pages come from the cache, the corrupt file is recorded again
        again = ray_ingest(docs, tmp_path / "out", settings=settings, output="parquet", **OPTS)
        assert (again.cached, again.requests, again.failed) == (5, 0, 1) and len(live.requests) == 5
    assert all(w.endswith(".parquet") for w in again.written)
    recs = read_records(tmp_path / "out")  # the JSONL shards of the first run were replaced
    assert len(recs) == 6 and {r["metadata"]["cached"] for r in recs if r["page"]} == {True}


_DRIVER = textwrap.dedent(
    """
    import sys
    from minimaxvl_tools.distributed.ray_ingest import ray_ingest
    from minimaxvl_tools.settings import Settings
    docs, out, base_url, address = sys.argv[1:]
    settings = Settings(base_url=base_url, max_retries=0, timeout=30, max_concurrency=1)
    ray_ingest(docs, out, settings=settings, ray_address=address, workers=1, pages_per_task=2,
               mode="vlm", fallbacks=(), detect_rotation=False, dpi=72)
    """
)


def _cached(cache: Path) -> int:
    return len(list(cache.glob("*/*.json")))


def test_resume_after_the_driver_is_killed(tmp_path: Path, local_ray: str) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    pdf(docs / "a.pdf", 3)
    pdf(docs / "b.pdf", 3)
    cache = tmp_path / "out" / ".cache"
    with LocalVLLMServer() as server:
        server.set_responder(lambda body: Reply(text="slow text", delay=0.25))
        script = tmp_path / "driver.py"
        script.write_text(_DRIVER)
        proc = subprocess.Popen(
            [sys.executable, str(script), str(docs), str(tmp_path / "out"), server.base_url, local_ray],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 90
            while _cached(cache) < 2 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert proc.poll() is None, "the job ended before it could be killed"
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(30)
        done = -1
        while done != _cached(cache):  # until the killed job's actors are gone (Ray reaps them)
            done = _cached(cache)
            time.sleep(0.5)
        assert 2 <= done < 6
        assert not (tmp_path / "out" / "records").exists()  # no half set of records
        server.set_responder(lambda body: "fast text")
        before = len(server.requests)
        settings = Settings(base_url=server.base_url, max_retries=0, timeout=10)
        s = ray_ingest(docs, tmp_path / "out", settings=settings, **OPTS)
        assert (s.pages, s.failed, s.cached) == (6, 0, done)
        assert len(server.requests) - before == 6 - done  # nothing done was sent again
    recs = read_records(tmp_path / "out")
    assert sorted((Path(r["source"]).name, r["page"]) for r in recs) == [
        (n, p) for n in ("a.pdf", "b.pdf") for p in range(1, 4)
    ]


def test_cli_engine_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from minimaxvl_tools.cli import main

    monkeypatch.chdir(tmp_path)
    Path("docs").mkdir()
    pdf(Path("docs/a.pdf"), 2)
    secret = pdf(tmp_path.parent / f"{tmp_path.name}-outside.pdf", 1)
    Path("docs/link.pdf").symlink_to(secret)  # outside the working folder: refused before any read
    pdf(Path(os.fsdecode(b"docs/caf\xe9.pdf")), 1)  # a file name that is not UTF-8
    with LocalVLLMServer() as server:
        server.set_responder(lambda body: "cli text")
        argv = ["ingest", "docs", "--out", "out", "--engine", "ray", "--mode", "vlm", "--no-fallback"]
        code = main([*argv, "--no-rotation", "--dpi", "72", "--json", "--base-url", server.base_url])
        assert len(server.requests) == 3
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert code == 1 and (summary["ok"], summary["failed"]) == (3, 1), err
    recs = read_records("out")
    refused = [r for r in recs if r["metadata"]["status"] == "failed"]
    assert len(refused) == 1 and "AccessDeniedError" in refused[0]["metadata"]["error"]
    assert any(r["source"].endswith("caf\\xe9.pdf") and r["text"] == "cli text" for r in recs)
    code = main([*argv, "--max-failure-rate", "0.5"])
    assert code == 2 and "--max-failure-rate" in capsys.readouterr().err
    code = main([*argv, "--task-cpus", "0"])  # reaches ray_ingest, which refuses it before any work
    assert code == 2 and "task_cpus=0" in capsys.readouterr().err
