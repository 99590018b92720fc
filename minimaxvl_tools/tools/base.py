"""MiniMaxVLBaseTool: the shared client, input policy and error handling of every MiniMax-VL-01 tool.

Tools take sources as strings (a path under ``allowed_roots``, an http(s) URL when ``allow_urls``, or a
``data:`` URL) and answer with ``(content, artifact)``: short text for the agent, a pydantic result for
programs. Our typed errors become :class:`~langchain_core.tools.ToolException` text naming the input, so
``handle_tool_error=True`` hands the agent a message it can act on instead of a crash.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from langchain_core.tools import BaseTool, ToolException
from pydantic import ConfigDict, Field, model_validator

from ..client import MiniMaxVLClient
from ..errors import AccessDeniedError, InvalidInputError, MiniMaxVLError, redact_url
from ..images.policy import InputPolicy
from ..pages import PageImage, iter_pages
from ..settings import DPI_RANGE, Settings

T = TypeVar("T")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def _short(source: str, limit: int = 100) -> str:
    if source.startswith("data:"):
        return f"data URL ({source[:30].split(',', 1)[0]}, {len(source)} chars)"
    return source if len(source) <= limit else source[: limit - 3] + "..."


def shared_client(
    client: MiniMaxVLClient | None, settings: Settings | None
) -> tuple[MiniMaxVLClient, Settings]:
    """The client tools share (the one given, else one built from ``settings`` or the environment) and
    the settings that go with it (those given, else the client's)."""
    if client is None:
        client = MiniMaxVLClient(settings or Settings.from_env())
    return client, settings if settings is not None else client.settings


class MiniMaxVLBaseTool(BaseTool):
    """Base of the MiniMax-VL-01 tools: one client, an input policy, errors as ToolException text."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: MiniMaxVLClient | None = Field(
        default=None, exclude=True, description="Shared client; built from Settings.from_env() when None."
    )
    settings: Settings | None = Field(default=None, exclude=True)
    allowed_roots: list[Path] | None = Field(
        default=None, description="Folders local files must be inside (default: settings, i.e. the cwd)."
    )
    allow_urls: bool | None = Field(None, description="Allow http(s) URLs (default: settings; off).")
    allow_private_hosts: bool | None = Field(
        None, description="Allow loopback/private URL hosts (default: settings; off). Trusted servers only."
    )
    input_policy: InputPolicy | None = Field(
        default=None, exclude=True, description="A ready policy; overrides the four fields above when set."
    )
    max_content_chars: int = Field(12_000, ge=200, description="Longest content returned to the agent.")
    dpi: int | None = Field(
        None,
        ge=DPI_RANGE[0],
        le=DPI_RANGE[1],
        description="PDF rendering resolution (default: settings, MINIMAXVL_DPI, else 200).",
    )
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Callable[[ToolException], str] | None = True

    @model_validator(mode="after")
    def _build_client(self) -> MiniMaxVLBaseTool:
        self.client, self.settings = shared_client(self.client, self.settings)
        # what is not given here comes from the settings (so MINIMAXVL_ALLOWED_ROOTS etc. reach the tool)
        if self.allowed_roots is None:
            self.allowed_roots = list(self.settings.allowed_roots)
        if self.allow_urls is None:
            self.allow_urls = self.settings.allow_urls
        if self.allow_private_hosts is None:
            self.allow_private_hosts = self.settings.allow_private_hosts
        if self.dpi is None:
            self.dpi = self.settings.dpi
        return self

    # ------------------------------------------------------------------ inputs
    @property
    def vl_client(self) -> MiniMaxVLClient:
        """The client (never None after validation)."""
        assert self.client is not None
        return self.client

    @property
    def policy(self) -> InputPolicy:
        """Input policy of this tool: ``input_policy`` when given, else the settings' policy with this
        tool's allowed_roots, allow_urls and allow_private_hosts."""
        if self.input_policy is not None:
            return self.input_policy
        assert self.settings is not None
        return InputPolicy.from_settings(
            self.settings,
            allowed_roots=list(self.allowed_roots) if self.allowed_roots is not None else None,
            allow_urls=self.allow_urls,
            allow_private_hosts=self.allow_private_hosts,
        )

    def check_source(self, source: str) -> str:
        """Refuse a source before any I/O: data URLs, http(s) URLs (when allowed), paths in the roots."""
        if not isinstance(source, str) or not source.strip():
            raise InvalidInputError(
                "an empty source was given: pass a file path, an http(s) URL or a data URL"
            )
        src = source.strip()
        if src.startswith("data:"):
            return src
        m = _SCHEME.match(src)
        if m and len(m.group(1)) > 1:  # a scheme (a drive letter such as C: is one character)
            scheme = m.group(1).lower()
            if scheme not in ("http", "https"):
                raise AccessDeniedError(
                    f"{scheme}: URLs are not accepted: pass a file path inside the allowed folders, "
                    "an http(s) URL or a data: URL"
                )
            self.policy.check_url(src)  # disabled URLs, loopback/private/link-local hosts
            return src
        path = self.policy.check_path(src)
        if not path.exists():
            raise InvalidInputError(
                f"file not found: {src!r} (resolved to {str(path)!r}); check the path and the working folder"
            )
        return src

    def load_pages(
        self,
        source: str,
        *,
        pages: str | Sequence[int] | None = None,
        render: bool = True,
        fit: Callable[[int, int], tuple[int, int] | None] | None = None,
        text: bool = True,
    ) -> list[PageImage]:
        """Every selected page of one source, checked against the policy (PDF pages rendered at ``dpi``,
        or straight at the size ``fit`` asks for; ``text=False`` skips PDF text layers)."""
        src = self.check_source(source)
        return list(
            iter_pages(src, pages=pages, dpi=self.dpi, policy=self.policy, render=render, fit=fit, text=text)
        )

    # ------------------------------------------------------------------ errors
    def _fail(self, source: Any, exc: BaseException) -> ToolException:
        shown = (
            ", ".join(_short(s) for s in source) if isinstance(source, list | tuple) else _short(str(source))
        )
        return ToolException(redact_url(f"{self.name} failed for {shown!r}: {exc}"))

    def guard(self, source: Any, fn: Callable[[], T]) -> T:
        """Run ``fn``; our typed errors come back as ToolException naming ``source``."""
        try:
            return fn()
        except ToolException:
            raise
        except MiniMaxVLError as e:
            raise self._fail(source, e) from e

    async def aguard(self, source: Any, fn: Callable[[], Awaitable[T]]) -> T:
        """Async :meth:`guard`."""
        try:
            return await fn()
        except ToolException:
            raise
        except MiniMaxVLError as e:
            raise self._fail(source, e) from e

    def truncate(self, text: str) -> str:
        """``text`` cut to ``max_content_chars`` with a note that the artifact holds the rest."""
        if len(text) <= self.max_content_chars:
            return text
        cut = text[: self.max_content_chars]
        nl = cut.rfind("\n")
        if nl > self.max_content_chars * 0.8:
            cut = cut[:nl]
        rest = len(text) - len(cut)
        return f"{cut}\n\n[truncated: {rest} more characters; the full result is in the tool artifact]"


class CutRetryTool(MiniMaxVLBaseTool):
    """A tool asking one request whose reply, when cut at ``max_tokens`` (a long JSON, a long chain of
    reasoning), the client asks again once with more room (its ``max_retry_tokens`` option)."""

    max_tokens: int = Field(
        2048,
        ge=64,
        description="Completion budget of the request; a reply cut there (finish_reason=length) is asked "
        "again once with twice the budget.",
    )
    max_retry_tokens: int = Field(
        8192,
        ge=64,
        description="Cap on that one retry's budget (the context room caps it too); at most max_tokens "
        "turns the retry off.",
    )

    def budget(self) -> dict[str, int]:
        """The client options of the request's budget and of its one retry with more room."""
        return {"max_tokens": self.max_tokens, "max_retry_tokens": self.max_retry_tokens}


__all__ = ["CutRetryTool", "MiniMaxVLBaseTool", "shared_client"]
