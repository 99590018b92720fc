"""Robust page processing over the wire (LocalVLLMServer test double): rotated scans are sent upright,
looping or cut replies are retried hotter on smaller crops and then flagged failed, blank pages cost no
request, failed pages fall back (flagged and counted) and a job past ``max_failure_rate`` is stopped."""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fpdf import FPDF
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from PIL import Image, ImageDraw, ImageFont

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.local_ocr import LocalOCREngine
from minimaxvl_tools.pages import PageImage, aocr_page, ocr_page, plan_page_image
from minimaxvl_tools.results import OCRResult
from minimaxvl_tools.testing.server import LocalVLLMServer, Reply
from minimaxvl_tools.tools import DiagramReasoningTool, OCRTool

needs_tesseract = pytest.mark.skipif(not LocalOCREngine.available(), reason="tesseract is not installed")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog",
    "Invoice number seven hundred and twelve",
    "Payment is due within thirty days of receipt",
    "Please return the signed copy to our office",
    "Shipping address and billing address differ",
    "Contact the accounts department for details",
]
LOOP = "| total | 10 | 20 |\n" * 60  # a table row again and again: a typical loop
GOOD = "# Heading\n\nA paragraph of text."


# ------------------------------------------------------------------ helpers
def _client(server: LocalVLLMServer, **kw: Any) -> MiniMaxVLClient:
    kw.setdefault("max_retries", 1)
    return MiniMaxVLClient(base_url=server.base_url, backoff_base=0.01, backoff_max=0.05, **kw)


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype("DejaVuSans.ttf", size)


def _text_page(size: tuple[int, int] = (800, 1000), lines: int = 12, font_size: int = 26) -> Image.Image:
    """Black DejaVuSans sentences on white, one per line (real words, so Tesseract OSD can read them)."""
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    step = (size[1] - 120) // lines
    for i in range(lines):
        d.text(
            (50, 60 + i * step), f"{SENTENCES[i % len(SENTENCES)]} {i}", font=_font(font_size), fill="black"
        )
    return img


def _data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _sent_image(body: dict[str, Any]) -> Image.Image:
    """The image a chat request carried, decoded."""
    parts = [p for m in body["messages"] for p in m["content"] if p.get("type") == "image_url"]
    assert len(parts) == 1
    url = parts[0]["image_url"]["url"]
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def _mismatch(sent: Image.Image, reference: Image.Image) -> float:
    """Mean absolute gray difference (0-255) between the image sent and ``reference`` at the sent size."""
    a = np.asarray(sent.convert("L"), dtype=np.float32)
    b = np.asarray(reference.convert("L").resize(sent.size, Image.Resampling.BILINEAR), dtype=np.float32)
    return float(np.abs(a - b).mean())


def _user_text(body: dict[str, Any]) -> str:
    return "\n".join(p["text"] for p in body["messages"][-1]["content"] if p.get("type") == "text")


def _temps(server: LocalVLLMServer) -> list[float]:
    return [b["temperature"] for b in server.requests]


def _make_pdf(path: Path, texts: list[str]) -> Path:
    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=14)
    for t in texts:
        pdf.add_page()
        pdf.multi_cell(0, 10, t)
    pdf.output(str(path))
    return path


def _call(tool: BaseTool, args: dict[str, Any]) -> ToolMessage:
    msg = tool.invoke({"type": "tool_call", "id": "call-1", "name": tool.name, "args": args})
    assert isinstance(msg, ToolMessage)
    return msg


async def _acall(tool: BaseTool, args: dict[str, Any]) -> ToolMessage:
    msg = await tool.ainvoke({"type": "tool_call", "id": "call-1", "name": tool.name, "args": args})
    assert isinstance(msg, ToolMessage)
    return msg


@pytest.fixture
def server(vllm_server: LocalVLLMServer) -> LocalVLLMServer:
    vllm_server.set_responder(lambda body: GOOD)
    return vllm_server


