"""Hardening of inputs: blank check on any aspect ratio, PDF pixel cap, allowlist ports, URL userinfo."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from minimaxvl_tools.errors import AccessDeniedError, FetchError, MiniMaxVLError
from minimaxvl_tools.images.load import read_bytes
from minimaxvl_tools.images.policy import InputPolicy
from minimaxvl_tools.images.quality import is_blank
from minimaxvl_tools.pdf import iter_pdf_pages

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


# ------------------------------------------------------------------ 1: blank check on any aspect ratio
def _receipt(lines: int | None = None) -> Image.Image:
    """A 600x8000 till receipt: dense small print from top to bottom (or only ``lines`` lines)."""
    img = Image.new("L", (600, 8000), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 16)
    rows = range(30, 7960, 24) if lines is None else range(30, 30 + 24 * lines, 24)
    for i, y in enumerate(rows):
        draw.text((20, y), f"ITEM {i:04d}  Coffee beans 1kg   {i * 1.25:8.2f} EUR", font=font, fill=0)
    return img.convert("RGB")


def _strip() -> Image.Image:
    """A 50000x10 strip holding one long line of 8-px print."""
    img = Image.new("L", (50000, 10), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 9)
    for x in range(5, 49900, 400):
        draw.text((x, 0), "LOT 12345 EXP 2027", font=font, fill=0)
    return img.convert("RGB")


@pytest.mark.parametrize(
    ("name", "image"),
    [("dense receipt 600x8000", _receipt()), ("receipt, 3 lines", _receipt(3)), ("strip 50000x10", _strip())],
    ids=["receipt", "receipt-3-lines", "strip"],
)
def test_text_on_long_or_thin_pages_is_not_blank(name: str, image: Image.Image) -> None:
    chk = is_blank(image)
    assert not chk.blank, f"{name}: {chk.reason}"


def test_long_and_thin_blank_pages_stay_blank() -> None:
    rng = np.random.default_rng(0)
    for size in ((600, 8000), (50000, 10), (8000, 600)):
        noise = np.clip(240 + rng.normal(0, 4, (size[1], size[0])), 0, 255).astype(np.uint8)
        chk = is_blank(Image.fromarray(noise, "L").convert("RGB"))
        assert chk.blank, f"{size}: {chk.reason}"


# ------------------------------------------------------------------ 2: pixel cap on PDF rendering
def _pdf(path: Path, sizes_pt: list[tuple[float, float]]) -> Path:
    pdf = FPDF(unit="pt")
    pdf.set_font("helvetica", size=40)
    for w, h in sizes_pt:
        pdf.add_page(format=(w, h))
        pdf.text(50, 100, "Page text")
    pdf.output(str(path))
    return path


def test_pdf_page_over_max_pixels_is_rendered_at_the_dpi_that_fits(tmp_path: Path) -> None:
    pdf = _pdf(tmp_path / "big.pdf", [(2160, 2160), (612, 792)])  # 30x30 inch, then letter
    policy = InputPolicy(allowed_roots=[tmp_path], max_pixels=4_000_000)
    big, small = list(iter_pdf_pages(pdf, dpi=200, policy=policy))
    assert big.image is not None and big.image.width * big.image.height <= 4_000_000
    assert 60 < big.dpi < 200
    assert any("max_pixels" in w and "200" in w for w in big.warnings), big.warnings
    assert small.dpi == 200 and small.warnings == []
    assert small.image is not None and small.image.size == (1700, 2200)


# ------------------------------------------------------------------ 4: allowlist entries with a port
PNG = io.BytesIO()
Image.new("RGB", (4, 3), (10, 200, 30)).save(PNG, format="PNG")


class _Loopback:
    def __init__(self, redirect_to: str | None = None) -> None:
        owner = self
        self.paths: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.paths.append(self.path)
                if self.path == "/redirect" and redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = PNG.getvalue()
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def two_ports() -> Iterator[tuple[_Loopback, _Loopback]]:
    other = _Loopback()
    allowed = _Loopback(redirect_to=f"http://127.0.0.1:{other.port}/img.png")
    try:
        yield allowed, other
    finally:
        allowed.close()
        other.close()


def _trusted(*allow: str) -> InputPolicy:
    return InputPolicy(allow_urls=True, allow_private_hosts=True, url_allowlist=list(allow))


def test_allowlist_entry_with_a_port_allows_that_port_only(two_ports: tuple[_Loopback, _Loopback]) -> None:
    allowed, other = two_ports
    policy = _trusted(f"127.0.0.1:{allowed.port}")
    data, _ = read_bytes(f"http://127.0.0.1:{allowed.port}/img.png", policy=policy)
    assert data == PNG.getvalue()
    with pytest.raises(AccessDeniedError, match=f"port {other.port}"):
        read_bytes(f"http://127.0.0.1:{other.port}/img.png", policy=policy)
    with pytest.raises(AccessDeniedError, match=f"port {other.port}"):
        read_bytes(f"http://127.0.0.1:{allowed.port}/redirect", policy=policy)
    assert other.paths == []  # the other port was never contacted


def test_redirect_to_a_second_allowed_port_is_followed(two_ports: tuple[_Loopback, _Loopback]) -> None:
    allowed, other = two_ports
    policy = _trusted(f"127.0.0.1:{allowed.port}", f"127.0.0.1:{other.port}")
    data, _ = read_bytes(f"http://127.0.0.1:{allowed.port}/redirect", policy=policy)
    assert data == PNG.getvalue() and other.paths == ["/img.png"]
    # a host-only entry keeps its meaning: that host on any port
    assert read_bytes(f"http://127.0.0.1:{allowed.port}/redirect", policy=_trusted("127.0.0.1"))[0]


def test_allowlist_ports_parse_ipv6_and_schemes() -> None:
    pol = InputPolicy(
        allow_urls=True, allow_private_hosts=True, url_allowlist=["[::1]:8080", "https://a.test:8443"]
    )
    assert pol.resolve_url("http://[::1]:8080/x").port == 8080
    assert pol.resolve_url("https://a.test:8443/x").host == "a.test"
    with pytest.raises(AccessDeniedError):
        pol.resolve_url("http://[::1]:8081/x")
    with pytest.raises(AccessDeniedError):
        pol.resolve_url("https://a.test/x")  # 443 is not 8443


# ------------------------------------------------------------------ 5: URL userinfo is redacted
SECRET_URL = "http://admin:s3cr3t@127.0.0.1:1/scan.png"


def test_redact_url_drops_userinfo_anywhere_in_a_text() -> None:
    from minimaxvl_tools.errors import redact_url

    text = f"failed for {SECRET_URL!r} and https://tok@example.com/a?b=1"
    out = redact_url(text)
    assert "s3cr3t" not in out and "admin" not in out and "tok@" not in out
    assert "http://***@127.0.0.1:1/scan.png" in out and "https://***@example.com/a?b=1" in out
    assert (
        redact_url("mail me at a@b.c, see http://example.com/x@y")
        == "mail me at a@b.c, see http://example.com/x@y"
    )


@pytest.mark.parametrize(
    "policy",
    [
        InputPolicy(),  # URLs disabled
        InputPolicy(allow_urls=True),  # loopback refused
        InputPolicy(allow_urls=True, url_allowlist=["example.com"]),  # not allowlisted
        InputPolicy(allow_urls=True, allow_private_hosts=True, url_timeout=2),  # connection refused
    ],
    ids=["disabled", "private", "allowlist", "refused"],
)
def test_url_errors_never_show_userinfo(policy: InputPolicy) -> None:
    with pytest.raises(MiniMaxVLError) as info:
        read_bytes(SECRET_URL, policy=policy)
    assert isinstance(info.value, AccessDeniedError | FetchError)
    text = str(info.value) + repr(info.value.args)
    assert "s3cr3t" not in text and "admin:" not in text
    assert "127.0.0.1" in text
