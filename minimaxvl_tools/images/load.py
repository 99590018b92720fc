"""Loading images from any input a caller or an agent may hand over, into plain RGB PIL images.

Accepts paths, bytes, file objects, PIL images, numpy arrays, base64 strings, data URLs and (when the policy
allows) http(s) URLs. The type is detected from content, never from the file extension. EXIF orientation is
applied; transparency is composited on white; CMYK, 16-bit, 1-bit, palette and grayscale become RGB; animated
images give their first frame; multi-page TIFFs give every page through :func:`iter_images`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
import re
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Union
from urllib.parse import unquote_to_bytes

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import (
    AccessDeniedError,
    FetchError,
    ImageTooLargeError,
    InvalidInputError,
    UnsupportedImageError,
    redact_url,
)
from .policy import InputPolicy, PinnedURL

if TYPE_CHECKING:
    import httpx

ImageSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO, Image.Image, np.ndarray]  # noqa: UP007

_DEFAULT_POLICY = InputPolicy()
_B64_RE = re.compile(r"^[A-Za-z0-9+/_\-\s]+={0,2}\s*$")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_MAGIC: tuple[tuple[bytes, int], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0),
    (b"\xff\xd8\xff", 0),
    (b"GIF87a", 0),
    (b"GIF89a", 0),
    (b"BM", 0),
    (b"II*\x00", 0),
    (b"MM\x00*", 0),
    (b"II+\x00", 0),
    (b"MM\x00+", 0),
    (b"\x00\x00\x01\x00", 0),  # ICO
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0),  # JPEG 2000
    (b"\xff\x4f\xff\x51", 0),  # JPEG 2000 codestream
    (b"8BPS", 0),  # PSD
    (b"qoif", 0),
)


# ---------------------------------------------------------------- naming and sniffing
def describe(source: Any) -> str:
    """A short, human-readable name of ``source`` for error messages (path, URL, or kind and size)."""
    if isinstance(source, os.PathLike):
        return os.fspath(source)  # type: ignore[return-value]
    if isinstance(source, str):
        if source.startswith("data:"):
            return f"data URL ({source[:30].split(',', 1)[0]}, {len(source)} chars)"
        if _SCHEME_RE.match(source):  # userinfo (user:password@) is never shown
            shown = redact_url(source)
            return shown if len(shown) <= 120 else shown[:117] + "..."
        if len(source) > 200 and _B64_RE.match(source[:4096]):
            return f"base64 string ({len(source)} chars)"
        return source if len(source) <= 200 else source[:197] + "..."
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"bytes input ({len(source)} bytes)"
    if isinstance(source, Image.Image):
        return f"PIL image {source.width}x{source.height} {source.mode}"
    if isinstance(source, np.ndarray):
        return f"numpy array shape={tuple(source.shape)} dtype={source.dtype}"
    name = getattr(source, "name", None)
    if isinstance(name, str) and name:
        return name
    return f"<{type(source).__name__} object>"


def sniff(data: bytes) -> Literal["pdf", "image", "unknown"]:
    """Kind of ``data`` judged by its leading bytes (magic numbers), never by a file name."""
    head = bytes(data[:1024])
    if head.startswith(b"%PDF-") or (b"%PDF-" in head and head.lstrip().startswith(b"%PDF-")):
        return "pdf"
    if any(head[off : off + len(m)] == m for m, off in _MAGIC):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[4:12] in (b"ftypavif", b"ftypheic", b"ftypmif1", b"ftypheix"):
        return "image"
    if len(head) >= 2 and head[0:1] == b"P" and head[1:2] in b"1234567" and head[2:3] in (b"\n", b" ", b"\r"):
        return "image"  # PNM family
    if b"%PDF-" in head:
        return "pdf"  # PDF with leading junk, which readers accept
    return "unknown"


# ---------------------------------------------------------------- raw bytes
def _read_path(path: str | os.PathLike[str], policy: InputPolicy) -> tuple[bytes, str]:
    name = os.fspath(path)
    resolved = policy.check_path(path)
    if not resolved.exists():
        raise InvalidInputError(f"file {name!r} does not exist: check the path (relative paths use the cwd)")
    if not resolved.is_file():
        raise InvalidInputError(f"{name!r} is not a regular file: pass the path of an image or PDF file")
    size = resolved.stat().st_size
    if size == 0:
        raise UnsupportedImageError(
            f"file {name!r} is empty (0 bytes): the upload or download failed; re-create or re-download it"
        )
    if size > policy.max_bytes:
        raise ImageTooLargeError(
            f"file {name!r} is {size} bytes, over the {policy.max_bytes}-byte cap: "
            "shrink or re-compress it, or raise InputPolicy.max_bytes"
        )
    with open(resolved, "rb") as fh:
        return fh.read(policy.max_bytes + 1), name


def _decode_data_url(url: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise InvalidInputError(f"{describe(url)} has no ',' before its data: pass a valid data URL")
    if header.endswith(";base64"):
        try:
            return base64.b64decode(re.sub(r"\s+", "", payload), validate=False)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInputError(f"{describe(url)} has invalid base64 data: {exc}") from exc
    return unquote_to_bytes(payload)


def _try_base64(text: str) -> bytes | None:
    """Bytes of ``text`` if it is base64 of a PDF or an image; None when it is not (then it is a path)."""
    stripped = re.sub(r"\s+", "", text)
    if len(stripped) < 16 or not _B64_RE.match(stripped):
        return None
    try:
        padded = stripped + "=" * (-len(stripped) % 4)
        if "-" in stripped or "_" in stripped:
            data = base64.urlsafe_b64decode(padded)
        else:
            data = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if sniff(data) != "unknown" else None


def _pinned_request(pinned: PinnedURL) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """URL, headers and extensions that reach ``pinned.ip`` yet name the real host (DNS-rebinding guard)."""
    import httpx

    original = httpx.URL(pinned.url)
    if pinned.ip is None:
        return original, {}, {}
    target = original.copy_with(host=pinned.ip, port=pinned.port)  # copy_with brackets IPv6 addresses
    headers = {"Host": original.netloc.decode("ascii")}  # the real name, with :port when not the default
    # httpcore passes sni_hostname to ssl's server_hostname: SNI and certificate hostname checks use the name.
    extensions: dict[str, Any] = {}
    if pinned.scheme == "https":
        extensions["sni_hostname"] = original.raw_host.decode("ascii")
    return target, headers, extensions


def _fetch(url: str, policy: InputPolicy) -> bytes:
    """GET ``url`` under the policy: every redirect hop re-checked and sent to its checked IP; byte cap."""
    import httpx

    current = url
    for _ in range(6):
        pinned = policy.resolve_url(current)
        target, headers, extensions = _pinned_request(pinned)
        try:
            with (
                # no proxies from the environment: a proxy would resolve the name itself (and verify TLS
                # against the IP), undoing the pin; policy-checked fetches go out directly
                httpx.Client(timeout=policy.url_timeout, follow_redirects=False, trust_env=False) as client,
                client.stream("GET", target, headers=headers, extensions=extensions) as resp,
            ):
                if resp.is_redirect:
                    location = resp.headers.get("location")
                    if not location:
                        raise FetchError(f"URL {describe(current)!r} redirected without a Location header")
                    current = str(httpx.URL(current).join(location))  # relative to the real URL, not the IP
                    continue
                if resp.status_code >= 400:
                    raise FetchError(
                        f"URL {describe(current)!r} answered HTTP {resp.status_code}: check the URL or "
                        "download the file and pass it as a path"
                    )
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > policy.max_bytes:
                    raise FetchError(
                        f"URL {describe(current)!r} is {declared} bytes, over the "
                        f"{policy.max_bytes}-byte cap: raise InputPolicy.max_bytes or pass a smaller image"
                    )
                buf = bytearray()
                for chunk in resp.iter_bytes():
                    buf.extend(chunk)
                    if len(buf) > policy.max_bytes:
                        raise FetchError(
                            f"URL {describe(current)!r} sent more than the {policy.max_bytes}-byte cap: "
                            "raise InputPolicy.max_bytes or pass a smaller image"
                        )
                return bytes(buf)
        except httpx.TimeoutException as exc:
            raise FetchError(
                f"URL {describe(current)!r} timed out after {policy.url_timeout}s: "
                "retry, or raise InputPolicy.url_timeout"
            ) from exc
        except httpx.HTTPError as exc:
            detail = str(exc).replace(str(target), current)  # never show the IP-rewritten URL
            raise FetchError(f"URL {describe(current)!r} could not be fetched: {detail}") from exc
    raise FetchError(f"URL {describe(url)!r} redirected more than 5 times: pass the final URL")


def read_bytes(source: ImageSource, *, policy: InputPolicy | None = None) -> tuple[bytes, str]:
    """Raw encoded bytes of ``source`` and a display name; PIL images and arrays come back as PNG bytes."""
    pol = policy or _DEFAULT_POLICY
    name = describe(source)
    if isinstance(source, (Image.Image, np.ndarray)):
        img = load_image(source, policy=pol)
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)
        return buf.getvalue(), name
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, os.PathLike):
        return _read_path(source, pol)
    elif isinstance(source, str):
        text = source.strip()
        if not text:
            raise InvalidInputError("empty string given as an image: pass a path, URL, data URL or base64")
        if text.startswith("data:"):
            data = _decode_data_url(text)
        elif m := _SCHEME_RE.match(text):
            scheme = m.group(1).lower()
            if scheme not in ("http", "https"):
                raise AccessDeniedError(
                    f"URL {name!r} uses scheme {scheme!r}: only http(s) URLs are fetched; "
                    "pass local files as plain paths inside the allowed folders"
                )
            data = _fetch(text, pol)
        else:
            decoded = _try_base64(text)
            if decoded is None:
                return _read_path(text, pol)
            data = decoded
            name = f"base64 string ({len(text)} chars)"
    elif hasattr(source, "read"):
        raw = source.read(pol.max_bytes + 1)
        if isinstance(raw, str):
            raise InvalidInputError(f"{name} is opened in text mode: open it with 'rb'")
        data = bytes(raw)
    else:
        raise InvalidInputError(
            f"cannot load an image from {type(source).__name__}: pass a path, bytes, file object, PIL image, "
            "numpy array, data URL, base64 string or http(s) URL"
        )
    if not data:
        raise UnsupportedImageError(f"{name} is empty (0 bytes): pass the image's actual content")
    if len(data) > pol.max_bytes:
        raise ImageTooLargeError(
            f"{name} is over the {pol.max_bytes}-byte cap: shrink it or raise InputPolicy.max_bytes"
        )
    return data, name


# ---------------------------------------------------------------- decoding and normalising
def _check_pixels(w: int, h: int, name: str, policy: InputPolicy) -> None:
    if w * h > policy.max_pixels:
        raise ImageTooLargeError(
            f"{name} is {w}x{h} = {w * h} pixels, over the {policy.max_pixels}-pixel cap (decompression-bomb "
            "guard): downscale it first or raise InputPolicy.max_pixels if the file is trusted"
        )


def _flatten_alpha(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    bg = Image.new("RGB", rgba.size, (255, 255, 255))
    bg.paste(rgba, mask=rgba.getchannel("A"))
    return bg


def to_rgb(img: Image.Image) -> Image.Image:
    """``img`` as 8-bit RGB: alpha over white, 16-bit scaled (not clipped), CMYK/1-bit/L/P converted."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _flatten_alpha(img)
    if mode == "P":
        if "transparency" in img.info:
            return _flatten_alpha(img)
        return img.convert("RGB")
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img).astype(np.float64)
        arr = np.clip(arr, 0, 65535) / 257.0
        return Image.fromarray(np.round(arr).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img).astype(np.float64)
        finite = arr[np.isfinite(arr)]
        top = float(finite.max()) if finite.size else 0.0
        arr = arr * 255.0 if top <= 1.0 else arr
        arr = np.nan_to_num(np.clip(arr, 0, 255))
        return Image.fromarray(np.round(arr).astype(np.uint8), "L").convert("RGB")
    return img.convert("RGB")


