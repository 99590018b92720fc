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


def _image_kw(url: str, text: str = "Transcribe") -> dict:
    return {
        "model": "m",
        "messages": [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}],
            },
        ],
        "max_tokens": 64,
    }


def test_image_data_urls_are_spliced_verbatim_and_the_body_is_the_same_json() -> None:
    import base64
    import os

    url = "data:image/jpeg;base64," + base64.b64encode(os.urandom(30_000)).decode()
    kw = _image_kw(url)
    raw = request_content(kw)
    assert raw.count(url.encode()) == 1 and b"minimaxvl-literal" not in raw
    assert json.loads(raw) == {k: v for k, v in kw.items()}
    assert kw["messages"][1]["content"][1]["image_url"]["url"] == url  # the caller's messages untouched


def test_long_urls_that_need_escaping_still_go_through_json() -> None:
    for url in ("data:image/png;base64," + "A" * 20_000 + "\n" + "B" * 10, 'x"' * 10_000, "é" * 20_000):
        kw = _image_kw(url)
        assert json.loads(request_content(kw)) == kw


def test_the_mark_in_the_callers_own_text_falls_back_to_plain_json() -> None:
    from minimaxvl_tools.client.steps import _MARK

    kw = _image_kw("data:image/jpeg;base64," + "Q" * 20_000, text=_MARK)
    assert json.loads(request_content(kw)) == kw
    kw = {"model": "m", "prompt": "no messages", "max_tokens": 1}
    assert json.loads(request_content(kw)) == kw
