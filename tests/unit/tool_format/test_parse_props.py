"""Property tests: tool calls -> native text (as the server returns it) -> AIMessage.tool_calls round trip."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from minimaxvl_tools.chat_model import ChatMiniMaxVL, convert_messages
from minimaxvl_tools.client import ChatResult, Usage
from minimaxvl_tools.tool_format import FUNCTION_CALL_TOKEN, StreamingToolCallParser

_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
# a literal <function_call> inside an argument is one special token to the server, which strips it
# (skip_special_tokens) like the real marker: such text cannot round-trip and is outside this property
# (Hypothesis draws the token's literal from the code under test, so it must be excluded explicitly)
_text = st.text(max_size=20).filter(lambda s: FUNCTION_CALL_TOKEN not in s)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_args = st.dictionaries(
    st.text(min_size=1, max_size=10).filter(lambda s: FUNCTION_CALL_TOKEN not in s), _json, max_size=4
)
_calls = st.lists(st.tuples(_names, _args), min_size=1, max_size=3)
_content = st.sampled_from(["", "Let me check.", "Two steps:\nfirst this."])

LLM = ChatMiniMaxVL(base_url="http://127.0.0.1:9/v1", model="m")


def _server_text(calls: list[tuple[str, dict[str, Any]]], content: str) -> str:
    """The assistant text we send for these calls, with the special token stripped as vLLM does."""
    ai = AIMessage(
        content,
        tool_calls=[
            {"name": n, "args": a, "id": f"c{i}", "type": "tool_call"} for i, (n, a) in enumerate(calls)
        ],
    )
    text = convert_messages([ai], system_prompt=None)[0]["content"][0]["text"]
    return text.replace(FUNCTION_CALL_TOKEN, "")


@settings(max_examples=60, deadline=None)
@given(_calls, _content)
def test_rendered_calls_parse_back_to_the_same_tool_calls(
    calls: list[tuple[str, dict[str, Any]]], content: str
) -> None:
    msg = LLM._message(ChatResult(text=_server_text(calls, content), usage=Usage()))
    assert [(c["name"], c["args"]) for c in msg.tool_calls] == calls
    assert msg.invalid_tool_calls == []
    assert msg.content == content.strip()


@settings(max_examples=40, deadline=None)
@given(_calls, _content, st.lists(st.integers(1, 7), min_size=1, max_size=40))
def test_streamed_chunks_aggregate_to_the_same_calls(
    calls: list[tuple[str, dict[str, Any]]], content: str, cuts: list[int]
) -> None:
    text = _server_text(calls, content)
    parser = StreamingToolCallParser()
    chunks: list[ChatGenerationChunk] = []
    i = 0
    for n in cuts * (len(text) // max(sum(cuts), 1) + 1):
        if i >= len(text):
            break
        delta = parser.feed(text[i : i + n])
        i += n
        if delta:
            chunks.append(ChatGenerationChunk(message=AIMessageChunk(content=delta)))
    tail, last = LLM._final_chunk(parser, Usage())
    merged: AIMessageChunk = AIMessageChunk(content="")
    for c in [*(c.message for c in chunks), AIMessageChunk(content=tail), last]:
        merged = merged + c  # type: ignore[assignment]
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == calls
    assert merged.content == content.strip()
