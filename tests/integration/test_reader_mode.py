"""LocalVLLMServer(reader="tesseract"): image requests answered with Tesseract's reading of each image as
resized into its MiniMax-VL-01 canvas (a legibility proxy, not a model)."""

from __future__ import annotations

import httpx
import pytest
from PIL import Image, ImageDraw, ImageFont

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.images.encode import encode_image
from minimaxvl_tools.local_ocr import LocalOCREngine
from minimaxvl_tools.profile import best_canvas
from minimaxvl_tools.testing import LocalVLLMServer
from minimaxvl_tools.testing.__main__ import main as double_main
from minimaxvl_tools.testing.server import canvas_view
from tests.synthpages import DEJAVU

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(not LocalOCREngine.available(), reason="needs tesseract"),
]
MODEL = "MiniMaxAI/MiniMax-VL-01"


def _text_image(text: str, size: tuple[int, int], font_px: int) -> Image.Image:
    img = Image.new("L", size, 255)
    ImageDraw.Draw(img).text((20, 20), text, font=ImageFont.truetype(DEJAVU, font_px), fill=0)
    return img


def _chat(server: LocalVLLMServer, *images: Image.Image, **kw: object) -> httpx.Response:
    parts: list[dict] = [{"type": "text", "text": "Transcribe this page."}]
    parts += [{"type": "image_url", "image_url": {"url": encode_image(i).data_url}} for i in images]
    body = {"model": MODEL, "messages": [{"role": "user", "content": parts}], **kw}
    return httpx.post(server.base_url + "/chat/completions", json=body, timeout=20)


def test_reader_reads_each_image_at_its_canvas(vllm_reader_server: LocalVLLMServer) -> None:
    a = _text_image("Quartz river 1234", (500, 120), 40)
    b = _text_image("Second image here", (700, 300), 40)
    r = _chat(vllm_reader_server, a, b)
    assert r.status_code == 200
    text = r.json()["choices"][0]["message"]["content"]
    assert "Quartz river 1234" in text and "Second image here" in text
    assert text.index("Quartz") < text.index("Second")
    (recv_a, canvas_a, seen_a), (recv_b, _, seen_b) = vllm_reader_server.reader_views
    assert recv_a == (500, 120) and canvas_a == best_canvas(500, 120)
    scale = min(canvas_a[0] / 500, canvas_a[1] / 120)
    assert seen_a == (int(500 * scale), int(120 * scale))  # upscaled into the canvas, aspect kept
    assert seen_a[0] > 500 and recv_b == (700, 300) and max(seen_b) <= 1344


def test_canvas_view_shrinks_a_big_page_so_small_print_blurs() -> None:
    big = _text_image("tiny print reads badly", (3000, 3000), 14)
    view = canvas_view(big)
    cw, ch = best_canvas(3000, 3000)
    assert view.size == (min(cw, ch), min(cw, ch)) and view.size[0] < 3000
    engine = LocalOCREngine()
    crop = big.crop((0, 0, 600, 100))
    assert "tiny print reads badly" in engine.ocr(canvas_view(crop)).text  # the same print, cut out
    assert "tiny print reads badly" not in engine.ocr(view).text  # shrunk 2.2x into one canvas


def test_scripted_replies_and_json_requests_win_over_the_reader(vllm_reader_server: LocalVLLMServer) -> None:
    img = _text_image("Quartz river", (400, 100), 40)
    vllm_reader_server.queue("scripted")
    assert _chat(vllm_reader_server, img).json()["choices"][0]["message"]["content"] == "scripted"
    r = _chat(vllm_reader_server, img, response_format={"type": "json_object"})
    assert r.json()["choices"][0]["message"]["content"] == "{}"
    body = {"model": MODEL, "messages": [{"role": "user", "content": "no image"}]}
    r = httpx.post(vllm_reader_server.base_url + "/chat/completions", json=body, timeout=5)
    assert "scripted answer" in r.json()["choices"][0]["message"]["content"]


def test_reader_errors(vllm_reader_server: LocalVLLMServer) -> None:
    with pytest.raises(InvalidInputError, match="reader='easyocr' is unknown"):
        LocalVLLMServer(reader="easyocr")
    parts = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    body = {"model": MODEL, "messages": [{"role": "user", "content": parts}]}
    r = httpx.post(vllm_reader_server.base_url + "/chat/completions", json=body, timeout=5)
    assert r.status_code == 400 and "Failed to load image" in r.json()["error"]["message"]
    blank = Image.new("L", (400, 300), 255)
    assert _chat(vllm_reader_server, blank).json()["choices"][0]["message"]["content"] == ""
    vllm_reader_server.reset()
    assert vllm_reader_server.reader_views == []


def test_cli_entry_rejects_an_unknown_reader(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        double_main(["--reader", "nope"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_a_responder_can_read_some_requests(vllm_reader_server: LocalVLLMServer) -> None:
    vllm_reader_server.set_responder(lambda body: "read: " + vllm_reader_server.read_request(body))
    text = _chat(vllm_reader_server, _text_image("Quartz river", (400, 100), 40)).json()["choices"][0]
    assert text["message"]["content"].startswith("read: Quartz river")
    with pytest.raises(InvalidInputError, match="reader='tesseract'"):
        LocalVLLMServer().read_request({"messages": []})
