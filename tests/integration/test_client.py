"""MiniMaxVLClient against LocalVLLMServer over real HTTP: happy paths, faults, budgeting, outputs.

Tests taking ``drive`` run twice, through ``chat``/``health`` and through ``achat``/``ahealth``, with the same
assertions (tests/drive.py)."""

from __future__ import annotations

import time

import pytest
from PIL import Image
from pydantic import BaseModel

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.errors import (
    ContextOverflowError,
    MediaError,
    OutputValidationError,
    RateLimitError,
    ServerUnavailableError,
    TooManyImagesError,
)
from minimaxvl_tools.images.encode import encode_image
from minimaxvl_tools.profile import MINIMAX_SYSTEM_PROMPT
from minimaxvl_tools.testing import LocalVLLMServer, Reply
from tests.drive import Drive

pytestmark = pytest.mark.timeout(20)


def make_client(server: LocalVLLMServer, **kw: object) -> MiniMaxVLClient:
    kw.setdefault("timeout", 1.0)
    kw.setdefault("max_retries", 2)
    return MiniMaxVLClient(base_url=server.base_url, backoff_base=0.01, backoff_max=0.05, **kw)  # type: ignore[arg-type]


def img(w: int, h: int, color: str = "red") -> Image.Image:
    return Image.new("RGB", (w, h), color)


def user_parts(body: dict) -> list[dict]:
    return body["messages"][-1]["content"]


class Chart(BaseModel):
    title: str
    values: list[float]


def test_text_only_with_default_system_prompt(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    vllm_server.queue("hello there")
    with make_client(vllm_server) as c:
        r = drive.call(c, "chat", "Say hi")
    assert r.text == "hello there" and r.finish_reason == "stop"
    body = vllm_server.requests[0]
    assert body["messages"][0] == {
        "role": "system",
        "content": [{"type": "text", "text": MINIMAX_SYSTEM_PROMPT}],
    }
    assert user_parts(body) == [{"type": "text", "text": "Say hi"}]
    assert r.usage.prompt_tokens > 0 and r.usage.requests == 1


def test_system_prompt_off(vllm_server: LocalVLLMServer) -> None:
    c = make_client(vllm_server, system_prompt=None)
    c.chat("x")
    c.chat("y", system="custom")
    assert [m["role"] for m in vllm_server.requests[0]["messages"]] == ["user"]
    assert vllm_server.requests[1]["messages"][0]["content"][0]["text"] == "custom"


def test_images_in_order_and_exact_image_tokens(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    c = make_client(vllm_server)
    images = [encode_image(img(640, 480, "red")), encode_image(img(336, 336, "blue"))]
    r = drive.call(c, "chat", "Compare", images)
    parts = user_parts(vllm_server.requests[0])
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert parts[0]["image_url"]["url"] == images[0].data_url
    assert parts[1]["image_url"]["url"] == images[1].data_url
    assert r.usage.image_tokens == 2340 + 1176
    assert r.usage.prompt_tokens > 2340 + 1176


def test_pil_image_accepted(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    r = drive.call(make_client(vllm_server), "chat", "what", [img(800, 600)])
    assert r.usage.image_tokens == vllm_server.profile.image_tokens(*_sent_size(vllm_server))


def _sent_size(server: LocalVLLMServer) -> tuple[int, int]:
    import base64
    import io

    url = user_parts(server.requests[-1])[0]["image_url"]["url"]
    return Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))).size


