"""URL fetching connects to exactly the address the policy checked (DNS-rebinding / TOCTOU guard).

A fake resolver answers a public-looking address (127.0.0.1, declared public for the test) to the first
lookup of a name and another one (127.0.0.2, a second server on the same port) afterwards: without pinning,
httpx's own lookup would reach the second ("evil") server.
"""

from __future__ import annotations

import errno
import http.server
import io
import shutil
import socket
import ssl
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

import minimaxvl_tools.images.policy as policy_mod
from minimaxvl_tools.errors import AccessDeniedError, FetchError
from minimaxvl_tools.images.load import load_image, read_bytes
from minimaxvl_tools.images.policy import InputPolicy, PinnedURL

GOOD = (10, 200, 30)
EVIL = (250, 0, 0)


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (3, 2), color).save(buf, format="PNG")
    return buf.getvalue()


GOOD_PNG = _png(GOOD)
EVIL_PNG = _png(EVIL)


# ---------------------------------------------------------------- fixtures
@dataclass
class Server:
    """One loopback HTTP server and the (path, Host header) of every request it received."""

    addr: str
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def hosts(self) -> list[str | None]:
        return [h for _, h in self.requests]


@dataclass
class Servers:
    port: int
    good: Server
    evil: Server


def _handler(server: Server, routes: dict[str, tuple[int, dict[str, str], bytes]], default: bytes) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests.append((self.path, self.headers.get("Host")))
            status, headers, body = routes.get(self.path, (200, {"Content-Type": "image/png"}, default))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v.replace("{port}", str(self.server.server_address[1])))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    return Handler


def _start(addr: str, port: int, handler: type) -> http.server.ThreadingHTTPServer:
    srv = http.server.ThreadingHTTPServer((addr, port), handler)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


@pytest.fixture
def servers() -> Iterator[Servers]:
    """A good server on 127.0.0.1 and an evil one on 127.0.0.2, same port."""
    good, evil = Server("127.0.0.1"), Server("127.0.0.2")
    routes = {
        "/redirect-rel": (302, {"Location": "/img.png"}, b""),
        "/redirect-other": (302, {"Location": "http://other.example:{port}/img.png"}, b""),
        "/redirect-internal": (302, {"Location": "http://internal.example:{port}/secret.png"}, b""),
        "/missing.png": (404, {}, b""),
    }
    started: list[http.server.ThreadingHTTPServer] = []
    try:
        for _ in range(20):
            first = _start("127.0.0.1", 0, _handler(good, routes, GOOD_PNG))
            port = first.server_address[1]
            try:
                second = _start("127.0.0.2", port, _handler(evil, {}, EVIL_PNG))
            except OSError as exc:
                first.shutdown()
                first.server_close()
                if exc.errno == errno.EADDRNOTAVAIL:
                    pytest.skip("127.0.0.2 is not routed to loopback on this machine")
                continue  # port taken on 127.0.0.2: try another
            started += [first, second]
            break
        else:
            pytest.fail("no free port on both 127.0.0.1 and 127.0.0.2")
        yield Servers(port, good, evil)
    finally:
        for srv in started:
            srv.shutdown()
            srv.server_close()


class Resolver:
    """Fake ``socket.getaddrinfo``: scripted answers for fake names (the last repeats), else the real one."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.answers: dict[str, list[str]] = {}
        self.calls: Counter[str] = Counter()

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            return self.real(host, port, *args, **kwargs)
        seq = self.answers[name]
        ip = seq[min(self.calls[name], len(seq) - 1)]
        self.calls[name] += 1
        port_num = int(port or 0)
        if ":" in ip:
            return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port_num, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port_num))]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    """Patch ``socket.getaddrinfo`` itself: the policy and httpcore (socket.create_connection) both see it."""
    fake = Resolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def loopback_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let 127.0.0.1 (only) pass the policy's public-address test; 127.0.0.2 stays refused."""
    real = policy_mod._is_public
    monkeypatch.setattr(policy_mod, "_is_public", lambda a: a == "127.0.0.1" or real(a))


URLS = InputPolicy(allow_urls=True)


# ---------------------------------------------------------------- pinning against real sockets
@pytest.mark.usefixtures("loopback_public")
def test_connects_to_the_checked_address_not_a_second_lookup(servers: Servers, resolver: Resolver) -> None:
    resolver.answers["images.example"] = ["127.0.0.1", "127.0.0.2"]
    url = f"http://images.example:{servers.port}/img.png"
    img = load_image(url, policy=URLS)
    assert img.getpixel((0, 0)) == GOOD
    assert resolver.calls["images.example"] == 1  # the policy's lookup only; httpx did not resolve again
    assert servers.good.hosts == [f"images.example:{servers.port}"]  # the real name reached the server
    assert servers.evil.requests == []

    resolver.calls.clear()  # start the script again: 127.0.0.1 first, then 127.0.0.2
    data, name = read_bytes(url, policy=URLS)
    assert data == GOOD_PNG and name == url
    assert resolver.calls["images.example"] == 1 and servers.evil.requests == []