def _finish(img: Image.Image) -> Image.Image:
    """Apply EXIF orientation, then convert to RGB."""
    with contextlib.suppress(Exception):  # a broken EXIF block must not make a readable image unusable
        img = ImageOps.exif_transpose(img) or img
    return to_rgb(img)


def _open(data: bytes, name: str, policy: InputPolicy) -> Image.Image:
    kind = sniff(data)
    if kind == "pdf":
        raise UnsupportedImageError(
            f"{name} is a PDF, not an image: render its pages with minimaxvl_tools.pdf.iter_pdf_pages"
        )
    if kind == "unknown":
        raise UnsupportedImageError(
            f"{name} is not a recognised image (content starts {data[:12]!r}): pass a PNG, JPEG, GIF, "
            "WebP, TIFF or BMP file; the file name's extension is not trusted"
        )
    try:
        with warnings.catch_warnings():
            # The policy's pixel cap (checked right below) is the authority; PIL's own warning is noise here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"{name} declares more pixels than Pillow will decode ({exc}): decompression bomb refused"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedImageError(
            f"{name} cannot be read as an image ({exc}): the file is corrupt or in an unsupported format; "
            "re-export it as PNG or JPEG"
        ) from exc
    _check_pixels(img.width, img.height, name, policy)
    return img


