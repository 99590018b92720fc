"""Value types of the client: usage accounting, answers, health, and what budgeting decided."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, field_validator

from ..errors import redact_url

ImageInput = Any  # ImageSource (path, URL, bytes, file, PIL image, ndarray) | EncodedImage


def estimate_text_tokens(text: str) -> int:
    """Conservative token estimate without a tokenizer: ceil(utf-8 bytes / 3) (real BPE averages ~4)."""
    return math.ceil(len(text.encode("utf-8")) / 3)


class Usage(BaseModel):
    """Token and request accounting for one call or accumulated over a client's life."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    image_tokens: int = 0
    requests: int = 0
    latency_s: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        """Field-by-field sum (every field is a count or a duration)."""
        return Usage(**{name: getattr(self, name) + getattr(other, name) for name in Usage.model_fields})

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class ChatResult(BaseModel):
    """One answer: text, finish reason, usage, served model, parsed structured output and tool calls."""

    text: str
    finish_reason: str | None = None
    usage: Usage = Usage()
    model: str = ""
    parsed: Any = None
    tool_calls: list[Any] = []
    max_tokens: int | None = None
    downscaled: bool = False


class HealthStatus(BaseModel):
    """Endpoint health: reachable, models served, whether ours is one, its context length, error text."""

    ok: bool
    base_url: str
    models: list[str] = []
    model_served: bool = False
    max_model_len: int | None = None
    error: str | None = None
    endpoints: list[HealthStatus] = []

    @field_validator("base_url", "error")
    @classmethod
    def _redact(cls, v: str | None) -> str | None:
        return redact_url(v) if v else v  # a base URL's user:password never reaches output


@dataclass(frozen=True)
class RequestPlan:
    """What budgeting decided: final messages, max_tokens, token counts, whether images shrank."""

    messages: list[dict[str, Any]]
    max_tokens: int
    image_tokens: int
    text_tokens: int
    images: int
    max_model_len: int
    downscaled: bool


__all__ = ["ChatResult", "HealthStatus", "ImageInput", "RequestPlan", "Usage", "estimate_text_tokens"]
