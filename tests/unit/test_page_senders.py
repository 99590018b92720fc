"""Sender processes (page_senders): whole pages read in worker processes, each page's result on its own.

Ordering, equality with in-process reading and usage accounting through OCRTool and the loader are in
``tests/integration/test_workers.py``; here the pool itself: failures per page, a sender that dies,
cancellation, Ctrl-C, and when the caller's client is not shipped.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor
from pathlib import Path

import pytest
from fpdf import FPDF

from minimaxvl_tools.client import ConcurrencyLimiter, MiniMaxVLClient
from minimaxvl_tools.page_senders import (
    ReadOrder,
    SenderPool,
    _Slot,
    client_blob,
    pick,
    read_order,
    senders_for,
    share,
)
from minimaxvl_tools.page_workers import PageJob
from minimaxvl_tools.pages.fallback import Fallbacks
from minimaxvl_tools.pages.send import SendOptions
from minimaxvl_tools.results import OCRPage
from minimaxvl_tools.settings import Settings
from minimaxvl_tools.testing.server import LocalVLLMServer


def _pdf(path: Path, pages: int = 3) -> Path:
    pdf = FPDF(unit="pt", format="letter")
    for n in range(pages):
        pdf.add_page()
        pdf.set_font("Helvetica", size=14)
        for i in range(12):
            pdf.text(40, 60 + i * 24, f"page {n + 1} line {i}: words to read on this page")
    pdf.output(str(path))
    return path


def _broken(path: Path) -> Path:
    """A file that exists and is not a readable PDF: its pages fail to render (not an input error)."""
    path.write_bytes(b"%PDF-1.4\n" + b"\x00bad" * 40)
    return path


def _client(server: LocalVLLMServer, concurrency: int = 4, **kw: object) -> MiniMaxVLClient:
    settings = Settings(base_url=server.base_url, max_retries=0, max_concurrency=concurrency, **kw)  # type: ignore[arg-type]
    return MiniMaxVLClient(settings)


def _order(client: MiniMaxVLClient, path: Path, number: int, **kw: object) -> ReadOrder:
    blob = client_blob(client)
    assert blob is not None
    slots = client.settings.max_concurrency
    return ReadOrder(PageJob(str(path), number, dpi=72), SendOptions(), Fallbacks(), blob, slots=slots, **kw)  # type: ignore[arg-type]


def test_pages_come_back_each_with_its_own_result(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    pdf = _pdf(tmp_path / "doc.pdf")
    client = _client(vllm_server)
    with SenderPool(2) as pool:
        futs = [pool.submit(_order(client, pdf, n), client.record_usage) for n in (1, 2, 3)]
        missing = pool.submit(_order(client, _broken(tmp_path / "broken.pdf"), 1), client.record_usage)
        pages = [f.result(timeout=60) for f in futs]
        failed = missing.result(timeout=60)
        assert len(pool.pids()) == 2
    assert [(p.page, p.status, p.requests) for p in pages] == [(1, "ok", 1), (2, "ok", 1), (3, "ok", 1)]
    assert client.usage.requests == 3 == len(vllm_server.requests)  # the senders' usage reached the client
    assert client.usage.image_tokens == sum(p.image_tokens for p in pages) > 0
    assert (
        failed.status == "failed" and failed.error_type == "PDFError" and "broken.pdf" in (failed.error or "")
    )


def test_a_page_that_does_not_render_goes_through_the_fallbacks(
    vllm_server: LocalVLLMServer, tmp_path: Path
) -> None:
    client = _client(vllm_server)
    layer = "the text layer of the missing page, long enough to stand in for it"
    blob = client_blob(client)
    assert blob is not None
    order = ReadOrder(
        PageJob(str(_broken(tmp_path / "broken.pdf")), 4, dpi=72),
        SendOptions(),
        Fallbacks(("text-layer",)),
        blob,
        text_layer=layer,
        page_count=9,
    )
    with SenderPool(1) as pool:
        page = pool.submit(order).result(timeout=60)
    assert (page.page, page.status, page.engine, page.text) == (4, "fallback", "text-layer", layer)
    assert page.error and "broken.pdf" in page.error  # the model path's reason is kept
    assert not vllm_server.requests


def test_a_sender_prepares_each_page_before_it_renders_the_next(
    vllm_server: LocalVLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Render and preparation are one job per page on the sender's page thread: its first pages are ready
    for its free slots before the pages read ahead take any of its CPU."""
    import minimaxvl_tools.page_senders as senders_mod
    from minimaxvl_tools.pages.pipeline import PageReader

    events: list[str] = []
    render, prepare = senders_mod.render_page, PageReader.prepare_deferred

    def rendered(job: PageJob) -> object:
        out = render(job)
        events.append(f"render {job.number}")
        return out

    def prepared(self: PageReader, page: object) -> object:
        out = prepare(self, page)  # type: ignore[arg-type]
        events.append(f"prepare {page.number}")  # type: ignore[attr-defined]
        return out

    monkeypatch.setattr(senders_mod, "render_page", rendered)
    monkeypatch.setattr(PageReader, "prepare_deferred", prepared)
    pdf = _pdf(tmp_path / "doc.pdf", 3)
    client = _client(vllm_server)
    thread = ThreadPoolExecutor(1)

    async def go() -> list[OCRPage]:
        orders = [_order(client, pdf, n) for n in (1, 2, 3)]
        return await asyncio.gather(*(read_order(o, client, thread) for o in orders))

    try:
        pages = asyncio.run(go())
    finally:
        thread.shutdown()
    assert [p.status for p in pages] == ["ok"] * 3
    assert events == ["render 1", "prepare 1", "render 2", "prepare 2", "render 3", "prepare 3"]


