"""Encoding: PIL images into ``data:`` URLs the OpenAI image_url part accepts, with byte sizes reported."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from ..errors import InvalidInputError
from ..profile import DEFAULT_PROFILE, ModelProfile

ImageFormat = Literal["jpeg", "png", "webp"]
_MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@dataclass(frozen=True)
class EncodedImage:
    """One image ready to send: its data URL, pixel size, byte size and exact token cost."""

    data_url: str
    width: int
    height: int
    mime: str
    nbytes: int
    tokens: int

    def to_part(self) -> dict[str, object]:
        """The OpenAI chat content part for this image."""
        return {"type": "image_url", "image_url": {"url": self.data_url}}


def encode_image(
    image: Image.Image,
    *,
    format: ImageFormat = "jpeg",
    quality: int = 90,
    profile: ModelProfile = DEFAULT_PROFILE,
) -> EncodedImage:
    """Encode an RGB image as JPEG (default), PNG or WebP into a data URL; sizes are not changed here."""
    fmt = format.lower()
    if fmt not in _MIME:
        raise InvalidInputError(f"image format {format!r} is not supported: use 'jpeg', 'png' or 'webp'")
    if not 1 <= quality <= 100:
        raise InvalidInputError(f"jpeg/webp quality must be 1..100, got {quality}")
    img = image if image.mode == "RGB" else image.convert("RGB")
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, format="JPEG", quality=quality, optimize=False, subsampling=0 if quality >= 90 else 2)
    elif fmt == "webp":
        img.save(buf, format="WEBP", quality=quality, method=0)
    else:
        img.save(buf, format="PNG", compress_level=1)
    raw = buf.getvalue()
    url = f"data:{_MIME[fmt]};base64," + base64.b64encode(raw).decode("ascii")
    w, h = img.size
    return EncodedImage(url, w, h, _MIME[fmt], len(raw), profile.image_tokens(w, h))


__all__ = ["EncodedImage", "ImageFormat", "encode_image"]
