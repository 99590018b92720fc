"""MiniMaxVLDocumentLoader end to end: every mode, metadata, async order, cache/resume, failures, fallbacks.

Tests that take the ``drive`` fixture run twice, through ``lazy_load`` and through ``alazy_load``, with the
same assertions (tests/drive.py).

Model modes run against :class:`LocalVLLMServer` (the vLLM TEST DOUBLE) with scripted markdown. Each
generated page carries a coloured marker block (red, green, blue, ...), so a responder can tell from the
image alone which page a request is for, whatever order the requests arrive in; that is how the
resume tests prove that finished pages are never sent again.
"""

from __future__ import annotations

import base64
import importlib
import io
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.errors import InvalidInputError, JobAbortedError
from minimaxvl_tools.loaders import MiniMaxVLDocumentLoader, PageCache
from minimaxvl_tools.local_ocr import LocalOCREngine
from minimaxvl_tools.testing.server import LocalVLLMServer, Reply
from tests.drive import Drive

pytestmark = pytest.mark.timeout(60)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
needs_tesseract = pytest.mark.skipif(not LocalOCREngine.available(), reason="tesseract is not installed")

# page n's marker colour: bit 0 red, bit 1 green, bit 2 blue (so pages 1..7 are told apart)
COLOURS = {n: tuple(255 if n >> b & 1 else 0 for b in range(3)) for n in range(1, 8)}


# ------------------------------------------------------------------ helpers
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:  # pragma: no cover - DejaVu missing: Pillow's scalable default font
        return ImageFont.load_default(size=size)


def page_image(
    n: int, lines: Sequence[str] | None = None, size: tuple[int, int] = (850, 1100)
) -> Image.Image:
    """A white page with page ``n``'s colour marker and a few lines of black text."""
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    d.rectangle((40, 40, 240, 140), fill=COLOURS[n])
    font = _font(34)
    for i, line in enumerate(lines or [f"Page {n} of the test document", "Some printed words here"]):
        d.text((40, 200 + i * 60), line, fill="black", font=font)
    return img


def make_pdf(path: Path, pages: Sequence[Image.Image | str | None]) -> Path:
    """A PDF whose pages are full-page images (scans, no text layer), text (born digital) or blank (None)."""
    pdf = FPDF(unit="pt", format=(612, 792))
    pdf.set_auto_page_break(False)
    for p in pages:
        pdf.add_page()
        if isinstance(p, Image.Image):
            pdf.image(p, x=0, y=0, w=612, h=792)
        elif isinstance(p, str):
            pdf.set_font("Helvetica", size=14)
            pdf.set_xy(50, 60)
            pdf.multi_cell(500, 20, p)
    pdf.output(str(path))
    return path


def page_of(body: dict[str, Any]) -> int:
    """Which generated page a chat request shows: the colour of its marker block (0 if none)."""
    for msg in body.get("messages", []):
        content = msg.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if part.get("type") != "image_url":
                continue
            raw = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
            a = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")).astype(int)
            colourful = (a.max(axis=2) - a.min(axis=2)) > 120
            if not colourful.any():
                continue
            mean = a[colourful].mean(axis=0)
            return sum(1 << b for b in range(3) if mean[b] > 128)
    return 0


def markdown_responder(
    fail: Callable[[int], Reply | None] | None = None, delay: Callable[[int], float] | None = None
) -> Callable[[dict[str, Any]], Reply]:
    """Scripted OCR: page n answers ``# Page n`` markdown; ``fail(n)`` may return an error Reply instead."""

    def respond(body: dict[str, Any]) -> Reply:
        n = page_of(body)
        if fail is not None and (bad := fail(n)) is not None:
            return bad
        return Reply(text=f"# Page {n}\n\nScripted **text** of page {n}.", delay=delay(n) if delay else 0.0)

    return respond


def requested_pages(server: LocalVLLMServer) -> list[int]:
    """Page numbers of every chat request the server received so far."""
    return [page_of(b) for b in server.requests]


def client_for(server: LocalVLLMServer, **kw: Any) -> MiniMaxVLClient:
    """A client for the test server: no retries, tiny backoff (failures show at once)."""
    kw.setdefault("max_retries", 0)
    return MiniMaxVLClient(base_url=server.base_url, backoff_base=0.01, backoff_max=0.05, **kw)


