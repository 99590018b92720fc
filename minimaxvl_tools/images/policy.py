"""InputPolicy: which local paths and which URLs an image/PDF input may come from, and how big it may be.

Tools that agents drive pass untrusted strings; the policy keeps them inside allowed folders (symlinks and
``..`` resolved first) and keeps URL fetching off by default, refusing ``file://`` and any host that resolves
to a loopback, private, link-local or otherwise non-public address (SSRF guard). The checked address is
pinned: :meth:`InputPolicy.resolve_url` returns it and the fetch connects to exactly that IP, so a DNS server
cannot answer a public address to the check and a private one to the connection (DNS rebinding). Fetches
ignore proxy environment variables for the same reason (a proxy would resolve the name again).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from ..errors import AccessDeniedError, InvalidInputError, redact_url
from ..settings import Settings

_ALLOWED_SCHEMES = ("http", "https")


def _short(text: str, limit: int = 120) -> str:
    text = redact_url(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_public(addr: str) -> bool:
    """True when ``addr`` (an IP literal) is a globally routable unicast address."""
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _is_ip_literal(host: str) -> bool:
    """True when ``host`` is already an IP address, so connecting to it needs no DNS lookup to pin."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _allow_entry(entry: str) -> tuple[str, int | None]:
    """(host, port or None) of a url_allowlist entry: ``host``, ``*.host``, ``host:port``, ``[v6]:port``
    or a URL (its scheme and path are ignored); a port-less entry allows every port of that host."""
    text = entry.strip()
    text = text.split("://", 1)[1] if "://" in text else text
    text = text.split("/", 1)[0].lstrip("*").lstrip(".")
    parts = urlsplit("//" + text)
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(
            f"url_allowlist entry {entry!r} has an invalid port: use host or host:port"
        ) from exc
    return (parts.hostname or "").rstrip(".").lower(), port


@dataclass(frozen=True)
class PinnedURL:
    """A URL the policy allowed and the address it checked, so the fetch connects to that address only."""

    url: str
    """The URL as given; shown in messages and used to resolve relative redirects."""
    scheme: str
    """``http`` or ``https`` (lower case)."""
    host: str
    """Host name as checked and resolved (lower case, no trailing dot)."""
    port: int
    """TCP port, the scheme's default when the URL names none."""
    ip: str | None
    """Checked IP to connect to; None when no pin is needed (IP-literal host, or allow_private_hosts)."""


