"""A responder for :class:`LocalVLLMServer` that answers like MiniMax-VL-01 in its native call format.

TEST DOUBLE, not a model: it reads the request the way the real model would see it (tool definitions
appended to the system prompt by :func:`~minimaxvl_tools.tool_format.render_tools`, or the ``tools`` the
template renders as ``function_setting`` turns; the last message; function results) and answers by rule:

* ``response_format`` json_schema -> a minimal schema-valid JSON instance;
* last message from the user, tools present and the user (or a "You must call" instruction) asks for one
  -> a call of the chosen tool, ``functions.NAME({json})`` in a fenced block as vLLM returns it (the
  ``<function_call>`` special token stripped), arguments generated from the tool's JSON schema and the user's
  words (numbers, quoted strings);
* last message a function result -> text quoting the result;
* anything else -> plain text.

Use: ``server.set_responder(native_responder)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..tool_format import render_call
from .server import schema_instance

__all__ = ["generate_args", "native_responder", "request_tools"]

_TOOLS_HEADER = "You can call the following functions (one JSON definition per line):"
_MUST_CALL_RE = re.compile(r"You must call the function ([A-Za-z_][A-Za-z0-9_-]*)")
_ASKS_FOR_TOOL_RE = re.compile(r"\b(tool|tools|function|use|using|call)\b", re.IGNORECASE)


def _text(message: Mapping[str, Any]) -> str:
    """All text parts of a message joined (content may be a string or a list of parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def request_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The function definitions the model would see: request ``tools`` and/or those in the system prompt."""
    found: list[dict[str, Any]] = []
    for tool in body.get("tools") or []:
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if isinstance(fn, dict) and fn.get("name"):
            found.append(fn)
    for msg in body.get("messages") or []:
        if msg.get("role") != "system":
            continue
        text = _text(msg)
        if _TOOLS_HEADER not in text:
            continue
        for line in text.split(_TOOLS_HEADER, 1)[1].splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and obj.get("name"):
                found.append(obj)
    return found


def generate_args(schema: Mapping[str, Any], user_text: str) -> dict[str, Any]:
    """Arguments for a call: required properties filled from the user's words, else minimal valid values.

    Numbers take the first number in the text, strings the first quoted string (else the first capitalised
    word, else ``"value"``), enums their first member, booleans ``true``, arrays ``[]``.
    """
    numbers = re.findall(r"-?\d+(?:\.\d+)?", user_text)
    quoted = re.findall(r"'([^']+)'|\"([^\"]+)\"", user_text)
    words = [w for w in re.findall(r"\b[A-Z][\w-]+", user_text) if w.lower() not in {"what", "use", "using"}]
    props: Mapping[str, Any] = schema.get("properties") or {}
    required = list(schema.get("required") or [])
    args: dict[str, Any] = {}
    for name in required:
        prop = props.get(name) or {}
        typ = prop.get("type")
        if prop.get("enum"):
            args[name] = prop["enum"][0]
        elif typ == "integer":
            args[name] = int(float(numbers[0])) if numbers else 1
        elif typ == "number":
            args[name] = float(numbers[0]) if numbers else 1.0
        elif typ == "string":
            if quoted:
                args[name] = quoted[0][0] or quoted[0][1]
            else:
                args[name] = words[-1] if words else "value"
        elif typ == "boolean":
            args[name] = True
        else:
            args[name] = schema_instance(dict(prop)) if isinstance(prop, dict) else None
    return args


def _pick_tool(tools: list[dict[str, Any]], user_text: str, system_text: str) -> dict[str, Any] | None:
    """The tool to call, or None when the user did not ask for one."""
    forced = _MUST_CALL_RE.search(system_text)
    if forced:
        return next((t for t in tools if t["name"] == forced.group(1)), tools[0])
    lowered = user_text.lower()
    for t in tools:
        if t["name"].lower() in lowered:
            return t
    for t in tools:
        if any(len(w) > 3 and w in lowered for w in t["name"].lower().split("_")):
            return t
    if "You must call one of the functions" in system_text or _ASKS_FOR_TOOL_RE.search(user_text):
        return tools[0]
    return None


def _result_text(message: Mapping[str, Any]) -> str:
    """The readable result inside a function message (JSON string decoded, quoted-data fence unwrapped)."""
    text = _text(message).strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if isinstance(value, str):
        m = re.search(r"(`{3,})text\n(.*)\n\1", value, re.DOTALL)
        return m.group(2) if m else value
    return json.dumps(value, ensure_ascii=False)


def native_responder(body: dict[str, Any]) -> str:
    """Answer one chat request the way MiniMax-VL-01 would, in its native call format (see module doc)."""
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        return json.dumps(schema_instance((rf.get("json_schema") or {}).get("schema") or {}))
    if isinstance(rf, dict) and rf.get("type") == "json_object":
        return "{}"
    messages = body.get("messages") or []
    if not messages:
        return "Hello."
    last = messages[-1]
    if last.get("role") == "function":
        return f"The result of {last.get('name', 'the function')} is: {_result_text(last)}"
    system_text = "\n".join(_text(m) for m in messages if m.get("role") == "system")
    user_text = _text(last)
    tools = request_tools(body)
    if last.get("role") == "user" and tools:
        tool = _pick_tool(tools, user_text, system_text)
        if tool is not None:
            args = generate_args(tool.get("parameters") or {}, user_text)
            return "I will use a tool.\n" + render_call(tool["name"], args, token=False)
    return "Hello! This is a scripted MiniMax-VL-01 answer."
