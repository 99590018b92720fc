"""Tools, offline: the langchain-tests standard unit suite per tool, plus input refusals and the toolkit."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool, ToolException
from langchain_tests.unit_tests import ToolsUnitTests
from PIL import Image

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.errors import AccessDeniedError, InvalidInputError
from minimaxvl_tools.settings import Settings
from minimaxvl_tools.tools import (
    ChartReaderTool,
    DiagramReasoningTool,
    DocumentVQATool,
    MiniMaxVLBaseTool,
    MiniMaxVLToolkit,
    OCRTool,
)
from minimaxvl_tools.tools.docvqa import keywords, score_page


def _png_data_url() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


DATA_URL = _png_data_url()
ENV = {"MINIMAXVL_BASE_URL": "http://vllm.example:8000/v1", "MINIMAXVL_MODEL": "my-minimax"}


def _client() -> MiniMaxVLClient:
    return MiniMaxVLClient(base_url="http://127.0.0.1:9/v1", max_model_len=32768)


class _Base(ToolsUnitTests):
    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"client": _client()}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ENV, {}, {"settings": Settings.from_env(ENV)}


class TestChartReaderUnit(_Base):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return ChartReaderTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"source": DATA_URL, "question": "Which bar is highest?"}


class TestDocumentVQAUnit(_Base):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return DocumentVQATool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"question": "What is the invoice total?", "source": DATA_URL, "short_answer": True}


class TestOCRUnit(_Base):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return OCRTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"source": DATA_URL, "pages": "1", "plain": False}


class TestDiagramUnit(_Base):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return DiagramReasoningTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"source": DATA_URL, "question": "Which organism is a producer?", "options": ["fox", "grass"]}


# ---------------------------------------------------------------------------------------------- extra
ALL = (ChartReaderTool, DocumentVQATool, OCRTool, DiagramReasoningTool)


def test_tool_defaults() -> None:
    for cls in ALL:
        tool = cls(client=_client())
        assert tool.response_format == "content_and_artifact"
        assert tool.handle_tool_error is True
        assert tool.allowed_roots == [Path.cwd()] and tool.allow_urls is False
        assert tool.settings is tool.client.settings  # type: ignore[union-attr]


def test_client_built_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    tool = OCRTool()
    assert isinstance(tool.client, MiniMaxVLClient)
    assert tool.client.settings.base_url == "http://vllm.example:8000/v1"
    assert tool.client.settings.model == "my-minimax"


def test_names_and_descriptions_route_to_the_right_tool() -> None:
    tools = MiniMaxVLToolkit(client=_client()).get_tools()
    names = [t.name for t in tools]
    assert names == ["chart_reader", "document_qa", "ocr_transcribe", "diagram_reasoning"]
    desc = {t.name: t.description.lower() for t in tools}
    assert "chart" in desc["chart_reader"] and "numbers" in desc["chart_reader"]
    assert "question" in desc["document_qa"] and "page" in desc["document_qa"]
    assert "transcribe" in desc["ocr_transcribe"] and "all the text" in desc["ocr_transcribe"]
    assert "diagram" in desc["diagram_reasoning"] and "multiple-choice" in desc["diagram_reasoning"]


def test_toolkit_shares_one_client_and_policy(tmp_path: Path) -> None:
    client = _client()
    tools = MiniMaxVLToolkit(client=client, allowed_roots=[tmp_path], allow_urls=True).get_tools()
    assert len(tools) == 4
    for t in tools:
        assert isinstance(t, MiniMaxVLBaseTool)
        assert t.client is client and t.allowed_roots == [tmp_path] and t.allow_urls is True
    assert MiniMaxVLToolkit().get_tools()[0].client is not None  # built from the environment


def test_check_source_refusals(tmp_path: Path) -> None:
    inside = tmp_path / "a.png"
    Image.new("RGB", (10, 10)).save(inside)
    tool = OCRTool(client=_client(), allowed_roots=[tmp_path])
    assert tool.check_source(str(inside)) == str(inside)
    assert tool.check_source(DATA_URL) == DATA_URL
    with pytest.raises(AccessDeniedError, match="outside the allowed folders"):
        tool.check_source(str(Path(__file__)))
    with pytest.raises(AccessDeniedError, match="outside"):
        tool.check_source(str(tmp_path / ".." / "x.png"))
    with pytest.raises(AccessDeniedError, match="file: URLs"):
        tool.check_source(f"file://{inside}")
    with pytest.raises(AccessDeniedError, match="disabled"):
        tool.check_source("https://example.com/a.png")
    with pytest.raises(InvalidInputError, match="file not found"):
        tool.check_source(str(tmp_path / "missing.png"))
    with pytest.raises(InvalidInputError, match="empty"):
        tool.check_source("  ")
    url_tool = OCRTool(client=_client(), allowed_roots=[tmp_path], allow_urls=True)
    for url in ("http://127.0.0.1:8000/a.png", "http://169.254.169.254/latest", "http://10.0.0.1/x.png"):
        with pytest.raises(AccessDeniedError, match="non-public"):
            url_tool.check_source(url)


def test_errors_become_tool_exceptions_naming_the_input(tmp_path: Path) -> None:
    tool = ChartReaderTool(client=_client(), allowed_roots=[tmp_path])
    with pytest.raises(ToolException, match="chart_reader failed for 'file:///etc/passwd'"):
        tool._run(source="file:///etc/passwd")
    out = tool.invoke({"source": "/etc/passwd"})
    assert isinstance(out, str) and "/etc/passwd" in out and "outside the allowed folders" in out


def test_truncate_notes_the_artifact() -> None:
    tool = OCRTool(client=_client(), max_content_chars=200)
    text = "\n".join(f"line {i} " + "x" * 20 for i in range(50))
    out = tool.truncate(text)
    assert len(out) < 320 and "[truncated:" in out and "artifact" in out
    assert tool.truncate("short") == "short"


def test_keyword_scoring() -> None:
    assert keywords("What is the TOTAL amount on the invoice?") == {"total", "amount", "invoice"}
    assert score_page("total of invoice 2024", "Invoice 2024 ... Total due") == 4.0  # 2024 counts double
    assert score_page("total", "") == 0.0


def test_docvqa_combine_prefers_found_then_confidence() -> None:
    from minimaxvl_tools.results import DocumentAnswer

    a = DocumentAnswer(answer="no", found=False, confidence=0.9)
    b = DocumentAnswer(answer="x", found=True, confidence=0.4)
    c = DocumentAnswer(answer="y", found=True, confidence=0.8)
    assert DocumentVQATool.combine([a, b, c]).answer == "y"
    assert DocumentVQATool.combine([a]).answer == "no"


def test_selecting_pdf_pages_opens_none_of_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a local PDF is listed from its page count: no page is loaded (1,280 page loads cost 0.25-0.6 s
    # before the first request), and the page range and the tool's limit still apply
    from fpdf import FPDF

    import minimaxvl_tools.pdf as pdf

    doc = FPDF()
    for _ in range(30):
        doc.add_page()
    (tmp_path / "doc.pdf").write_bytes(bytes(doc.output()))
    tool = OCRTool(client=_client(), allowed_roots=[tmp_path], max_pages=5)

    def no_loading(*a: Any, **kw: Any) -> Any:
        raise AssertionError("a page was opened to select it")

    monkeypatch.setattr(pdf, "iter_pdf_pages", no_loading)
    monkeypatch.setattr("minimaxvl_tools.pages.source.iter_pdf_pages", no_loading)
    selected = tool.select_pages(str(tmp_path / "doc.pdf"), "2-4")
    assert [(p.number, p.page_count, p.image) for p in selected] == [
        (2, 30, None),
        (3, 30, None),
        (4, 30, None),
    ]
    assert selected[0].source.endswith("doc.pdf")
    with pytest.raises(InvalidInputError, match="30 pages selected, over this tool's limit of 5"):
        tool.select_pages(str(tmp_path / "doc.pdf"))
    with pytest.raises(AccessDeniedError):
        tool.select_pages(str(tmp_path.parent / "elsewhere.pdf"))
