"""Smoke tests of the benchmarks at tiny sizes: result structure and sane values, never timing targets."""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import loader, memory, overhead, render, rotation, tokens, workers
from benchmarks.common import BenchResult, Row, format_table, make_text_pdf


@pytest.fixture(autouse=True)
def _package_log_level() -> Iterator[None]:
    """The benchmarks quiet the package's logger for their own output; later tests expect it untouched."""
    log = logging.getLogger("minimaxvl_tools")
    level = log.level
    yield
    log.setLevel(level)


def _check(result: BenchResult, name: str, n_rows: int) -> None:
    assert result.name == name
    assert len(result.rows) == n_rows
    assert result.raw.strip()
    assert result.seconds > 0
    for row in result.rows:
        assert isinstance(row, Row)
        assert math.isfinite(row.ours) and row.ours >= 0
        assert math.isfinite(row.baseline) and row.baseline >= 0
        assert row.met in (True, False, None)
        assert (row.met is None) == (row.op == "info")
    table = format_table(result.rows)
    assert table.splitlines()[0].startswith("| benchmark")
    assert len(table.splitlines()) == n_rows + 2


def test_row_ratio_and_target() -> None:
    assert Row("x", 9, 10, "u", ">=", 0.9).met is True
    assert Row("x", 8, 10, "u", ">=", 0.9).met is False
    assert Row("x", 50, 40, "ms", "<=", 1.0).met is False
    assert Row("x", 0, 0, "CER", "<", 1.0).ratio == 1.0
    assert Row("x", 0, 0, "CER", "<", 1.0).met is False
    assert Row("x", 1, 0, "CER", "<=", 1.0).ratio == float("inf")
    assert Row("x", 1, 2, "u", "info").met is None


def test_make_text_pdf_returns_the_printed_lines(tmp_path: Path) -> None:
    truth = make_text_pdf(tmp_path / "t.pdf", 2, font_size=12, stride=4)
    assert len(truth) == 2 and all(truth) and all(line for page in truth for line in page)
    assert (tmp_path / "t.pdf").read_bytes().startswith(b"%PDF")


def test_render_smoke() -> None:
    res = render.run(pages=2, reps=1)
    _check(res, "render", 3)
    assert all(r.ours > 0 and r.baseline > 0 for r in res.rows)


def test_overhead_smoke() -> None:
    res = overhead.run(pages=4, cpu_pages=1, rotation_pages=0)
    _check(res, "overhead", 8)
    rate, ideal = res.rows[0].ours, res.rows[0].baseline
    assert ideal == 32.0 and 0 < rate <= 4 / overhead.LATENCY + 0.5  # 4 pages cannot beat one 1 s wave
    assert res.rows[3].ours > 0  # CPU ms per page
    by_name = {r.benchmark: r.ours for r in res.rows}
    for name in ("plain AsyncOpenAI, pre-encoded page", "raw sockets, pre-encoded page"):
        assert 0 < by_name[f"overhead: {name} (info)"] <= 4 / overhead.LATENCY + 0.5  # same 1 s wave bound


def test_loader_smoke() -> None:
    res = loader.run(files=4, seq_files=2)
    _check(res, "loader", 3)
    sync_rate, ideal = res.rows[0].ours, res.rows[0].baseline
    assert ideal == 32.0 and 0 < sync_rate <= 4 / loader.LATENCY + 0.5  # 4 pages: at most one 0.5 s wave
    assert res.rows[2].baseline <= 1 / loader.LATENCY + 0.1  # one page at a time: one request per 0.5 s


def test_memory_smoke() -> None:
    res = memory.run(small=1, large=3)
    _check(res, "memory", 1)
    runs = res.details["runs"]
    assert isinstance(runs, dict) and set(runs) == {1, 3}
    assert all(50 < r["hwm_mib"] < 4096 for r in runs.values())


def test_rotation_smoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(rotation, "REAL_PDF", tmp_path / "absent.pdf")  # the real-PDF part is slow
    res = rotation.run(n_pages=2)
    _check(res, "rotation", 4)
    assert res.rows[1].baseline + res.rows[2].baseline == 2  # turned + upright pages