class InputPolicy(BaseModel):
    """Where inputs may be read from and how large they may be; ``None`` roots means any local path."""

    allowed_roots: list[Path] | None = Field(
        None, description="Folders local files must lie in (after resolving symlinks); None = anywhere."
    )
    allow_urls: bool = Field(False, description="Fetch http(s) URLs at all.")
    url_allowlist: list[str] = Field(
        default_factory=list,
        description="Hosts allowed (subdomains included), each ``host`` (any port) or ``host:port`` "
        "(that port only; every redirect hop is checked too); empty = any public host.",
    )
    allow_private_hosts: bool = Field(False, description="Allow loopback/private/link-local targets.")
    url_timeout: float = Field(10.0, gt=0, description="Seconds for one URL fetch.")
    max_bytes: int = Field(64 * 2**20, gt=0, description="Largest encoded input (file, bytes, download).")
    max_pixels: int = Field(
        150_000_000, gt=0, description="Largest decoded image or rendered PDF page (decompression-bomb cap)."
    )
    hints: Literal["python", "cli"] = Field(
        "python", description="Whether refusals name the Python parameters or the minimaxvl CLI flags."
    )

    def _hint(self, python: str, cli: str, env: str) -> str:
        """How to change a setting, in the words of the caller's interface (parameter or flag) plus env."""
        return f"{cli if self.hints == 'cli' else python} (or set {env})"

    # ------------------------------------------------------------ paths
    def check_path(self, path: str | os.PathLike[str]) -> Path:
        """Resolve ``path`` (symlinks, ``..``) and return it; AccessDeniedError when outside allowed roots."""
        try:
            resolved = Path(os.fspath(path)).expanduser().resolve(strict=False)
        except (OSError, RuntimeError, ValueError) as exc:
            msg = f"cannot resolve path {str(path)!r} ({exc}): pass an existing file"
            raise InvalidInputError(msg) from exc
        if self.allowed_roots is None:
            return resolved
        roots = [Path(r).expanduser().resolve(strict=False) for r in self.allowed_roots]
        for root in roots:
            if resolved == root or resolved.is_relative_to(root):
                return resolved
        shown = ", ".join(str(r) for r in roots) or "(none)"
        raise AccessDeniedError(
            f"path {str(path)!r} resolves to {str(resolved)!r}, outside the allowed folders [{shown}]: "
            "move the file into an allowed folder or allow its folder with "
            + self._hint("allowed_roots=[...]", "--allow-root DIR", "MINIMAXVL_ALLOWED_ROOTS")
        )

    # ------------------------------------------------------------ URLs
    def check_url(self, url: str) -> str:
        """Return ``url`` if it may be fetched: http(s) only, allowlisted host, public address after DNS."""
        return self.resolve_url(url).url

    def resolve_url(self, url: str) -> PinnedURL:
        """Check ``url`` like :meth:`check_url` and return the checked address, to be connected to as is."""
        shown = _short(url)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _ALLOWED_SCHEMES:
            raise AccessDeniedError(
                f"URL {shown!r} uses scheme {scheme or '(none)'!r}: only http and https URLs can be fetched; "
                "pass local files as paths (inside the allowed folders) instead"
            )
        if not self.allow_urls:
            raise AccessDeniedError(
                f"URL {shown!r} refused: URL loading is disabled; enable it with "
                + self._hint("allow_urls=True", "--allow-urls", "MINIMAXVL_ALLOW_URLS=1")
                + " or download the image and pass the file"
            )
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise InvalidInputError(f"URL {shown!r} has no host name: pass a full http(s) URL")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise InvalidInputError(f"URL {shown!r} has an invalid port: {exc}") from exc
        if self.url_allowlist:
            entries = [_allow_entry(e) for e in self.url_allowlist if e.strip()]
            hosts = [(h, p) for h, p in entries if host == h or host.endswith("." + h)]
            if not hosts:
                raise AccessDeniedError(
                    f"URL {shown!r} refused: host {host!r} is not in url_allowlist {self.url_allowlist}; "
                    + (
                        "add it (host, or host:port) to MINIMAXVL_URL_ALLOWLIST"
                        if self.hints == "cli"
                        else "add it (host, or host:port) to url_allowlist (or MINIMAXVL_URL_ALLOWLIST)"
                    )
                )
            if not any(p is None or p == port for _, p in hosts):
                ports = sorted({p for _, p in hosts if p is not None})
                raise AccessDeniedError(
                    f"URL {shown!r} refused: port {port} of host {host!r} is not allowed (url_allowlist "
                    f"allows port(s) {ports} there); add '{host}:{port}' to url_allowlist only if that "
                    "service is meant to be reached"
                )
        if self.allow_private_hosts:
            return PinnedURL(url=url, scheme=scheme, host=host, port=port, ip=None)
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise AccessDeniedError(
                f"URL {shown!r} refused: host {host!r} does not resolve ({exc}); check the URL"
            ) from exc
        ordered = list(dict.fromkeys(str(info[4][0]) for info in infos))  # resolver's order, no duplicates
        addrs = sorted(ordered)
        bad = [a for a in addrs if not _is_public(a)]
        if not addrs or bad:
            raise AccessDeniedError(
                f"URL {shown!r} refused: host {host!r} resolves to non-public address(es) {bad or addrs} "
                "(loopback, private, link-local or reserved); only for trusted internal servers, allow them "
                "with "
                + self._hint(
                    "allow_private_hosts=True", "--allow-private-hosts", "MINIMAXVL_ALLOW_PRIVATE_HOSTS=1"
                )
            )
        ip = None if _is_ip_literal(host) else ordered[0]
        return PinnedURL(url=url, scheme=scheme, host=host, port=port, ip=ip)

    # ------------------------------------------------------------ construction
    @classmethod
    def from_settings(cls, s: Settings, **overrides: Any) -> InputPolicy:
        """The policy that ``s`` describes (roots, URLs, allowlist, private hosts, pixel cap), with the
        non-None ``overrides`` winning: the one place tools, toolkit, loader, client and CLI build it."""
        data: dict[str, Any] = {
            "allowed_roots": list(s.allowed_roots),
            "allow_urls": s.allow_urls,
            "url_allowlist": list(s.url_allowlist),
            "allow_private_hosts": s.allow_private_hosts,
            "max_pixels": s.max_pixels,
        }
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)


__all__ = ["InputPolicy", "PinnedURL"]
