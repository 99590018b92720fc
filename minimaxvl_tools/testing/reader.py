"""Reader mode of the test double: images as MiniMax-VL-01's server resizes them, read by Tesseract.

A LEGIBILITY PROXY for what the pixels let a reader see, not a model (it follows no prompt, reads no
charts, answers no questions).
"""

from __future__ import annotations

import base64
import io
from typing import Any

from ..profile import MINIMAX_VL_01, ModelProfile

READERS = ("tesseract",)


def reader_engine(reader: str | None, lang: str = "eng") -> Any:
    """The OCR engine behind ``reader`` (None for no reader); fails now when the name or binary is wrong."""
    if reader is None:
        return None
    if reader not in READERS:
        from ..errors import InvalidInputError

        raise InvalidInputError(f"reader={reader!r} is unknown: use None or one of {', '.join(READERS)}")
    from ..local_ocr import LocalOCREngine

    engine = LocalOCREngine(lang=lang, psm=3)
    engine._require_binary()  # TesseractNotFoundError now, not on the first request
    return engine


def canvas_view(image: Any, profile: ModelProfile = MINIMAX_VL_01) -> Any:
    """``image`` as MiniMax-VL-01's server resizes it before its vision tower: aspect-preserving bicubic
    into the best canvas (scale = min(cw/W, ch/H), size (int(W*scale), int(H*scale)), LLaVA-NeXT's rule),
    without the black padding (padding adds no text). Small images are upscaled, like on the server."""
    from PIL import Image

    w, h = image.size
    cw, ch = profile.best_canvas(w, h)
    scale = min(cw / w, ch / h)
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return image if size == (w, h) else image.resize(size, Image.Resampling.BICUBIC)


def request_images(messages: Any) -> list[Any]:
    """Decoded images (data URLs) of a chat request, in order; the prompt was validated before."""
    from PIL import Image

    out = []
    for msg in messages if isinstance(messages, list) else []:
        content = msg.get("content") if isinstance(msg, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                data = str(url).partition(",")[2]
                img = Image.open(io.BytesIO(base64.b64decode(data)))
                img.load()
                out.append(img.convert("L") if img.mode not in ("L", "RGB") else img)
    return out


__all__ = ["READERS", "canvas_view", "reader_engine", "request_images"]
