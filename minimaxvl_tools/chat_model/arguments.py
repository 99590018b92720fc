"""Constructor arguments of ChatMiniMaxVL: the names langchain-openai's ChatOpenAI uses, mapped or refused."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ..errors import InvalidInputError

# Names langchain-openai's ChatOpenAI declares (field name or alias) that mean the same thing here.
_OPENAI_ALIASES: dict[str, str] = {
    "model_name": "model",
    "openai_api_key": "api_key",
    "openai_api_base": "base_url",
    "request_timeout": "timeout",
    "max_completion_tokens": "max_tokens",
    "stop_sequences": "stop",
}
# ChatOpenAI sampling fields vLLM reads as request-body fields: sent through ``extra_body``.
_BODY_FIELDS = ("top_p", "seed", "presence_penalty", "frequency_penalty", "logit_bias")
# Other ChatOpenAI options, refused with a reason rather than silently ignored.
_UNSUPPORTED: dict[str, str] = {
    "n": "one completion per call is supported (n=1)",
    "openai_organization": "vLLM has no organizations",
    "organization": "vLLM has no organizations",
    "openai_proxy": "give a proxy through the HTTPS_PROXY environment variable",
    "default_headers": "custom headers are not supported",
    "default_query": "custom query parameters are not supported",
    "http_client": "pass a MiniMaxVLClient as client= instead",
    "http_async_client": "pass a MiniMaxVLClient as client= instead",
    "logprobs": "log-probabilities are not returned",
    "top_logprobs": "log-probabilities are not returned",
    "reasoning_effort": "MiniMax-VL-01 is not a reasoning model",
    "reasoning": "MiniMax-VL-01 is not a reasoning model",
    "use_responses_api": "vLLM serves the chat completions API only",
    "tiktoken_model_name": "token counts come from the MiniMax-VL-01 tokenizer profile",
}


def normalize_init_args(cls: type[BaseModel], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments with ChatOpenAI aliases mapped; unknown or unsupported names refused.

    ``model_name=``, ``openai_api_key=``, ``openai_api_base=``, ``request_timeout=``,
    ``max_completion_tokens=`` and ``stop_sequences=`` mean ``model``, ``api_key``, ``base_url``,
    ``timeout``, ``max_tokens`` and ``stop``; ``top_p``, ``seed``, ``presence_penalty``,
    ``frequency_penalty``, ``logit_bias`` and ``model_kwargs`` go into ``extra_body``.
    """
    out: dict[str, Any] = {}
    body: dict[str, Any] = {}
    known = set(cls.model_fields)
    for key, value in kwargs.items():
        target = _OPENAI_ALIASES.get(key, key)
        if target in out:
            raise InvalidInputError(
                f"ChatMiniMaxVL got {target!r} twice (as {key!r} and as {target!r}): give it once"
            )
        if key in _BODY_FIELDS:
            if value is not None:
                body[key] = value
        elif key == "model_kwargs":
            if not isinstance(value, Mapping):
                raise InvalidInputError("model_kwargs must be a dict of request-body fields")
            body.update(value)
        elif key == "n" and value in (None, 1):
            continue
        elif key in _UNSUPPORTED and target not in known:
            raise InvalidInputError(f"ChatMiniMaxVL does not support {key}=: {_UNSUPPORTED[key]}")
        elif target not in known:
            close = difflib.get_close_matches(key, sorted(known | set(_OPENAI_ALIASES)), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InvalidInputError(
                f"ChatMiniMaxVL got an unknown argument {key!r}{hint} (vLLM request fields go in "
                "extra_body={...})"
            )
        else:
            out[target] = value
    if body:
        merged = dict(body)
        merged.update(out.get("extra_body") or {})
        out["extra_body"] = merged
    return out


__all__ = ["normalize_init_args"]