def loader(path: Path | Sequence[Path], tmp_path: Path, **kw: Any) -> MiniMaxVLDocumentLoader:
    """A loader with a per-test cache, 100 dpi renders and rotation detection off (unless asked)."""
    kw.setdefault("cache_dir", tmp_path / "cache")
    kw.setdefault("dpi", 100)
    kw.setdefault("detect_rotation", False)
    return MiniMaxVLDocumentLoader(path, **kw)


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    """A 5-page scanned PDF (image-only pages, marker colours 1..5)."""
    return make_pdf(tmp_path / "scans.pdf", [page_image(n) for n in range(1, 6)])


# ------------------------------------------------------------------ modes and metadata
def test_vlm_mode_scripted_markdown_and_metadata(
    vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive
) -> None:
    pdf = make_pdf(tmp_path / "three.pdf", [page_image(n) for n in (1, 2, 3)])
    vllm_server.set_responder(markdown_responder())
    ld = loader(pdf, tmp_path, mode="vlm", client=client_for(vllm_server))
    docs = drive.iterate(ld, "lazy_load")

    assert [d.metadata["page_number"] for d in docs] == [1, 2, 3]
    for n, d in enumerate(docs, start=1):
        assert d.page_content == f"# Page {n}\n\nScripted **text** of page {n}."
        m = d.metadata
        assert m["source"] == str(pdf)
        assert m["total_pages"] == 3
        assert m["engine"] == "minimax-vl-01"
        assert (m["extraction"], m["status"], m.get("error")) == ("ocr", "ok", None)
        assert "error" not in m and None not in m.values()  # vector stores refuse None values
        assert (m["page"], m["page_label"]) == (n - 1, str(n))  # LangChain PDF loaders: 0-based page
        assert (m["requests"], m["crops"], m["cached"]) == (1, 0, False)
    # the image tokens we report are the ones the server counted for the images it received
    served = {page_of(b): vllm_server.count_prompt(b["messages"])[1] for b in vllm_server.requests}
    assert [d.metadata["image_tokens"] for d in docs] == [served[n] for n in (1, 2, 3)]
    assert all(t > 0 for t in served.values())
    assert sorted(requested_pages(vllm_server)) == [1, 2, 3]
    s = ld.stats
    assert (s.documents, s.pages, s.ok, s.requests, s.image_tokens) == (1, 3, 3, 3, sum(served.values()))


def test_plain_vlm_output_is_text_not_markdown(
    vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive
) -> None:
    pdf = make_pdf(tmp_path / "one.pdf", [page_image(1)])
    vllm_server.set_responder(markdown_responder())
    ld = loader(pdf, tmp_path, mode="vlm", plain=True, client=client_for(vllm_server))
    (doc,) = drive.iterate(ld, "lazy_load")
    assert "#" not in doc.page_content and "**" not in doc.page_content
    assert "Scripted text of page 1." in doc.page_content


def test_text_layer_mode_reads_born_digital_pdf_without_the_model(
    vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive
) -> None:
    ld = loader(SAMPLES / "born_digital.pdf", tmp_path, mode="text-layer", client=client_for(vllm_server))
    docs = drive.iterate(ld, "lazy_load")
    assert [d.metadata["page_number"] for d in docs] == [1, 2]
    assert "Maintenance report" in docs[0].page_content
    assert "312 days" in docs[0].page_content
    assert {d.metadata["extraction"] for d in docs} == {"text-layer"}
    assert {d.metadata["engine"] for d in docs} == {"text-layer"}
    assert all(d.metadata["image_tokens"] == 0 and d.metadata["requests"] == 0 for d in docs)
    assert vllm_server.requests == []


def test_auto_mode_uses_text_layer_where_good_and_ocr_elsewhere(
    vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive
) -> None:
    text = "This page was typed, not scanned. It has a real text layer with plenty of characters in it."
    pdf = make_pdf(tmp_path / "mixed.pdf", [text, page_image(2)])
    vllm_server.set_responder(markdown_responder())
    ld = loader(pdf, tmp_path, mode="auto", client=client_for(vllm_server))
    typed, scanned = drive.iterate(ld, "lazy_load")
    assert typed.metadata["extraction"] == "text-layer"
    assert "real text layer" in typed.page_content
    assert scanned.metadata["extraction"] == "ocr"
    assert scanned.metadata["engine"] == "minimax-vl-01"
    assert scanned.page_content.startswith("# Page 2")
    assert requested_pages(vllm_server) == [2]  # only the scanned page went to the model
    assert ld.stats.requests == 1


