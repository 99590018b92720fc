"""pages.pipeline / prepare / send / fallback: one set of cases, run through the sync and the async drivers,
which must give the same pages (text, status, errors, requests, boxes)."""

from __future__ import annotations

import asyncio
import importlib
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image, ImageDraw

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.images.encode import EncodedImage
from minimaxvl_tools.pages import PageImage, aocr_page, ocr_page
from minimaxvl_tools.pages.fallback import Fallbacks, fallback_kind
from minimaxvl_tools.pages.pipeline import PageReader
from minimaxvl_tools.pages.prepare import PrepareOptions, crop_pixels, prepare
from minimaxvl_tools.results import OCRPage


class _Reply:
    def __init__(self, text: str, finish_reason: str = "stop") -> None:
        self.text, self.finish_reason = text, finish_reason


class _Client:
    """A client double: ``answer(prompt, image)`` gives (text, finish_reason); every request is recorded."""

    settings = None

    def __init__(self, answer: Callable[[str, EncodedImage], tuple[str, str]]) -> None:
        self.answer = answer
        self.sent: list[tuple[str, EncodedImage]] = []

    def chat(self, prompt: str, images: list[EncodedImage], **kw: Any) -> _Reply:
        self.sent.append((prompt, images[0]))
        return _Reply(*self.answer(prompt, images[0]))

    async def achat(self, prompt: str, images: list[EncodedImage], **kw: Any) -> _Reply:
        await asyncio.sleep(0)
        return self.chat(prompt, images, **kw)


def _page(lines: int = 12, size: tuple[int, int] = (850, 1100), text_layer: str = "") -> PageImage:
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    for i in range(lines):
        draw.text((60, 60 + 40 * i), f"Line {i} of the page with some words", fill="black")
    return PageImage(1, 1, img, text_layer=text_layer, source="page.png")


def _crop_of(prompt: str) -> int:
    m = re.search(r"crop (\d+) of", prompt)
    return int(m.group(1)) if m else 0


@pytest.fixture(params=["sync", "async"])
def read(request: pytest.FixtureRequest) -> Callable[[PageReader, PageImage], OCRPage]:
    """The same call through either driver."""
    if request.param == "sync":
        return lambda reader, page: reader.read(page)
    return lambda reader, page: asyncio.run(reader.aread(page))


def test_one_image_page_is_read_with_boxes(read: Callable[..., OCRPage]) -> None:
    client = _Client(lambda p, e: ("Line 0 of the page\nLine 1 of the page", "stop"))
    ocr = read(PageReader.build(client, tile=False), _page(2))  # type: ignore[arg-type]
    assert (ocr.status, ocr.requests, ocr.attempts) == ("ok", 1, 1)
    assert ocr.markdown == "Line 0 of the page\nLine 1 of the page"
    assert [b.kind for b in ocr.blocks] == ["line", "line"]  # two ink rows, two lines
    assert ocr.image_tokens == client.sent[0][1].tokens


def test_blank_page_costs_no_request(read: Callable[..., OCRPage]) -> None:
    client = _Client(lambda p, e: ("never", "stop"))
    ocr = read(PageReader.build(client), _page(0))  # type: ignore[arg-type]
    assert (ocr.status, ocr.requests, ocr.attempts, client.sent) == ("blank", 0, 0, [])


def test_a_text_layer_keeps_a_page_from_being_blank_unless_pixels_only(read: Callable[..., OCRPage]) -> None:
    client = _Client(lambda p, e: ("Words", "stop"))
    layer = "A real text layer with plenty of words in it."
    assert read(PageReader.build(client), _page(0, text_layer=layer)).status == "ok"  # type: ignore[arg-type]
    pixels_only = PageReader.build(client, blank_uses_text_layer=False)  # type: ignore[arg-type]
    assert read(pixels_only, _page(0, text_layer=layer)).status == "blank"


def test_cut_reply_is_retried_on_halves_the_same_way(read: Callable[..., OCRPage]) -> None:
    def answer(prompt: str, enc: EncodedImage) -> tuple[str, str]:
        first = len(client.sent) == 1  # the page itself: cut at max_tokens; its halves: fine
        return ("cut mid", "length") if first else (f"half {enc.height}", "stop")

    client = _Client(answer)
    ocr = read(PageReader.build(client, tile=False), _page())  # type: ignore[arg-type]
    assert (ocr.status, ocr.attempts, ocr.requests) == ("ok", 2, 3)
    first = client.sent[0][1]
    assert ocr.image_tokens == first.tokens + sum(e.tokens for _, e in client.sent[1:])
    assert any("attempt 1" in w for w in ocr.warnings)


