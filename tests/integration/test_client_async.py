"""MiniMaxVLClient async paths against LocalVLLMServer: achat, astream, faults, batch concurrency limit."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from PIL import Image
from pydantic import BaseModel

from minimaxvl_tools.client import ConcurrencyLimiter, MiniMaxVLClient
from minimaxvl_tools.errors import ServerUnavailableError, TooManyImagesError
from minimaxvl_tools.images.encode import encode_image
from minimaxvl_tools.testing import LocalVLLMServer

pytestmark = pytest.mark.timeout(20)


def make_client(server: LocalVLLMServer, **kw: object) -> MiniMaxVLClient:
    kw.setdefault("timeout", 1.0)
    kw.setdefault("max_retries", 2)
    return MiniMaxVLClient(base_url=server.base_url, backoff_base=0.01, backoff_max=0.05, **kw)  # type: ignore[arg-type]


class Answer(BaseModel):
    answer: str
    confidence: float


async def test_achat_with_image(vllm_server: LocalVLLMServer) -> None:
    vllm_server.queue("a red square")
    async with make_client(vllm_server) as c:
        r = await c.achat("what?", [encode_image(Image.new("RGB", (336, 336), "red"))])
    assert r.text == "a red square" and r.usage.image_tokens == 1176


async def test_achat_retries_then_typed_error(vllm_server: LocalVLLMServer) -> None:
    vllm_server.fail_next("503", 1)
    c = make_client(vllm_server)
    assert (await c.achat("x")).text
    vllm_server.fail_next("drop", 10)
    with pytest.raises(ServerUnavailableError):
        await c.achat("x")
    await c.aclose()


async def test_astructured(vllm_server: LocalVLLMServer) -> None:
    async with make_client(vllm_server) as c:
        out = await c.astructured("q", [], Answer)
    assert isinstance(out, Answer)


async def test_astream(vllm_server: LocalVLLMServer) -> None:
    vllm_server.queue("alpha beta gamma")
    c = make_client(vllm_server)
    deltas = [d async for d in c.astream("go")]
    assert "".join(deltas) == "alpha beta gamma" and len(deltas) == 3
    assert c.usage.completion_tokens > 0
    await c.aclose()


async def test_too_many_images_async_refused(vllm_server: LocalVLLMServer) -> None:
    images = [encode_image(Image.new("RGB", (100, 100))) for _ in range(3)]
    with pytest.raises(TooManyImagesError):
        await make_client(vllm_server, max_images_per_request=2).achat("x", images)
    assert vllm_server.requests == []


async def test_batch_respects_concurrency_limit() -> None:
    with LocalVLLMServer(latency=0.15, slots=None) as server:
        c = make_client(server, max_concurrency=3)
        results = await c.abatch([{"text": f"q{i}"} for i in range(9)])
        assert all(not isinstance(r, BaseException) for r in results)
        assert server.max_running == 3
        assert c.limiter.max_in_flight == 3
        assert c.usage.requests == 9
        await c.aclose()


async def test_many_calls_at_once_plan_and_encode_only_within_a_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gather of many calls builds each request (plan, JSON body) once it holds a slot, so the first
    requests go out before the others are planned and no more bodies exist at once than slots."""
    import minimaxvl_tools.client.core as core

    built: list[int] = []  # requests in flight at the moment each body was built
    encode = core.request_content

    def counted(body: dict) -> bytes:
        built.append(c.limiter.in_flight)
        return encode(body)

    monkeypatch.setattr(core, "request_content", counted)
    with LocalVLLMServer(latency=0.05, slots=None) as server:
        c = make_client(server, max_concurrency=2)
        results = await c.abatch([{"text": f"q{i}"} for i in range(12)])
        await c.aclose()
    assert all(not isinstance(r, BaseException) for r in results)
    assert len(built) == 12 and all(1 <= n <= 2 for n in built)  # never outside a slot
    assert server.max_running == 2


async def test_streams_started_at_once_plan_only_within_a_slot() -> None:
    built: list[int] = []  # requests in flight at the moment each stream's body was built
    with LocalVLLMServer(latency=0.05, slots=None) as server:
        c = make_client(server, max_concurrency=2)
        body = c._body

        def counted(*args: object, **kw: object) -> dict:
            built.append(c.limiter.in_flight)
            return body(*args, **kw)  # type: ignore[arg-type]

        c._body = counted  # type: ignore[method-assign]

        async def drain(i: int) -> str:
            return "".join([d async for d in c.astream(f"q{i}")])

        texts = await asyncio.gather(*[drain(i) for i in range(6)])
        await c.aclose()
    assert all(texts) and len(built) == 6 and all(1 <= n <= 2 for n in built)


async def test_server_slots_queue_extra_requests() -> None:
    with LocalVLLMServer(latency=0.2, slots=2) as server:
        c = make_client(server, max_concurrency=6)
        task = asyncio.ensure_future(c.abatch([{"text": "x"}] * 6))
        for _ in range(100):  # until the server is saturated
            await asyncio.sleep(0.01)
            if server.waiting >= 1:
                break
        metrics = await asyncio.to_thread(lambda: httpx.get(server.root_url + "/metrics").text)
        await task
        await c.aclose()
    assert server.max_running == 2
    waiting = next(ln for ln in metrics.splitlines() if ln.startswith("vllm:num_requests_waiting"))
    assert float(waiting.split()[-1]) >= 1


async def test_limiter_rejects_bad_limit() -> None:
    with pytest.raises(ValueError):
        ConcurrencyLimiter(0)


async def test_ahealth(vllm_server: LocalVLLMServer) -> None:
    h = await make_client(vllm_server).ahealth()
    assert h.ok and h.max_model_len == 32768


def test_one_client_across_event_loops_leaves_no_failed_close(
    vllm_server: LocalVLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A script (or a sync tool) calling ``asyncio.run`` again and again with one client: each loop gets its
    own connections, and the previous loop's are dropped without a close task that fails on the closed loop
    ("Task exception was never retrieved ... Event loop is closed" on the user's console)."""
    import gc

    client = make_client(vllm_server, max_retries=0)
    caplog.set_level(logging.ERROR, logger="asyncio")
    for i in range(3):
        assert asyncio.run(client.achat(f"hello {i}")).text
    gc.collect()
    asyncio.run(asyncio.sleep(0))  # a task scheduled on a later loop would run (and fail) here
    gc.collect()
    assert not [r for r in caplog.records if r.name == "asyncio"], [r.getMessage() for r in caplog.records]
    client.close()


async def test_aclose_closes_this_loops_client_once(vllm_server: LocalVLLMServer) -> None:
    from minimaxvl_tools.client import pool

    client = make_client(vllm_server, max_retries=0)
    assert (await client.achat("hello")).text
    (ep,) = client.pool.endpoints
    http = ep.aclient()._client
    await client.aclose()
    await asyncio.sleep(0)  # a close handed to the loop would have started by now
    assert http.is_closed and ep._aclient is None
    assert not pool._CLOSING  # closed here, not handed to a second close task
