"""The client's sync and async paths given the same cases: same results, same limits, same errors."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.errors import ServerUnavailableError, TooManyImagesError
from minimaxvl_tools.testing import LocalVLLMServer

pytestmark = pytest.mark.timeout(30)


class Answer(BaseModel):
    answer: str


def make_client(server: LocalVLLMServer, **kw: Any) -> MiniMaxVLClient:
    kw.setdefault("timeout", 2.0)
    kw.setdefault("max_retries", 2)
    return MiniMaxVLClient(base_url=server.base_url, backoff_base=0.01, backoff_max=0.05, **kw)


def call(path: str, c: MiniMaxVLClient, method: str, *args: Any, **kw: Any) -> Any:
    """Run ``method`` on the sync client, or its ``a``-twin on an event loop."""
    if path == "sync":
        return getattr(c, method)(*args, **kw)
    return asyncio.run(getattr(c, "a" + method)(*args, **kw))


def stream(path: str, c: MiniMaxVLClient, text: str) -> list[str]:
    if path == "sync":
        return list(c.stream(text))

    async def go() -> list[str]:
        return [d async for d in c.astream(text)]

    return asyncio.run(go())


PATHS = pytest.mark.parametrize("path", ["sync", "async"])


@PATHS
def test_chat_text_and_usage(path: str, vllm_server: LocalVLLMServer) -> None:
    vllm_server.queue("hello there")
    c = make_client(vllm_server)
    r = call(path, c, "chat", "hi")
    assert r.text == "hello there" and r.usage.requests == 1 and c.usage.requests == 1


@PATHS
def test_structured_repair_once(path: str, vllm_server: LocalVLLMServer) -> None:
    vllm_server.queue("not json at all", '{"answer": "42"}')
    c = make_client(vllm_server)
    r = call(path, c, "chat", "q", schema=Answer)
    assert r.parsed == Answer(answer="42") and r.usage.requests == 2


@PATHS
def test_stream_deltas_and_usage(path: str, vllm_server: LocalVLLMServer) -> None:
    vllm_server.queue("alpha beta gamma")
    c = make_client(vllm_server)
    assert "".join(stream(path, c, "go")) == "alpha beta gamma"
    assert c.usage.requests == 1 and c.usage.completion_tokens > 0


@PATHS
def test_persistent_failure_is_typed(path: str, vllm_server: LocalVLLMServer) -> None:
    vllm_server.fail_next("503", 10)
    c = make_client(vllm_server)
    with pytest.raises(ServerUnavailableError, match="after 3 attempts"):
        call(path, c, "chat", "x")


@PATHS
def test_too_many_images_refused_before_sending(path: str, vllm_server: LocalVLLMServer) -> None:
    from PIL import Image

    c = make_client(vllm_server, max_images_per_request=1)
    imgs = [Image.new("RGB", (64, 64), "red"), Image.new("RGB", (64, 64), "blue")]
    with pytest.raises(TooManyImagesError):
        call(path, c, "chat", "x", imgs)
    assert vllm_server.requests == []


@PATHS
def test_concurrency_limit_holds_on_both_paths(path: str) -> None:
    with LocalVLLMServer(latency=0.1) as server:
        c = make_client(server, max_concurrency=3)
        if path == "sync":
            run: Callable[[], Any] = lambda: c.chat("x")  # noqa: E731
            threads = [threading.Thread(target=run) for _ in range(9)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:

            async def go() -> None:
                await asyncio.gather(*(c.achat("x") for _ in range(9)))

            asyncio.run(go())
        assert c.limiter.max_in_flight == 3 and c.limiter.in_flight == 0
        assert c.usage.requests == 9
