"""Parsed native calls (what :mod:`.parse` returns) and the rule tool names must follow."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError

FUNCTION_CALL_TOKEN = "<function_call>"
"""Special token MiniMax-01 models emit before a call block (dropped when special tokens are skipped)."""

IdFactory = Callable[[int, str, dict[str, Any]], str]
"""``(index among the valid calls of one message, name, args) -> id``."""

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
"""A tool name: the template pastes it raw and the call syntax reads it as an identifier."""


@dataclass(frozen=True)
class ParsedCall:
    """One well-formed call: ``name``, decoded ``args`` object, an ``id`` and the ``raw`` call text."""

    name: str
    args: dict[str, Any]
    id: str
    raw: str


@dataclass(frozen=True)
class InvalidCall:
    """Call-looking text that could not be decoded; ``error`` says why. Never raised, always reported."""

    name: str | None
    raw: str
    error: str


@dataclass(frozen=True)
class ParsedOutput:
    """A model turn split into plain ``content`` and its ``tool_calls`` / ``invalid_calls``."""

    content: str
    tool_calls: list[ParsedCall] = field(default_factory=list)
    invalid_calls: list[InvalidCall] = field(default_factory=list)


def default_call_id(index: int, name: str, args: dict[str, Any]) -> str:
    """Deterministic id: hash of position, name and canonical arguments (same output -> same ids)."""
    payload = json.dumps([index, name, args], sort_keys=True, ensure_ascii=False, default=str)
    return "call_" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


def check_name(name: str) -> None:
    """Reject names that would break the template's raw string interpolation or the call syntax."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidInputError(
            f"tool name {name!r} must match [A-Za-z_][A-Za-z0-9_-]* (it is pasted raw into the prompt)"
        )


__all__ = [
    "FUNCTION_CALL_TOKEN",
    "NAME_RE",
    "IdFactory",
    "InvalidCall",
    "ParsedCall",
    "ParsedOutput",
    "check_name",
    "default_call_id",
]