def test_a_sender_that_dies_is_replaced_and_its_pages_are_retried(tmp_path: Path) -> None:
    pdf = _pdf(tmp_path / "doc.pdf", 4)
    with LocalVLLMServer(latency=1.5) as server, SenderPool(1) as pool:
        client = _client(server)
        futs = [pool.submit(_order(client, pdf, n)) for n in (1, 2, 3, 4)]
        deadline = time.monotonic() + 30
        while len(server.requests) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        (first,) = pool.pids()
        os.kill(first, signal.SIGKILL)  # all four pages are in flight on it
        pages = [f.result(timeout=60) for f in futs]
        assert pool.pids() and pool.pids() != [first]
    assert [(p.page, p.status) for p in pages] == [(1, "ok"), (2, "ok"), (3, "ok"), (4, "ok")]
    assert len(server.requests) == 8  # each page sent again by the new sender


def test_cancelled_pages_are_not_sent(tmp_path: Path) -> None:
    pdf = _pdf(tmp_path / "doc.pdf", 3)
    with LocalVLLMServer(latency=1.0) as server, SenderPool(1) as pool:
        client = _client(server, concurrency=1)  # one request at a time: pages 2 and 3 wait for the slot
        first = pool.submit(_order(client, pdf, 1))
        deadline = time.monotonic() + 30
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        rest = [pool.submit(_order(client, pdf, n)) for n in (2, 3)]  # they wait for page 1's slot
        time.sleep(0.3)
        assert all(f.cancel() for f in rest)
        assert first.result(timeout=60).status == "ok"
        time.sleep(1.5)  # time enough for a page that was not cancelled to be sent
        with pytest.raises(CancelledError):
            rest[0].result()
        assert len(server.requests) == 1