@needs_tesseract
def test_local_mode_reads_generated_text_pages_with_tesseract(tmp_path: Path, drive: Drive) -> None:
    pdf = make_pdf(
        tmp_path / "local.pdf",
        [
            page_image(1, ["Quarterly maintenance summary", "Pump station seven inspected"]),
            page_image(2, ["Invoice number 4471", "Total due 312.50 EUR"]),
        ],
    )
    docs = drive.iterate(loader(pdf, tmp_path, mode="local", dpi=150), "lazy_load")
    assert "maintenance" in docs[0].page_content.lower()
    assert "station seven" in docs[0].page_content.lower()
    assert "312.50" in docs[1].page_content
    for d in docs:
        assert d.metadata["engine"].startswith("tesseract")
        assert (d.metadata["extraction"], d.metadata["status"], d.metadata["requests"]) == ("ocr", "ok", 0)


@needs_tesseract
def test_rotated_page_is_corrected_in_local_mode(tmp_path: Path, drive: Drive) -> None:
    upright = page_image(
        1,
        [
            "The committee approved the budget",
            "for the new warehouse in April.",
            "Construction starts next spring",
            "and ends before the winter.",
            "Questions go to the facilities desk.",
        ],
    )
    rotated = upright.rotate(90, expand=True)  # counter-clockwise: a page scanned sideways
    path = tmp_path / "sideways.png"
    rotated.save(path)
    (doc,) = drive.iterate(loader(path, tmp_path, mode="local", detect_rotation=True), "lazy_load")
    assert doc.metadata["rotation_corrected"] == 90
    assert "committee approved the budget" in doc.page_content.lower()


def test_blank_pages_send_no_request(vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive) -> None:
    pdf = make_pdf(tmp_path / "blank.pdf", [page_image(1), None, page_image(3)])
    vllm_server.set_responder(markdown_responder())
    ld = loader(pdf, tmp_path, mode="vlm", client=client_for(vllm_server))
    docs = drive.iterate(ld, "lazy_load")
    assert [d.metadata["status"] for d in docs] == ["ok", "blank", "ok"]
    assert docs[1].page_content == "" and docs[1].metadata["requests"] == 0
    assert sorted(requested_pages(vllm_server)) == [1, 3]
    assert (ld.stats.blank, ld.stats.ok) == (1, 2)


