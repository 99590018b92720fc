"""The ``ocr-cer`` task on samples/born_digital.pdf: offline with Tesseract, and over the wire (vlm engine).

The PDF's text layer is the gold transcription. The vlm path runs against the scripted test server, which
returns the exact text layer (CER 0) or a text with a known number of edits (CER computed by hand).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.eval import EvalConfig, EvalRunner, corpus_cer, load_task
from minimaxvl_tools.local_ocr import LocalOCREngine
from minimaxvl_tools.pdf import iter_pdf_pages
from minimaxvl_tools.testing.server import LocalVLLMServer, Reply

ROOT = Path(__file__).resolve().parents[2]
PDF = ROOT / "samples" / "born_digital.pdf"
TEXT = [p.text for p in iter_pdf_pages(PDF, render=False)]
CHARS = sum(len(" ".join(t.split())) for t in TEXT)  # reference length after whitespace collapsing
WORDS = sum(len(t.split()) for t in TEXT)

needs_tesseract = pytest.mark.skipif(not LocalOCREngine.available(), reason="tesseract is not installed")


def _vlm_runner(server: LocalVLLMServer, **cfg: object) -> EvalRunner:
    client = MiniMaxVLClient(base_url=server.base_url, max_retries=0, backoff_base=0.001)
    # one request per page (no crops) and one page at a time, so the scripted replies follow page order
    config = EvalConfig(task="ocr-cer", model=server.model, engine="vlm", tile=False, dpi=100, **cfg)  # type: ignore[arg-type]
    return EvalRunner(config, client=client, concurrency=1)


def test_items_are_the_text_layer_pages() -> None:
    items = load_task("ocr-cer", PDF)
    assert [i.id for i in items] == ["born_digital.pdf#p1", "born_digital.pdf#p2"]
    assert [i.answers[0] for i in items] == TEXT and CHARS == 408 and WORDS == 64


@needs_tesseract
def test_local_engine_offline_cer_is_low(tmp_path: Path) -> None:
    items = load_task("ocr-cer", PDF)
    out = tmp_path / "cer.jsonl"
    res = EvalRunner(EvalConfig(task="ocr-cer", engine="local", dpi=200), out=out).run(items)
    s = res.summary
    assert s.errors == 0 and s.n == 2 and s.tokens.requests == 0
    assert s.extra["chars"] == CHARS and s.extra["cer"] < 0.10 and s.extra["wer"] < 0.10
    assert s.score == pytest.approx(100 * s.extra["cer"])
    raw = corpus_cer(TEXT, [r.prediction or "" for r in res.records])  # layout (blank lines) included
    assert raw.rate < 0.10 and raw.ref_len == sum(len(t) for t in TEXT)
    assert "| OCR CER % |" in res.report()


@needs_tesseract
def test_module_entry_point_runs_offline(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "minimaxvl_tools.eval", "ocr-cer", str(PDF), "--engine", "local"]
    cmd += ["--out", str(tmp_path / "r.jsonl"), "--json", "--allow-root", str(PDF.parent)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)["summaries"][0]
    assert summary["task"] == "ocr-cer" and summary["n"] == 2 and summary["extra"]["cer"] < 0.10


def test_vlm_exact_text_layer_gives_cer_0(vllm_server: LocalVLLMServer) -> None:
    vllm_server.queue(*TEXT)
    res = _vlm_runner(vllm_server).run(load_task("ocr-cer", PDF))
    s = res.summary
    assert s.errors == 0 and s.score == 0.0 and s.extra["cer"] == 0.0 and s.extra["wer"] == 0.0
    assert len(vllm_server.requests) == 2 and s.tokens.requests == 2 and s.tokens.image > 0


def test_vlm_corrupted_text_gives_known_cer(vllm_server: LocalVLLMServer) -> None:
    p1 = TEXT[0].replace("Maintenance report", "Maintenanse rep0rt", 1)  # 2 substitutions, 2 words
    p2 = TEXT[1].replace("Maintenance report", "Maintenanse rep0rt", 1).replace("line Beta and", "line and")
    assert p2 != TEXT[1] and "Beta" not in p2  # 2 substitutions + 5 deletions ("Beta "), 3 words
    vllm_server.queue(p1, p2)
    res = _vlm_runner(vllm_server).run(load_task("ocr-cer", PDF))
    s = res.summary
    assert (s.extra["edits"], s.extra["chars"]) == (9, CHARS)
    assert s.extra["cer"] == pytest.approx(9 / 408) and s.score == pytest.approx(100 * 9 / 408)
    assert (s.extra["word_edits"], s.extra["words"]) == (5, 64)
    assert [r.detail["edits"] for r in res.records] == [2, 7]


def test_vlm_failed_page_counts_as_empty(vllm_server: LocalVLLMServer) -> None:
    vllm_server.queue(TEXT[0], Reply(status=400, error="scripted failure"))
    res = _vlm_runner(vllm_server).run(load_task("ocr-cer", PDF))
    page2 = len(" ".join(TEXT[1].split()))
    assert res.summary.errors == 1 and res.records[1].error
    assert res.summary.extra["edits"] == page2 and res.records[1].score == 1.0
    assert res.summary.extra["cer"] == pytest.approx(page2 / CHARS)
