"""Settings: arguments > environment (``MINIMAXVL_*``) > defaults.

One :class:`Settings` object describes the endpoint, the model and the limits; the client, tools, loader
and CLI all read the same one, so nothing in the package reads the environment anywhere else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator

from .errors import redact_url

ENV_PREFIX = "MINIMAXVL_"
DEFAULT_BASE_URL = "http://localhost:8000/v1"
DEFAULT_MODEL = "MiniMaxAI/MiniMax-VL-01"
DEFAULT_DPI = 200
"""PDF rendering resolution when nothing else says (``MINIMAXVL_DPI``, ``--dpi``, ``dpi=``)."""
DPI_RANGE = (30, 1200)
"""The one allowed range of ``dpi`` everywhere (tools, loader, ingest, eval, CLI, renderer)."""


def check_dpi(dpi: Any, name: str = "dpi") -> int | float:
    """``dpi`` when it is a number in :data:`DPI_RANGE`, else InvalidInputError naming it and the range."""
    from .errors import InvalidInputError

    lo, hi = DPI_RANGE
    if isinstance(dpi, bool) or not isinstance(dpi, int | float) or not lo <= dpi <= hi:
        raise InvalidInputError(f"{name} must be a number in {lo}..{hi}, got {dpi!r}")
    return dpi


def current(settings: Settings | None = None) -> Settings:
    """``settings`` when given, else the environment's (``MINIMAXVL_*`` over the defaults)."""
    return settings if isinstance(settings, Settings) else Settings.from_env()


def _split_list(value: str) -> list[str]:
    return [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]


class Settings(BaseModel):
    """Endpoint, model, limits and cache location; build with :meth:`from_env` to honour ``MINIMAXVL_*``."""

    base_url: str = Field(DEFAULT_BASE_URL, description="OpenAI-compatible endpoint (vLLM) ending in /v1.")
    base_urls: list[str] = Field(default_factory=list, description="Several replicas; overrides base_url.")
    api_key: SecretStr = Field(
        SecretStr("EMPTY"),
        description="Bearer token (vLLM accepts any unless started with --api-key); never shown in a repr.",
    )
    model: str = Field(DEFAULT_MODEL, description="Served model name as /v1/models lists it.")
    timeout: float = Field(300.0, gt=0, description="Seconds per HTTP request.")
    max_retries: int = Field(4, ge=0, description="Retries on 429, 5xx and connection errors.")
    max_concurrency: int = Field(16, ge=1, description="In-flight requests per client (async batches).")
    adaptive: bool = Field(False, description="Adapt in-flight requests to vLLM's /metrics (backpressure).")
    max_images_per_request: int = Field(4, ge=1, description="Server's --limit-mm-per-prompt image count.")
    max_model_len: int | None = Field(None, ge=256, description="Context length; None reads /v1/models.")
    max_tokens: int = Field(2048, ge=1, description="Default completion budget per request.")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    jpeg_quality: int = Field(90, ge=1, le=100)
    allowed_roots: list[Path] = Field(
        default_factory=lambda: [Path.cwd()],
        description="Folders local inputs must lie in (MINIMAXVL_ALLOWED_ROOTS, os.pathsep-separated).",
    )
    allow_urls: bool = Field(False, description="Fetch http(s) inputs at all (MINIMAXVL_ALLOW_URLS).")
    url_allowlist: list[str] = Field(
        default_factory=list, description="Hosts (``host`` or ``host:port``) allowed when allow_urls."
    )
    allow_private_hosts: bool = Field(
        False, description="Allow loopback/private URL targets (MINIMAXVL_ALLOW_PRIVATE_HOSTS); trusted only."
    )
    max_pixels: int = Field(
        150_000_000, gt=0, description="Largest decoded image or rendered PDF page, in pixels."
    )
    cache_dir: Path = Field(default_factory=lambda: Path(".minimaxvl-cache"))
    dpi: int = Field(
        DEFAULT_DPI, ge=DPI_RANGE[0], le=DPI_RANGE[1], description="PDF rendering resolution (MINIMAXVL_DPI)."
    )
    workers: int | None = Field(
        None,
        ge=0,
        description="Page-work processes (render, checks, encode); 0 in-process; None from the cores "
        "(in-process for jobs under 8 pages). See minimaxvl_tools.page_workers.",
    )
    worker_send: bool = Field(
        True,
        description="With workers, each worker process also sends its pages (own connections and event "
        "loop), so no one event loop bounds throughput (MINIMAXVL_WORKER_SEND). See "
        "minimaxvl_tools.page_senders.",
    )

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")

    def __repr_args__(self) -> Any:
        """Repr fields with URL credentials redacted (the API key is a SecretStr already)."""
        for name, value in super().__repr_args__():
            if name == "base_url" and isinstance(value, str):
                value = redact_url(value)
            elif name == "base_urls" and isinstance(value, list):
                value = [redact_url(u) for u in value]
            yield name, value

    @property
    def endpoints(self) -> list[str]:
        """All base URLs this configuration names (replicas first, else the single base_url)."""
        return [u.rstrip("/") for u in self.base_urls] or [self.base_url]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``MINIMAXVL_*`` variables, with explicit (non-None) ``overrides`` winning."""
        env = dict(os.environ if env is None else env)
        data: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None or raw == "":
                continue
            ann = info.annotation
            if name in {"base_urls", "url_allowlist"}:
                data[name] = _split_list(raw)
            elif name == "allowed_roots":
                data[name] = [Path(p) for p in raw.split(os.pathsep) if p]
            elif ann is bool:
                data[name] = raw.strip().lower() in {"1", "true", "yes", "on"}
            else:
                data[name] = raw
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)


__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_DPI",
    "DEFAULT_MODEL",
    "DPI_RANGE",
    "ENV_PREFIX",
    "Settings",
    "check_dpi",
    "current",
]
