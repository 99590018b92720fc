"""The pre-encoded chat body: the same JSON value ``chat.completions.create`` would send, ASCII-only."""

from __future__ import annotations

import asyncio
import json

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.client.steps import request_content
from minimaxvl_tools.testing import LocalVLLMServer


def test_request_content_is_the_create_body_with_extra_body_merged() -> None:
    kw = {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Grüße, 東京 ✓"}]}],
        "max_tokens": 64,
        "temperature": 0.0,
        "extra_body": {"top_k": 5, "repetition_penalty": 1.05},
    }
    raw = request_content(kw)
    assert raw.isascii() and b"extra_body" not in raw
    assert json.loads(raw) == {
        "model": "m",
        "messages": kw["messages"],
        "max_tokens": 64,
        "temperature": 0.0,
        "top_k": 5,
        "repetition_penalty": 1.05,
    }


def test_non_ascii_text_reaches_the_server_intact_on_both_paths() -> None:
    with LocalVLLMServer() as server:
        client = MiniMaxVLClient(base_url=server.base_url, api_key="k", model=server.model, max_retries=0)
        text = "Grüße aus 東京 ✓"
        assert client.chat(text, system="", extra_body={"top_k": 3}).text
        asyncio.run(client.achat(text, system=""))
        sync_body, async_body = server.requests
        for body in (sync_body, async_body):
            assert body["messages"][-1]["content"][-1]["text"] == text
        assert sync_body["top_k"] == 3 and "top_k" not in async_body
        client.close()
