"""LocalVLLMServer itself: vLLM-like endpoints, error shapes, image checks, schema answers, faults."""

from __future__ import annotations

import base64
import io
import random
import socket

import httpx
import pytest
from PIL import Image

from minimaxvl_tools.images.encode import encode_image
from minimaxvl_tools.profile import MINIMAX_VL_01
from minimaxvl_tools.testing import LocalVLLMServer
from minimaxvl_tools.testing.accounting import HEADER_CHARS
from minimaxvl_tools.testing.server import IMAGE_CHECKS, schema_instance

pytestmark = pytest.mark.timeout(20)
MODEL = "MiniMaxAI/MiniMax-VL-01"


def chat(server: LocalVLLMServer, content: list, **kw: object) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], **kw}
    return httpx.post(server.base_url + "/chat/completions", json=body, timeout=5)


def image_part(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def test_models_health_metrics(vllm_server: LocalVLLMServer) -> None:
    assert httpx.get(vllm_server.root_url + "/health").status_code == 200
    card = httpx.get(vllm_server.base_url + "/models").json()["data"][0]
    assert card["id"] == MODEL and card["max_model_len"] == 32768
    text = httpx.get(vllm_server.root_url + "/metrics").text
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
    ):
        assert name in text


@pytest.mark.parametrize(("size", "tokens"), [((336, 336), 1176), ((640, 480), 2340), ((1008, 2016), 11088)])
def test_tokenize_exact_image_tokens(
    vllm_server: LocalVLLMServer, size: tuple[int, int], tokens: int
) -> None:
    url = encode_image(Image.new("RGB", size)).data_url
    base = {"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    with_img = {
        "model": MODEL,
        "messages": [{"role": "user", "content": [image_part(url), {"type": "text", "text": "hi"}]}],
    }
    a = httpx.post(vllm_server.root_url + "/tokenize", json=base).json()
    b = httpx.post(vllm_server.root_url + "/tokenize", json=with_img).json()
    assert (
        b["count"] - a["count"] == tokens and b["max_model_len"] == 32768 and len(b["tokens"]) == b["count"]
    )


def test_error_shapes_and_messages(vllm_server: LocalVLLMServer) -> None:
    r = chat(vllm_server, [image_part("data:image/png;base64,@@@")])
    assert r.status_code == 400 and "Non-base64" in r.json()["error"]["message"]
    assert r.json()["error"]["type"] == "BadRequestError" and r.json()["error"]["code"] == 400
    r = chat(vllm_server, [image_part("data:image/png;base64," + base64.b64encode(b"hello").decode())])
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("Failed to load image")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buf, "PNG")
    trunc = base64.b64encode(buf.getvalue()[:-30]).decode()
    r = chat(vllm_server, [image_part("data:image/png;base64," + trunc)])
    assert r.status_code == 400 and "truncated" in r.json()["error"]["message"]
    r = chat(vllm_server, [image_part("file:///etc/hosts")])
    assert r.status_code == 500
    r = chat(vllm_server, [image_part("https://example.com/a.png")])
    assert r.status_code == 500
    small = encode_image(Image.new("RGB", (10, 10))).data_url
    r = chat(vllm_server, [image_part(small)] * 5)
    assert (
        r.status_code == 400
        and r.json()["error"]["message"]
        == "At most 4 image(s) may be provided in one prompt. (parameter=image)"
    )
    assert r.json()["error"]["param"] == "image"


def test_context_overflow_message(vllm_server: LocalVLLMServer) -> None:
    vllm_server.max_model_len = 2000
    big = encode_image(Image.new("RGB", (672, 672))).data_url
    r = chat(vllm_server, [image_part(big)])
    msg = r.json()["error"]["message"]
    # vLLM 0.23.0's wording (recorded on the GPU machine, tests/gpu/results)
    assert r.status_code == 400 and msg.startswith("This model's maximum context length is 2000 tokens.")
    assert r.json()["error"]["param"] == "input_tokens" and "(parameter=input_tokens, value=" in msg


def test_wrong_model_404(vllm_server: LocalVLLMServer) -> None:
    r = httpx.post(
        vllm_server.base_url + "/chat/completions",
        json={"model": "x", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 404


def test_schema_instance_generator() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"enum": ["bar", "line"]},
            "n": {"type": "integer", "minimum": 3},
            "items": {"type": "array", "items": {"$ref": "#/$defs/P"}, "minItems": 1},
            "opt": {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 2}]},
        },
        "required": ["kind", "n", "items"],
        "$defs": {"P": {"type": "object", "properties": {"x": {"type": "number"}}}},
    }
    assert schema_instance(schema) == {"kind": "bar", "n": 3, "items": [{"x": 0.0}], "opt": "xx"}