# ------------------------------------------------------------------ rotation
@needs_tesseract
@pytest.mark.parametrize(("angle", "mode"), [(90, "sync"), (180, "sync"), (270, "async")])
async def test_rotated_scan_is_sent_upright(server: LocalVLLMServer, angle: int, mode: str) -> None:
    upright = _text_page()
    scan = upright.rotate(angle, expand=True)  # PIL turns counter-clockwise: `angle` clockwise undoes it
    page = PageImage(1, 1, scan, source="scan.png")
    client = _client(server)
    if mode == "sync":
        res = ocr_page(client, page, fix_rotation=True)
    else:
        res = await aocr_page(client, page, fix_rotation=True)
    assert res.status == "ok" and res.rotation == angle
    assert any(f"rotated {angle} degrees" in w for w in res.warnings)
    assert page.image is scan and page.rotation == 0  # the caller's page is not changed
    sent = _sent_image(server.requests[0]).resize((200, 250))
    assert sent.height > sent.width  # portrait again, like the original (a 90/270 scan is landscape)
    # the pixels sent are the upright page's, not those of the page turned upside down
    assert _mismatch(sent, upright) < 8 < _mismatch(sent, upright.rotate(180))


def test_without_fix_rotation_the_scan_is_sent_as_it_is(server: LocalVLLMServer) -> None:
    scan = _text_page().rotate(90, expand=True)
    res = ocr_page(_client(server), PageImage(1, 1, scan), fix_rotation=False)
    assert res.rotation == 0 and not res.warnings
    sent = _sent_image(server.requests[0])
    assert sent.width > sent.height


@needs_tesseract
def test_ocr_tool_corrects_rotation_and_reports_it(server: LocalVLLMServer) -> None:
    scan = _text_page().rotate(180, expand=True)
    msg = _call(OCRTool(client=_client(server)), {"source": _data_url(scan)})
    page = msg.artifact.pages[0]
    assert page.status == "ok" and page.rotation == 180
    assert "rotated pages: 1 (180 degrees)" in msg.content
    assert "quick brown fox" in LocalOCREngine().ocr(_sent_image(server.requests[0])).text.lower()


# ------------------------------------------------------------------ truncated / looping replies
def test_truncated_reply_retried_hotter_on_smaller_crops_then_failed(server: LocalVLLMServer) -> None:
    server.set_responder(lambda body: Reply("The first lines of a long page", finish_reason="length"))
    res = ocr_page(_client(server), PageImage(1, 1, _text_page()))
    assert res.status == "failed" and res.markdown == "" and res.text == ""
    assert res.error == "truncated (finish_reason=length) after 3 attempts"
    assert res.attempts == 3 and res.requests == len(server.requests) == 3
    assert _temps(server) == [0.0, 0.2, 0.5]  # rising temperature
    heights = [_sent_image(b).height for b in server.requests]
    assert heights[0] > heights[1] > heights[2]  # each retry reads a smaller crop (top half, its top half)
    assert _user_text(server.requests[0]).startswith("Transcribe all text of this page")
    assert all("crop 1 of 2" in _user_text(b) for b in server.requests[1:])
    assert len(res.warnings) == 3 and "attempt 3 at temperature 0.5" in res.warnings[-1]


async def test_truncated_reply_async_retries_both_halves(server: LocalVLLMServer) -> None:
    server.set_responder(lambda body: Reply("cut", finish_reason="length"))
    res = await aocr_page(_client(server), PageImage(1, 1, _text_page()))
    assert res.status == "failed" and res.error == "truncated (finish_reason=length) after 3 attempts"
    # 1 whole page, its 2 halves, their 4 halves, concurrently
    assert Counter(_temps(server)) == {0.0: 1, 0.2: 2, 0.5: 4} and res.requests == 7


def test_looping_reply_flagged_failed_after_max_attempts(server: LocalVLLMServer) -> None:
    server.set_responder(lambda body: LOOP)  # finish_reason "stop": only the repetition check catches it
    res = ocr_page(_client(server), PageImage(1, 1, _text_page()), max_attempts=2)
    assert res.status == "failed" and res.markdown == ""
    assert res.error is not None and res.error.startswith("repetition: ")
    assert res.error.endswith("after 2 attempts") and "total" in res.error
    assert _temps(server) == [0.0, 0.2] and res.attempts == 2


def test_one_attempt_means_no_retry(server: LocalVLLMServer) -> None:
    server.queue(Reply("cut", finish_reason="length"))
    res = ocr_page(_client(server), PageImage(1, 1, _text_page()), max_attempts=1)
    assert res.status == "failed" and res.error == "truncated (finish_reason=length) after 1 attempts"
    assert len(server.requests) == 1


