"""Image loading: every input kind, every awkward format, and every bad input gives a typed, named error."""

from __future__ import annotations

import base64
import http.server
import io
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import minimaxvl_tools.images.load as load_mod
from minimaxvl_tools.errors import (
    AccessDeniedError,
    FetchError,
    ImageTooLargeError,
    InvalidInputError,
    UnsupportedImageError,
)
from minimaxvl_tools.images.load import describe, iter_images, load_image, read_bytes, sniff
from minimaxvl_tools.images.policy import InputPolicy
from minimaxvl_tools.settings import Settings


def png_bytes(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def noise(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (a cheap decompression bomb: no pixel data needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------- input kinds
def test_path_str_and_pathlike(tmp_path: Path) -> None:
    src = noise(40, 30)
    p = tmp_path / "a.png"
    p.write_bytes(png_bytes(src))
    for source in (str(p), p):
        img = load_image(source)
        assert img.mode == "RGB" and img.size == (40, 30)
        assert np.array_equal(np.asarray(img), np.asarray(src))


def test_bytes_fileobj_data_url_base64_roundtrip() -> None:
    src = noise(17, 9, seed=3)
    raw = png_bytes(src)
    b64 = base64.b64encode(raw).decode()
    for source in (raw, bytearray(raw), io.BytesIO(raw), "data:image/png;base64," + b64, b64):
        img = load_image(source)  # type: ignore[arg-type]
        assert np.array_equal(np.asarray(img), np.asarray(src)), describe(source)


def test_pil_input_is_converted_not_mutated() -> None:
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    out = load_image(rgba)
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (255, 255, 255)
    assert rgba.mode == "RGBA"


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.full((4, 5, 3), (10, 20, 30), np.uint8), (10, 20, 30)),
        (np.full((4, 5), 77, np.uint8), (77, 77, 77)),
        (np.full((4, 5, 3), 0.5, np.float32), (128, 128, 128)),
        (np.full((4, 5), 65535, np.uint16), (255, 255, 255)),
        (np.full((4, 5), 32896, np.uint16), (128, 128, 128)),
        (np.ones((4, 5), bool), (255, 255, 255)),
        (np.zeros((4, 5, 4), np.uint8), (255, 255, 255)),  # fully transparent -> white
        (np.full((3, 4, 5), 200, np.uint8), (200, 200, 200)),  # CHW
    ],
)
def test_numpy_arrays(array: np.ndarray, expected: tuple[int, int, int]) -> None:
    img = load_image(array)
    assert img.mode == "RGB"
    assert img.size == (5, 4)
    assert img.getpixel((0, 0)) == expected


def test_numpy_bad_shape_and_range() -> None:
    with pytest.raises(InvalidInputError, match="numpy array"):
        load_image(np.zeros((2, 2, 2, 2), np.uint8))
    with pytest.raises(InvalidInputError, match=r"outside 0\.\.255"):
        load_image(np.full((3, 3), 1000, np.int32))


# ---------------------------------------------------------------- formats
def test_exif_rotated_jpeg() -> None:
    img = Image.new("RGB", (200, 100), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 100, 100))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    out = load_image(buf.getvalue())
    assert out.size == (100, 200)
    r, _g, b = out.getpixel((50, 20))  # top half after rotation is the red half
    assert r > 200 and b < 60
    r, _g, b = out.getpixel((50, 180))
    assert b > 200 and r < 60


def test_cmyk_jpeg() -> None:
    buf = io.BytesIO()
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(buf, format="JPEG", quality=95)
    out = load_image(buf.getvalue())
    r, g, b = out.getpixel((16, 16))
    assert out.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_16bit_png_is_scaled_not_clipped() -> None:
    arr = np.full((20, 20), 40000, np.uint16)
    arr[:, 10:] = 1000
    raw = png_bytes(Image.fromarray(arr))
    assert Image.open(io.BytesIO(raw)).mode.startswith("I")
    out = load_image(raw)
    assert out.getpixel((2, 2)) == (156, 156, 156)  # 40000 / 257
    assert out.getpixel((15, 2)) == (4, 4, 4)  # 1000 / 257, not 1000 & 0xff


def test_palette_png_with_transparency_on_white() -> None:
    img = Image.new("P", (10, 10), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (5, 0, 10, 10))
    raw = png_bytes(img, transparency=0)
    out = load_image(raw)
    assert out.getpixel((1, 1)) == (255, 255, 255)  # transparent red -> white
    assert out.getpixel((8, 1)) == (0, 0, 255)


