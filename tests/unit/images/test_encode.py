"""Encoding: data URLs round-trip, sizes and token counts are reported exactly."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.images.encode import encode_image
from minimaxvl_tools.images.load import load_image
from minimaxvl_tools.profile import image_tokens


def test_png_roundtrip_is_lossless() -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    enc = encode_image(img, format="png")
    assert enc.mime == "image/png" and enc.data_url.startswith("data:image/png;base64,")
    raw = base64.b64decode(enc.data_url.split(",", 1)[1])
    assert len(raw) == enc.nbytes
    assert np.array_equal(np.asarray(load_image(enc.data_url)), np.asarray(img))
    assert (enc.width, enc.height, enc.tokens) == (40, 30, image_tokens(40, 30))


def test_jpeg_default_and_part() -> None:
    img = Image.new("RGBA", (673, 673), (10, 200, 30, 255))
    enc = encode_image(img)
    assert enc.mime == "image/jpeg" and enc.tokens == 5832
    decoded = Image.open(io.BytesIO(base64.b64decode(enc.data_url.split(",", 1)[1])))
    assert decoded.format == "JPEG" and decoded.size == (673, 673)
    assert enc.to_part() == {"type": "image_url", "image_url": {"url": enc.data_url}}


def test_webp_and_quality_affects_size() -> None:
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert encode_image(img, format="webp").mime == "image/webp"
    assert encode_image(img, quality=30).nbytes < encode_image(img, quality=95).nbytes


def test_bad_format_and_quality() -> None:
    img = Image.new("RGB", (4, 4))
    with pytest.raises(InvalidInputError, match="gif"):
        encode_image(img, format="gif")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="quality"):
        encode_image(img, quality=0)


def _decoded(enc: object) -> Image.Image:
    url = enc.data_url  # type: ignore[attr-defined]
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_gray_page_is_sent_as_one_channel_with_the_same_pixels() -> None:
    rng = np.random.default_rng(2)
    gray = rng.integers(0, 256, (60, 80), dtype=np.uint8)
    rgb = Image.fromarray(np.stack([gray] * 3, axis=-1), "RGB")  # how pdfium renders a black-and-white page
    enc = encode_image(rgb, format="png")
    out = _decoded(enc)
    assert out.mode == "L"
    assert np.array_equal(np.asarray(out.convert("RGB")), np.asarray(rgb))  # what vLLM sees after convert
    assert enc.nbytes < encode_image(rgb, format="png", gray=False).nbytes
    assert _decoded(encode_image(rgb, format="png", gray=False)).mode == "RGB"


def test_one_coloured_pixel_keeps_rgb() -> None:
    arr = np.full((50, 50, 3), 255, dtype=np.uint8)
    arr[10, 10] = (255, 0, 0)  # a red tick on a white page must not be lost
    enc = encode_image(Image.fromarray(arr, "RGB"), format="png")
    out = _decoded(enc)
    assert out.mode == "RGB" and out.getpixel((10, 10)) == (255, 0, 0)


def test_gray_modes_jpeg() -> None:
    from minimaxvl_tools.images.encode import is_grayscale

    assert is_grayscale(Image.new("L", (5, 5))) and is_grayscale(Image.new("1", (5, 5)))
    assert not is_grayscale(Image.new("RGBA", (5, 5)))
    enc = encode_image(Image.new("L", (400, 300), 128))
    assert _decoded(enc).mode == "L" and enc.tokens == image_tokens(400, 300)
