"""Replicas: one client over several LocalVLLMServer endpoints (spread, failover, all down, health)."""

from __future__ import annotations

import asyncio

import pytest

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.errors import ServerUnavailableError
from minimaxvl_tools.settings import Settings
from minimaxvl_tools.testing import LocalVLLMServer

pytestmark = pytest.mark.timeout(30)


def make_client(urls: list[str], **kw: object) -> MiniMaxVLClient:
    kw.setdefault("timeout", 2.0)
    kw.setdefault("max_retries", 2)
    return MiniMaxVLClient(base_urls=urls, backoff_base=0.01, backoff_max=0.05, **kw)  # type: ignore[arg-type]


def test_base_urls_from_env_and_settings() -> None:
    s = Settings.from_env({"MINIMAXVL_BASE_URLS": "http://a:1/v1, http://b:2/v1/"})
    c = MiniMaxVLClient(s)
    assert [e.base_url for e in c.endpoints] == ["http://a:1/v1", "http://b:2/v1"]
    assert c.settings.base_url == "http://a:1/v1" and c.root_url == "http://a:1"
    assert len(MiniMaxVLClient(base_url="http://x:3/v1").endpoints) == 1


def test_sync_requests_spread_over_both() -> None:
    with LocalVLLMServer() as a, LocalVLLMServer() as b:
        c = make_client([a.base_url, b.base_url])
        for i in range(10):
            assert c.chat(f"q{i}").text
        c.close()
    assert len(a.requests) + len(b.requests) == 10
    assert len(a.requests) >= 3 and len(b.requests) >= 3  # round-robin on ties, not all on one


async def test_async_batch_spread_least_in_flight() -> None:
    with LocalVLLMServer(latency=0.1) as a, LocalVLLMServer(latency=0.1) as b:
        c = make_client([a.base_url, b.base_url], max_concurrency=8)
        results = await asyncio.wait_for(c.abatch([{"text": f"q{i}"} for i in range(24)]), 20)
        await c.aclose()
    assert all(not isinstance(r, BaseException) for r in results)
    assert len(a.requests) + len(b.requests) == 24
    assert len(a.requests) >= 8 and len(b.requests) >= 8
    assert a.max_running >= 2 and b.max_running >= 2


async def test_one_replica_stopped_mid_batch_all_succeed_on_the_other() -> None:
    a = LocalVLLMServer(latency=0.2).start()
    with LocalVLLMServer(latency=0.2) as b:
        c = make_client([a.base_url, b.base_url], max_concurrency=8, endpoint_cooldown=30.0)
        task = asyncio.ensure_future(c.abatch([{"text": f"q{i}"} for i in range(40)]))
        for _ in range(200):  # until A has served a few and holds requests in flight
            await asyncio.sleep(0.01)
            if a.request_success_total >= 4 and a.running >= 1:
                break
        await asyncio.to_thread(a.stop)
        served_by_a = a.request_success_total
        results = await asyncio.wait_for(task, 20)
        await c.aclose()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert served_by_a >= 4 and a.request_success_total == served_by_a  # A answered nothing after stop
    assert b.request_success_total == 40 - served_by_a
    ep_a = c.endpoints[0]
    assert ep_a.failures >= 1 and ep_a.down_until > 0


def test_all_down_raises_server_unavailable() -> None:
    with LocalVLLMServer() as a, LocalVLLMServer() as b:
        urls = [a.base_url, b.base_url]
    c = make_client(urls, max_model_len=32768, timeout=0.5, max_retries=1)
    with pytest.raises(ServerUnavailableError):
        c.chat("x")
    assert all(e.failures >= 1 for e in c.endpoints)
    with pytest.raises(ServerUnavailableError):
        make_client(urls, timeout=0.5).max_model_len()


async def test_all_down_async() -> None:
    with LocalVLLMServer() as a, LocalVLLMServer() as b:
        urls = [a.base_url, b.base_url]
    c = make_client(urls, timeout=0.5, max_retries=1)
    with pytest.raises(ServerUnavailableError):
        await asyncio.wait_for(c.achat("x"), 10)
    await c.aclose()


def test_5xx_fails_over_without_spending_backoff() -> None:
    with LocalVLLMServer() as a, LocalVLLMServer() as b:
        a.fail_next("503", 5)
        c = make_client([a.base_url, b.base_url], max_retries=0)  # failover is free: 2 attempts
        assert c.chat("x").text and c.chat("y").text
        c.close()
    assert len(a.requests) == 1 and b.request_success_total == 2  # A cooled down after one 503


def test_max_model_len_is_min_and_health_reports_each() -> None:
    with LocalVLLMServer(max_model_len=20000) as a, LocalVLLMServer(max_model_len=16000) as b:
        c = make_client([a.base_url, b.base_url])
        assert c.max_model_len() == 16000
        h = c.health()
        assert h.ok and h.max_model_len == 16000 and h.error is None
        assert [e.base_url for e in h.endpoints] == [a.base_url, b.base_url]
        assert [e.max_model_len for e in h.endpoints] == [20000, 16000]
        b.healthy = False
        h2 = asyncio.run(c.ahealth())
        c.close()
    assert h2.ok and [e.ok for e in h2.endpoints] == [True, False]
    assert c.endpoints[1].down_until > 0  # health marks the sick replica for the cool-down
