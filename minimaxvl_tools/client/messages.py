"""Messages in MiniMax-VL-01's chat format: content as a list of parts, no ``tool`` role, no literal
``<image>``; assistant tool calls re-rendered as the model's native call text (``tool_format``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidInputError
from ..images.encode import EncodedImage
from ..tool_format import format_assistant_tool_calls

IMAGE_PLACEHOLDER = "<image>"


def check_text(text: str, where: str) -> None:
    """Refuse text holding the literal image token (it would desynchronise the template's images)."""
    if IMAGE_PLACEHOLDER in text:
        raise InvalidInputError(
            f"{where} contains the literal {IMAGE_PLACEHOLDER!r}, MiniMax-VL-01's image token: remove it "
            "and pass images as image parts (images=...)"
        )


def _parts(content: Any, index: int) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise InvalidInputError(f"history message #{index} content must be a string or list of parts")
    parts: list[dict[str, Any]] = []
    for p in content:
        if isinstance(p, str):
            parts.append({"type": "text", "text": p})
        elif isinstance(p, dict) and p.get("type") in ("text", "image_url"):
            parts.append(dict(p))
        else:
            raise InvalidInputError(
                f"history message #{index} has a content part {p!r:.80}: use text or image_url parts"
            )
    return parts


def normalize_message(msg: Mapping[str, Any], index: int) -> dict[str, Any]:
    """One history message in the template's shape (``tool`` -> ``function``; tool calls as call text)."""
    if not isinstance(msg, Mapping) or "role" not in msg:
        raise InvalidInputError(f"history message #{index} must be a dict with 'role' and 'content'")
    role = msg["role"]
    out: dict[str, Any] = {}
    parts = _parts(msg.get("content"), index)
    for p in parts:
        if p["type"] == "text":
            check_text(str(p.get("text", "")), f"history message #{index}")
    if role == "tool":
        role = "function"
        out["name"] = str(msg.get("name") or msg.get("tool_call_id") or "tool")
    elif role == "function":
        out["name"] = str(msg.get("name") or "function")
    elif role not in ("system", "user", "assistant"):
        raise InvalidInputError(
            f"history message #{index} has role {role!r}: use system, user, assistant, tool or function"
        )
    if role == "assistant" and msg.get("tool_calls"):
        parts.append({"type": "text", "text": format_assistant_tool_calls("", msg["tool_calls"])})
    out["role"] = role
    out["content"] = parts
    return out


def build_messages(
    text: str,
    images: Sequence[EncodedImage] = (),
    *,
    system: str | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    images_first: bool = True,
) -> list[dict[str, Any]]:
    """Messages for one request: ``system`` (unless empty or the history has one), history, user turn last."""
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a string, got {type(text).__name__}")
    check_text(text, "the prompt text")
    msgs: list[dict[str, Any]] = []
    hist = [normalize_message(m, i) for i, m in enumerate(history or ())]
    if system and not any(m["role"] == "system" for m in hist):
        check_text(system, "the system prompt")
        msgs.append({"role": "system", "content": [{"type": "text", "text": system}]})
    msgs.extend(hist)
    img_parts = [im.to_part() for im in images]
    text_parts = [{"type": "text", "text": text}] if text else []
    parts = img_parts + text_parts if images_first else text_parts + img_parts
    if parts:
        msgs.append({"role": "user", "content": parts})
    if not msgs or msgs[-1]["role"] == "system":
        raise InvalidInputError("nothing to send: give text, images or a history ending in a user turn")
    return msgs


__all__ = ["IMAGE_PLACEHOLDER", "build_messages", "check_text", "normalize_message"]
