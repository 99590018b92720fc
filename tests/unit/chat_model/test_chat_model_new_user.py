"""ChatMiniMaxVL takes the argument names langchain-openai users type and refuses the rest (issue 20.11)."""

from __future__ import annotations

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from pydantic import SecretStr

from minimaxvl_tools.chat_model import ChatMiniMaxVL
from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.testing.server import LocalVLLMServer


def test_chat_openai_aliases_set_the_real_fields() -> None:
    llm = ChatMiniMaxVL(
        model_name="served",
        openai_api_base="http://h:1/v1",
        openai_api_key="sk-alias",
        max_completion_tokens=77,
        request_timeout=5,
        stop_sequences=["END"],
        streaming=True,
    )
    assert llm.model == "served" and llm.model_name == "served"
    assert llm.base_url == "http://h:1/v1"
    assert isinstance(llm.api_key, SecretStr) and llm.api_key.get_secret_value() == "sk-alias"
    assert "sk-alias" not in repr(llm)
    assert llm.max_tokens == 77 and llm.timeout == 5 and llm.stop == ["END"]
    assert llm.streaming is True
    assert llm.get_client().settings.base_url == "http://h:1/v1"


def test_sampling_fields_and_model_kwargs_go_to_the_request_body() -> None:
    llm = ChatMiniMaxVL(
        base_url="http://h:1/v1",
        top_p=0.5,
        seed=3,
        model_kwargs={"repetition_penalty": 1.1},
        extra_body={"top_k": 5},
    )
    assert llm.extra_body == {"top_p": 0.5, "seed": 3, "repetition_penalty": 1.1, "top_k": 5}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"foo": 1}, ["'foo'", "unknown"]),
        ({"max_token": 5}, ["'max_token'", "max_tokens"]),
        ({"model": "a", "model_name": "b"}, ["twice", "model"]),
        ({"n": 3}, ["n=", "n=1"]),
        ({"organization": "org"}, ["organization"]),
    ],
)
def test_unknown_or_unsupported_arguments_are_refused(kwargs: dict[str, object], words: list[str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        ChatMiniMaxVL(base_url="http://h:1/v1", **kwargs)
    for word in words:
        assert word in str(info.value)


def test_model_validate_refuses_unknown_fields_too() -> None:
    with pytest.raises(ValueError, match="foo"):
        ChatMiniMaxVL.model_validate({"base_url": "http://h:1/v1", "foo": 1})


def test_endpoint_model_and_key_are_read_from_the_environment_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MINIMAXVL_BASE_URL", "http://env-host:8000/v1")
    monkeypatch.setenv("MINIMAXVL_MODEL", "env-model")
    monkeypatch.setenv("MINIMAXVL_API_KEY", "env-key")
    llm = ChatMiniMaxVL()
    monkeypatch.setenv("MINIMAXVL_BASE_URL", "http://later:1/v1")  # read once, at construction
    assert llm.base_url == "http://env-host:8000/v1"
    assert llm.model == "env-model"
    assert llm.api_key is not None and llm.api_key.get_secret_value() == "env-key"
    assert llm.get_client().settings.base_url == "http://env-host:8000/v1"
    explicit = ChatMiniMaxVL(base_url="http://x:1/v1", model="m")
    assert (explicit.base_url, explicit.model) == ("http://x:1/v1", "m")


def test_streaming_true_makes_invoke_stream_tokens_to_callbacks() -> None:
    class Tokens(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        def on_llm_new_token(self, token: str, **kwargs: object) -> None:
            self.tokens.append(token)

    with LocalVLLMServer() as server:
        server.queue("several words of an answer")
        handler = Tokens()
        llm = ChatMiniMaxVL(base_url=server.base_url, model=server.model, streaming=True)
        msg = llm.invoke([HumanMessage("hi")], config={"callbacks": [handler]})
        assert msg.content == "several words of an answer"
        assert server.requests[-1].get("stream") is True
        assert len([t for t in handler.tokens if t]) > 1
