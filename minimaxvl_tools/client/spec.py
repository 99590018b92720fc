"""What rebuilds a client in another process: its settings and constructor options, picklable.

Worker processes that send pages (:mod:`minimaxvl_tools.page_senders`) each build their own
:class:`~.core.MiniMaxVLClient` from a :class:`ClientSpec`: the same endpoints, key, budgets, retries and
profile, with its own connections, event loop and share of the concurrency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from .core import MiniMaxVLClient


@dataclass(frozen=True)
class ClientSpec:
    """A client's settings and keyword options; :meth:`build` makes an equivalent client."""

    settings: Settings
    options: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # the settings' repr keeps the key a SecretStr and URLs redacted
        return f"ClientSpec(settings={self.settings!r})"

    def build(self) -> MiniMaxVLClient:
        """A new client from this spec (in the calling process)."""
        from .core import MiniMaxVLClient

        return MiniMaxVLClient(self.settings, **dict(self.options))


__all__ = ["ClientSpec"]