def test_good_answer_on_second_attempt_is_accepted(server: LocalVLLMServer) -> None:
    halves = {"crop 1 of 2": "Line A\nLine B\nLine C", "crop 2 of 2": "Line C\nLine D"}

    def respond(body: dict[str, Any]) -> str:
        m = re.search(r"crop \d of 2", _user_text(body))
        assert m, "only the halves are asked after the first reply"
        return halves[m.group(0)]

    server.queue(LOOP)
    server.set_responder(respond)
    res = ocr_page(_client(server), PageImage(1, 1, _text_page()))
    assert res.status == "ok" and res.error is None
    assert res.markdown == "Line A\nLine B\nLine C\nLine D"  # the halves' overlap kept once
    assert res.attempts == 2 and res.requests == 3 and _temps(server) == [0.0, 0.2, 0.2]
    assert res.warnings[0].startswith("attempt 1 at temperature 0: repetition")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_looping_crop_of_a_dense_page_retried_alone(server: LocalVLLMServer, mode: str) -> None:
    image = _text_page((1654, 2339), lines=40, font_size=14)  # print small enough to need 2+ crops
    plan = plan_page_image(image)  # the plan ocr_page makes: small print measured
    assert plan.mode == "tiles" and plan.requests >= 2
    n = plan.requests

    def respond(body: dict[str, Any]) -> str:
        text = _user_text(body)
        if f"crop 2 of {n}" in text and body["temperature"] == 0.0:
            return LOOP
        m = re.search(r"crop (\d+) of", text)
        assert m
        return f"crop {m.group(1)} text at {body['temperature']}"

    server.set_responder(respond)
    page = PageImage(1, 1, image)
    res = ocr_page(_client(server), page) if mode == "sync" else await aocr_page(_client(server), page)
    assert res.status == "ok" and res.attempts == 2
    assert res.requests == len(server.requests) == n + 2  # only the looping crop was split
    assert sorted(_temps(server)) == [0.0] * n + [0.2, 0.2]
    assert "at 0.2" in res.markdown and LOOP.splitlines()[0] not in res.markdown
    assert res.warnings and res.warnings[0].startswith(f"crop 2/{n}: attempt 1")
    assert len(res.crops) == n and res.image_tokens > plan.tokens  # the retry's tokens are counted


def test_crop_failing_for_good_fails_the_page_and_names_the_crop(server: LocalVLLMServer) -> None:
    server.set_responder(lambda body: Reply("cut", finish_reason="length"))
    res = ocr_page(_client(server), PageImage(1, 1, _text_page((1654, 2339), lines=40, font_size=22)))
    assert res.status == "failed"
    assert res.error is not None and res.error.startswith("truncated (finish_reason=length) after 3 attempts")
    assert "crop 1/" in res.error
    assert len(server.requests) == 3  # the page failed for good: no request for its other crops