@pytest.mark.usefixtures("loopback_public")
def test_resolve_url_returns_the_checked_ip(resolver: Resolver) -> None:
    resolver.answers["images.example"] = ["127.0.0.1"]
    url = "http://Images.Example.:8080/a.png"
    assert URLS.resolve_url(url) == PinnedURL(url, "http", "images.example", 8080, "127.0.0.1")
    assert URLS.check_url(url) == url  # the old API still answers the URL unchanged
    assert resolver.calls["images.example"] == 2


@pytest.mark.usefixtures("loopback_public")
def test_check_url_refuses_a_rebound_answer(resolver: Resolver) -> None:
    resolver.answers["images.example"] = ["127.0.0.2"]
    with pytest.raises(AccessDeniedError, match="non-public"):
        URLS.check_url("https://images.example/a.png")


@pytest.mark.usefixtures("loopback_public")
def test_redirect_to_another_host_is_resolved_and_pinned(servers: Servers, resolver: Resolver) -> None:
    resolver.answers["images.example"] = ["127.0.0.1", "127.0.0.2"]
    resolver.answers["other.example"] = ["127.0.0.1", "127.0.0.2"]
    img = load_image(f"http://images.example:{servers.port}/redirect-other", policy=URLS)
    assert img.getpixel((0, 0)) == GOOD
    assert resolver.calls == Counter({"images.example": 1, "other.example": 1})
    assert servers.good.requests == [
        ("/redirect-other", f"images.example:{servers.port}"),
        ("/img.png", f"other.example:{servers.port}"),
    ]
    assert servers.evil.requests == []


@pytest.mark.usefixtures("loopback_public")
def test_relative_redirect_is_rechecked_by_name(servers: Servers, resolver: Resolver) -> None:
    resolver.answers["images.example"] = ["127.0.0.1", "127.0.0.2"]  # the second hop's lookup rebinds
    with pytest.raises(AccessDeniedError, match="non-public") as info:
        load_image(f"http://images.example:{servers.port}/redirect-rel", policy=URLS)
    message = str(info.value)
    assert f"http://images.example:{servers.port}/img.png" in message  # the hop's real URL, joined by name
    assert "http://127.0.0." not in message
    assert resolver.calls["images.example"] == 2
    assert servers.evil.requests == []


@pytest.mark.usefixtures("loopback_public")
def test_redirect_to_private_host_refused_with_its_url(servers: Servers, resolver: Resolver) -> None:
    resolver.answers["images.example"] = ["127.0.0.1"]
    resolver.answers["internal.example"] = ["169.254.169.254"]
    with pytest.raises(AccessDeniedError, match="non-public") as info:
        load_image(f"http://images.example:{servers.port}/redirect-internal", policy=URLS)
    message = str(info.value)
    assert f"http://internal.example:{servers.port}/secret.png" in message
    assert "http://169.254" not in message and "http://127.0.0." not in message
    assert resolver.calls["internal.example"] == 1
    assert [p for p, _ in servers.good.requests] == ["/redirect-internal"]


@pytest.mark.usefixtures("loopback_public")
def test_pinned_fetch_keeps_byte_cap_and_http_errors(servers: Servers, resolver: Resolver) -> None:
    resolver.answers["images.example"] = ["127.0.0.1", "127.0.0.2"]
    base = f"http://images.example:{servers.port}"
    with pytest.raises(FetchError, match="byte cap"):
        load_image(base + "/img.png", policy=URLS.model_copy(update={"max_bytes": 20}))
    resolver.calls.clear()
    with pytest.raises(FetchError, match="HTTP 404") as info:
        load_image(base + "/missing.png", policy=URLS)
    assert f"{base}/missing.png" in str(info.value) and "127.0.0.1" not in str(info.value)
    assert servers.evil.requests == []


@pytest.mark.usefixtures("loopback_public")
def test_ip_literal_host_needs_no_pin(servers: Servers, resolver: Resolver) -> None:
    url = f"http://127.0.0.1:{servers.port}/img.png"
    assert URLS.resolve_url(url) == PinnedURL(url, "http", "127.0.0.1", servers.port, None)
    assert load_image(url, policy=URLS).getpixel((0, 0)) == GOOD
    assert servers.good.hosts == [f"127.0.0.1:{servers.port}"]
    v6 = InputPolicy(allow_urls=True, allow_private_hosts=True).resolve_url("http://[::1]:8080/x")
    assert (v6.host, v6.port, v6.ip) == ("::1", 8080, None)


