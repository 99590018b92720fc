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
        default_factory=list, description="Host names allowed (subdomains included); empty = any public host."
    )
    allow_private_hosts: bool = Field(False, description="Allow loopback/private/link-local targets.")
    url_timeout: float = Field(10.0, gt=0, description="Seconds for one URL fetch.")
    max_bytes: int = Field(64 * 2**20, gt=0, description="Largest encoded input (file, bytes, download).")
    max_pixels: int = Field(150_000_000, gt=0, description="Largest decoded image (decompression-bomb cap).")

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
            "move the file into an allowed folder or add its folder to allowed_roots "
            "(MINIMAXVL_ALLOWED_ROOTS)"
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
                f"URL {shown!r} refused: URL loading is disabled; enable it with allow_urls=True "
                "(MINIMAXVL_ALLOW_URLS=1) or download the image and pass the file"
            )
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise InvalidInputError(f"URL {shown!r} has no host name: pass a full http(s) URL")
        if self.url_allowlist:
            allowed = [h.strip().lstrip("*").lstrip(".").lower() for h in self.url_allowlist if h.strip()]
            if not any(host == h or host.endswith("." + h) for h in allowed):
                raise AccessDeniedError(
                    f"URL {shown!r} refused: host {host!r} is not in url_allowlist {self.url_allowlist}; "
                    "add it to url_allowlist (MINIMAXVL_URL_ALLOWLIST)"
                )
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise InvalidInputError(f"URL {shown!r} has an invalid port: {exc}") from exc
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
                "(loopback, private, link-local or reserved); set allow_private_hosts=True only for trusted "
                "internal servers"
            )
        ip = None if _is_ip_literal(host) else ordered[0]
        return PinnedURL(url=url, scheme=scheme, host=host, port=port, ip=ip)

    # ------------------------------------------------------------ construction
    @classmethod
    def from_settings(cls, s: Settings) -> InputPolicy:
        """Policy from Settings: its allowed_roots, allow_urls and url_allowlist."""
        return cls(
            allowed_roots=list(s.allowed_roots), allow_urls=s.allow_urls, url_allowlist=list(s.url_allowlist)
        )


__all__ = ["InputPolicy", "PinnedURL"]