def test_responder_and_requests_recorded(vllm_server: LocalVLLMServer) -> None:
    vllm_server.set_responder(lambda body: f"got {len(body['messages'])} message(s)")
    r = chat(vllm_server, [{"type": "text", "text": "hi"}])
    assert r.json()["choices"][0]["message"]["content"] == "got 1 message(s)"
    assert vllm_server.requests[0]["messages"][0]["content"][0]["text"] == "hi"


def test_tool_calls_reply(vllm_server: LocalVLLMServer) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    vllm_server.queue({"text": "", "tool_calls": [call]})
    choice = chat(vllm_server, [{"type": "text", "text": "hi"}]).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["tool_calls"][0]["id"] == "c1"


def test_fault_kinds(vllm_server: LocalVLLMServer) -> None:
    vllm_server.fail_next("malformed")
    r = chat(vllm_server, [{"type": "text", "text": "hi"}])
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    vllm_server.fail_next("drop")
    with pytest.raises(httpx.HTTPError):
        chat(vllm_server, [{"type": "text", "text": "hi"}])
    vllm_server.fail_next("429")
    r = chat(vllm_server, [{"type": "text", "text": "hi"}])
    assert r.status_code == 429 and r.headers["retry-after"] == "0"
    with pytest.raises(ValueError):
        vllm_server.fail_next("nope")


def test_session_fixture_reset(vllm_server_session: LocalVLLMServer) -> None:
    vllm_server_session.reset()
    chat(vllm_server_session, [{"type": "text", "text": "hi"}])
    assert len(vllm_server_session.requests) == 1


def _noise_jpeg(size: tuple[int, int]) -> bytes:
    """A JPEG of random pixels: its data URL is far longer than the header read of image_check='header'."""
    buf = io.BytesIO()
    Image.frombytes("L", size, bytes(random.Random(0).randbytes(size[0] * size[1]))).save(buf, "JPEG")
    return buf.getvalue()


def test_header_image_check_counts_like_decode_and_keeps_vllm_refusals() -> None:
    raw = _noise_jpeg((1008, 1305))
    url = "data:image/jpeg;base64," + base64.b64encode(raw).decode()
    assert len(url) > 2 * HEADER_CHARS
    cut = "data:image/jpeg;base64," + base64.b64encode(raw[: len(raw) // 2]).decode()
    not_image = "data:image/png;base64," + base64.b64encode(b"hello" * 20000).decode()
    counts = {}
    for check in IMAGE_CHECKS:
        with LocalVLLMServer(image_check=check) as srv:
            body = {"model": MODEL, "messages": [{"role": "user", "content": [image_part(url)]}]}
            counts[check] = httpx.post(srv.root_url + "/tokenize", json=body, timeout=10).json()["count"]
            assert chat(srv, [image_part(url)]).status_code == 200
            r = chat(srv, [image_part("data:image/png;base64,@@@" + "A" * HEADER_CHARS)])
            assert r.status_code == 400 and "Non-base64" in r.json()["error"]["message"]
            r = chat(srv, [image_part(not_image)])  # no header: the full decode gives vLLM's error
            assert r.status_code == 400 and r.json()["error"]["message"].startswith("Failed to load image")
            assert chat(srv, [image_part("file:///etc/hosts")]).status_code == 500
            # a page cut in half: only the full decode sees it (the header read trades this for speed)
            assert chat(srv, [image_part(cut)]).status_code == (400 if check == "decode" else 200)
    w, h = Image.open(io.BytesIO(raw)).size
    assert counts["header"] == counts["decode"] > MINIMAX_VL_01.image_tokens(w, h)
    with pytest.raises(ValueError, match="image_check='pixels' is unknown"):
        LocalVLLMServer(image_check="pixels")


def test_answers_are_not_held_back_by_nagle(vllm_server: LocalVLLMServer) -> None:
    with httpx.Client(timeout=5) as client:  # one keep-alive connection
        assert client.get(vllm_server.root_url + "/health").status_code == 200
        (conn,) = vllm_server._connections
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