def test_extra_body_and_stop_pass_through(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    drive.call(
        make_client(vllm_server),
        "chat",
        "x",
        extra_body={"stop_token_ids": [200020], "repetition_penalty": 1.1},
        stop=["END"],
    )
    body = vllm_server.requests[0]
    assert (
        body["stop_token_ids"] == [200020] and body["repetition_penalty"] == 1.1 and body["stop"] == ["END"]
    )


def test_finish_reason_length_passed_through(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    vllm_server.queue("word " * 200)
    r = drive.call(make_client(vllm_server), "chat", "long", max_tokens=10)
    assert r.finish_reason == "length"
    assert r.usage.completion_tokens <= 10


@pytest.mark.parametrize("kind", ["429", "500", "503", "drop", "malformed"])
def test_transient_fault_is_retried(vllm_server: LocalVLLMServer, kind: str, drive: Drive) -> None:
    vllm_server.fail_next(kind, 2)
    vllm_server.queue("recovered")
    r = drive.call(make_client(vllm_server, max_retries=2), "chat", "x")
    assert r.text == "recovered"
    assert len(vllm_server.requests) == 3


def test_timeout_is_retried(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    vllm_server.fail_next("timeout", 1)
    vllm_server.queue("after timeout")
    t = time.perf_counter()
    r = drive.call(make_client(vllm_server, timeout=0.3, max_retries=1), "chat", "x")
    assert r.text == "after timeout" and time.perf_counter() - t < 3


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("429", RateLimitError),
        ("500", ServerUnavailableError),
        ("503", ServerUnavailableError),
        ("drop", ServerUnavailableError),
        ("malformed", ServerUnavailableError),
        ("timeout", ServerUnavailableError),
    ],
)
def test_fault_surfaces_typed_error_after_retries(
    vllm_server: LocalVLLMServer, kind: str, error: type[Exception], drive: Drive
) -> None:
    vllm_server.fail_next(kind, 5)
    c = make_client(vllm_server, max_retries=1, timeout=0.3)
    with pytest.raises(error) as ei:
        drive.call(c, "chat", "x")
    assert len(vllm_server.requests) == 2
    assert vllm_server.base_url in str(ei.value)


def test_media_error_500_not_retried(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    c = make_client(vllm_server)
    with pytest.raises(MediaError) as ei:
        drive.call(
            c,
            "chat",
            "x",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}],
                }
            ],
        )
    assert ei.value.status_code == 500 and "allowed-local-media-path" in str(ei.value)
    assert len(vllm_server.requests) == 1


