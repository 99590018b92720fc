"""Any image input -> an :class:`EncodedImage` on its best canvas, optionally under a token cap."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PIL import Image

from ..errors import ContextOverflowError
from ..profile import DEFAULT_PROFILE, ModelProfile
from .encode import EncodedImage, encode_image, shrink_encoded
from .load import load_image
from .sizing import fit_image


def prepare_images(
    images: Iterable[Any],
    *,
    policy: Any = None,
    profile: ModelProfile = DEFAULT_PROFILE,
    quality: int = 90,
    max_tokens_per_image: int | None = None,
) -> list[EncodedImage]:
    """Load (under ``policy``), fit to the canvases and encode each image, keeping order.

    Already encoded images pass through, shrunk when over ``max_tokens_per_image``; an encoded image that
    cannot get under the cap raises :class:`ContextOverflowError`.
    """
    out: list[EncodedImage] = []
    for item in images:
        if isinstance(item, EncodedImage):
            if max_tokens_per_image is not None and item.tokens > max_tokens_per_image:
                shrunk = shrink_encoded(item, max_tokens_per_image, quality=quality, profile=profile)
                if shrunk is None:
                    raise ContextOverflowError(
                        f"an image of {item.width}x{item.height} costs {item.tokens} tokens and cannot "
                        f"be shrunk under {max_tokens_per_image}: raise max_tokens_per_image",
                        image_tokens=item.tokens,
                    )
                item = shrunk
            out.append(item)
            continue
        img = item if isinstance(item, Image.Image) else load_image(item, policy=policy)
        img = img if img.mode == "RGB" else img.convert("RGB")
        img, _ = fit_image(img, max_tokens=max_tokens_per_image, profile=profile)
        enc = encode_image(img, quality=quality, profile=profile)
        if max_tokens_per_image is not None and enc.tokens > max_tokens_per_image:
            enc = shrink_encoded(enc, max_tokens_per_image, quality=quality, profile=profile) or enc
        out.append(enc)
    return out


__all__ = ["prepare_images"]