def test_workers_smoke(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "LATENCY", 0.05)
    res = workers.run(workers=1, pages=2, big_pages=2, memory_pages=11)
    _check(res, "workers", 7)  # 3 settings x (32, 256 slots) + memory
    labels = [r.benchmark for r in res.rows]
    assert any("main process sends" in name for name in labels)
    assert res.details["memory"][11]["workers_mib"]  # the worker processes' memory is counted
    for run in res.details["slots32"].values():  # the doubles' slot spans explain where the time went
        assert 0 < run["first_request_s"] < run["wall_s"] and 0 < run["slot_busy_share"] <= 1
        assert run["mean_request_s"] >= 0.05
        assert 0 <= run["read_ms"][0] <= run["read_ms"][2] < 50_000 and run["write_ms"][2] >= 0
    sent = res.details["slots32"]["workers=1"]  # the senders' split of the job's pages
    assert sent["split"] == [2]


def test_occupancy_from_slot_spans() -> None:
    # two slots: one busy 0-1 s and 1-2 s, the other 0.5-1.5 s, in a 2 s run started at 10
    spans = [(10.0, 11.0), (11.0, 12.0), (10.5, 11.5), (9.0, 9.5)]  # the last: before the run (warm-up)
    o = workers.occupancy(spans, 2, 10.0, 2.0)
    assert o["first_request_s"] == 0.0 and o["full_at_s"] == 0.5 and o["full_until_s"] == 1.0
    assert o["slot_busy_share"] == 0.75 and o["mean_request_s"] == 1.0


def test_server_view_and_assembly() -> None:
    view = tokens.server_view(Image.new("RGB", (1700, 2200), "white"))
    assert view.size == (1038, 1344)  # best canvas 1344x1344, scale 1344/2200
    boxes = [(0, 0, 100, 60), (0, 40, 100, 100)]
    words = [[("a", 10, 10, 8), ("b", 50, 50, 8)], [("b", 50, 50, 8), ("c", 20, 90, 8)]]
    assert tokens.assemble(words, boxes) == "a\nb\nc"  # the overlap word is kept once


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="Tesseract is not installed")
def test_tokens_smoke() -> None:
    res = tokens.run(sizes=(14.0,), formats=("letter",), stride=16)
    _check(res, "tokens", 4)
    cer = res.details["cer"]
    assert isinstance(cer, dict) and all(0 <= v <= 1.5 for v in cer.values())
    assert cer["one image"] < 0.2  # 14 pt at 200 dpi is legible even shrunk into one canvas


def test_tiling_helpers() -> None:
    """The tiling benchmark's scan, conventions and scores (the corpus run itself is in benchmarks/)."""
    from PIL import Image

    from benchmarks import tiling

    page = Image.new("RGB", (2550, 3300), "white")
    scanned = tiling.scan(page, 0.4)
    assert scanned.mode == "L" and scanned.size == page.size
    assert tiling.one_image("one image 200 dpi", scanned).size == (1700, 2200)
    assert max(tiling.one_image("olmOCR 1288", scanned).size) == 1288
    assert tiling.one_image("zerox 1056", scanned).size[1] == 1056
    assert tiling.scores("the quick fox", "the quick fox") == (0.0, 0.0)
    cer, wer = tiling.scores("the quick fox", "the quack fox")
    assert abs(cer - 1 / 13) < 1e-9 and abs(wer - 1 / 3) < 1e-9
    assert sum(len(n) for _, _, n in tiling.CORPUS) >= 30


def test_benchmark_questions_are_deterministic_with_known_pages(tmp_path: Path) -> None:
    from fpdf import FPDF

    from benchmarks.rag import make_questions

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    sentences = [
        "The compressor station delivers nitrogen to the packaging hall through insulated pipes.",
        "Operators calibrate the humidity sensors before every production shift begins here.",
        "Maintenance crews replace worn conveyor rollers during the scheduled summer shutdown.",
    ]
    for s in sentences:
        pdf.add_page()
        pdf.multi_cell(0, 8, s + " Shared footer line appears on every page.")
    path = tmp_path / "doc.pdf"
    pdf.output(str(path))
    first = make_questions([path], n=10)
    assert first == make_questions([path], n=10)
    assert len(first) == 3  # the footer sentence is on every page: never a question
    for q in first:
        original = sentences[q.page - 1]
        assert q.answer in original and q.answer not in q.text.split() and "what" in q.text