def test_la_and_1bit_and_gray() -> None:
    la = Image.new("LA", (4, 4), (0, 0))
    assert load_image(png_bytes(la)).getpixel((0, 0)) == (255, 255, 255)
    one = Image.new("1", (4, 4), 1)
    assert load_image(png_bytes(one)).getpixel((0, 0)) == (255, 255, 255)
    gray = Image.new("L", (4, 4), 90)
    assert load_image(png_bytes(gray)).getpixel((0, 0)) == (90, 90, 90)


def test_animated_gif_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    raw = buf.getvalue()
    assert Image.open(io.BytesIO(raw)).n_frames == 2
    out = load_image(raw)
    r, _, b = out.getpixel((8, 8))
    assert r > 200 and b < 50
    assert len(list(iter_images(raw))) == 1


def test_multipage_tiff_pages(tmp_path: Path) -> None:
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    pages = [Image.new("RGB", (12, 10 + i), c) for i, c in enumerate(colors)]
    p = tmp_path / "scan.tiff"
    pages[0].save(p, save_all=True, append_images=pages[1:])
    got = list(iter_images(p))
    assert [g.getpixel((1, 1)) for g in got] == colors
    assert [g.size for g in got] == [(12, 10), (12, 11), (12, 12)]
    assert load_image(p).getpixel((1, 1)) == colors[0]


# ---------------------------------------------------------------- bad inputs
def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(UnsupportedImageError, match=r"empty\.png.*0 bytes"):
        load_image(p)
    with pytest.raises(UnsupportedImageError, match="0 bytes"):
        load_image(b"")


def test_truncated_png(tmp_path: Path) -> None:
    raw = png_bytes(noise(200, 200))
    p = tmp_path / "cut.png"
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(UnsupportedImageError, match=r"cut\.png.*(truncated|corrupt)"):
        load_image(p)


def test_text_file_named_png(tmp_path: Path) -> None:
    p = tmp_path / "notes.png"
    p.write_text("hello, I am not an image\n")
    with pytest.raises(UnsupportedImageError, match=r"notes\.png.*not a recognised image"):
        load_image(p)


def test_pdf_given_as_image_points_to_pdf_api() -> None:
    with pytest.raises(UnsupportedImageError, match="iter_pdf_pages"):
        load_image(b"%PDF-1.4\n%...")


def test_png_with_wrong_extension_loads_by_content(tmp_path: Path) -> None:
    p = tmp_path / "photo.txt"
    p.write_bytes(png_bytes(Image.new("RGB", (3, 3), (1, 2, 3))))
    assert load_image(p).getpixel((0, 0)) == (1, 2, 3)


def test_decompression_bomb_header() -> None:
    with pytest.raises(ImageTooLargeError):
        load_image(png_header_only(100_000, 100_000))


def test_pixel_cap_from_policy(tmp_path: Path) -> None:
    raw = png_bytes(noise(100, 100))
    with pytest.raises(ImageTooLargeError, match=r"10000 pixels.*5000-pixel cap"):
        load_image(raw, policy=InputPolicy(max_pixels=5000))
    with pytest.raises(ImageTooLargeError):
        load_image(np.zeros((100, 100), np.uint8), policy=InputPolicy(max_pixels=5000))
    assert load_image(raw, policy=InputPolicy(max_pixels=10_000)).size == (100, 100)


def test_byte_cap(tmp_path: Path) -> None:
    raw = png_bytes(noise(64, 64))
    p = tmp_path / "big.png"
    p.write_bytes(raw)
    with pytest.raises(ImageTooLargeError, match="byte cap"):
        load_image(p, policy=InputPolicy(max_bytes=100))
    with pytest.raises(ImageTooLargeError):
        load_image(raw, policy=InputPolicy(max_bytes=100))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InvalidInputError, match="not a regular file"):
        load_image(tmp_path)


