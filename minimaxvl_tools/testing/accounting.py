"""The test double's prompt accounting: text tokens, vLLM's checks on image URLs, exact image tokens.

``image_check="decode"`` decodes every image fully, so corrupt or truncated data is refused with vLLM's
400 as on the real server; ``"header"`` base64-decodes only the start of each data URL and reads the size
from the image header (enough for the token count), for throughput benchmarks that must measure the
client rather than the double's own decoding (~1 ms instead of ~10 ms per letter page, and far less time
holding the GIL). A header that does not parse falls back to the full decode and its exact error.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any
from urllib.parse import urlsplit

from ..profile import ModelProfile
from .replies import HTTPError, estimate_tokens

IMAGE_CHECKS = ("decode", "header")
MESSAGE_OVERHEAD = 4  # tokens per message for the role header and end-of-sentence marker
GENERATION_PROMPT = 3  # "<beginning_of_sentence>ai name=assistant\n"
HEADER_CHARS = 65536  # base64 characters decoded for a header read (48 KiB of image; a multiple of 4)


def image_urls(messages: Any) -> tuple[int, list[str]]:
    """(text tokens, image URLs in order) of chat messages; raises HTTPError for malformed ones."""
    if not isinstance(messages, list) or not messages:
        raise HTTPError(400, "'messages' must be a non-empty list")
    urls: list[str] = []
    text_tokens = GENERATION_PROMPT
    for msg in messages:
        if not isinstance(msg, dict) or "role" not in msg:
            raise HTTPError(400, "each message must be an object with a 'role'")
        text_tokens += MESSAGE_OVERHEAD + estimate_tokens(str(msg["role"]))
        content = msg.get("content")
        if isinstance(content, str):
            text_tokens += estimate_tokens(content)
        elif isinstance(content, list):
            for part in content:
                ptype = part.get("type") if isinstance(part, dict) else None
                if ptype == "text":
                    text_tokens += estimate_tokens(str(part.get("text", "")))
                elif ptype == "image_url":
                    url = part.get("image_url")
                    url = url.get("url") if isinstance(url, dict) else url
                    urls.append(str(url))
                else:
                    raise HTTPError(400, f"Unknown part type: {ptype}")
        elif content is not None:
            raise HTTPError(400, "message content must be a string or a list of parts")
    return text_tokens, urls


def count_prompt(
    messages: Any, *, max_images: int, profile: ModelProfile, image_check: str = "decode"
) -> tuple[int, int, int]:
    """(prompt tokens, image tokens, images) of chat messages; raises HTTPError like vLLM would."""
    text_tokens, urls = image_urls(messages)
    if len(urls) > max_images:
        raise HTTPError(
            400,
            f"At most {max_images} image(s) may be provided in one prompt. (parameter=image)",
            param="image",
        )
    image_tokens = 0
    for url in urls:
        w, h = image_size(url, image_check)
        image_tokens += profile.image_tokens(w, h)
    return text_tokens + image_tokens, image_tokens, len(urls)


def image_size(url: str, image_check: str = "decode") -> tuple[int, int]:
    """(width, height) of the image at a data URL, or vLLM's HTTPError for a URL it would refuse."""
    if url.startswith("file:"):
        raise HTTPError(500, "Cannot load local files without `--allowed-local-media-path`.")
    if url.startswith(("http://", "https://")):
        # an offline vLLM cannot fetch: vLLM 0.23.0 answers 500 with aiohttp's connect error
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        raise HTTPError(
            500,
            f"Cannot connect to host {host}:{port} ssl:default [Connect call failed ('{host}', {port})]",
        )
    if not url.startswith("data:"):
        raise HTTPError(400, f"Invalid image URL: {url[:60]!r}: expected a data:, http(s): or file: URL")
    header, _, data = url.partition(",")
    if ";base64" not in header:
        raise HTTPError(400, "Only base64-encoded data URLs are supported")
    if image_check == "header" and len(data) > HEADER_CHARS:
        size = _open(_b64decode(data[:HEADER_CHARS]), load=False)
        if size is not None:
            return size
    size = _open(_b64decode(data), load=True)
    assert size is not None
    return size


def _b64decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise HTTPError(400, f"Non-base64 digit found: {e}") from e


def _open(raw: bytes, *, load: bool) -> tuple[int, int] | None:
    """The image's size; with ``load`` its pixels are decoded and a failure is vLLM's error, without it
    only the header is read and a failure is None (the caller decodes fully)."""
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(raw))
        if load:
            img.load()
    except Image.DecompressionBombError as e:
        raise HTTPError(500, str(e)) from e
    except Exception as e:
        if not load:
            return None
        raise HTTPError(400, f"Failed to load image: {e}") from e
    return img.size


__all__ = [
    "GENERATION_PROMPT",
    "IMAGE_CHECKS",
    "MESSAGE_OVERHEAD",
    "count_prompt",
    "image_size",
    "image_urls",
]
