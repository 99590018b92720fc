"""What the test double answers: scripted :class:`Reply` values, vLLM-shaped :class:`HTTPError` bodies,
its deterministic text token count, and minimal instances of JSON schemas for ``json_schema`` requests."""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("429", "500", "503", "drop", "partial", "malformed", "timeout")
DEFAULT_TEXT = "This is a scripted answer from LocalVLLMServer."


def estimate_tokens(text: str) -> int:
    """The server's deterministic text token count: ceil(utf-8 bytes / 4) (no tokenizer offline)."""
    return math.ceil(len(text.encode("utf-8")) / 4)


@dataclass
class Reply:
    """One scripted answer: text (or tool calls), finish reason, optional HTTP status / raw body / delay."""

    text: str = ""
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    status: int = 200
    error: str | None = None
    raw_body: str | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: str | dict[str, Any] | Reply) -> Reply:
        """A Reply from a string (the text), a dict of Reply fields (``content`` = ``text``) or a Reply."""
        if isinstance(value, Reply):
            return value
        if isinstance(value, str):
            return cls(text=value)
        if isinstance(value, dict):
            data = dict(value)
            if "content" in data and "text" not in data:
                data["text"] = data.pop("content")
            if "text" in data and not isinstance(data["text"], str):
                data["text"] = json.dumps(data["text"])
            return cls(**data)
        raise TypeError(f"a reply must be str, dict or Reply, got {type(value).__name__}")


class HTTPError(Exception):
    """An error answer with vLLM's JSON body shape."""

    def __init__(self, status: int, message: str, *, type_: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.type = type_ or {400: "BadRequestError", 404: "NotFoundError", 429: "RateLimitError"}.get(
            status, "InternalServerError"
        )

    def body(self) -> dict[str, Any]:
        """vLLM >= 0.10's ErrorResponse: ``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {"message": self.message, "type": self.type, "param": self.param, "code": self.status}
        }


def default_reply(body: dict[str, Any]) -> Reply:
    """The answer when nothing is scripted: a schema instance, ``{}`` for json_object, else fixed text."""
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        schema = (rf.get("json_schema") or {}).get("schema") or {}
        return Reply(text=json.dumps(schema_instance(schema)))
    if isinstance(rf, dict) and rf.get("type") == "json_object":
        return Reply(text="{}")
    return Reply(text=DEFAULT_TEXT)


def truncate(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """``text`` cut to ``max_tokens`` of :func:`estimate_tokens`, and whether it was cut."""
    if max_tokens is None or estimate_tokens(text) <= max_tokens:
        return text, False
    raw = text.encode("utf-8")[: max_tokens * 4]
    return raw.decode("utf-8", errors="ignore"), True


def pieces(text: str) -> Iterator[str]:
    """Word-sized pieces of ``text`` (each word with its trailing space): the deltas of a stream."""
    yield from re.findall(r"\S+\s*|\s+", text)


def schema_instance(schema: dict[str, Any], root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A minimal instance valid for a JSON schema (objects, arrays, enums, anyOf, $ref/$defs, bounds)."""
    root = schema if root is None else root
    if depth > 32:
        return None
    if "$ref" in schema:
        ref = schema["$ref"]
        node: Any = root
        for part in ref.lstrip("#/").split("/"):
            if part:
                node = node[part]
        return schema_instance(node, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return copy.deepcopy(schema["default"])
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = schema[key]
            non_null = [o for o in options if o.get("type") != "null"]
            return schema_instance((non_null or options)[0], root, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for sub in schema["allOf"]:
            merged.update(sub)
        return schema_instance(merged, root, depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if typ is None:
        typ = "object" if "properties" in schema else "string"
    if typ == "object":
        props = schema.get("properties", {})
        return {k: schema_instance(v, root, depth + 1) for k, v in props.items()}
    if typ == "array":
        n = int(schema.get("minItems", 0))
        items = schema.get("items", {})
        if isinstance(items, list):
            return [schema_instance(s, root, depth + 1) for s in items]
        return [schema_instance(items, root, depth + 1) for _ in range(n)]
    if typ in ("integer", "number"):
        lo = schema.get("minimum", schema.get("exclusiveMinimum"))
        val: float = 0 if lo is None else lo
        if "exclusiveMinimum" in schema and "minimum" not in schema:
            val = lo + 1
        hi = schema.get("maximum")
        if hi is not None and val > hi:
            val = hi
        return int(val) if typ == "integer" else float(val)
    if typ == "boolean":
        return False
    if typ == "null":
        return None
    n = int(schema.get("minLength", 0))
    return "x" * n


__all__ = [
    "DEFAULT_TEXT",
    "FAULT_KINDS",
    "HTTPError",
    "Reply",
    "default_reply",
    "estimate_tokens",
    "pieces",
    "schema_instance",
    "truncate",
]
