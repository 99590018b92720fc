"""Rendering for the model: tool definitions, native call text, and tool results as ``function`` turns."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from ..errors import InvalidInputError
from .calls import FUNCTION_CALL_TOKEN, ParsedCall, check_name
from .quoting import neutralize_markers

CALL_INSTRUCTIONS = (
    "To call a function, reply with a block of exactly this form, one block per call "
    "(write several blocks for several calls), with the arguments as one JSON object:\n"
    "<function_call>```typescript\n"
    'functions.FUNCTION_NAME({"argument_name": "value"})\n'
    "```\n"
    "After the call, stop and wait: the result comes back in a function_response turn."
)
"""Default instruction text appended by :func:`render_tools`; mirrors the model's native call format."""


def _function_of(tool: Mapping[str, Any]) -> dict[str, Any]:
    """Return the bare ``{"name", "description", "parameters"}`` object of an OpenAI-style tool dict."""
    if not isinstance(tool, Mapping):
        raise InvalidInputError(f"tool definitions must be dicts, got {type(tool).__name__}")
    fn = tool.get("function") if tool.get("type", "function") == "function" and "function" in tool else tool
    if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise InvalidInputError(
            "each tool must be {'type': 'function', 'function': {'name': ..., 'parameters': ...}} or a bare "
            f"function dict with a non-empty 'name'; got keys {sorted(tool)}"
        )
    out: dict[str, Any] = {"name": fn["name"]}
    if fn.get("description"):
        out["description"] = fn["description"]
    out["parameters"] = fn.get("parameters") or {"type": "object", "properties": {}}
    return out


def _ts_type(schema: Any, indent: str) -> str:
    """A TypeScript type for a JSON schema (best effort: unknown constructs become ``any``)."""
    if not isinstance(schema, Mapping):
        return "any"
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return " | ".join(_ts_type(s, indent) for s in schema[key])
    typ = schema.get("type")
    if isinstance(typ, list):
        return " | ".join(_ts_type({**schema, "type": t}, indent) for t in typ)
    if typ == "string":
        return "string"
    if typ in ("number", "integer"):
        return "number"
    if typ == "boolean":
        return "boolean"
    if typ == "null":
        return "null"
    if typ == "array":
        inner = _ts_type(schema.get("items"), indent)
        return f"({inner})[]" if "|" in inner else f"{inner}[]"
    if typ == "object" or "properties" in schema:
        return _ts_object(schema, indent)
    return "any"


