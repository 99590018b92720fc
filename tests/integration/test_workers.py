"""OCRTool and the loader with page work in worker processes give the results of in-process page work."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.loaders import MiniMaxVLDocumentLoader
from minimaxvl_tools.page_senders import shared_senders
from minimaxvl_tools.results import OCRResult
from minimaxvl_tools.settings import Settings
from minimaxvl_tools.testing.server import LocalVLLMServer
from minimaxvl_tools.tools import OCRTool


def _pdf(path: Path) -> Path:
    """Four pages: large print, blank, fine print (cut in crops at 200 dpi), large print."""
    pdf = FPDF(unit="pt", format="letter")
    for size, lines in ((12, 20), (12, 0), (5, 90), (12, 10)):
        pdf.add_page()
        pdf.set_font("Helvetica", size=size)
        for i in range(lines):
            pdf.text(40, 50 + i * (size * 1.6), f"line {i} of size {size}: words on the page to transcribe")
    pdf.output(str(path))
    return path


def _echo(body: dict[str, Any]) -> str:
    """The reply names the exact image bytes and prompt seen, so equal replies mean equal requests."""
    parts = body["messages"][-1]["content"]
    url = next(p["image_url"]["url"] for p in parts if p.get("type") == "image_url")
    text = " ".join(p["text"] for p in parts if p.get("type") == "text")
    digest = hashlib.sha256((url + text).encode()).hexdigest()[:16]
    return f"Read {digest}\nsecond line {len(url)}"


def _client(server: LocalVLLMServer, workers: int, send: bool = True) -> MiniMaxVLClient:
    """``send``: the worker processes also send their pages (page_senders), else they only prepare."""
    settings = Settings(
        base_url=server.base_url, max_retries=1, max_concurrency=4, workers=workers, worker_send=send
    )
    return MiniMaxVLClient(settings, backoff_base=0.01, backoff_max=0.05)


def _summary(res: OCRResult) -> list[tuple[Any, ...]]:
    return [
        (p.page, p.status, p.markdown, p.image_tokens, p.requests, [(c.box, c.tokens) for c in p.crops])
        for p in res.pages
    ]


@pytest.mark.parametrize("send", [True, False], ids=["workers-send", "main-sends"])
@pytest.mark.parametrize("run", ["sync", "async"])
def test_ocr_tool_workers_equal_in_process(
    vllm_server: LocalVLLMServer, tmp_path: Path, run: str, send: bool
) -> None:
    pdf = _pdf(tmp_path / "doc.pdf")
    vllm_server.set_responder(_echo)
    out = {}
    for workers in (0, 2):
        vllm_server.reset()
        vllm_server.set_responder(_echo)
        client = _client(vllm_server, workers, send)
        tool = OCRTool(client=client, allowed_roots=[tmp_path], fix_rotation=False)
        if run == "sync":
            _, res = tool._run(str(pdf))
        else:
            _, res = asyncio.run(tool._arun(str(pdf)))
        out[workers] = _summary(res)
        sent = sorted(hashlib.sha256(repr(b["messages"]).encode()).hexdigest() for b in vllm_server.requests)
        out[workers, "bodies"] = sent  # type: ignore[index]
        out[workers, "usage"] = client.usage.model_dump(exclude={"latency_s"})  # type: ignore[index]
    assert out[0] == out[2]
    assert out[0, "usage"] == out[2, "usage"]  # type: ignore[index]  # the senders' usage reaches the client
    assert out[0, "bodies"] == out[2, "bodies"]  # type: ignore[index]  # byte-identical requests
    statuses = [row[1] for row in out[2]]
    assert statuses == ["ok", "blank", "ok", "ok"]
    assert len(out[2][2][5]) > 1  # the fine-print page went in crops, merged


def test_ocr_tool_bad_page_selection_raises_typed(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    pdf = _pdf(tmp_path / "doc.pdf")
    tool = OCRTool(client=_client(vllm_server, 2), allowed_roots=[tmp_path])
    msg = tool.invoke({"source": str(pdf), "pages": "9"})
    assert "9" in str(msg) and "ocr_transcribe failed" in str(msg)


@pytest.mark.parametrize("send", [True, False], ids=["workers-send", "main-sends"])
@pytest.mark.parametrize("run", ["sync", "async"])
def test_loader_workers_equal_in_process(
    vllm_server: LocalVLLMServer, tmp_path: Path, run: str, send: bool
) -> None:
    pdf = _pdf(tmp_path / "doc.pdf")
    broken = tmp_path / "zz_broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n" + b"\x00bad" * 40)
    out = {}
    for workers in (0, 2):
        vllm_server.reset()
        vllm_server.set_responder(_echo)
        loader = MiniMaxVLDocumentLoader(
            [pdf, broken],
            mode="vlm",
            client=_client(vllm_server, workers, send),
            use_cache=False,
            detect_rotation=False,
            workers=workers,
        )
        if run == "sync":
            docs = list(loader.lazy_load())
        else:

            async def collect(ld: MiniMaxVLDocumentLoader = loader) -> list[Any]:
                return [d async for d in ld.alazy_load()]

            docs = asyncio.run(collect())
        out[workers] = [(d.page_content, d.metadata) for d in docs]
    assert out[0] == out[2]
    assert [m["status"] for _, m in out[2]] == ["ok", "blank", "ok", "ok", "failed"]
    assert "Read " in out[2][0][0] and out[2][2][1]["crops"] > 1


def test_cli_ingest_workers_flag(
    vllm_server: LocalVLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from minimaxvl_tools.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINIMAXVL_WORKERS", raising=False)
    _pdf(tmp_path / "doc.pdf")
    vllm_server.set_responder(_echo)
    records = {}
    for workers in ("0", "2"):
        args = ["ingest", "doc.pdf", "--out", f"out{workers}", "--mode", "vlm", "--dpi", "72"]
        args += ["--no-fallback", "--no-rotation", "--quiet", "--workers", workers]
        assert main([*args, "--base-url", vllm_server.base_url, "--max-retries", "0"]) == 0
        lines = (tmp_path / f"out{workers}" / "doc.pdf.jsonl").read_text().splitlines()
        records[workers] = [(r["page"], r["text"], r["metadata"]["status"]) for r in map(json.loads, lines)]
    assert records["0"] == records["2"] and len(records["2"]) == 4
    assert shared_senders(2).pids()  # the pages went through the sending worker processes
