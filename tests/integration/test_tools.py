"""The four tools over the wire against LocalVLLMServer (the vLLM test double), sync and async."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from PIL import Image, ImageDraw

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.pages import plan_page_image
from minimaxvl_tools.results import ChartData, DiagramAnswer, DocumentAnswer, OCRResult
from minimaxvl_tools.testing.server import LocalVLLMServer
from minimaxvl_tools.tools import (
    ChartReaderTool,
    DiagramReasoningTool,
    DocumentVQATool,
    MiniMaxVLToolkit,
    OCRTool,
)

# ------------------------------------------------------------------ helpers
CHART_JSON = {
    "chart_type": "bar",
    "title": "Unit sales",
    "x_axis": {"label": "Year", "unit": None},
    "y_axis": {"label": "Units", "unit": "thousands"},
    "series": [
        {"name": "North", "points": [{"x": "2022", "y": 12.5}, {"x": "2023", "y": 15}]},
        {"name": "South", "points": [{"x": "2022", "y": 9}, {"x": "2023", "y": None}]},
    ],
    "legend": ["North", "South"],
    "answer": "2023 (North, 15)",
    "notes": None,
}


def _data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _chart_image() -> Image.Image:
    img = Image.new("RGB", (640, 480), "white")
    d = ImageDraw.Draw(img)
    for i, h in enumerate((200, 300, 150)):
        d.rectangle((100 + i * 150, 420 - h, 180 + i * 150, 420), fill=(40, 90, 200))
    d.line((80, 420, 600, 420), fill="black", width=2)
    return img


CHART_URL = _data_url(_chart_image())


def _text_page(size: tuple[int, int] = (800, 1000), lines: int = 20) -> Image.Image:
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    for i in range(lines):
        d.text((40, 40 + i * (size[1] - 80) // lines), f"Line {i}: some printed words here", fill="black")
    return img


def _user_text(body: dict[str, Any]) -> str:
    parts = body["messages"][-1]["content"]
    return "\n".join(p["text"] for p in parts if p.get("type") == "text")


def _n_images(body: dict[str, Any]) -> int:
    return sum(1 for m in body["messages"] for p in m["content"] if p.get("type") == "image_url")


def _client(server: LocalVLLMServer, **kw: Any) -> MiniMaxVLClient:
    kw.setdefault("max_retries", 1)
    return MiniMaxVLClient(base_url=server.base_url, backoff_base=0.01, backoff_max=0.05, **kw)


def _responder(body: dict[str, Any]) -> str:
    """Realistic answers by task, recognised from the system prompt."""
    system = "".join(p["text"] for p in body["messages"][0]["content"])
    if "charts and plots" in system:
        return json.dumps(CHART_JSON)
    if "questions about document pages" in system:
        pages = [int(n) for n in re.findall(r"\d+", _user_text(body).split("of a document")[0])]
        return json.dumps(
            {
                "answer": "The total is $1,250.00",
                "short_answer": "$1,250.00",
                "pages": pages[:1],
                "evidence": "Total due: $1,250.00",
                "confidence": 0.9,
                "found": True,
            }
        )
    if "transcribe" in system:
        return "# Heading\n\nA paragraph of text.\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    return "The diagram shows grass eaten by a rabbit.\nAnswer: B"


def _make_pdf(path: Path, texts: list[str]) -> Path:
    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=14)
    for t in texts:
        pdf.add_page()
        if t:
            pdf.multi_cell(0, 10, t)
    pdf.output(str(path))
    return path


@pytest.fixture
def server(vllm_server: LocalVLLMServer) -> LocalVLLMServer:
    vllm_server.set_responder(_responder)
    return vllm_server


# ------------------------------------------------------------------ standard suites
class _Standard(ToolsIntegrationTests):
    cls: type[BaseTool]

    @property
    def tool_constructor(self) -> type[BaseTool]:
        return self.cls

    @pytest.fixture
    def tool(self, server: LocalVLLMServer) -> BaseTool:
        return self.cls(client=_client(server))


class TestChartReaderIntegration(_Standard):
    cls = ChartReaderTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"source": CHART_URL, "question": "Which year sold most in the North?"}


class TestDocumentVQAIntegration(_Standard):
    cls = DocumentVQATool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"question": "What is the total?", "source": CHART_URL}


class TestOCRIntegration(_Standard):
    cls = OCRTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"source": _data_url(_text_page())}


class TestDiagramIntegration(_Standard):
    cls = DiagramReasoningTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"source": CHART_URL, "question": "Which eats grass?", "options": ["fox", "rabbit"]}


# ------------------------------------------------------------------ per tool
def _call(tool: BaseTool, args: dict[str, Any]) -> ToolMessage:
    msg = tool.invoke({"type": "tool_call", "id": "call-1", "name": tool.name, "args": args})
    assert isinstance(msg, ToolMessage)
    return msg


async def _acall(tool: BaseTool, args: dict[str, Any]) -> ToolMessage:
    msg = await tool.ainvoke({"type": "tool_call", "id": "call-1", "name": tool.name, "args": args})
    assert isinstance(msg, ToolMessage)
    return msg


def test_chart_reader_parses_json_and_renders_table(server: LocalVLLMServer, tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    _chart_image().save(path)
    tool = ChartReaderTool(client=_client(server), allowed_roots=[tmp_path])
    msg = _call(tool, {"source": str(path), "question": "Which year sold most in the North?"})
    data = msg.artifact
    assert isinstance(data, ChartData)
    assert [s.name for s in data.series] == ["North", "South"] and data.series[1].points[1].y is None
    assert "Answer: 2023 (North, 15)" in msg.content
    assert "| Year | North | South |" in msg.content and "| 2023 | 15 |  |" in msg.content
    body = server.requests[-1]
    assert body["response_format"]["type"] == "json_schema"
    assert _n_images(body) == 1 and "Which year sold most" in _user_text(body)
    assert all("<image>" not in p.get("text", "") for m in body["messages"] for p in m["content"])


def test_chart_from_pdf_page(server: LocalVLLMServer, tmp_path: Path) -> None:
    pdf = _make_pdf(tmp_path / "report.pdf", ["intro", "the chart page", "appendix"])
    tool = ChartReaderTool(client=_client(server), allowed_roots=[tmp_path], dpi=72)
    msg = _call(tool, {"source": str(pdf), "pages": "2"})
    assert msg.status == "success" and isinstance(msg.artifact, ChartData)
    assert _n_images(server.requests[-1]) == 1


def test_diagram_parses_answer_letter(server: LocalVLLMServer) -> None:
    server.queue("Rabbits are herbivores; the arrow points from grass to rabbit.\n**Answer:** (B)")
    tool = DiagramReasoningTool(client=_client(server))
    msg = _call(tool, {"source": CHART_URL, "question": "Which eats grass?", "options": ["fox", "rabbit"]})
    ans = msg.artifact
    assert isinstance(ans, DiagramAnswer) and ans.option == "B" and ans.answer == "rabbit"
    assert msg.content.startswith("Answer: B. rabbit")
    assert "A. fox\nB. rabbit" in _user_text(server.requests[-1])


async def test_diagram_async_free_answer(server: LocalVLLMServer) -> None:
    server.queue("Count: 3 + 4.\nAnswer: 7")
    tool = DiagramReasoningTool(client=_client(server))
    msg = await _acall(tool, {"source": CHART_URL, "question": "How many arrows?"})
    assert msg.artifact.answer == "7" and msg.artifact.option is None


def test_ocr_single_image(server: LocalVLLMServer) -> None:
    tool = OCRTool(client=_client(server))
    msg = _call(tool, {"source": _data_url(_text_page())})
    res = msg.artifact
    assert isinstance(res, OCRResult) and len(res.pages) == 1
    page = res.pages[0]
    assert page.status == "ok" and page.requests == 1 and not page.crops and page.image_tokens > 0
    assert page.text.splitlines()[0] == "Heading" and "a\tb" in page.text
    assert msg.content.startswith("# Heading")
    assert len(server.requests) == 1


def test_ocr_multipage_pdf_and_blank_page(server: LocalVLLMServer, tmp_path: Path) -> None:
    pdf = _make_pdf(tmp_path / "doc.pdf", ["Page one text", "", "Page three text", "Page four"])
    tool = OCRTool(client=_client(server), allowed_roots=[tmp_path], dpi=72)
    msg = _call(tool, {"source": str(pdf), "pages": "1-3"})
    res = msg.artifact
    assert [p.page for p in res.pages] == [1, 2, 3]
    assert [p.status for p in res.pages] == ["ok", "blank", "ok"]
    assert res.pages[1].requests == 0 and len(server.requests) == 2  # no request for the blank page
    assert "<!-- page 3 -->" in msg.content and "blank pages: 2" in msg.content


def _crop_responder(lines: list[str], overlap: int = 2) -> Any:
    """Each crop 'sees' its share of the page's lines plus ``overlap`` lines shared with the next crop
    (0 for crops cut in whitespace, which share no line)."""

    def respond(body: dict[str, Any]) -> str:
        m = re.search(r"crop (\d+) of (\d+)", _user_text(body))
        assert m, "crop prompt expected"
        i, n = int(m.group(1)), int(m.group(2))
        step = len(lines) // n
        a = (i - 1) * step
        b = len(lines) if i == n else i * step + overlap
        return "\n".join(lines[a:b])

    return respond


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_ocr_dense_page_tiles_and_merges(vllm_server: LocalVLLMServer, mode: str) -> None:
    lines = [f"{i}. Clause {i} of the agreement sets out term number {i * 3}" for i in range(30)]
    page = _text_page((1654, 2339), lines=60)
    plan = plan_page_image(page)  # the plan the tool makes: small print measured, cut in whitespace
    assert plan.mode == "tiles" and plan.requests >= 2
    shared = 0 if plan.cut == "whitespace" else 2
    vllm_server.set_responder(_crop_responder(lines, shared))
    tool = OCRTool(client=_client(vllm_server, max_concurrency=2))
    args = {"source": _data_url(page)}
    msg = _call(tool, args) if mode == "sync" else await _acall(tool, args)
    res = msg.artifact
    assert len(vllm_server.requests) == plan.requests
    assert all(_n_images(b) == 1 for b in vllm_server.requests)
    p = res.pages[0]
    assert p.requests == plan.requests and len(p.crops) == plan.requests
    assert [c.box for c in p.crops] == list(plan.boxes)
    assert p.image_tokens == plan.tokens
    assert p.markdown == "\n".join(lines)  # the overlap lines appear once


def test_docvqa_text_layer_picks_candidate_pages(server: LocalVLLMServer, tmp_path: Path) -> None:
    texts = [f"Chapter {i}: general remarks about weather and travel." for i in range(1, 11)]
    texts[6] = "Invoice summary. Total due: $1,250.00 payable by March."
    pdf = _make_pdf(tmp_path / "long.pdf", texts)
    tool = DocumentVQATool(client=_client(server), allowed_roots=[tmp_path], dpi=72)
    msg = _call(tool, {"question": "What is the total due on the invoice?", "source": str(pdf)})
    ans = msg.artifact
    assert isinstance(ans, DocumentAnswer) and ans.found and ans.pages == [7]
    assert len(server.requests) == 1
    body = server.requests[0]
    assert _n_images(body) == 1 and "page(s) 7 of a document" in _user_text(body)
    assert "Page(s): 7" in msg.content and 'Evidence: "Total due: $1,250.00"' in msg.content


def test_docvqa_short_answer(server: LocalVLLMServer) -> None:
    tool = DocumentVQATool(client=_client(server))
    msg = _call(tool, {"question": "Total?", "source": CHART_URL, "short_answer": True})
    assert msg.artifact.answer == "$1,250.00" and msg.content.startswith("$1,250.00")
    assert "exact words" in _user_text(server.requests[-1])


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_docvqa_budget_groups_pages_and_combines(mode: str, tmp_path: Path) -> None:
    # a small context: 5 scanned pages cannot go in one request; groups must fit max_model_len
    with LocalVLLMServer(max_model_len=9000, max_images=4) as srv:

        def respond(body: dict[str, Any]) -> str:
            text = _user_text(body)
            sent = [int(n) for n in re.findall(r"\d+", text.split("of a document")[0])]
            found = 4 in sent
            return json.dumps(
                {
                    "answer": "42" if found else "not on these pages",
                    "short_answer": "42" if found else "",
                    "pages": [4] if found else [],
                    "evidence": "Answer: 42" if found else "",
                    "confidence": 0.7 if found else 0.95,
                    "found": found,
                }
            )

        srv.set_responder(respond)
        paths = []
        for i in range(5):
            p = tmp_path / f"scan{i + 1}.png"
            _text_page((1240, 1754)).save(p)
            paths.append(str(p))
        tool = DocumentVQATool(client=_client(srv), allowed_roots=[tmp_path], max_tokens=512)
        args = {"question": "What is the answer?", "source": paths}
        msg = _call(tool, args) if mode == "sync" else await _acall(tool, args)
        assert msg.status == "success", msg.content
        ans = msg.artifact
        assert ans.found and ans.answer == "42" and ans.pages == [4]
        assert len(srv.requests) >= 2  # planned into groups, not one overflowing request
        seen: list[int] = []
        for body in srv.requests:
            count, _, n_img = srv.count_prompt(body["messages"])
            assert count + body["max_tokens"] <= srv.max_model_len
            assert 1 <= n_img <= 4
            seen += [int(n) for n in re.findall(r"\d+", _user_text(body).split("of a document")[0])]
        assert sorted(seen) == [1, 2, 3, 4, 5]


# ------------------------------------------------------------------ bad inputs
def _bad_inputs(tmp_path: Path) -> list[tuple[str, str]]:
    corrupt = tmp_path / "broken.pdf"
    corrupt.write_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage garbage\n")
    outside = Path(__file__).resolve()
    return [
        (str(outside), "outside the allowed folders"),
        (f"file://{tmp_path}/x.png", "file: URLs are not accepted"),
        ("http://127.0.0.1:8000/chart.png", "non-public"),
        (str(tmp_path / "missing.png"), "not found"),
        (str(corrupt), "broken.pdf"),
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("tool_cls", [ChartReaderTool, DocumentVQATool, OCRTool, DiagramReasoningTool])
async def test_bad_inputs_come_back_as_tool_errors(
    server: LocalVLLMServer, tmp_path: Path, tool_cls: type[BaseTool], mode: str
) -> None:
    tool = tool_cls(client=_client(server), allowed_roots=[tmp_path], allow_urls=True)  # type: ignore[call-arg]
    for source, expected in _bad_inputs(tmp_path):
        args: dict[str, Any] = {"source": source, "question": "What is shown?"}
        if tool_cls is OCRTool:
            args.pop("question")
        if tool_cls is ChartReaderTool:
            args["question"] = None
        msg = _call(tool, args) if mode == "sync" else await _acall(tool, args)
        assert msg.status == "error", (source, msg.content)
        assert expected in msg.content, (source, msg.content)
        shown = source if len(source) <= 100 else source[:97]
        assert shown[:60] in msg.content, msg.content
        assert msg.content.startswith(f"{tool.name} failed for")
    assert server.requests == []  # nothing reached the server


def test_urls_refused_when_disabled(server: LocalVLLMServer, tmp_path: Path) -> None:
    tool = OCRTool(client=_client(server), allowed_roots=[tmp_path])
    msg = _call(tool, {"source": "https://example.com/page.png"})
    assert msg.status == "error" and "URL loading is disabled" in msg.content


def test_server_failure_is_a_tool_error(server: LocalVLLMServer) -> None:
    server.fail_next("500", count=10)
    tool = DiagramReasoningTool(client=_client(server, max_retries=1))
    msg = _call(tool, {"source": CHART_URL, "question": "What?"})
    assert msg.status == "error" and "500" in msg.content and "diagram_reasoning failed" in msg.content


# ------------------------------------------------------------------ concurrency
async def test_gather_respects_client_concurrency(tmp_path: Path) -> None:
    with LocalVLLMServer(latency=0.05) as srv:
        srv.set_responder(_responder)
        client = _client(srv, max_concurrency=3)
        chart, doc, ocr, diagram = MiniMaxVLToolkit(client=client, allowed_roots=[tmp_path]).get_tools()
        calls = []
        for i in range(6):
            calls.append(diagram.ainvoke({"source": CHART_URL, "question": f"q{i}", "options": ["a", "b"]}))
            calls.append(chart.ainvoke({"source": CHART_URL}))
        calls += [
            ocr.ainvoke({"source": CHART_URL}),
            doc.ainvoke({"question": "total?", "source": CHART_URL}),
        ]
        out = await asyncio.gather(*calls)
        assert len(out) == 14 and all(isinstance(o, str) and "failed" not in o for o in out)
        assert len(srv.requests) == 14
        assert 2 <= srv.max_running <= 3


def test_chart_invalid_json_after_repair_is_a_tool_error(server: LocalVLLMServer) -> None:
    server.queue("not json at all", '{"series": "still wrong"}')
    tool = ChartReaderTool(client=_client(server))
    msg = _call(tool, {"source": CHART_URL})
    assert msg.status == "error" and "ChartData" in msg.content
    assert len(server.requests) == 2  # the answer and one repair attempt


def test_ocr_reports_output_cut_at_max_tokens(server: LocalVLLMServer) -> None:
    # a reply cut at max_tokens is never kept: the page is retried hotter on two halves, and reported
    server.queue("word " * 400)
    tool = OCRTool(client=_client(server), max_tokens=64)
    msg = _call(tool, {"source": CHART_URL})
    page = msg.artifact.pages[0]
    assert page.status == "ok" and page.error is None and page.attempts == 2
    assert "word word" not in page.markdown and page.markdown.startswith("# Heading")
    assert any("finish_reason=length" in w for w in page.warnings)
    assert "retried pages: 1 (2 attempts)" in msg.content
    assert [b["temperature"] for b in server.requests] == [0.0, 0.2, 0.2]
    assert all(b["max_tokens"] == 64 for b in server.requests)


def test_chart_request_fitted_to_a_small_context() -> None:
    with LocalVLLMServer(max_model_len=4096) as srv:
        srv.set_responder(_responder)
        tool = ChartReaderTool(client=_client(srv), max_tokens=1024)
        big = _data_url(_chart_image().resize((1920, 1080)))  # 9864 tokens as sent unplanned
        msg = _call(tool, {"source": big})
        assert msg.status == "success", msg.content
        body = srv.requests[-1]
        count, image_tokens, n = srv.count_prompt(body["messages"])
        assert n == 1 and image_tokens < 9864
        assert count + body["max_tokens"] <= 4096


async def test_ocr_async_renders_in_page_order_on_its_own_thread_with_bounded_prefetch(
    server: LocalVLLMServer, tmp_path: Path
) -> None:
    import threading

    texts = [f"Page {i} says hello to the reader number {i}." for i in range(1, 13)]
    pdf = _make_pdf(tmp_path / "twelve.pdf", texts)
    client = _client(server, max_concurrency=2)
    tool = OCRTool(client=client, allowed_roots=[tmp_path], dpi=72, fix_rotation=False)
    seen: list[tuple[int, str]] = []
    live: list[int] = []
    peak = [0]
    lock = threading.Lock()
    render = tool._render_stream

    def rendered(source: str, selected: Any) -> Any:
        for page in render(source, selected):  # each page is rendered as the stream is advanced
            with lock:
                seen.append((page.number, threading.current_thread().name))
                live.append(page.number)
                peak[0] = max(peak[0], len(live))
            yield page

    original = client.achat

    async def achat(*a: Any, **k: Any) -> Any:
        try:
            return await original(*a, **k)
        finally:
            with lock:
                live.pop(0)

    object.__setattr__(tool, "_render_stream", rendered)
    object.__setattr__(client, "achat", achat)
    _, result = await tool._arun(str(pdf))
    assert [p.status for p in result.pages] == ["ok"] * 12
    assert [n for n, _ in seen] == list(range(1, 13))  # rendered in page order
    assert {name.split("_")[0] for _, name in seen} == {"minimaxvl-render"}  # not asyncio's shared pool
    assert peak[0] <= 2 + 2  # request slots + the rendered-ahead pages: pages in memory stay bounded
    assert len(server.requests) == 12
