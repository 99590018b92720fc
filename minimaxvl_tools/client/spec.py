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
from .types import estimate_text_tokens

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


def spec_of(client: MiniMaxVLClient, options: Mapping[str, Any] | None, **settings: Any) -> ClientSpec | None:
    """``client``'s spec with ``settings`` changed (e.g. a share of ``max_concurrency``), from its
    constructor ``options``; None when it cannot be rebuilt faithfully: a subclass, or a limiter
    (``options`` None) or text estimate of the caller's own."""
    from .core import MiniMaxVLClient

    if type(client) is not MiniMaxVLClient or options is None:
        return None
    if client.budget.estimate is not estimate_text_tokens:
        return None
    update = dict(settings)
    if client.settings.max_model_len is None and client.budget.cached_max_model_len:
        update["max_model_len"] = client.budget.cached_max_model_len  # no /v1/models call per process
    return ClientSpec(client.settings.model_copy(update=update), dict(options))


__all__ = ["ClientSpec", "spec_of"]
