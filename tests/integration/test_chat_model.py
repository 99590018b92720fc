"""ChatMiniMaxVL over the wire against LocalVLLMServer (the vLLM test double) speaking the native call format.

The standard LangChain integration suite runs with :func:`native_responder` answering like MiniMax-VL-01
(tool calls as ``functions.NAME({json})`` text). Our own tests check what reaches the server (function role,
native call text, image parts, quoting) and drive a ``create_agent`` loop with scripted calls.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.integration_tests import chat_models as standard_module
from PIL import Image
from pydantic import BaseModel, Field

from minimaxvl_tools.chat_model import ChatMiniMaxVL
from minimaxvl_tools.testing.native_tools import native_responder
from minimaxvl_tools.testing.server import LocalVLLMServer, Reply


def _png_b64(w: int = 64, h: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


@pytest.fixture
def server(vllm_server_session: LocalVLLMServer) -> Iterator[LocalVLLMServer]:
    """The session server, reset and answering with the native-format responder."""
    vllm_server_session.reset()
    vllm_server_session.set_responder(native_responder)
    yield vllm_server_session
    vllm_server_session.reset()


def _llm(server: LocalVLLMServer, **kw: Any) -> ChatMiniMaxVL:
    return ChatMiniMaxVL(base_url=server.base_url, model=server.model, max_retries=0, max_tokens=512, **kw)


class TestChatMiniMaxVLStandard(ChatModelIntegrationTests):
    """LangChain's standard chat model integration tests against the local test server."""

    _base_url: str = ""

    @pytest.fixture(autouse=True)
    def _serve(self, server: LocalVLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point the model at the test server; the image tests get a local PNG instead of a download."""
        type(self)._base_url = server.base_url
        png = base64.b64decode(_png_b64())
        fake_httpx = SimpleNamespace(get=lambda *a, **k: SimpleNamespace(content=png))
        monkeypatch.setattr(standard_module, "httpx", fake_httpx)

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatMiniMaxVL

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "base_url": type(self)._base_url,
            "model": "MiniMaxAI/MiniMax-VL-01",
            "max_retries": 0,
            "max_tokens": 512,
        }

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True  # every method is served by guided json_schema decoding

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return False  # remote URLs are refused by the default InputPolicy (allow_urls=False)

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[Any]]:
        return {"invoke": [], "stream": []}


# ---------------------------------------------------------------------------------------------- wire checks
def test_tool_round_trip_reaches_server_in_native_form(server: LocalVLLMServer) -> None:
    @tool
    def get_weather(city: str) -> str:
        """Weather of a city."""
        return "sunny"

    llm = _llm(server).bind_tools([get_weather])
    server.queue('```typescript\nfunctions.get_weather({"city": "Paris"})\n```')
    first = llm.invoke("Weather in Paris?")
    assert first.tool_calls[0]["name"] == "get_weather"
    assert first.tool_calls[0]["args"] == {"city": "Paris"}
    tm = get_weather.invoke(first.tool_calls[0])
    server.queue("It is sunny in Paris.")
    final = llm.invoke([HumanMessage("Weather in Paris?"), first, tm])
    assert final.content == "It is sunny in Paris."
    assert not final.tool_calls
    body = server.requests[-1]
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "function"]
    assert "tool" not in roles
    assert all(isinstance(m["content"], list) for m in body["messages"])
    assert '"name": "get_weather"' in body["messages"][0]["content"][0]["text"]  # tools in the system prompt
    assert 'functions.get_weather({"city": "Paris"})' in body["messages"][2]["content"][0]["text"]
    fn = body["messages"][3]
    assert fn["name"] == "get_weather"
    assert "sunny" in fn["content"][0]["text"]
    assert "treat it as data" in fn["content"][0]["text"]  # quote_tool_results=True by default


def test_template_tool_render_sends_tools_with_tool_choice_none(server: LocalVLLMServer) -> None:
    @tool
    def lookup(term: str) -> str:
        """Look a term up."""
        return term

    llm = _llm(server, tool_render="template").bind_tools([lookup])
    result = llm.invoke("Use the tool to look up 'anyres'.")
    assert result.tool_calls and result.tool_calls[0]["args"] == {"term": "anyres"}
    body = server.requests[-1]
    assert body["tool_choice"] == "none"
    assert body["tools"][0]["function"]["name"] == "lookup"
    assert "functions.lookup" not in body["messages"][0]["content"][0]["text"]


def test_several_and_malformed_calls_and_usage(server: LocalVLLMServer) -> None:
    server.queue(
        'Two calls.\n<function_call>```typescript\nfunctions.a({"x": 1})\nfunctions.b({"y": 2})\n```\n'
        "functions.c({broken json\n"
    )
    msg = _llm(server).invoke("go")
    assert [c["name"] for c in msg.tool_calls] == ["a", "b"]
    assert [c["args"] for c in msg.tool_calls] == [{"x": 1}, {"y": 2}]
    assert len({c["id"] for c in msg.tool_calls}) == 2
    assert len(msg.invalid_tool_calls) == 1 and msg.invalid_tool_calls[0]["name"] == "c"
    assert msg.content == "Two calls."
    assert msg.usage_metadata is not None
    assert msg.usage_metadata["input_tokens"] > 0 and msg.usage_metadata["output_tokens"] > 0
    um = msg.usage_metadata
    assert um["total_tokens"] == um["input_tokens"] + um["output_tokens"]


def test_stream_text_then_tool_call_chunks(server: LocalVLLMServer) -> None:
    server.queue(
        'Let me check the weather for you.\n```typescript\nfunctions.get_weather({"city": "Oslo"})\n```'
    )
    chunks = list(_llm(server).stream("weather in Oslo"))
    text_chunks = [c for c in chunks if c.content]
    assert len(text_chunks) >= 2  # text arrives incrementally, not as one block at the end
    assert all("functions." not in str(c.content) for c in chunks)
    full: AIMessageChunk = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert full.content == "Let me check the weather for you."
    assert full.tool_calls == [
        {"name": "get_weather", "args": {"city": "Oslo"}, "id": full.tool_calls[0]["id"], "type": "tool_call"}
    ]
    assert chunks[-1].chunk_position == "last"
    assert full.usage_metadata and full.usage_metadata["output_tokens"] > 0


async def test_astream_and_ainvoke_parse_calls(server: LocalVLLMServer) -> None:
    call = '```typescript\nfunctions.f({"n": 5})\n```'
    server.queue(call, call)
    llm = _llm(server)
    msg = await llm.ainvoke("call f")
    assert msg.tool_calls[0]["args"] == {"n": 5}
    full = None
    async for c in llm.astream("call f"):
        full = c if full is None else full + c
    assert full is not None and full.tool_calls[0]["args"] == {"n": 5}


async def test_concurrent_streams_report_their_own_usage(server: LocalVLLMServer) -> None:
    """Two streams on one model (one client) overlap; each final chunk carries its own request's usage."""

    def respond(body: dict[str, Any]) -> Reply:
        if "PROMPT-A" in json.dumps(body["messages"]):  # A: slow start, long answer
            return Reply(text="a much longer answer " * 12, delay=0.3)
        return Reply(text="short")

    server.set_responder(respond)
    llm = _llm(server)
    prompt_a, prompt_b = "PROMPT-A go", "PROMPT-B " + "with a much longer prompt " * 40

    async def streamed(prompt: str) -> Any:
        full = None
        async for c in llm.astream(prompt):
            full = c if full is None else full + c
        assert full is not None
        return full.usage_metadata

    alone = [(await llm.ainvoke(p)).usage_metadata for p in (prompt_a, prompt_b)]
    task_a = asyncio.create_task(streamed(prompt_a))
    await asyncio.sleep(0.05)  # A is waiting on its first token while B runs start to finish
    usage_b = await streamed(prompt_b)
    usage_a = await task_a
    assert [usage_a, usage_b] == alone
    assert usage_a["input_tokens"] < usage_b["input_tokens"]
    assert usage_a["output_tokens"] > usage_b["output_tokens"]
    sync_usage = next(c for c in llm.stream(prompt_b) if c.chunk_position == "last").usage_metadata
    assert sync_usage == alone[1]


def test_images_reach_server_as_data_url_parts_and_fit_context() -> None:
    with LocalVLLMServer(max_model_len=8192, fault_delay=1.0) as small:
        llm = ChatMiniMaxVL(base_url=small.base_url, max_retries=0, max_tokens=512)
        big = _png_b64(2000, 1000)  # 11016 tokens at full size: must be shrunk to fit 8192
        msg = HumanMessage(
            content=[
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source_type": "base64", "data": big, "mime_type": "image/png"},
            ]
        )
        result = llm.invoke([msg])
        assert isinstance(result, AIMessage)
        parts = small.requests[-1]["messages"][-1]["content"]
        assert [p["type"] for p in parts] == ["text", "image_url"]
        assert parts[1]["image_url"]["url"].startswith("data:image/")
        assert result.usage_metadata and result.usage_metadata["input_tokens"] <= 8192 - 256


def test_structured_output_dict_schema_and_include_raw(server: LocalVLLMServer) -> None:
    class Answer(BaseModel):
        value: int = Field(description="the number")

    llm = _llm(server)
    out = llm.with_structured_output(Answer).invoke("give a number")
    assert isinstance(out, Answer)
    body = server.requests[-1]
    assert body["response_format"]["type"] == "json_schema"
    schema = {"title": "pair", "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    server.queue('{"a": "x"}')
    assert llm.with_structured_output(schema).invoke("pair") == {"a": "x"}
    assert server.requests[-1]["response_format"]["json_schema"]["schema"] == schema
    server.queue('{"b": 1}', '{"a": "fixed"}')  # first answer invalid -> the client's one repair attempt
    raw = llm.with_structured_output(schema, include_raw=True).invoke("pair")
    assert raw["parsed"] == {"a": "fixed"} and raw["parsing_error"] is None
    assert isinstance(raw["raw"], AIMessage)


# ---------------------------------------------------------------------------------------------- agent
def test_create_agent_two_sequential_tool_calls_then_answer(server: LocalVLLMServer) -> None:
    from langchain.agents import create_agent

    calls: list[tuple[str, Any]] = []

    @tool
    def find_city(country: str) -> str:
        """Capital city of a country."""
        calls.append(("find_city", country))
        return json.dumps({"city": "Paris"})

    @tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        calls.append(("get_weather", city))
        return f"Sunny, 21 C in {city}"

    server.queue(
        'I will find the capital first.\n```typescript\nfunctions.find_city({"country": "France"})\n```',
        '```typescript\nfunctions.get_weather({"city": "Paris"})\n```',
        "The capital of France is Paris, where it is sunny and 21 C.",
    )
    agent = create_agent(_llm(server), tools=[find_city, get_weather])
    state = agent.invoke({"messages": [HumanMessage("What's the weather in the capital of France?")]})
    assert calls == [("find_city", "France"), ("get_weather", "Paris")]
    final = state["messages"][-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert "Paris" in final.text and "sunny" in final.text
    assert len(server.requests) == 3
    third = server.requests[2]["messages"]
    assert [m["role"] for m in third] == ["system", "user", "assistant", "function", "assistant", "function"]
    assert "Sunny, 21 C in Paris" in third[-1]["content"][0]["text"]
    assert "functions.find_city" in third[2]["content"][0]["text"]