def _ts_object(schema: Mapping[str, Any], indent: str) -> str:
    """A TypeScript object literal type with ``// description`` comments, ``?`` for optional properties."""
    props = schema.get("properties") or {}
    if not props:
        return "{}" if schema.get("additionalProperties") is False else "Record<string, any>"
    required = set(schema.get("required") or [])
    inner = indent + "  "
    lines = ["{"]
    for pname, pschema in props.items():
        desc = pschema.get("description") if isinstance(pschema, Mapping) else None
        if desc:
            lines.extend(f"{inner}// {d}" for d in str(desc).splitlines())
        opt = "" if pname in required else "?"
        default = ""
        if isinstance(pschema, Mapping) and "default" in pschema:
            default = f" // default: {json.dumps(pschema['default'], ensure_ascii=False)}"
        lines.append(f"{inner}{pname}{opt}: {_ts_type(pschema, inner)},{default}")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def render_tools(
    tools: Sequence[Mapping[str, Any]],
    *,
    style: Literal["json", "typescript"] = "json",
    instructions: str | None = CALL_INSTRUCTIONS,
) -> str:
    """Render tool definitions as text to append to the system prompt.

    ``style="json"`` (default) lists one ``{"name", "description", "parameters"}`` JSON object per line, the
    same object the chat template shows the model in its ``function_setting=functions`` turns.
    ``style="typescript"`` renders a ``namespace functions { type NAME = (_: {...}) => any; }`` declaration,
    the style the call syntax ``functions.NAME(...)`` comes from (an alternative, not what the template does).
    ``instructions`` (``None`` to leave out) is appended after the definitions.

    Accepts OpenAI tool dicts (``{"type": "function", "function": {...}}``) or bare function dicts; raises
    :class:`InvalidInputError` for anything else, or for duplicate names.
    """
    fns = [_function_of(t) for t in tools]
    names = [f["name"] for f in fns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInputError(f"duplicate tool names {dupes}: each tool needs a unique name")
    if not fns:
        return ""
    if style == "json":
        body = "You can call the following functions (one JSON definition per line):\n" + "\n".join(
            json.dumps(f, ensure_ascii=False) for f in fns
        )
    elif style == "typescript":
        lines = ["You can call the following functions:", "namespace functions {", ""]
        for f in fns:
            if f.get("description"):
                lines.extend(f"// {d}" for d in str(f["description"]).splitlines())
            lines.append(f"type {f['name']} = (_: {_ts_type(f['parameters'], '')}) => any;")
            lines.append("")
        lines.append("} // namespace functions")
        body = "\n".join(lines)
    else:
        raise InvalidInputError(f"style must be 'json' or 'typescript', got {style!r}")
    return body + ("\n\n" + instructions if instructions else "")


def render_tool_setting_turns(tools: Sequence[Mapping[str, Any]], *, unwrap: bool = False) -> str:
    """Reproduce the chat template's tool section exactly (for raw ``/v1/completions`` prompts and tests).

    One ``<beginning_of_sentence>system function_setting=functions\\n{tojson}<end_of_sentence>\\n`` turn per
    tool, JSON as Hugging Face's ``tojson`` filter writes it (``ensure_ascii=False``, default separators, keys
    unsorted). ``unwrap=True`` renders the bare function object (as the guide's prose shows) instead of the
    dict as given (as vLLM passes it).
    """
    out = []
    for tool in tools:
        obj = _function_of(tool) if unwrap else dict(tool)
        out.append(
            "<beginning_of_sentence>system function_setting=functions\n"
            + json.dumps(obj, ensure_ascii=False)
            + "<end_of_sentence>\n"
        )
    return "".join(out)


def render_call(name: str, args: Mapping[str, Any] | None = None, *, token: bool = True) -> str:
    """One call in the native format: ``<function_call>```typescript\\nfunctions.NAME({json})\\n``` ``."""
    check_name(name)
    arg_text = json.dumps(dict(args or {}), ensure_ascii=False)
    return f"{FUNCTION_CALL_TOKEN if token else ''}```typescript\nfunctions.{name}({arg_text})\n```"


def _call_name_args(call: Any) -> tuple[str, dict[str, Any]]:
    """Name and args of a ParsedCall, a LangChain ToolCall dict or an OpenAI tool_call dict."""
    if isinstance(call, ParsedCall):
        return call.name, call.args
    if isinstance(call, Mapping):
        if isinstance(call.get("function"), Mapping):  # OpenAI {"id", "type", "function": {...}}
            fn = call["function"]
            name, args = fn.get("name"), fn.get("arguments", {})
        else:  # LangChain ToolCall {"name", "args", "id"}
            name, args = call.get("name"), call.get("args", call.get("arguments", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"tool call {name!r} has arguments that are not JSON: {exc}") from exc
        if isinstance(name, str) and isinstance(args, Mapping):
            return name, dict(args)
    raise InvalidInputError(
        f"cannot render tool call {call!r}: expected ParsedCall, {{'name', 'args'}} or OpenAI tool_call dict"
    )


def format_assistant_tool_calls(content: str, calls: Iterable[Any], *, token: bool = True) -> str:
    """Re-render an assistant turn with its calls as native call text (the template drops ``tool_calls``).

    ``calls`` items may be :class:`ParsedCall`, LangChain ``ToolCall`` dicts or OpenAI ``tool_calls`` dicts.
    The result parses back (:func:`parse_tool_calls`) to the same names and arguments.
    """
    blocks = [render_call(*_call_name_args(c), token=token) for c in calls]
    parts = [content.rstrip()] if content and content.strip() else []
    return "\n".join(parts + blocks)


def format_tool_result(name: str, content: Any) -> dict[str, Any]:
    """A ``function``-role message carrying a tool's result, in the shape the template reads.

    The template renders ``{"name": "<name>", "response": <content[0].text>}`` by string concatenation, so the
    text must be JSON: a string already holding a JSON object/array is kept, any other string becomes a JSON
    string, other values are JSON-encoded. LangChain content-part lists are reduced to their text parts.
    Special-token strings (``<end_of_sentence>``, ``<function_call>``, ``<image>`` ...) are neutralized, since
    the server would otherwise tokenize them as real control tokens.
    """
    check_name(name)
    if isinstance(content, list) and all(isinstance(p, (str, Mapping)) for p in content):
        texts: list[str] = []
        dropped = 0
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            else:
                dropped += 1
        content = "\n".join(texts) + (f"\n[{dropped} non-text part(s) omitted]" if dropped else "")
    if isinstance(content, str):
        text = content.strip()
        is_json_container = False
        if text and text[0] in "{[":
            try:
                is_json_container = isinstance(json.loads(text), (dict, list))
            except json.JSONDecodeError:
                is_json_container = False
        text = text if is_json_container else json.dumps(content, ensure_ascii=False)
    else:
        text = json.dumps(content, ensure_ascii=False, default=str)
    return {"role": "function", "name": name, "content": [{"type": "text", "text": neutralize_markers(text)}]}


__all__ = [
    "CALL_INSTRUCTIONS",
    "format_assistant_tool_calls",
    "format_tool_result",
    "render_call",
    "render_tool_setting_turns",
    "render_tools",
]
