"""Page work in worker processes: order, typed per-page errors, bounded prefetch, cancellation, no pixels."""

from __future__ import annotations

import asyncio
import os
import pickle
import time
from collections.abc import Iterator
from concurrent.futures import Future, wait
from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image

from minimaxvl_tools.errors import InvalidInputError, MiniMaxVLError, PDFError
from minimaxvl_tools.images.encode import EncodedImage
from minimaxvl_tools.page_workers import (
    SMALL_JOB_PAGES,
    PageJob,
    PageOutcome,
    PagePool,
    PreparedPage,
    _outcome,
    default_workers,
    prepare_page,
    resolve_workers,
)


def _pdf(path: Path, texts: list[str], size: int = 5) -> Path:
    pdf = FPDF(unit="pt", format="letter")
    for text in texts:
        pdf.add_page()
        pdf.set_font("Helvetica", size=size)
        for i in range(30 if text else 0):
            pdf.text(40, 60 + i * 22, f"{text} line {i} with some printed words to read")
    pdf.output(str(path))
    return path


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _pdf(tmp_path_factory.mktemp("pw") / "doc.pdf", ["alpha", "", "gamma", "delta", "epsilon", "zeta"])


@pytest.fixture(scope="module")
def pool() -> Iterator[PagePool]:
    with PagePool(2, window=3) as p:
        yield p


def _jobs(doc: Path, numbers: list[int], dpi: int = 72, **kw: object) -> list[PageJob]:
    return [PageJob.of(str(doc), n, dpi=dpi, **kw) for n in numbers]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is not running
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_dead(pids: list[int], timeout: float = 10.0) -> list[int]:
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def test_resolve_workers_rule() -> None:
    assert resolve_workers(0, 500) == 0 and resolve_workers(3, 1) == 3
    assert resolve_workers(None, SMALL_JOB_PAGES - 1, min_pages=SMALL_JOB_PAGES) == 0
    assert resolve_workers(None, SMALL_JOB_PAGES, min_pages=SMALL_JOB_PAGES) == default_workers() >= 0
    assert resolve_workers(None, 10**5) == 0  # tests/conftest.py keeps workers=None in-process here
    with pytest.raises(InvalidInputError):
        resolve_workers(-1)


def test_pool_results_equal_in_process_and_in_order(pool: PagePool, doc: Path) -> None:
    numbers = [3, 1, 2, 6, 4, 5]
    jobs = _jobs(doc, numbers[:1], dpi=200, tile=True) + _jobs(doc, numbers[1:], tile=True)
    outs = list(pool.map(jobs))
    assert [o.number for o in outs] == numbers  # order of the jobs, not of completion
    for job, out in zip(jobs, outs, strict=True):
        local = prepare_page(job)
        assert out.error is None and out.page == local  # same bytes, tokens, boxes, flags
    blank = outs[numbers.index(2)].page
    assert blank is not None and blank.blank and not blank.crops
    tiled = outs[0].page
    assert tiled is not None and tiled.mode == "tiles" and len(tiled.crops) > 1
    assert tiled.image_tokens == sum(c.image.tokens for c in tiled.crops) > 0
    assert "gamma line 0" in tiled.text_layer


def test_bad_page_error_is_typed_and_isolated(pool: PagePool, doc: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 50)
    jobs = [*_jobs(doc, [1]), PageJob(path=str(broken), number=1, dpi=72), *_jobs(doc, [99, 4])]
    outs = list(pool.map(jobs))
    assert [o.number for o in outs] == [1, 1, 99, 4]
    assert outs[0].page is not None and outs[3].page is not None  # the good pages go on
    assert isinstance(outs[1].error, PDFError) and "broken.pdf" in str(outs[1].error)
    assert isinstance(outs[2].error, InvalidInputError) and "99" in str(outs[2].error)
    with pytest.raises(InvalidInputError):
        outs[2].unwrap()


def test_outcomes_carry_bytes_not_images(pool: PagePool, doc: Path) -> None:
    out = next(iter(pool.map(_jobs(doc, [1]))))
    page = out.unwrap()

    def walk(value: object) -> Iterator[object]:
        yield value
        if isinstance(value, tuple | list):
            for v in value:
                yield from walk(v)
        elif hasattr(value, "__dataclass_fields__"):
            for name in value.__dataclass_fields__:  # type: ignore[attr-defined]
                yield from walk(getattr(value, name))

    assert not any(isinstance(v, Image.Image) for v in walk(out))
    assert all(isinstance(c.image, EncodedImage) for c in page.crops)
    # the pickled result is the base64 image plus a little: no pixel buffer travels back
    assert len(pickle.dumps(out)) < page.nbytes * 4 / 3 + 20_000
    assert page.crops[0].image.data_url.startswith("data:image/jpeg;base64,")


