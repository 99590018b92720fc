"""A structured (JSON) answer cut at max_tokens (finish_reason "length"), over the wire against the vLLM
test double: the client reports it without a same-budget repair, and asks again once with more room when
the caller gives max_retry_tokens (ChartReaderTool, DiagramReasoningTool), the chart tool saying what to do
when that is not enough; other invalid answers keep the client's one repair attempt."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException
from PIL import Image, ImageDraw

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.errors import OutputValidationError, TruncatedOutputError
from minimaxvl_tools.prompts import chart as prompts
from minimaxvl_tools.results import ChartData
from minimaxvl_tools.testing.server import LocalVLLMServer, Reply, estimate_tokens
from minimaxvl_tools.tools import ChartReaderTool, DiagramReasoningTool

MODES = ["sync", "async"]


def _chart_json(series: int, points: int) -> str:
    """A complete ChartData answer of ``series`` x ``points`` values (long enough to outgrow a budget)."""
    return json.dumps(
        {
            "chart_type": "line",
            "title": "Monthly readings",
            "x_axis": {"label": "Month", "unit": None},
            "y_axis": {"label": "Value", "unit": "units"},
            "series": [
                {"name": f"Sensor {s}", "points": [{"x": f"m{p:03d}", "y": s + p / 4} for p in range(points)]}
                for s in range(series)
            ],
            "legend": [f"Sensor {s}" for s in range(series)],
            "answer": None,
            "notes": None,
        }
    )


MEDIUM = _chart_json(12, 40)  # fits twice the default budget of 2048, not the budget itself
HUGE = _chart_json(20, 60)  # fits neither


def _chart_url() -> str:
    img = Image.new("RGB", (640, 480), "white")
    d = ImageDraw.Draw(img)
    for i in range(12):
        d.line((40, 40 + i * 30, 600, 400 - i * 20), fill=(20 * i, 90, 200), width=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


CHART_URL = _chart_url()


def _client(server: LocalVLLMServer) -> MiniMaxVLClient:
    return MiniMaxVLClient(base_url=server.base_url, max_retries=1, backoff_base=0.01, backoff_max=0.05)


async def _call(tool: ChartReaderTool, mode: str, args: dict[str, Any] | None = None) -> ToolMessage:
    call = {"type": "tool_call", "id": "call-1", "name": tool.name, "args": args or {"source": CHART_URL}}
    msg = tool.invoke(call) if mode == "sync" else await tool.ainvoke(call)
    assert isinstance(msg, ToolMessage)
    return msg


def _budgets(server: LocalVLLMServer) -> list[int]:
    return [int(b["max_tokens"]) for b in server.requests]


def test_answers_are_sized_as_the_tests_assume() -> None:
    assert 2048 < estimate_tokens(MEDIUM) <= 4096 < estimate_tokens(HUGE)
    ChartData.model_validate_json(MEDIUM)


# ------------------------------------------------------------------ client
@pytest.mark.parametrize("mode", MODES)
async def test_client_reports_a_cut_json_without_a_repair(vllm_server: LocalVLLMServer, mode: str) -> None:
    vllm_server.set_responder(lambda body: MEDIUM)
    client = _client(vllm_server)
    with pytest.raises(TruncatedOutputError) as ei:
        if mode == "sync":
            client.structured("chart?", [], ChartData, max_tokens=512)
        else:
            await client.astructured("chart?", [], ChartData, max_tokens=512)
    assert len(vllm_server.requests) == 1  # a repair would need the same room again: none is sent
    assert "finish_reason=length" in str(ei.value) and "max_tokens 512" in str(ei.value)
    assert ei.value.raw and MEDIUM.startswith(ei.value.raw)


@pytest.mark.parametrize("mode", MODES)
async def test_client_scripted_length_with_invalid_json_is_truncation(
    vllm_server: LocalVLLMServer, mode: str
) -> None:
    vllm_server.queue(Reply('{"chart_type": "bar", "series": [', finish_reason="length"))
    client = _client(vllm_server)
    with pytest.raises(TruncatedOutputError):
        if mode == "sync":
            client.chat("chart?", schema=ChartData)
        else:
            await client.achat("chart?", schema=ChartData)
    assert len(vllm_server.requests) == 1


# ------------------------------------------------------------------ chart tool
@pytest.mark.parametrize("mode", MODES)
async def test_chart_cut_json_is_retried_once_with_twice_the_budget(
    vllm_server: LocalVLLMServer, mode: str
) -> None:
    vllm_server.set_responder(lambda body: MEDIUM)  # the server cuts it at 2048 tokens, like vLLM
    tool = ChartReaderTool(client=_client(vllm_server))
    msg = await _call(tool, mode)
    assert msg.status == "success", msg.content
    assert isinstance(msg.artifact, ChartData) and msg.artifact == ChartData.model_validate_json(MEDIUM)
    assert "12 series" in msg.content
    assert _budgets(vllm_server) == [2048, 4096]
    assert all(b["response_format"]["type"] == "json_schema" for b in vllm_server.requests)
    assert vllm_server.requests[0]["messages"] == vllm_server.requests[1]["messages"]  # same ask, more room


@pytest.mark.parametrize("mode", MODES)
async def test_chart_retry_budget_capped_by_max_retry_tokens(vllm_server: LocalVLLMServer, mode: str) -> None:
    vllm_server.set_responder(lambda body: MEDIUM)
    tool = ChartReaderTool(client=_client(vllm_server), max_retry_tokens=3500)
    msg = await _call(tool, mode)
    assert msg.status == "success", msg.content
    assert _budgets(vllm_server) == [2048, 3500]


def _prompt_tokens(tool: ChartReaderTool) -> int:
    """The client's count of the chart request's prompt (what its budgeting leaves the completion)."""
    images = tool._images(CHART_URL, None)
    text, system = prompts.user_prompt(None, pages=1), prompts.system_prompt()
    plan = tool.vl_client.plan(text, images, system=system, max_tokens=1, max_model_len=10**6)
    return plan.text_tokens + plan.image_tokens


@pytest.mark.parametrize("mode", MODES)
async def test_chart_retry_budget_capped_by_context_room(vllm_server: LocalVLLMServer, mode: str) -> None:
    vllm_server.set_responder(lambda body: MEDIUM)
    vllm_server.max_model_len = _prompt_tokens(ChartReaderTool(client=_client(vllm_server))) + 3400
    tool = ChartReaderTool(client=_client(vllm_server))  # a fresh client reads the smaller context
    msg = await _call(tool, mode)
    assert msg.status == "success", msg.content
    assert _budgets(vllm_server) == [2048, 3400]  # the room the prompt leaves, not twice the budget
    first, retry = vllm_server.requests
    assert retry["messages"] == first["messages"]  # the chart is not shrunk to make room
    prompt, _, _ = vllm_server.count_prompt(retry["messages"])
    assert prompt + 3400 <= vllm_server.max_model_len


@pytest.mark.parametrize("mode", MODES)
async def test_chart_cut_twice_is_a_helpful_truncation_error(vllm_server: LocalVLLMServer, mode: str) -> None:
    vllm_server.set_responder(lambda body: HUGE)
    tool = ChartReaderTool(client=_client(vllm_server), handle_tool_error=False)
    with pytest.raises(ToolException) as ei:
        await _call(tool, mode)
    assert isinstance(ei.value.__cause__, TruncatedOutputError)
    assert HUGE.startswith(ei.value.__cause__.raw) and len(ei.value.__cause__.raw) > 4096
    text = str(ei.value)
    assert text.startswith("chart_reader failed for 'data URL (data:image/png;base64")
    assert "2048, then 4096" in text and "finish_reason=length" in text
    assert "fewer series" in text and "crop the chart" in text and "max_tokens" in text
    assert _budgets(vllm_server) == [2048, 4096]


@pytest.mark.parametrize("mode", MODES)
async def test_chart_cut_twice_comes_back_to_the_agent(
    vllm_server: LocalVLLMServer, mode: str, tmp_path: Any
) -> None:
    path = tmp_path / "sales.png"
    path.write_bytes(base64.b64decode(CHART_URL.partition(",")[2]))
    vllm_server.set_responder(lambda body: HUGE)
    tool = ChartReaderTool(client=_client(vllm_server), allowed_roots=[tmp_path])
    msg = await _call(tool, mode, {"source": str(path), "question": "Which sensor peaks first?"})
    assert msg.status == "error" and "fewer series" in msg.content
    assert msg.content.startswith(f"chart_reader failed for '{str(path)[:60]}")  # names the input
    assert len(vllm_server.requests) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_chart_retry_off_when_max_retry_tokens_is_not_larger(
    vllm_server: LocalVLLMServer, mode: str
) -> None:
    vllm_server.set_responder(lambda body: MEDIUM)
    tool = ChartReaderTool(client=_client(vllm_server), max_retry_tokens=2048)
    msg = await _call(tool, mode)
    assert msg.status == "error" and "no room to retry" in msg.content and "fewer series" in msg.content
    assert _budgets(vllm_server) == [2048]


@pytest.mark.parametrize("mode", MODES)
async def test_chart_invalid_json_not_cut_is_repaired_not_given_room(
    vllm_server: LocalVLLMServer, mode: str
) -> None:
    vllm_server.queue("not json at all", '{"series": "still wrong"}')
    tool = ChartReaderTool(client=_client(vllm_server), handle_tool_error=False)
    with pytest.raises(ToolException) as ei:
        await _call(tool, mode)
    cause = ei.value.__cause__
    assert isinstance(cause, OutputValidationError) and not isinstance(cause, TruncatedOutputError)
    assert _budgets(vllm_server) == [2048, 2048]  # the answer and the client's one repair, no more room
    assert vllm_server.requests[1]["messages"][-2]["role"] == "assistant"


@pytest.mark.parametrize("mode", MODES)
async def test_chart_invalid_then_repaired_is_one_repair(vllm_server: LocalVLLMServer, mode: str) -> None:
    vllm_server.queue('{"series": 3}', _chart_json(2, 3))
    tool = ChartReaderTool(client=_client(vllm_server))
    msg = await _call(tool, mode)
    assert msg.status == "success" and len(msg.artifact.series) == 2
    assert _budgets(vllm_server) == [2048, 2048]


@pytest.mark.parametrize("mode", MODES)
async def test_chart_server_error_is_not_retried_for_room(vllm_server: LocalVLLMServer, mode: str) -> None:
    vllm_server.queue(Reply(status=400, error="bad request for this test"))
    tool = ChartReaderTool(client=_client(vllm_server))
    msg = await _call(tool, mode)
    assert msg.status == "error" and "bad request for this test" in msg.content
    assert len(vllm_server.requests) == 1


# ------------------------------------------------------------------ diagram tool (plain text, same retry)
@pytest.mark.parametrize("mode", MODES)
async def test_diagram_cut_reply_is_asked_again_within_max_retry_tokens(
    vllm_server: LocalVLLMServer, mode: str
) -> None:
    vllm_server.queue(Reply("Step 1: the lines rise. Step 2:", finish_reason="length"))
    vllm_server.set_responder(lambda body: "The lines rise.\nAnswer: A")
    tool = DiagramReasoningTool(client=_client(vllm_server), max_tokens=512, max_retry_tokens=800)
    args = {"source": CHART_URL, "question": "Do the lines rise?", "options": ["yes", "no"]}
    call = {"type": "tool_call", "id": "call-1", "name": tool.name, "args": args}
    msg = tool.invoke(call) if mode == "sync" else await tool.ainvoke(call)
    assert msg.status == "success" and msg.artifact.option == "A"
    assert _budgets(vllm_server) == [512, 800]
    assert vllm_server.requests[0]["messages"] == vllm_server.requests[1]["messages"]