@pytest.mark.parametrize("stop", [True, False])
def test_a_crop_that_fails_for_good_fails_the_page(read: Callable[..., OCRPage], stop: bool) -> None:
    """stop_on_failure is explicit and the same in both drivers: True sends no crop after the failure
    (sync) or cancels the rest (async); False sends every crop. Either way the page is failed."""
    client = _Client(lambda p, e: ("A cut line of words", "length") if _crop_of(p) == 1 else ("text", "stop"))
    reader = PageReader.build(client, tile=True, max_attempts=1, stop_on_failure=stop)  # type: ignore[arg-type]
    ocr = read(reader, _page(70, (2400, 3200)))
    crops = prepare(_page(70, (2400, 3200)), reader.options).crops
    assert len(crops) > 1
    assert (
        ocr.status == "failed" and ocr.error_type == "TruncatedOutputError" and "crop 1/" in (ocr.error or "")
    )
    if stop:
        assert 1 <= len(client.sent) <= len(crops)
    else:
        assert len(client.sent) == len(crops)


def test_failed_page_takes_the_first_fallback_that_reads(read: Callable[..., OCRPage]) -> None:
    class Broken:
        engine = "broken"

        def available(self) -> bool:
            return True

        def ocr(self, image: Image.Image) -> Any:
            raise RuntimeError("tesseract crashed")

    client = _Client(lambda p, e: ("", "stop"))  # empty for a non-blank page: failed
    layer = "The text layer of this page, good enough to stand in."
    chain = Fallbacks(("local", "text-layer"), local_engine=Broken())  # type: ignore[arg-type]
    reader = PageReader.build(client, tile=False, max_attempts=1, fallbacks=chain)  # type: ignore[arg-type]
    ocr = read(reader, _page(3, text_layer=layer))
    assert ocr.status == "fallback" and fallback_kind(ocr) == "text-layer" and ocr.markdown == layer
    assert ocr.error and "empty reply" in ocr.error  # the model's reason is kept
    assert any("fallback local failed" in w for w in ocr.warnings)  # the broken one is a note, not an error


def test_no_fallback_leaves_the_failure(read: Callable[..., OCRPage]) -> None:
    client = _Client(lambda p, e: ("", "stop"))
    ocr = read(PageReader.build(client, tile=False, max_attempts=1), _page(3, text_layer="short"))  # type: ignore[arg-type]
    assert ocr.status == "failed" and ocr.error_type == "EmptyOutputError"


def test_ocr_page_and_aocr_page_agree_and_leave_the_page_alone() -> None:
    client = _Client(lambda p, e: (f"text of crop {_crop_of(p)}", "stop"))
    page = _page(70, (2400, 3200))
    sync = ocr_page(client, page, tile=True)  # type: ignore[arg-type]
    assert page.image is not None  # the caller's page keeps its pixels
    asyn = asyncio.run(aocr_page(client, page, tile=True))  # type: ignore[arg-type]
    strip = {"warnings"}
    assert sync.model_dump(exclude=strip) == asyn.model_dump(exclude=strip)


def test_async_read_works_out_block_geometry_once_the_reply_is_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """The block geometry (line boxes, a few ms a page) is no longer on the way to the request: the async
    read computes it after the reply, the same boxes as the sync read, and not at all for a failed page."""
    prepare_module = importlib.import_module("minimaxvl_tools.pages.prepare")  # the package has prepare()
    events: list[str] = []
    real = prepare_module.block_geometry

    def geometry(*a: Any, **kw: Any) -> Any:
        events.append("geometry")
        return real(*a, **kw)

    monkeypatch.setattr(prepare_module, "block_geometry", geometry)

    def answer(prompt: str, enc: EncodedImage) -> tuple[str, str]:
        events.append("request")
        return "Line 0 of the page\nLine 1 of the page", "stop"

    reader = PageReader.build(_Client(answer), tile=False)  # type: ignore[arg-type]
    sync = reader.read(_page(2))
    assert events == ["geometry", "request"]
    events.clear()
    asyn = asyncio.run(reader.aread(_page(2)))
    assert events == ["request", "geometry"]
    assert asyn.blocks == sync.blocks and [b.kind for b in asyn.blocks] == ["line", "line"]

    events.clear()
    cut = PageReader.build(_Client(lambda p, e: ("cut", "length")), tile=False, max_attempts=1)  # type: ignore[arg-type]
    failed = asyncio.run(cut.aread(_page(2)))
    assert failed.status == "failed" and failed.error_type == "TruncatedOutputError"
    assert events == []  # nothing computed for boxes the page will never have