def test_unsupported_type() -> None:
    with pytest.raises(InvalidInputError, match="cannot load an image from int"):
        load_image(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------- paths and policy
@pytest.fixture
def jail(tmp_path: Path) -> tuple[Path, Path, InputPolicy]:
    inside = tmp_path / "inside"
    outside = tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (inside / "ok.png").write_bytes(png_bytes(Image.new("RGB", (2, 2))))
    (outside / "secret.png").write_bytes(png_bytes(Image.new("RGB", (2, 2))))
    return inside, outside, InputPolicy(allowed_roots=[inside])


def test_path_outside_roots_denied_without_reading(
    jail: tuple[Path, Path, InputPolicy], monkeypatch: pytest.MonkeyPatch
) -> None:
    inside, outside, policy = jail
    assert load_image(inside / "ok.png", policy=policy).size == (2, 2)

    def no_open(*a: object, **k: object) -> None:
        raise AssertionError("a file outside the allowed roots was opened")

    monkeypatch.setattr(load_mod, "open", no_open, raising=False)
    for bad in (outside / "secret.png", f"{inside}/../outside/secret.png", "/etc/passwd"):
        with pytest.raises(AccessDeniedError, match="outside the allowed folders"):
            load_image(bad, policy=policy)


def test_symlink_escape_denied(jail: tuple[Path, Path, InputPolicy]) -> None:
    inside, outside, policy = jail
    link = inside / "link.png"
    os.symlink(outside / "secret.png", link)
    with pytest.raises(AccessDeniedError, match="resolves to"):
        load_image(link, policy=policy)
    dir_link = inside / "sub"
    os.symlink(outside, dir_link)
    with pytest.raises(AccessDeniedError):
        load_image(dir_link / "secret.png", policy=policy)


def test_policy_from_settings(tmp_path: Path) -> None:
    s = Settings(allowed_roots=[tmp_path], allow_urls=True, url_allowlist=["example.com"])
    pol = InputPolicy.from_settings(s)
    assert pol.allowed_roots == [tmp_path] and pol.allow_urls and pol.url_allowlist == ["example.com"]
    assert InputPolicy().allow_urls is False


# ---------------------------------------------------------------- URLs
def test_urls_disabled_by_default() -> None:
    with pytest.raises(AccessDeniedError, match="URL loading is disabled"):
        load_image("https://example.com/a.png")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/1"])
def test_non_http_schemes_refused(url: str) -> None:
    with pytest.raises(AccessDeniedError, match="only http"):
        load_image(url, policy=InputPolicy(allow_urls=True))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.png",
        "http://localhost:8000/a.png",
        "http://10.1.2.3/a.png",
        "http://192.168.0.1/a.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/a.png",
        "http://0.0.0.0/a.png",
        "http://[::ffff:127.0.0.1]/a.png",
    ],
)
def test_private_hosts_refused(url: str) -> None:
    with pytest.raises(AccessDeniedError, match="non-public"):
        InputPolicy(allow_urls=True).check_url(url)


def test_allowlist() -> None:
    pol = InputPolicy(allow_urls=True, url_allowlist=["example.com"], allow_private_hosts=True)
    assert pol.check_url("https://cdn.example.com/x.png")
    with pytest.raises(AccessDeniedError, match="url_allowlist"):
        pol.check_url("https://evil.com/x.png")
    with pytest.raises(AccessDeniedError, match="url_allowlist"):
        pol.check_url("https://notexample.com/x.png")


@pytest.fixture
def http_server() -> Iterator[str]:
    body = png_bytes(Image.new("RGB", (5, 4), (9, 8, 7)))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/img.png")
                self.end_headers()
                return
            if self.path != "/img.png":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_url_fetch_when_allowed(http_server: str) -> None:
    trusted = InputPolicy(allow_urls=True, allow_private_hosts=True)
    assert load_image(http_server + "/img.png", policy=trusted).getpixel((0, 0)) == (9, 8, 7)
    assert load_image(http_server + "/redirect", policy=trusted).size == (5, 4)
    with pytest.raises(FetchError, match="HTTP 404"):
        load_image(http_server + "/missing.png", policy=trusted)
    with pytest.raises(FetchError, match="byte cap"):
        load_image(http_server + "/img.png", policy=trusted.model_copy(update={"max_bytes": 20}))
    with pytest.raises(AccessDeniedError):  # same server, default private-host guard
        load_image(http_server + "/img.png", policy=InputPolicy(allow_urls=True))


# ---------------------------------------------------------------- helpers
def test_sniff_by_content() -> None:
    assert sniff(b"%PDF-1.7\n...") == "pdf"
    assert sniff(png_bytes(Image.new("RGB", (1, 1)))) == "image"
    assert sniff(b"\xff\xd8\xff\xe0rest") == "image"
    assert sniff(b"GIF89a....") == "image"
    assert sniff(b"RIFF\0\0\0\0WEBPVP8 ") == "image"
    assert sniff(b"hello world") == "unknown"
    assert sniff(b"") == "unknown"


def test_describe_and_read_bytes(tmp_path: Path) -> None:
    assert describe(Image.new("RGB", (3, 2))) == "PIL image 3x2 RGB"
    assert "shape=(2, 3)" in describe(np.zeros((2, 3)))
    assert describe(b"abc") == "bytes input (3 bytes)"
    assert describe("data:image/png;base64,AAAA").startswith("data URL (data:image/png;base64")
    p = tmp_path / "x.png"
    raw = png_bytes(Image.new("RGB", (2, 2)))
    p.write_bytes(raw)
    assert read_bytes(p) == (raw, str(p))
    data, _name = read_bytes(Image.new("RGB", (2, 2), (4, 5, 6)))
    assert sniff(data) == "image" and Image.open(io.BytesIO(data)).getpixel((0, 0)) == (4, 5, 6)
