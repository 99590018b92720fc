"""Encoding: PIL images into ``data:`` URLs the OpenAI image_url part accepts, with byte sizes reported."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageChops

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


def is_grayscale(image: Image.Image) -> bool:
    """True when every pixel has R == G == B (exact, full resolution, ~1 ms a page): safe to send as gray."""
    if image.mode in ("L", "1", "I", "I;16", "F"):
        return True
    if image.mode != "RGB":
        return False
    r, g, b = image.split()
    return ImageChops.difference(r, g).getbbox() is None and ImageChops.difference(g, b).getbbox() is None


def encode_image(
    image: Image.Image,
    *,
    format: ImageFormat = "jpeg",
    quality: int = 90,
    gray: bool = True,
    profile: ModelProfile = DEFAULT_PROFILE,
) -> EncodedImage:
    """Encode an image as JPEG (default), PNG or WebP into a data URL; sizes are not changed here.

    With ``gray`` (default), an image whose pixels are all gray is encoded as one channel: the server
    sees the same pixels (vLLM converts to RGB on load) while encoding and server-side decoding take about
    a third of the time. Anything with colour is sent as RGB, full chroma at ``quality`` >= 90.
    """
    fmt = format.lower()
    if fmt not in _MIME:
        raise InvalidInputError(f"image format {format!r} is not supported: use 'jpeg', 'png' or 'webp'")
    if not 1 <= quality <= 100:
        raise InvalidInputError(f"jpeg/webp quality must be 1..100, got {quality}")
    if gray and is_grayscale(image):
        img = image if image.mode == "L" else image.convert("L")
    else:
        img = image if image.mode == "RGB" else image.convert("RGB")
    buf = io.BytesIO()
    if fmt == "jpeg":
        chroma = {} if img.mode == "L" else {"subsampling": 0 if quality >= 90 else 2}
        img.save(buf, format="JPEG", quality=quality, optimize=False, **chroma)
    elif fmt == "webp":
        img.save(buf, format="WEBP", quality=quality, method=0)
    else:
        img.save(buf, format="PNG", compress_level=1)
    raw = buf.getvalue()
    url = f"data:{_MIME[fmt]};base64," + base64.b64encode(raw).decode("ascii")
    w, h = img.size
    return EncodedImage(url, w, h, _MIME[fmt], len(raw), profile.image_tokens(w, h))


def decode_data_url(url: str) -> Image.Image:
    """The image inside a base64 ``data:`` URL, fully loaded."""
    _, _, data = url.partition(",")
    img = Image.open(io.BytesIO(base64.b64decode(data)))
    img.load()
    return img


def data_url_size(url: str) -> tuple[int, int] | None:
    """Pixel size of a base64 data URL from its header: decodes the first 48 KiB, the whole only if needed."""
    _, _, data = url.partition(",")
    head = data[:65536]  # a multiple of 4 base64 chars = 48 KiB of image, where headers live
    for chunk in (head, data) if len(data) > len(head) else (data,):
        try:
            return Image.open(io.BytesIO(base64.b64decode(chunk))).size
        except Exception:
            continue
    return None


def shrink_encoded(
    image: EncodedImage, target: int, *, quality: int = 90, profile: ModelProfile = DEFAULT_PROFILE
) -> EncodedImage | None:
    """Re-encode ``image`` at the largest aspect-preserving size whose exact cost is <= ``target`` tokens.

    Sizes are tried with the long side on the profile's canvas edges (where the cost steps); None when even
    the smallest edge costs more than ``target``.
    """
    w, h = image.width, image.height
    long_side = max(w, h)
    for edge in sorted({e for e in profile.canvas_edges if e < long_side}, reverse=True):
        s = edge / long_side
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        if profile.image_tokens(nw, nh) <= target:
            img = decode_data_url(image.data_url).convert("RGB").resize((nw, nh), Image.Resampling.BICUBIC)
            fmt: ImageFormat = "png" if image.mime == "image/png" else "jpeg"
            return encode_image(img, format=fmt, quality=quality, profile=profile)
    return None


__all__ = [
    "EncodedImage",
    "ImageFormat",
    "data_url_size",
    "decode_data_url",
    "encode_image",
    "is_grayscale",
    "shrink_encoded",
]