def test_a_page_read_is_kept_when_its_block_geometry_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    prepare_module = importlib.import_module("minimaxvl_tools.pages.prepare")

    def broken(*a: Any, **kw: Any) -> Any:
        raise ValueError("no line boxes")

    monkeypatch.setattr(prepare_module, "block_geometry", broken)
    reader = PageReader.build(_Client(lambda p, e: ("Line 0", "stop")), tile=False)  # type: ignore[arg-type]
    ocr = asyncio.run(reader.aread(_page(2)))
    assert (ocr.status, ocr.markdown, ocr.blocks) == ("ok", "Line 0", [])
    assert any("block boxes not computed" in w and "no line boxes" in w for w in ocr.warnings)


@pytest.mark.parametrize("tile", [False, True])
def test_a_gray_page_is_prepared_as_one_channel_with_the_same_bytes(tile: bool) -> None:
    """A gray RGB page is converted to one channel once, up front: the images sent are byte for byte those
    of the RGB page encoded crop by crop, and the pixels kept for retries are L (a third of the memory);
    a page with colour stays RGB."""
    from minimaxvl_tools.images.encode import encode_image
    from minimaxvl_tools.pages.plan import cut_page, encode_page, plan_page_image

    page = _page(70, (2400, 3200)) if tile else _page(12)
    options = PrepareOptions(tile=tile)
    prepared = prepare(page, options)
    image = page.pixels()
    assert image.mode == "RGB"  # the caller's page is left as it was
    plan = plan_page_image(image, tile=tile)
    if tile:
        expected = [encode_image(img).data_url for img, _ in cut_page(image, plan)]
    else:
        expected = [encode_page(image).data_url]
    assert [c.image.data_url for c in prepared.crops] == expected
    assert {crop_pixels(c).mode for c in prepared.crops} == {"L"}

    colour = _page(12)
    ImageDraw.Draw(colour.pixels()).rectangle((700, 900, 800, 1000), fill=(200, 30, 30))
    kept = prepare(colour, PrepareOptions(tile=False)).crops[0]
    assert crop_pixels(kept).mode == "RGB" and kept.image.data_url == encode_page(colour.pixels()).data_url


def test_bad_options_are_typed() -> None:
    with pytest.raises(InvalidInputError, match="max_attempts"):
        PageReader.build(_Client(lambda p, e: ("", "stop")), max_attempts=0)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="fallback 'ocr'"):
        Fallbacks(("ocr",))  # type: ignore[arg-type]


def test_prepared_page_from_a_worker_carries_no_pixels() -> None:
    from minimaxvl_tools.pages.prepare import portable

    prepared = prepare(_page(), PrepareOptions(tile=False))
    assert prepared.crops[0].pixels is not None
    moved = portable(prepared)
    assert moved.crops[0].pixels is None and moved == replace(prepared)  # pixels never compared


class _FailingPool:
    """A worker pool whose preparation of every page fails (as a damaged page does in a worker)."""

    def _outcome(self, job: Any) -> Any:
        from minimaxvl_tools.errors import PDFError
        from minimaxvl_tools.page_workers import PageOutcome

        return PageOutcome(job.number, error=PDFError(f"page {job.number} of {job.path} does not render"))

    def submit(self, job: Any) -> Any:
        from concurrent.futures import Future

        fut: Future[Any] = Future()
        fut.set_result(self._outcome(job))
        return fut

    def settle(self, fut: Any, job: Any) -> Any:
        return fut.result()

    async def aprepare(self, job: Any) -> Any:
        return self._outcome(job)


@pytest.mark.parametrize("run", ["sync", "async"])
def test_a_page_that_fails_in_a_worker_goes_through_the_fallbacks(run: str) -> None:
    from minimaxvl_tools.client import MiniMaxVLClient
    from minimaxvl_tools.settings import Settings

    layer = "the text layer of this page, long enough to stand in for the model's transcription"
    reader = PageReader(
        MiniMaxVLClient(Settings()),
        fallbacks=Fallbacks(("text-layer",)),
        pool=_FailingPool(),  # type: ignore[arg-type]
    )
    page = PageImage(3, 5, None, text_layer=layer, source="doc.pdf")
    ocr = reader.job(page, "doc.pdf")() if run == "sync" else asyncio.run(reader.ajob(page, "doc.pdf")())
    assert (ocr.page, ocr.status, ocr.engine, ocr.text) == (3, "fallback", "text-layer", layer)
    assert ocr.error and "does not render" in ocr.error  # the worker's reason is kept