# ------------------------------------------------------------------ blank pages
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_blank_page_sends_no_request(server: LocalVLLMServer, mode: str) -> None:
    rng = Image.effect_noise((800, 1000), 4).point(lambda v: 235 + v // 16)  # light scanner noise
    blank = Image.merge("RGB", [rng, rng, rng])
    page = PageImage(3, 5, blank)
    client = _client(server)
    res = ocr_page(client, page) if mode == "sync" else await aocr_page(client, page)
    assert res.status == "blank" and res.page == 3
    assert res.markdown == "" and res.text == "" and res.requests == 0 and res.attempts == 0
    assert server.requests == []
    off = ocr_page(client, page, skip_blank=False)  # the check is what saved the request
    assert len(server.requests) == 1 and off.requests == 1


# ------------------------------------------------------------------ fallbacks and failure rate
def test_text_layer_fallback_flagged_and_counted(server: LocalVLLMServer, tmp_path: Path) -> None:
    pdf = _make_pdf(tmp_path / "doc.pdf", ["Quarterly report for the northern region", "Second page"])
    server.set_responder(lambda body: LOOP)
    tool = OCRTool(
        client=_client(server),
        allowed_roots=[tmp_path],
        dpi=72,
        fix_rotation=False,
        max_attempts=2,
        fallback=("text-layer",),
    )
    msg = _call(tool, {"source": str(pdf), "pages": "1"})
    res = msg.artifact
    assert isinstance(res, OCRResult) and msg.status == "success"
    page = res.pages[0]
    assert page.status == "fallback" and page.engine == "text-layer"
    assert "Quarterly report for the northern region" in page.text
    assert page.error is not None and page.error.startswith("repetition: ")  # the model's reason is kept
    assert res.fallback_pages == [1] and res.failed_pages == []
    assert "fallback pages: 1 (text-layer; model: repetition" in msg.content


@needs_tesseract
def test_local_fallback_when_there_is_no_text_layer(server: LocalVLLMServer) -> None:
    server.set_responder(lambda body: Reply("cut", finish_reason="length"))
    tool = OCRTool(
        client=_client(server), fix_rotation=False, max_attempts=1, fallback=("text-layer", "local")
    )
    msg = _call(tool, {"source": _data_url(_text_page((700, 260), lines=3, font_size=28))})
    page = msg.artifact.pages[0]
    assert page.status == "fallback" and page.engine.startswith("tesseract")
    assert "quick brown fox" in page.text.lower()
    assert page.error == "truncated (finish_reason=length) after 1 attempts"
    assert msg.artifact.fallback_pages == [1]


def test_without_fallback_a_failed_page_is_reported_not_hidden(
    server: LocalVLLMServer, tmp_path: Path
) -> None:
    pdf = _make_pdf(tmp_path / "doc.pdf", ["First page text here", "Second page text here"])
    server.queue(LOOP, LOOP)  # page 1: the first reply loops, and so does the retry of its top half
    tool = OCRTool(  # one page in flight: the queued replies go to page 1's requests, in order
        client=_client(server, max_concurrency=1),
        allowed_roots=[tmp_path],
        dpi=72,
        fix_rotation=False,
        max_attempts=2,
    )
    msg = _call(tool, {"source": str(pdf)})
    res = msg.artifact
    assert [p.status for p in res.pages] == ["failed", "ok"]
    assert res.failed_pages == [1] and res.fallback_pages == []
    assert res.pages[0].markdown == "" and "failed pages: 1 (repetition:" in msg.content


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_failure_rate_aborts_the_job(server: LocalVLLMServer, tmp_path: Path, mode: str) -> None:
    pdf = _make_pdf(tmp_path / "doc.pdf", [f"Page {i} text" for i in range(1, 7)])
    server.set_responder(lambda body: Reply("cut", finish_reason="length"))
    tool = OCRTool(
        client=_client(server, max_concurrency=1),
        allowed_roots=[tmp_path],
        dpi=72,
        fix_rotation=False,
        max_attempts=1,
        max_failure_rate=0.25,
    )
    args = {"source": str(pdf)}
    msg = _call(tool, args) if mode == "sync" else await _acall(tool, args)
    assert msg.status == "error" and "max_failure_rate 25%" in msg.content and "stopped after" in msg.content
    assert len(server.requests) < 6  # stopped once 2 of 6 pages failed (over 25 %), not at the end


def test_failure_rate_under_the_limit_does_not_abort(server: LocalVLLMServer, tmp_path: Path) -> None:
    pdf = _make_pdf(tmp_path / "doc.pdf", [f"Page {i} text" for i in range(1, 5)])
    server.queue(Reply("cut", finish_reason="length"))  # only page 1 fails
    tool = OCRTool(  # one page in flight: the queued reply goes to page 1
        client=_client(server, max_concurrency=1),
        allowed_roots=[tmp_path],
        dpi=72,
        fix_rotation=False,
        max_attempts=1,
        max_failure_rate=0.25,
    )
    msg = _call(tool, {"source": str(pdf)})
    assert msg.status == "success" and msg.artifact.failed_pages == [1] and len(server.requests) == 4


# ------------------------------------------------------------------ diagram
def test_diagram_cut_reply_retried_once_with_more_tokens(server: LocalVLLMServer) -> None:
    server.queue(Reply("Step 1: the rabbit eats grass. Step 2:", finish_reason="length"))
    server.set_responder(lambda body: "The rabbit eats grass.\nAnswer: B")
    tool = DiagramReasoningTool(client=_client(server), max_tokens=512)
    msg = _call(
        tool, {"source": _data_url(_text_page()), "question": "Who eats grass?", "options": ["fox", "rabbit"]}
    )
    assert msg.artifact.option == "B"
    assert [b["max_tokens"] for b in server.requests] == [512, 1024]


def test_tool_defaults() -> None:
    with LocalVLLMServer() as srv:
        tool = OCRTool(client=_client(srv))
        assert tool.fix_rotation and tool.max_attempts == 3
        assert tool.fallback == () and tool.max_failure_rate is None