def _load_frame(img: Image.Image, name: str, policy: InputPolicy) -> Image.Image:
    _check_pixels(img.width, img.height, name, policy)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{name}: decompression bomb refused ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnsupportedImageError(
            f"{name} is truncated or corrupt ({exc}): re-export or re-download the file"
        ) from exc
    return _finish(img)


def _from_pil(img: Image.Image, name: str, policy: InputPolicy) -> Image.Image:
    _check_pixels(img.width, img.height, name, policy)
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    return _load_frame(img, name, policy) if img.mode != "RGB" or img.getexif() else img


def _from_array(arr: np.ndarray, name: str, policy: InputPolicy) -> Image.Image:
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] not in (1, 3, 4) and a.shape[0] in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # CHW -> HWC
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)) or a.size == 0:
        raise InvalidInputError(
            f"{name} cannot be an image: pass HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA) arrays"
        )
    _check_pixels(a.shape[1], a.shape[0], name, policy)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = np.round(a.astype(np.float64) / 257.0).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        f = np.nan_to_num(a.astype(np.float64))
        if f.size and float(f.max()) <= 1.0 and float(f.min()) >= 0.0:
            f = f * 255.0
        a = np.round(np.clip(f, 0, 255)).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer) and a.dtype != np.uint8:
        if a.size and (int(a.min()) < 0 or int(a.max()) > 255):
            raise InvalidInputError(
                f"{name} has values outside 0..255 ({int(a.min())}..{int(a.max())}): pass uint8 data, "
                "uint16 data, or floats in 0..1"
            )
        a = a.astype(np.uint8)
    elif a.dtype != np.uint8:
        raise InvalidInputError(f"{name} has unsupported dtype {a.dtype}: pass uint8, uint16 or float data")
    mode = {2: "L"}.get(a.ndim) or ("RGB" if a.shape[-1] == 3 else "RGBA")
    return to_rgb(Image.fromarray(np.ascontiguousarray(a), mode))