def test_prefetch_is_bounded(pool: PagePool, doc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    submitted: list[int] = []
    consumed = 0
    ahead: list[int] = []
    submit = pool.submit

    def counting(job: PageJob) -> Future[PageOutcome]:
        submitted.append(job.number)
        ahead.append(len(submitted) - consumed)
        return submit(job)

    monkeypatch.setattr(pool, "submit", counting)
    for _ in pool.map(_jobs(doc, [1, 2, 3, 4, 5, 6]), window=2):
        consumed += 1
    assert len(submitted) == 6 and max(ahead) == 2  # never more than the window ahead


def test_keyboard_interrupt_shuts_the_pool_down(doc: Path) -> None:
    p = PagePool(2, window=2)
    good = _jobs(doc, [1, 3, 4, 5])

    def jobs() -> Iterator[PageJob]:
        yield from good[:2]
        raise KeyboardInterrupt  # Ctrl-C arriving while the pool is feeding pages

    got: list[PageOutcome] = []
    with pytest.raises(KeyboardInterrupt):
        for out in p.map(jobs()):
            got.append(out)
            pids = p.pids()
    assert pids and _wait_dead(pids) == []  # no orphan workers
    assert p.pids() == []
    assert [o.number for o in p.map(good[2:])] == [4, 5]  # a later job starts fresh workers
    p.shutdown()


def test_task_cancel_mid_stream_cancels_queued_pages(
    pool: PagePool, doc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    futures: list[Future[PageOutcome]] = []
    submit = pool.submit

    def keep(job: PageJob) -> Future[PageOutcome]:
        futures.append(submit(job))
        return futures[-1]

    monkeypatch.setattr(pool, "submit", keep)

    async def consume() -> None:
        async for out in pool.amap(_jobs(doc, [1, 2, 3, 4, 5, 6] * 3), window=8):
            seen.append(out.number)
            if len(seen) == 2:
                await asyncio.sleep(30)  # cancelled here

    async def main() -> None:
        task = asyncio.create_task(consume())
        while len(seen) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert seen == [1, 2] and len(futures) <= 10  # 2 consumed + at most the window ahead
    wait(futures, timeout=10)  # a page already running finishes; the queued ones were cancelled
    # every page is settled: finished before the cancel reached it, or cancelled in the queue; none was
    # submitted after the cancel (checked above), whatever the machine's speed
    assert all(f.done() for f in futures)
    assert all(f.cancelled() or f.exception() is None for f in futures)


def test_amap_equals_map(pool: PagePool, doc: Path) -> None:
    jobs = _jobs(doc, [4, 2, 1])

    async def collect() -> list[PageOutcome]:
        return [o async for o in pool.amap(jobs)]

    assert asyncio.run(collect()) == list(pool.map(jobs))


def test_unexpected_errors_become_typed(tmp_path: Path) -> None:
    out = _outcome(PageJob(path=str(tmp_path / "missing.pdf"), number=1))
    assert isinstance(out.error, MiniMaxVLError) and out.page is None
    assert isinstance(pickle.loads(pickle.dumps(out)).error, MiniMaxVLError)
    assert isinstance(PreparedPage(1, 1, "x", (1, 1)).page_image().text_layer, str)


class _Reply:
    def __init__(self, text: str, finish_reason: str = "stop") -> None:
        self.text, self.finish_reason = text, finish_reason


class _FakeClient:
    """Records the encoded images each request carries; the first reply is cut at max_tokens."""

    def __init__(self) -> None:
        self.sent: list[EncodedImage] = []
        self.settings = None

    def chat(self, prompt: str, images: list[EncodedImage], **kw: object) -> _Reply:
        self.sent.extend(images)
        if len(self.sent) == 1:
            return _Reply("cut off mid", "length")
        return _Reply(f"text of a {images[0].width}x{images[0].height} region")


def test_ocr_prepared_sends_the_workers_string_and_retries_on_decoded_halves(doc: Path) -> None:
    from minimaxvl_tools.page_workers import ocr_prepared

    prepared = prepare_page(PageJob.of(str(doc), 1, dpi=72, tile=False))
    client = _FakeClient()
    page = ocr_prepared(client, prepared)  # type: ignore[arg-type]
    first = prepared.crops[0].image
    assert client.sent[0] is first  # the request carries the worker's data URL itself: no copy, no re-encode
    assert len(client.sent) == 3 and all(e.height < first.height for e in client.sent[1:])  # two halves
    assert page.status == "ok" and page.attempts == 2 and page.requests == 3
    assert page.image_tokens == first.tokens + sum(e.tokens for e in client.sent[1:])