def test_unreadable_file_is_recorded_and_the_rest_go_on(
    vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    make_pdf(folder / "b_good.pdf", [page_image(1)])
    vllm_server.set_responder(markdown_responder())
    ld = loader(folder, tmp_path, mode="vlm", client=client_for(vllm_server))
    broken, good = drive.iterate(ld, "lazy_load")
    assert broken.metadata["status"] == "failed" and broken.metadata["error"]
    assert broken.metadata["source"].endswith("a_broken.pdf")
    assert good.metadata["status"] == "ok" and good.page_content.startswith("# Page 1")
    assert (ld.stats.documents, ld.stats.failed, ld.stats.ok) == (2, 1, 1)


# ------------------------------------------------------------------ pages in flight (sync and async)
def six_scans(tmp_path: Path) -> Path:
    """A folder of six files: four one-page scans (PNG) around a two-page scanned PDF, pages 1..6."""
    folder = tmp_path / "folder"
    folder.mkdir()
    page_image(1).save(folder / "a.png")
    page_image(2).save(folder / "b.png")
    make_pdf(folder / "c.pdf", [page_image(3), page_image(4)])
    page_image(5).save(folder / "d.png")
    page_image(6).save(folder / "e.png")
    return folder


def test_pages_overlap_across_files_in_order(
    vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive
) -> None:
    # earlier pages answer later, so results finish out of order; one-page files must still overlap
    vllm_server.set_responder(markdown_responder(delay=lambda n: 0.05 * (7 - n)))
    ld = loader(six_scans(tmp_path), tmp_path, mode="vlm", client=client_for(vllm_server, max_concurrency=3))
    docs = drive.iterate(ld, "lazy_load")
    assert [d.page_content.splitlines()[0] for d in docs] == [f"# Page {n}" for n in range(1, 7)]
    assert [Path(d.metadata["source"]).name for d in docs] == [
        "a.png",
        "b.png",
        "c.pdf",
        "c.pdf",
        "d.png",
        "e.png",
    ]
    assert vllm_server.max_running == 3  # pages of different files in flight together, never more than 3
    assert sorted(requested_pages(vllm_server)) == [1, 2, 3, 4, 5, 6]
    assert (ld.stats.documents, ld.stats.ok, ld.stats.requests) == (5, 6, 6)


def test_one_page_at_a_time_when_max_concurrency_is_1(
    vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive
) -> None:
    vllm_server.set_responder(markdown_responder(delay=lambda n: 0.02))
    ld = loader(six_scans(tmp_path), tmp_path, mode="vlm", client=client_for(vllm_server, max_concurrency=1))
    docs = drive.iterate(ld, "lazy_load")
    assert vllm_server.max_running == 1
    assert requested_pages(vllm_server) == [1, 2, 3, 4, 5, 6]  # strictly in order
    assert [d.metadata["page_number"] for d in docs] == [1, 1, 1, 2, 1, 1]


def test_stopping_early_keeps_pages_finished_in_flight(
    vllm_server: LocalVLLMServer, scans: Path, tmp_path: Path, drive: Drive
) -> None:
    # page 1 is slow, pages 2 and 3 finish on the workers first; the consumer stops after page 1
    vllm_server.set_responder(markdown_responder(delay=lambda n: 0.6 if n == 1 else 0.0))
    client = client_for(vllm_server, max_concurrency=3)
    (d,) = drive.iterate(loader(scans, tmp_path, mode="vlm", client=client), "lazy_load", take=1)
    assert d.metadata["page_number"] == 1  # break / aclose cancel nothing that already finished
    assert sorted(requested_pages(vllm_server)) == [1, 2, 3]  # window of 3: pages 4, 5 never started

    vllm_server.reset()
    vllm_server.set_responder(markdown_responder())
    second = loader(scans, tmp_path, mode="vlm", client=client)
    docs = drive.iterate(second, "lazy_load")
    assert sorted(requested_pages(vllm_server)) == [4, 5]  # 2 and 3 were cached by their workers
    assert [d.metadata["cached"] for d in docs] == [True, True, True, False, False]
    assert second.stats.cached == 3
    assert [d.metadata["page_number"] for d in docs] == [1, 2, 3, 4, 5]


def test_page_cache_one_key_written_by_many_threads_at_once(tmp_path: Path) -> None:
    """Worker threads may finish the same page (a file named twice) together: each write stays whole."""
    cache = PageCache(tmp_path / "cache")
    record = {"content": "x" * 200_000, "status": "ok"}
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer() -> None:
        for _ in range(40):
            barrier.wait()
            try:
                cache.put("ab" + "0" * 62, record)
            except BaseException as e:  # collected for the assertion
                errors.append(e)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.get("ab" + "0" * 62) == record
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_unwritable_cache_warns_and_keeps_every_page(
    vllm_server: LocalVLLMServer,
    scans: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    drive: Drive,
) -> None:
    vllm_server.set_responder(markdown_responder())

    def full_disk(self: PageCache, key: str, record: dict[str, Any]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PageCache, "put", full_disk)
    ld = loader(scans, tmp_path, mode="vlm", client=client_for(vllm_server, max_concurrency=3))
    docs = drive.iterate(ld, "lazy_load")
    assert [d.page_content.splitlines()[0] for d in docs] == [f"# Page {n}" for n in range(1, 6)]
    assert ld.stats.ok == 5
    assert "No space left on device" in caplog.text and "not written" in caplog.text


def test_cached_pages_do_not_wait_behind_the_window(
    vllm_server: LocalVLLMServer, scans: Path, tmp_path: Path, drive: Drive
) -> None:
    vllm_server.set_responder(markdown_responder())
    client = client_for(vllm_server, max_concurrency=2)
    # pages 2 and 4 cached
    drive.iterate(loader(scans, tmp_path, mode="vlm", client=client, pages="2,4"), "lazy_load")
    vllm_server.reset()
    vllm_server.set_responder(markdown_responder())
    ld = loader(scans, tmp_path, mode="vlm", client=client)
    docs = drive.iterate(ld, "lazy_load")
    assert sorted(requested_pages(vllm_server)) == [1, 3, 5]
    assert [d.metadata["cached"] for d in docs] == [False, True, False, True, False]
    assert [d.page_content.splitlines()[0] for d in docs] == [f"# Page {n}" for n in range(1, 6)]
    assert (ld.stats.cached, ld.stats.requests, ld.stats.ok) == (2, 3, 5)


def test_failure_rate_abort_with_pages_in_flight(
    vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive
) -> None:
    pdf = make_pdf(tmp_path / "many.pdf", [page_image(n) for n in range(1, 8)] * 2)
    vllm_server.set_responder(lambda body: Reply(status=400))
    ld = loader(
        pdf,
        tmp_path,
        mode="vlm",
        client=client_for(vllm_server, max_concurrency=3),
        fallbacks=(),
        max_failure_rate=0.2,
        min_pages_before_abort=2,
    )
    with pytest.raises(JobAbortedError, match="max_failure_rate"):
        drive.iterate(ld, "lazy_load")
    assert ld.stats.pages == 2
    time.sleep(0.2)  # a page already on a worker may still finish
    assert len(vllm_server.requests) <= 2 + 3  # stopped within one window: the other 9 pages never sent


# ------------------------------------------------------------------ order, and sync against async
def test_pages_keep_their_order_and_max_concurrency_bounds_them(
    vllm_server: LocalVLLMServer, scans: Path, tmp_path: Path, drive: Drive
) -> None:
    # earlier pages answer later, so the results arrive out of order; the loader must reorder them
    vllm_server.set_responder(markdown_responder(delay=lambda n: 0.05 * (6 - n)))
    ld = loader(scans, tmp_path, mode="vlm", client=client_for(vllm_server, max_concurrency=2))
    docs = drive.iterate(ld, "lazy_load")
    assert [d.metadata["page_number"] for d in docs] == [1, 2, 3, 4, 5]
    assert [d.page_content.splitlines()[0] for d in docs] == [f"# Page {n}" for n in range(1, 6)]
    assert vllm_server.max_running == 2  # concurrent, and never more than max_concurrency
    assert sorted(requested_pages(vllm_server)) == [1, 2, 3, 4, 5]
    assert ld.stats.ok == 5


def test_page_threads_bounds_page_work_but_not_requests(
    vllm_server: LocalVLLMServer, scans: Path, tmp_path: Path, drive: Drive, monkeypatch: pytest.MonkeyPatch
) -> None:
    # page_threads=1 (a Ray task's one CPU): renders and preparations never overlap, requests still do
    import minimaxvl_tools.pages.pipeline as pipeline
    prepare_module = importlib.import_module("minimaxvl_tools.pages.prepare")  # the package has prepare()
    import minimaxvl_tools.pages.source as source

    busy = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def counted(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **kw: Any) -> Any:
            with lock:
                busy["now"] += 1
                busy["peak"] = max(busy["peak"], busy["now"])
            try:
                time.sleep(0.02)  # long enough for overlapping work to show
                return fn(*a, **kw)
            finally:
                with lock:
                    busy["now"] -= 1

        return run

    render = source.iter_pdf_pages

    def pages(*a: Any, **kw: Any) -> Any:
        it = render(*a, **kw)
        step = counted(lambda: next(it, None))
        while (page := step()) is not None:
            yield page

    monkeypatch.setattr(pipeline, "prepare_deferred", counted(pipeline.prepare_deferred))
    monkeypatch.setattr(prepare_module, "block_geometry", counted(prepare_module.block_geometry))
    monkeypatch.setattr(source, "iter_pdf_pages", pages)
    vllm_server.set_responder(markdown_responder(delay=lambda n: 0.2))
    client = client_for(vllm_server, max_concurrency=4)
    ld = loader(scans, tmp_path, mode="vlm", client=client, page_threads=1, workers=0)
    docs = drive.iterate(ld, "lazy_load")
    assert [d.metadata["page_number"] for d in docs] == [1, 2, 3, 4, 5]
    assert ld.stats.ok == 5
    assert busy["peak"] == 1  # one page's rendering, preparation or block geometry at a time
    assert vllm_server.max_running >= 3  # while the requests overlapped
    busy["peak"] = 0
    unbounded = loader(scans, tmp_path / "again", mode="vlm", client=client, workers=0)
    assert len(drive.iterate(unbounded, "lazy_load")) == 5
    assert busy["peak"] >= 2  # without the bound, preparations run side by side


def test_page_threads_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="page threads=0"):
        MiniMaxVLDocumentLoader(tmp_path, page_threads=0)
    ld = MiniMaxVLDocumentLoader(tmp_path)
    with pytest.raises(InvalidInputError, match="page threads=0"):
        ld.page_threads = 0