def test_senders_ignore_ctrl_c(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    pdf = _pdf(tmp_path / "doc.pdf", 2)
    client = _client(vllm_server)
    with SenderPool(1) as pool:
        assert pool.submit(_order(client, pdf, 1)).result(timeout=60).status == "ok"
        (pid,) = pool.pids()
        os.kill(pid, signal.SIGINT)  # the terminal sends it to the whole group: the caller decides
        assert pool.submit(_order(client, pdf, 2)).result(timeout=60).status == "ok"
        assert pool.pids() == [pid]
    assert not pool.pids()  # shut down with the pool


def test_senders_only_for_a_client_that_can_be_rebuilt(vllm_server: LocalVLLMServer) -> None:
    assert senders_for(_client(vllm_server), 2) is not None
    assert senders_for(_client(vllm_server), 0) is None
    assert senders_for(_client(vllm_server, worker_send=False), 2) is None
    own = MiniMaxVLClient(Settings(base_url=vllm_server.base_url), limiter=ConcurrencyLimiter(2))
    assert senders_for(own, 2) is None  # its limiter cannot be shared with other processes
    with pytest.raises(Exception, match="senders >= 1"):
        SenderPool(0)


def test_shares_of_the_slots_add_up_to_the_clients_cap() -> None:
    for slots in (1, 3, 4, 32, 33, 256):
        for senders in (1, 2, 5, 15):
            parts = [share(slots, i, senders) for i in range(senders)]
            assert sum(parts) == slots and max(parts) - min(p for p in parts if p) <= 1
    assert [share(3, i, 5) for i in range(5)] == [1, 1, 1, 0, 0]  # fewer slots than senders


def test_pages_in_flight_never_exceed_the_clients_cap(tmp_path: Path) -> None:
    pdf = _pdf(tmp_path / "doc.pdf", 6)
    with LocalVLLMServer(latency=0.5) as server, SenderPool(2) as pool:
        client = _client(server, concurrency=3)  # shares 2 + 1 over the two senders
        futs = [pool.submit(_order(client, pdf, n)) for n in range(1, 7)]
        assert [f.result(timeout=60).status for f in futs] == ["ok"] * 6
        assert len(pool.pids()) == 2
        assert pool.given() == [4, 2]  # in proportion to the shares
        time.sleep(0.3)  # the collector settles the last load
        again = [pool.submit(_order(client, pdf, n)) for n in (1, 2, 3)]
        assert [f.result(timeout=60).status for f in again] == ["ok"] * 3
        assert pool.given() == [2, 1]  # an idle pool shares the next job out afresh
    assert server.max_running == 3


def _fake_senders(count: int) -> list[_Slot]:
    return [_Slot(None, None, i) for i in range(count)]  # type: ignore[arg-type]


def _split(slots: int, size: int, pages: int, seed: int) -> list[int]:
    """A job's split over ``size`` senders in a model of the real run: pages handed out through the in-
    order window of 2 x slots, each bound to its sender at once; a sender works its pages one after another
    (at its own pace: 30-42 ms a page) and sends each on the first of its slots to free; requests take
    1.00-1.02 s, one in twenty up to 0.4 s more (as measured against the 256-slot double)."""
    rng = random.Random(seed)
    senders = _fake_senders(size)
    free = [[0.0] * max(1, share(slots, i, size)) for i in range(size)]
    pace = [0.030 * (1 + 0.4 * rng.random()) for _ in range(size)]
    worked = [0.0] * size  # when each sender's page work is free again
    ends: list[float] = []
    mine: list[list[float]] = [[] for _ in range(size)]
    for j in range(pages):
        now = max(ends[: j - 2 * slots + 1]) if j >= 2 * slots else 0.0
        for s in senders:
            s.load = sum(end > now for end in mine[s.index])
        s = pick(senders, slots, size)
        s.given += 1
        worked[s.index] = max(now, worked[s.index]) + pace[s.index]
        start = max(worked[s.index], min(free[s.index]))
        free[s.index].remove(min(free[s.index]))
        end = start + 1.0 + 0.02 * rng.random() + (0.4 * rng.random() if rng.random() < 0.05 else 0.0)
        free[s.index].append(end)
        ends.append(end)
        mine[s.index].append(end)
    return [s.given for s in senders]


@pytest.mark.parametrize("slots", [32, 256])
def test_a_job_of_k_rounds_is_k_rounds_in_every_sender(slots: int) -> None:
    """A job of 5 x slots pages splits 5 x share per sender whatever the senders' pace and the requests'
    tails. (Handing each page to the sender with the most room gives those whose requests came back
    first more pages: 84-89 per 17 slots at 256, so some senders take a sixth round of requests.)"""
    for seed in range(5):
        assert _split(slots, 15, 5 * slots, seed) == [5 * share(slots, i, 15) for i in range(15)]


def test_a_sender_holding_three_times_its_share_is_passed_over() -> None:
    senders = _fake_senders(2)  # 4 slots: shares 2 + 2
    senders[0].load, senders[1].load, senders[1].given = 6, 1, 10  # sender 0 stalled, sender 1 busy
    assert pick(senders, 4, 2) is senders[1]
    senders[1].load = 6  # both at three times their share: the fewest given again
    assert pick(senders, 4, 2) is senders[0]


def test_a_sender_keeps_a_bounded_number_of_clients() -> None:
    import asyncio

    from minimaxvl_tools import page_senders

    async def go() -> tuple[int, list[bool]]:
        sender = page_senders._Sender(None, None, 0, 2)  # type: ignore[arg-type]
        blobs = []
        for i in range(page_senders._CLIENTS_KEPT + 3):
            blob = client_blob(MiniMaxVLClient(Settings(base_url=f"http://127.0.0.1:{9000 + i}/v1")))
            assert blob is not None
            blobs.append(blob)
            sender._client(blob)
        sender._client(blobs[3])  # used again: kept over older ones
        sender._client(blobs[0])  # evicted before: built again, evicting the least recently used
        await asyncio.gather(*sender.closing)
        return len(sender.clients), [b in sender.clients for b in blobs]

    count, kept = asyncio.run(go())
    assert count == page_senders._CLIENTS_KEPT
    assert kept[0] and kept[3] and not kept[1] and not kept[4] and all(kept[-6:])


def test_a_pool_shut_down_starts_again_on_the_next_page(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    pdf = _pdf(tmp_path / "doc.pdf", 2)
    client = _client(vllm_server)
    pool = SenderPool(1)
    try:
        assert pool.submit(_order(client, pdf, 1)).result(timeout=60).status == "ok"
        first = pool.pids()
        pool.shutdown()
        assert not pool.pids()
        assert pool.submit(_order(client, pdf, 2)).result(timeout=60).status == "ok"  # a new generation
        assert pool.pids() and pool.pids() != first
    finally:
        pool.shutdown()