# ---------------------------------------------------------------- public entry points
def load_image(source: ImageSource, *, policy: InputPolicy | None = None) -> Image.Image:
    """Load ``source`` as one RGB image (EXIF orientation applied, first frame/page only)."""
    pol = policy or _DEFAULT_POLICY
    if isinstance(source, Image.Image):
        return _from_pil(source, describe(source), pol)
    if isinstance(source, np.ndarray):
        return _from_array(source, describe(source), pol)
    data, name = read_bytes(source, policy=pol)
    img = _open(data, name, pol)
    return _load_frame(img, name, pol)


def iter_images(source: ImageSource, *, policy: InputPolicy | None = None) -> Iterator[Image.Image]:
    """Yield RGB images of ``source``: every page of a multi-page TIFF, the single/first frame otherwise."""
    pol = policy or _DEFAULT_POLICY
    if isinstance(source, (Image.Image, np.ndarray)):
        yield load_image(source, policy=pol)
        return
    data, name = read_bytes(source, policy=pol)
    img = _open(data, name, pol)
    if img.format != "TIFF" or getattr(img, "n_frames", 1) <= 1:
        yield _load_frame(img, name, pol)
        return
    for index in range(img.n_frames):
        try:
            img.seek(index)
        except EOFError as exc:
            raise UnsupportedImageError(f"{name} page {index + 1} is truncated: re-export the TIFF") from exc
        frame = _load_frame(img, f"{name} page {index + 1}", pol)
        yield frame.copy() if frame is img else frame


__all__ = [
    "ImageSource",
    "describe",
    "iter_images",
    "load_image",
    "read_bytes",
    "sniff",
    "to_rgb",
]