def test_page_threads_set_later_takes_effect(tmp_path: Path) -> None:
    import threading

    ld = MiniMaxVLDocumentLoader(tmp_path)
    assert ld.page_threads is None and not isinstance(ld._cpu, threading.BoundedSemaphore)
    ld.page_threads = 2
    gate = ld._cpu
    assert isinstance(gate, threading.BoundedSemaphore)
    assert gate.acquire(blocking=False) and gate.acquire(blocking=False) and not gate.acquire(blocking=False)


async def test_alazy_load_matches_lazy_load(
    vllm_server: LocalVLLMServer, scans: Path, tmp_path: Path
) -> None:
    vllm_server.set_responder(markdown_responder())
    client = client_for(vllm_server)
    sync_docs = loader(scans, tmp_path, mode="vlm", client=client, use_cache=False).load()
    async_docs = [
        d async for d in loader(scans, tmp_path, mode="vlm", client=client, use_cache=False).alazy_load()
    ]
    assert [d.page_content for d in async_docs] == [d.page_content for d in sync_docs]
    assert [d.metadata for d in async_docs] == [d.metadata for d in sync_docs]


# ------------------------------------------------------------------ cache and resume
def test_resume_after_break_recomputes_no_finished_page(
    vllm_server: LocalVLLMServer, scans: Path, tmp_path: Path, drive: Drive
) -> None:
    vllm_server.set_responder(markdown_responder())
    client = client_for(vllm_server, max_concurrency=1)  # one page at a time: nothing runs ahead
    first = loader(scans, tmp_path, mode="vlm", client=client)
    got = drive.iterate(first, "lazy_load", take=2)  # the consumer stops: the job is interrupted after page 2
    assert requested_pages(vllm_server) == [1, 2]

    vllm_server.reset()
    vllm_server.set_responder(markdown_responder())
    second = loader(scans, tmp_path, mode="vlm", client=client)
    docs = drive.iterate(second, "lazy_load")
    assert requested_pages(vllm_server) == [3, 4, 5]  # zero finished pages sent again
    assert [d.metadata["cached"] for d in docs] == [True, True, False, False, False]
    assert (second.stats.cached, second.stats.requests, second.stats.ok) == (2, 3, 5)
    assert [d.page_content for d in docs[:2]] == [d.page_content for d in got]

    vllm_server.reset()
    third = loader(scans, tmp_path, mode="vlm", client=client)
    drive.iterate(third, "lazy_load")
    assert vllm_server.requests == [] and third.stats.cached == 5


