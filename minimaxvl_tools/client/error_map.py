"""vLLM's failures as the package's typed errors, by status AND message, and which of them to retry."""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import time
from typing import Any

import openai

from ..errors import (
    BadRequestError,
    ContextOverflowError,
    MediaError,
    MiniMaxVLError,
    ModelMismatchError,
    RateLimitError,
    ServerError,
    ServerUnavailableError,
    TooManyImagesError,
)

_MEDIA_PATTERNS = (
    "failed to load image",
    "non-base64",
    "image file is truncated",
    "cannot identify image",
    "cannot load local files",
    "allowed-local-media-path",
    "decompression bomb",
    "decompressionbomb",
    "failed to fetch",
    "image url",
    "could not load image",
    "cannot connect to host",  # vLLM 0.23.0: 500 for an image URL it cannot fetch
    "connect call failed",
)


def root_of(base_url: str) -> str:
    """Server root of an OpenAI base URL (without a trailing ``/v1``), where vLLM serves /health."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def error_message(exc: openai.APIStatusError) -> str:
    """The server's own message of an HTTP error (vLLM puts it in ``error.message``)."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
        if body.get("message"):
            return str(body["message"])
    try:
        return exc.response.text or str(exc)
    except Exception:  # pragma: no cover - response already closed
        return str(exc)


def is_media_message(msg: str) -> bool:
    """Whether a server message says an image could not be loaded (the request's fault, not the server's)."""
    low = msg.lower()
    return any(p in low for p in _MEDIA_PATTERNS)


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked to wait (``retry-after-ms`` or ``retry-after``, seconds or HTTP date)."""
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value:
        with contextlib.suppress(ValueError):
            return float(value) / 1000.0
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def is_retryable(exc: BaseException) -> bool:
    """429, 408, 5xx (not about media), connection errors and malformed bodies are worth another try."""
    if isinstance(exc, openai.APIStatusError):
        if is_media_message(error_message(exc)):
            return False
        return exc.status_code in (408, 429) or exc.status_code >= 500
    if isinstance(exc, openai.APIConnectionError):
        return True
    return isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError))


def is_endpoint_fault(exc: BaseException) -> bool:
    """Whether ``exc`` says the endpoint itself is broken (connection error, 5xx not about media)."""
    if isinstance(exc, openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 and not is_media_message(error_message(exc))
    return False


def map_error(exc: BaseException, where: str, attempts: int = 1) -> MiniMaxVLError:
    """The typed error for a failure at endpoint ``where`` after ``attempts`` attempts."""
    root = root_of(where)
    if isinstance(exc, MiniMaxVLError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        msg = error_message(exc)
        kw: dict[str, Any] = {"status_code": status, "body": exc.body}
        if is_media_message(msg):
            return MediaError(
                f"the server could not load an image of the request ({status}: {msg}): "
                "send images as base64 (prepare_images) and check the file",
                **kw,
            )
        low = msg.lower()
        if "maximum context length" in low:
            m = re.search(r"maximum context length (?:is )?\(?(\d+)", msg)
            return ContextOverflowError(
                f"server refused: {msg} Send fewer/smaller images or shorter text, or lower max_tokens",
                max_model_len=int(m.group(1)) if m else 0,
            )
        if "at most" in low and "image" in low:
            nums = [int(n) for n in re.findall(r"\d+", msg)]
            return TooManyImagesError(
                f"server refused: {msg} Set max_images_per_request to {nums[0] if nums else 'its limit'}",
            )
        if status == 404 and "model" in low:
            return ModelMismatchError(
                f"{where}: {msg} Set model (MINIMAXVL_MODEL) to a served id (see health().models)", **kw
            )
        if status == 429:
            return RateLimitError(
                f"{where} still rate-limited after {attempts} attempts: {msg}; "
                "lower max_concurrency or retry later",
                **kw,
            )
        if status >= 500:
            return ServerUnavailableError(
                f"{where} failed with {status} after {attempts} attempts: {msg}; check the vLLM logs",
                **kw,
            )
        return BadRequestError(f"{where} rejected the request ({status}): {msg}", **kw)
    if isinstance(exc, openai.APIConnectionError):
        kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "could not be reached"
        return ServerUnavailableError(
            f"{where} {kind} after {attempts} attempts ({exc}): check that vLLM is running "
            f"({root}/health) or raise timeout/max_retries"
        )
    if isinstance(exc, (ValueError, openai.APIResponseValidationError)):
        return ServerUnavailableError(
            f"{where} returned a malformed response after {attempts} attempts ({exc!r:.200}): "
            "is this an OpenAI-compatible vLLM endpoint?"
        )
    return ServerError(f"{where}: unexpected error {exc!r:.300}")


__all__ = [
    "error_message",
    "is_endpoint_fault",
    "is_media_message",
    "is_retryable",
    "map_error",
    "retry_after",
    "root_of",
]
