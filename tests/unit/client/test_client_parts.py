"""client.messages, client.limiter, client.pool and client.error_map as pure parts."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from minimaxvl_tools.client.error_map import is_endpoint_fault, is_retryable, map_error, root_of
from minimaxvl_tools.client.limiter import ConcurrencyLimiter, sync_slot
from minimaxvl_tools.client.messages import build_messages, normalize_message
from minimaxvl_tools.client.pool import EndpointPool
from minimaxvl_tools.errors import ContextOverflowError, InvalidInputError, MediaError, ModelMismatchError
from minimaxvl_tools.tool_format import parse_tool_calls


def err(code: int, message: str) -> openai.APIStatusError:
    req = httpx.Request("POST", "http://h:8000/v1/chat/completions")
    resp = httpx.Response(code, request=req, json={"error": {"message": message}})
    return openai.APIStatusError(message, response=resp, body={"error": {"message": message}})


def test_assistant_tool_calls_become_native_call_text_that_parses_back() -> None:
    msg = {
        "role": "assistant",
        "content": "let me look",
        "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "ocr", "arguments": '{"page": 2}'}}
        ],
    }
    out = normalize_message(msg, 0)
    text = "".join(p["text"] for p in out["content"])
    parsed = parse_tool_calls(text)
    assert [(c.name, c.args) for c in parsed.tool_calls] == [("ocr", {"page": 2})]


def test_tool_role_is_sent_as_function() -> None:
    out = normalize_message({"role": "tool", "content": "42", "tool_call_id": "call_1"}, 3)
    assert out["role"] == "function" and out["name"] == "call_1"


def test_messages_refuse_the_image_token_and_empty_requests() -> None:
    with pytest.raises(InvalidInputError, match="<image>"):
        build_messages("look at <image>")
    with pytest.raises(InvalidInputError, match="nothing to send"):
        build_messages("", system="sys")


def test_errors_mapped_by_status_and_message() -> None:
    assert isinstance(
        map_error(err(400, "maximum context length is 32768 tokens"), "u"), ContextOverflowError
    )
    assert isinstance(map_error(err(500, "cannot identify image file"), "u"), MediaError)
    assert isinstance(map_error(err(404, "The model `x` does not exist."), "u"), ModelMismatchError)
    assert not is_retryable(err(500, "failed to load image")) and is_retryable(err(503, "busy"))
    assert is_endpoint_fault(err(502, "bad gateway")) and not is_endpoint_fault(err(429, "slow down"))
    assert root_of("http://h:8000/v1/") == "http://h:8000"


def test_sync_callers_wait_for_a_slot() -> None:
    lim = ConcurrencyLimiter(2)
    seen: list[int] = []

    def work() -> None:
        with sync_slot(lim):
            seen.append(lim.in_flight)
            time.sleep(0.02)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(seen) <= 2 and lim.max_in_flight == 2 and lim.in_flight == 0


def test_pool_prefers_the_least_loaded_healthy_replica() -> None:
    pool = EndpointPool(["http://a/v1", "http://b/v1", "http://a/v1"], "k", 1.0)
    assert len(pool.endpoints) == 2  # duplicates collapse
    first = pool.pick()
    second = pool.pick()
    assert first is not second  # the busy one is avoided
    pool.release(first)
    second.mark_down(30.0, "down")
    assert pool.pick() is first and pool.healthy_roots() == [first.root_url]