def test_allow_private_hosts_skips_the_pin(servers: Servers, resolver: Resolver) -> None:
    resolver.answers["images.example"] = ["127.0.0.1"]
    trusted = InputPolicy(allow_urls=True, allow_private_hosts=True)
    url = f"http://images.example:{servers.port}/img.png"
    assert trusted.resolve_url(url) == PinnedURL(url, "http", "images.example", servers.port, None)
    assert resolver.calls["images.example"] == 0  # no check, so nothing to pin
    assert load_image(url, policy=trusted).getpixel((0, 0)) == GOOD
    assert resolver.calls["images.example"] == 1  # httpx resolved the name itself
    assert servers.good.hosts == [f"images.example:{servers.port}"]


# ---------------------------------------------------------------- request shape (no sockets, no real TLS)
@pytest.fixture
def mock_requests(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Send every httpx.Client that _fetch builds through a MockTransport; record the requests it gets."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/missing.png":
            return httpx.Response(404)
        if request.url.path == "/refused.png":
            raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)
        return httpx.Response(200, content=GOOD_PNG, headers={"Content-Type": "image/png"})

    transport = httpx.MockTransport(handle)
    real_client = httpx.Client

    class MockClient(real_client):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(transport=transport, **kwargs)

    monkeypatch.setattr(httpx, "Client", MockClient)
    return seen


@pytest.mark.usefixtures("loopback_public")
@pytest.mark.parametrize(
    ("url", "ip", "sent_url", "host_header", "sni"),
    [
        (
            "https://images.example/img.png",
            "127.0.0.1",
            "https://127.0.0.1/img.png",
            "images.example",
            "images.example",
        ),
        (
            "https://images.example:8443/img.png?v=1",
            "127.0.0.1",
            "https://127.0.0.1:8443/img.png?v=1",
            "images.example:8443",
            "images.example",
        ),
        (
            "https://v6.example/img.png",
            "2606:4700::1111",
            "https://[2606:4700::1111]/img.png",
            "v6.example",
            "v6.example",
        ),
        (
            "http://images.example:8080/img.png",
            "127.0.0.1",
            "http://127.0.0.1:8080/img.png",
            "images.example:8080",
            None,
        ),
    ],
)
def test_request_goes_to_ip_with_real_host_and_sni(
    mock_requests: list[httpx.Request],
    resolver: Resolver,
    url: str,
    ip: str,
    sent_url: str,
    host_header: str,
    sni: str | None,
) -> None:
    host = httpx.URL(url).host
    resolver.answers[host] = [ip, "127.0.0.2"]
    assert load_image(url, policy=URLS).getpixel((0, 0)) == GOOD
    (request,) = mock_requests
    assert str(request.url) == sent_url
    assert request.headers["Host"] == host_header
    assert request.extensions.get("sni_hostname") == sni
    assert resolver.calls[host] == 1


@pytest.mark.usefixtures("loopback_public")
def test_errors_name_the_original_url(mock_requests: list[httpx.Request], resolver: Resolver) -> None:
    resolver.answers["images.example"] = ["127.0.0.1"]
    for path, error in (("/missing.png", "HTTP 404"), ("/refused.png", "could not be fetched")):
        url = f"https://images.example{path}"
        with pytest.raises(FetchError, match=error) as info:
            load_image(url, policy=URLS)
        assert url in str(info.value) and "127.0.0.1" not in str(info.value)
    assert [str(r.url) for r in mock_requests] == [
        "https://127.0.0.1/missing.png",
        "https://127.0.0.1/refused.png",
    ]


# ---------------------------------------------------------------- real TLS: certificate checked by name
@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path, list[str | None]]]:
    """HTTPS server on 127.0.0.1 with a self-signed certificate for images.example; records the SNI names."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl command not available to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    args = [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
    ]
    names = ["-subj", "/CN=images.example", "-addext", "subjectAltName=DNS:images.example"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run([openssl, *args, *names, *files], check=True, capture_output=True, timeout=60)
    snis: list[str | None] = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.sni_callback = lambda _sock, name, _ctx: snis.append(name)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(Server("127.0.0.1"), {}, GOOD_PNG))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield srv.server_address[1], cert, snis
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.usefixtures("loopback_public")
def test_tls_verifies_the_certificate_against_the_real_name(
    tls_server: tuple[int, Path, list[str | None]], resolver: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, cert, snis = tls_server
    trust = ssl.create_default_context(cafile=str(cert))  # hostname checks on, as in httpx's default context
    real_client = httpx.Client

    class TrustingClient(real_client):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(verify=trust, **kwargs)

    monkeypatch.setattr(httpx, "Client", TrustingClient)
    resolver.answers["images.example"] = ["127.0.0.1"]
    resolver.answers["other.example"] = ["127.0.0.1"]
    data, _ = read_bytes(f"https://images.example:{port}/img.png", policy=URLS)
    assert data == GOOD_PNG and snis == ["images.example"]  # connected to 127.0.0.1, TLS named the host
    with pytest.raises(
        FetchError, match="certificate"
    ) as info:  # the certificate does not cover other.example
        read_bytes(f"https://other.example:{port}/img.png", policy=URLS)
    assert f"https://other.example:{port}/img.png" in str(info.value) and "127.0.0.1" not in str(info.value)
