"""Message building and budgeting of MiniMaxVLClient, offline (no server needed)."""

from __future__ import annotations

import pytest
from PIL import Image

from minimaxvl_tools.client import ChatResult, MiniMaxVLClient, Usage, estimate_text_tokens
from minimaxvl_tools.errors import ContextOverflowError, InvalidInputError, TooManyImagesError
from minimaxvl_tools.images.encode import encode_image
from minimaxvl_tools.profile import MINIMAX_SYSTEM_PROMPT


@pytest.fixture
def client() -> MiniMaxVLClient:
    return MiniMaxVLClient(base_url="http://127.0.0.1:9/v1", max_model_len=32768)


def test_content_is_always_list_of_parts(client: MiniMaxVLClient) -> None:
    im = encode_image(Image.new("RGB", (50, 50)))
    msgs = client.build_messages("hi", [im], history=[{"role": "assistant", "content": "prev"}])
    assert msgs[0]["content"] == [{"type": "text", "text": MINIMAX_SYSTEM_PROMPT}]
    assert all(isinstance(m["content"], list) for m in msgs)
    assert [p["type"] for p in msgs[-1]["content"]] == ["image_url", "text"]


def test_text_first_ordering(client: MiniMaxVLClient) -> None:
    im = encode_image(Image.new("RGB", (50, 50)))
    msgs = client.build_messages("hi", [im], images_first=False)
    assert [p["type"] for p in msgs[-1]["content"]] == ["text", "image_url"]


@pytest.mark.parametrize("where", ["text", "system", "history"])
def test_literal_image_token_refused(client: MiniMaxVLClient, where: str) -> None:
    kw: dict = {"text": "look <image> here"} if where == "text" else {"text": "ok"}
    if where == "system":
        kw["system"] = "<image>"
    if where == "history":
        kw["history"] = [{"role": "user", "content": "a <image>"}]
    with pytest.raises(InvalidInputError, match="<image>"):
        client.build_messages(**kw)


def test_tool_role_becomes_function(client: MiniMaxVLClient) -> None:
    msgs = client.build_messages("next", history=[{"role": "tool", "name": "calc", "content": "42"}])
    fn = msgs[1]
    assert fn["role"] == "function" and fn["name"] == "calc" and fn["content"][0]["text"] == "42"


def test_assistant_tool_calls_rendered_natively(client: MiniMaxVLClient) -> None:
    call = {"type": "function", "function": {"name": "calc", "arguments": '{"a": 1}'}}
    msgs = client.build_messages("n", history=[{"role": "assistant", "content": None, "tool_calls": [call]}])
    assert "tool_calls" not in msgs[1]
    assert 'functions.calc({"a": 1})' in msgs[1]["content"][0]["text"]


def test_unknown_role_refused(client: MiniMaxVLClient) -> None:
    with pytest.raises(InvalidInputError, match="developer"):
        client.build_messages("x", history=[{"role": "developer", "content": "x"}])


def test_estimator_replaceable_and_conservative(client: MiniMaxVLClient) -> None:
    assert estimate_text_tokens("abcdef") == 2
    base = client.plan("hello", max_tokens=10).text_tokens
    client.estimate_text_tokens = lambda s: 1000
    assert client.plan("hello", max_tokens=10).text_tokens > base + 900


def test_plan_shrinks_to_exact_budget(client: MiniMaxVLClient) -> None:
    ims = [encode_image(Image.new("RGB", (1344, 1344))) for _ in range(3)]
    p = client.plan("q", ims, max_tokens=1000, max_model_len=12000)
    assert p.downscaled and p.image_tokens + p.text_tokens + p.max_tokens <= 12000
    assert p.max_tokens == 1000


def test_plan_too_many_images(client: MiniMaxVLClient) -> None:
    ims = [encode_image(Image.new("RGB", (20, 20)))] * 5
    with pytest.raises(TooManyImagesError) as ei:
        client.plan("q", ims)
    assert ei.value.images == 5


def test_plan_impossible_raises_with_numbers(client: MiniMaxVLClient) -> None:
    ims = [encode_image(Image.new("RGB", (336, 336)))] * 2
    with pytest.raises(ContextOverflowError) as ei:
        client.plan("q", ims, max_tokens=500, max_model_len=2000)
    assert ei.value.max_model_len == 2000 and ei.value.image_tokens == 2352


def test_usage_add_and_result_model() -> None:
    u = Usage(prompt_tokens=1, completion_tokens=2, requests=1) + Usage(
        prompt_tokens=3, image_tokens=5, requests=1
    )
    assert (u.prompt_tokens, u.completion_tokens, u.image_tokens, u.requests, u.total_tokens) == (
        4,
        2,
        5,
        2,
        6,
    )
    assert ChatResult(text="x").tool_calls == []


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIMAXVL_BASE_URL", "http://h:1/v1/")
    monkeypatch.setenv("MINIMAXVL_MODEL", "m")
    c = MiniMaxVLClient()
    assert c.settings.base_url == "http://h:1/v1" and c.settings.model == "m" and c.root_url == "http://h:1"
    assert MiniMaxVLClient(model="z").settings.model == "z"


def test_budget_reads_image_size_from_the_header_even_behind_large_metadata() -> None:
    import base64
    import io

    from minimaxvl_tools.images.encode import data_url_size as _data_url_size

    buf = io.BytesIO()
    # a 200 KB ICC profile puts the JPEG's size marker far past the first 48 KiB that are decoded first
    Image.new("RGB", (700, 500), "white").save(buf, "JPEG", icc_profile=bytes(200_000))
    url = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    assert len(url) > 3 * 65536
    assert _data_url_size(url) == (700, 500)
    small = encode_image(Image.new("RGB", (1344, 336)))
    assert _data_url_size(small.data_url) == (1344, 336)
    assert _data_url_size("data:image/png;base64,AAAA") is None