def test_bad_base64_is_media_error(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@notbase64"}}
    with pytest.raises(MediaError, match="Non-base64"):
        drive.call(make_client(vllm_server), "chat", "x", messages=[{"role": "user", "content": [part]}])


def test_too_many_images_refused_before_sending(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    c = make_client(vllm_server, max_images_per_request=4)
    images = [encode_image(img(336, 336)) for _ in range(5)]
    with pytest.raises(TooManyImagesError) as ei:
        drive.call(c, "chat", "x", images)
    assert "5 images" in str(ei.value) and "at most 4" in str(ei.value)
    assert vllm_server.requests == []


def test_overflow_planned_away_by_shrinking(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    vllm_server.max_model_len = 8192
    c = make_client(vllm_server, max_model_len=8192)
    big = encode_image(img(2016, 1008))  # 11016 tokens
    r = drive.call(c, "chat", "read it", [big], max_tokens=512)
    assert r.downscaled
    sent = _sent_size(vllm_server)
    assert max(sent) < 2016
    assert r.usage.image_tokens == vllm_server.profile.image_tokens(*sent) <= 8192 - 512
    assert r.usage.prompt_tokens + 512 <= 8192


def test_overflow_refused_before_sending_without_downscale(
    vllm_server: LocalVLLMServer, drive: Drive
) -> None:
    vllm_server.max_model_len = 8192
    c = make_client(vllm_server)
    big = encode_image(img(2016, 1008))
    with pytest.raises(ContextOverflowError) as ei:
        drive.call(c, "chat", "read it", [big], max_tokens=512, allow_downscale=False)
    e = ei.value
    assert (e.image_tokens, e.max_model_len, e.max_tokens) == (11016, 8192, 512)
    assert "11016" in str(e) and "8192" in str(e)
    assert vllm_server.requests == []


def test_overflow_reduces_max_tokens_to_fit(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    vllm_server.max_model_len = 4096
    c = make_client(vllm_server)
    r = drive.call(c, "chat", "x", [encode_image(img(640, 480))], max_tokens=3000, allow_downscale=False)
    assert 256 <= r.max_tokens < 3000
    assert vllm_server.requests[0]["max_tokens"] == r.max_tokens


def test_structured_output_valid(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    r = drive.call(make_client(vllm_server), "chat", "chart?", schema=Chart)
    assert isinstance(r.parsed, Chart)
    rf = vllm_server.requests[0]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
    assert rf["json_schema"]["schema"] == Chart.model_json_schema()


def test_structured_fenced_json_tolerated(vllm_server: LocalVLLMServer) -> None:
    vllm_server.queue('```json\n{"title": "t", "values": [1, 2]}\n```')
    out = make_client(vllm_server).structured("chart?", [], Chart)
    assert out == Chart(title="t", values=[1, 2])


def test_structured_repair_then_success(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    vllm_server.queue('{"title": 3}', '{"title": "ok", "values": []}')
    c = make_client(vllm_server)
    r = drive.call(c, "chat", "chart?", schema=Chart)
    assert r.parsed == Chart(title="ok", values=[])
    repair = vllm_server.requests[1]["messages"]
    assert repair[-2]["role"] == "assistant" and repair[-2]["content"][0]["text"] == '{"title": 3}'
    assert "values" in repair[-1]["content"][0]["text"]
    assert r.usage.requests == 2


def test_structured_repair_fails(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    vllm_server.queue("not json", "still not json")
    with pytest.raises(OutputValidationError) as ei:
        drive.call(make_client(vllm_server), "chat", "chart?", schema=Chart)
    assert ei.value.raw == "still not json"
    assert len(vllm_server.requests) == 2


def test_stream_sync_and_usage(vllm_server: LocalVLLMServer) -> None:
    vllm_server.queue("one two three")
    c = make_client(vllm_server)
    deltas = list(c.stream("count"))
    assert "".join(deltas) == "one two three" and len(deltas) >= 3
    assert vllm_server.requests[0]["stream_options"] == {"include_usage": True}
    assert c.usage.completion_tokens > 0 and c.usage.requests == 1


def test_usage_cumulative(vllm_server: LocalVLLMServer) -> None:
    c = make_client(vllm_server)
    a = c.chat("a", [encode_image(img(336, 336))])
    b = c.chat("b")
    u = c.usage
    assert u.requests == 2 and u.image_tokens == 1176
    assert u.prompt_tokens == a.usage.prompt_tokens + b.usage.prompt_tokens
    assert u.latency_s > 0


def test_health_up(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    h = drive.call(make_client(vllm_server), "health")
    assert h.ok and h.model_served and h.max_model_len == 32768 and h.error is None
    assert h.models == ["MiniMaxAI/MiniMax-VL-01"]


def test_health_wrong_model(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    h = drive.call(make_client(vllm_server, model="other/model"), "health")
    assert not h.ok and not h.model_served and "other/model" in (h.error or "")


def test_health_down() -> None:
    server = LocalVLLMServer().start()
    url = server.base_url
    server.stop()
    h = MiniMaxVLClient(base_url=url, timeout=0.5).health()
    assert not h.ok and h.models == [] and h.error


def test_max_model_len_read_from_models(vllm_server: LocalVLLMServer) -> None:
    vllm_server.max_model_len = 12345
    c = make_client(vllm_server)
    assert c.max_model_len() == 12345
    assert make_client(vllm_server, max_model_len=9000).max_model_len() == 9000


def test_tool_history_converted_to_function_role(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    hist = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "sunny"},
    ]
    drive.call(make_client(vllm_server), "chat", "and now?", messages=hist)
    roles = [m["role"] for m in vllm_server.requests[0]["messages"]]
    assert "tool" not in roles and "function" in roles
    assert all(isinstance(m["content"], list) for m in vllm_server.requests[0]["messages"])


def test_scripted_server_error_reply(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    vllm_server.queue(Reply(status=400, error="something odd"))
    from minimaxvl_tools.errors import BadRequestError

    with pytest.raises(BadRequestError, match="something odd"):
        drive.call(make_client(vllm_server), "chat", "x")


# ---------------------------------------------------------------------------------------------- exact budget
def test_exact_budget_uses_tokenize_and_caches(vllm_server: LocalVLLMServer, drive: Drive) -> None:
    text = "a" * 30000  # estimate: 10000 tokens; the server's tokenizer: 7500
    est = make_client(vllm_server, max_model_len=12000)
    assert est.plan(text, max_tokens=2000).max_tokens < 2000  # the estimate cuts the completion
    assert vllm_server.tokenize_requests == []
    c = make_client(vllm_server, max_model_len=12000, exact_budget=True)
    assert c.text_tokens(text) == 7500 and c.tokenize_supported is True
    assert c.plan(text, max_tokens=2000).max_tokens == 2000  # exact count: it fits
    calls = len(vllm_server.tokenize_requests)
    drive.call(c, "chat", text, max_tokens=2000)
    assert len(vllm_server.tokenize_requests) == calls  # prompt and system prompt counts are cached
    assert vllm_server.tokenize_requests[0]["prompt"] == text


async def test_exact_budget_async_prefetches(vllm_server: LocalVLLMServer) -> None:
    c = make_client(vllm_server, max_model_len=12000, exact_budget=True)
    r = await c.achat("b" * 30000, max_tokens=2000)
    assert r.max_tokens == 2000 and len(vllm_server.tokenize_requests) == 2  # system prompt + text
    await c.aclose()


def test_exact_budget_falls_back_on_404(drive: Drive) -> None:
    with LocalVLLMServer(tokenize=False) as server:
        c = make_client(server, max_model_len=12000, exact_budget=True)
        assert c.text_tokens("a" * 300) == 100  # the bytes/3 estimate
        assert c.tokenize_supported is False
        assert drive.call(c, "chat", "x").text