def test_resume_after_keyboard_interrupt(
    vllm_server: LocalVLLMServer, scans: Path, tmp_path: Path, drive: Drive
) -> None:
    vllm_server.set_responder(markdown_responder())
    client = client_for(vllm_server, max_concurrency=1)

    def interrupt_at_page_3(d: Any) -> None:
        if d.metadata["page_number"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        drive.iterate(
            loader(scans, tmp_path, mode="vlm", client=client), "lazy_load", visit=interrupt_at_page_3
        )
    vllm_server.reset()
    vllm_server.set_responder(markdown_responder())
    ld = loader(scans, tmp_path, mode="vlm", client=client)
    drive.iterate(ld, "lazy_load")
    assert requested_pages(vllm_server) == [4, 5]
    assert ld.stats.cached == 3


def test_resume_after_killed_process(vllm_server: LocalVLLMServer, scans: Path, tmp_path: Path) -> None:
    """A loader in another process (pages in flight on worker threads) is SIGKILLed after two pages while
    pages 3-5 stall in flight; the rerun sends only those three."""
    vllm_server.set_responder(markdown_responder(delay=lambda n: 0.0 if n <= 2 else 30.0))
    script = textwrap.dedent(
        f"""
        from minimaxvl_tools.client import MiniMaxVLClient
        from minimaxvl_tools.loaders import MiniMaxVLDocumentLoader
        client = MiniMaxVLClient(base_url={vllm_server.base_url!r}, max_retries=0)
        ld = MiniMaxVLDocumentLoader({str(scans)!r}, mode="vlm", client=client, dpi=100,
                                     detect_rotation=False, cache_dir={str(tmp_path / "cache")!r})
        for d in ld.lazy_load():
            print("done", d.metadata["page_number"], flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["done", "1"]
        assert proc.stdout.readline().split() == ["done", "2"]
        deadline = time.monotonic() + 10
        while len(requested_pages(vllm_server)) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)  # pages 3-5 are in flight (their answers stall) when the process dies
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert sorted(requested_pages(vllm_server)) == [1, 2, 3, 4, 5]

    vllm_server.reset()
    vllm_server.set_responder(markdown_responder())
    ld = loader(scans, tmp_path, mode="vlm", client=client_for(vllm_server))
    docs = ld.load()
    assert sorted(requested_pages(vllm_server)) == [3, 4, 5]
    assert ld.stats.cached == 2
    assert [d.page_content.splitlines()[0] for d in docs] == [f"# Page {n}" for n in range(1, 6)]


def test_cache_key_changes_with_settings(
    vllm_server: LocalVLLMServer, scans: Path, tmp_path: Path, drive: Drive
) -> None:
    vllm_server.set_responder(markdown_responder())
    client = client_for(vllm_server)
    drive.iterate(loader(scans, tmp_path, mode="vlm", client=client, pages="1"), "lazy_load")
    other = loader(scans, tmp_path, mode="vlm", client=client, pages="1", plain=True)  # other output
    drive.iterate(other, "lazy_load")
    assert requested_pages(vllm_server) == [1, 1]
    cache = PageCache(tmp_path / "cache")
    assert len(list(cache.root.rglob("*.json"))) == 2


# ------------------------------------------------------------------ failures and fallbacks
@pytest.mark.parametrize(
    "bad",
    [
        Reply(status=400, error="Failed to load image: scripted"),
        Reply(raw_body='{"id": "chatcmpl-broken", "choices": ['),
    ],
    ids=["http400", "garbage-body"],
)
def test_one_failed_page_does_not_stop_the_others(
    vllm_server: LocalVLLMServer, scans: Path, tmp_path: Path, bad: Reply, drive: Drive
) -> None:
    vllm_server.set_responder(markdown_responder(fail=lambda n: bad if n == 2 else None))
    ld = loader(scans, tmp_path, mode="vlm", client=client_for(vllm_server), fallbacks=())
    docs = drive.iterate(ld, "lazy_load")
    assert [d.metadata["status"] for d in docs] == ["ok", "failed", "ok", "ok", "ok"]
    assert docs[1].page_content == "" and docs[1].metadata["error"]
    assert all("error" not in d.metadata for i, d in enumerate(docs) if i != 1)
    assert (ld.stats.failed, ld.stats.ok) == (1, 4)

    # the failed page is not cached: a rerun against a healthy server retries it, and only it
    vllm_server.reset()
    vllm_server.set_responder(markdown_responder())
    again = loader(scans, tmp_path, mode="vlm", client=client_for(vllm_server), fallbacks=())
    docs = drive.iterate(again, "lazy_load")
    assert requested_pages(vllm_server) == [2]
    assert docs[1].metadata["status"] == "ok" and again.stats.cached == 4


def test_vlm_failure_falls_back_to_text_layer(
    vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive
) -> None:
    text = "Born digital page with a text layer that the fallback can use instead of the model."
    pdf = make_pdf(tmp_path / "fb.pdf", [text])
    vllm_server.set_responder(lambda body: Reply(status=400, error="scripted failure"))
    ld = loader(pdf, tmp_path, mode="vlm", client=client_for(vllm_server))
    (doc,) = drive.iterate(ld, "lazy_load")
    m = doc.metadata
    assert (m["status"], m["fallback"], m["extraction"]) == ("fallback", "text-layer", "text-layer")
    assert "scripted failure" in m["error"]
    assert "fallback can use" in doc.page_content
    assert (ld.stats.fallback, ld.stats.failed, ld.stats.ok) == (1, 0, 0)
    assert len(vllm_server.requests) == 1


@needs_tesseract
def test_vlm_failure_falls_back_to_local_engine(
    vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive
) -> None:
    path = tmp_path / "scan.png"
    page_image(1, ["Shipment arrived damaged", "Claim reference 5521"]).save(path)
    vllm_server.set_responder(lambda body: Reply(status=500, error="scripted crash"))
    ld = loader(path, tmp_path, mode="vlm", client=client_for(vllm_server))
    (doc,) = drive.iterate(ld, "lazy_load")
    m = doc.metadata
    assert (m["status"], m["fallback"]) == ("fallback", "local")
    assert m["engine"].startswith("tesseract")
    assert "5521" in doc.page_content
    assert ld.stats.fallback == 1


def test_failure_rate_abort(vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive) -> None:
    pdf = make_pdf(tmp_path / "many.pdf", [page_image(n) for n in range(1, 8)])
    vllm_server.set_responder(markdown_responder(fail=lambda n: Reply(status=400) if n != 1 else None))
    ld = loader(
        pdf,
        tmp_path,
        mode="vlm",
        client=client_for(vllm_server, max_concurrency=1),  # one page at a time: exact stop point
        fallbacks=(),
        max_failure_rate=0.5,
        min_pages_before_abort=3,
    )
    seen: list[int] = []
    with pytest.raises(JobAbortedError, match="max_failure_rate"):
        drive.iterate(ld, "lazy_load", visit=lambda d: seen.append(d.metadata["page_number"]))
    # page 1 ok, page 2 failed (1/2 = 50%, not over), page 3 failed -> 2/3 over 50% after 3 pages: stop
    assert seen == [1, 2]
    assert sorted(requested_pages(vllm_server)) == [1, 2, 3]
    assert (ld.stats.pages, ld.stats.failed) == (3, 2)


def test_failure_rate_abort_sends_no_more_pages(
    vllm_server: LocalVLLMServer, scans: Path, tmp_path: Path, drive: Drive
) -> None:
    vllm_server.set_responder(lambda body: Reply(status=400))
    ld = loader(
        scans,
        tmp_path,
        mode="vlm",
        client=client_for(vllm_server, max_concurrency=1),
        fallbacks=(),
        max_failure_rate=0.2,
        min_pages_before_abort=2,
    )
    with pytest.raises(JobAbortedError):
        drive.iterate(ld, "lazy_load")
    assert ld.stats.pages == 2
    assert len(vllm_server.requests) <= 3  # the rest of the document was never sent


def test_min_x_height_sets_how_fine_print_is_cut(
    vllm_server: LocalVLLMServer, tmp_path: Path, drive: Drive
) -> None:
    pdf = FPDF(format="letter")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for i in range(30):
        pdf.set_xy(15, 15 + i * 7)
        pdf.cell(180, 6, f"Line {i}: the quick brown fox jumps over the lazy dog, number {i * 7}, twice.")
    path = tmp_path / "twelve_pt.pdf"
    pdf.output(str(path))
    vllm_server.set_responder(lambda body: "page text")
    client = client_for(vllm_server)
    kw: dict[str, Any] = {"mode": "vlm", "client": client, "dpi": 200, "fallbacks": ()}
    default = drive.iterate(loader(path, tmp_path, **kw), "lazy_load")
    assert default[0].metadata["requests"] == 1  # 12 pt stays legible in one image
    strict = drive.iterate(loader(path, tmp_path, min_x_height=30.0, **kw), "lazy_load")  # stricter: crops
    assert strict[0].metadata["requests"] > 1 and not strict[0].metadata.get("cached")
    assert strict[0].metadata["image_tokens"] > default[0].metadata["image_tokens"]
    with pytest.raises(InvalidInputError, match="min_x_height"):
        MiniMaxVLDocumentLoader(path, min_x_height=0)
