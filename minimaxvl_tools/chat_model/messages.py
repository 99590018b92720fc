"""Pure converters between LangChain messages and MiniMax-VL-01's messages, both ways.

Out: :func:`convert_messages` (content as part lists, calls re-rendered as native call text, tool results as
``function`` turns, images as :class:`_ImageRef` until :func:`fit_images` encodes them). In:
:func:`ai_message` and :func:`final_chunk` turn answers into ``AIMessage`` / ``AIMessageChunk`` with
``tool_calls`` parsed out of the text.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata

from ..client import ChatResult, MiniMaxVLClient, Usage
from ..errors import InvalidInputError
from ..images.encode import EncodedImage
from ..profile import MINIMAX_SYSTEM_PROMPT
from ..tool_format import (
    InvalidCall,
    ParsedCall,
    ParsedOutput,
    StreamingToolCallParser,
    format_assistant_tool_calls,
    format_tool_result,
    parse_tool_calls,
    quote_document_text,
)


def new_call_id(index: int, name: str, args: dict[str, Any]) -> str:
    """Unique call id (an agent may repeat the same call in later turns; ids must not collide)."""
    return "call_" + uuid.uuid4().hex[:24]


# ---------------------------------------------------------------------------------------------- images
class _ImageRef:
    """An image found in a LangChain message, before it is loaded, sized and encoded by the client."""

    __slots__ = ("source",)

    def __init__(self, source: Any) -> None:
        self.source = source


def _image_source(block: Mapping[str, Any]) -> Any | None:
    """The loadable source (data URL / URL string) of an image content block, or None if not an image.

    Understands OpenAI ``image_url`` parts, LangChain v0 ``{"type": "image", "source_type": ...}`` blocks,
    v1 ``{"type": "image", "base64"|"url": ..., "mime_type"}`` blocks and Anthropic ``source`` dicts.
    """
    btype = block.get("type")
    if btype == "image_url":
        url = block.get("image_url")
        url = url.get("url") if isinstance(url, Mapping) else url
        if not isinstance(url, str) or not url:
            raise InvalidInputError(f"image_url part without a URL: {dict(block)!r:.120}")
        return url
    if btype != "image":
        return None
    mime = block.get("mime_type") or "image/png"
    source_type = block.get("source_type")
    if source_type == "base64" or (source_type is None and block.get("base64")):
        data = block.get("data") if source_type == "base64" else block.get("base64")
        if not isinstance(data, str) or not data:
            raise InvalidInputError("base64 image block without data")
        return data if data.startswith("data:") else f"data:{mime};base64,{data}"
    if source_type == "url" or (source_type is None and block.get("url")):
        url = block.get("url")
        if not isinstance(url, str) or not url:
            raise InvalidInputError("url image block without a url")
        return url
    src = block.get("source")
    if isinstance(src, Mapping):  # Anthropic style
        if src.get("type") == "base64":
            return f"data:{src.get('media_type') or mime};base64,{src.get('data')}"
        if src.get("type") == "url":
            return src.get("url")
    raise InvalidInputError(
        f"unsupported image block {sorted(block)}: give base64 data or a URL (file ids are not supported)"
    )


def _split_content(content: Any, where: str) -> list[dict[str, Any] | _ImageRef]:
    """LangChain message content -> ordered text parts and image references (other blocks refused)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidInputError(f"{where}: content must be a string or a list of blocks")
    out: list[dict[str, Any] | _ImageRef] = []
    for block in content:
        if isinstance(block, str):
            if block:
                out.append({"type": "text", "text": block})
            continue
        if not isinstance(block, Mapping):
            raise InvalidInputError(f"{where}: content block {block!r:.80} is not a dict")
        btype = block.get("type")
        if btype == "text":
            text = block.get("text")
            if text:
                out.append({"type": "text", "text": str(text)})
            continue
        if btype in ("tool_use", "tool_call", "reasoning", "thinking", "non_standard"):
            continue  # provider bookkeeping blocks: the calls themselves are re-rendered from tool_calls
        src = _image_source(block)
        if src is None:
            raise InvalidInputError(
                f"{where}: content block of type {btype!r} is not supported by MiniMax-VL-01 (text and "
                "images only): convert PDFs to page images (minimaxvl_tools.pdf) and drop audio/video/files"
            )
        out.append(_ImageRef(src))
    return out


def _text_of(parts: Sequence[dict[str, Any] | _ImageRef]) -> str:
    return "\n".join(p["text"] for p in parts if isinstance(p, dict))


# ---------------------------------------------------------------------------------------------- messages
def _should_quote(setting: bool | Collection[str], name: str) -> bool:
    if isinstance(setting, bool):
        return setting
    return name in setting


def convert_messages(
    messages: Sequence[BaseMessage],
    *,
    system_prompt: str | None = MINIMAX_SYSTEM_PROMPT,
    tools_text: str = "",
    quote_tool_results: bool | Collection[str] = True,
) -> list[dict[str, Any]]:
    """LangChain messages -> MiniMax-VL-01 message dicts (content as part lists; images as ``_ImageRef``).

    * System messages are merged into one leading system turn (``system_prompt`` when there is none);
      ``tools_text`` (rendered tool definitions) is appended to it.
    * ``AIMessage.tool_calls`` are re-rendered as native call text (the template drops ``tool_calls``).
    * ``ToolMessage`` -> ``function`` role with ``{"name", "response"}``-ready JSON text, quoted as document
      data when ``quote_tool_results`` says so (True: all tools; a collection: those tool names); images in a
      tool result follow in a user turn "Image(s) returned by tool NAME:" (the template reads only the first
      text part of a function message).
    * Never emits the ``tool`` role.
    """
    system_texts: list[str] = []
    out: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for i, msg in enumerate(messages):
        where = f"message #{i} ({msg.type})"
        if isinstance(msg, SystemMessage) or (isinstance(msg, ChatMessage) and msg.role == "system"):
            parts = _split_content(msg.content, where)
            if any(isinstance(p, _ImageRef) for p in parts):
                raise InvalidInputError(f"{where}: images in a system message are not supported")
            system_texts.append(_text_of(parts))
        elif isinstance(msg, HumanMessage) or (isinstance(msg, ChatMessage) and msg.role == "user"):
            parts = _split_content(msg.content, where)
            if isinstance(msg, HumanMessage) and msg.name:
                pass  # the template has no per-user names; the content is what matters
            out.append({"role": "user", "content": parts or [{"type": "text", "text": ""}]})
        elif isinstance(msg, AIMessage) or (isinstance(msg, ChatMessage) and msg.role == "assistant"):
            parts = _split_content(msg.content, where)
            text = _text_of(parts)
            calls = list(getattr(msg, "tool_calls", None) or [])
            for call in calls:
                if call.get("id"):
                    call_names[str(call["id"])] = call["name"]
            if calls:
                text = format_assistant_tool_calls(text, calls)
            out.append({"role": "assistant", "content": [{"type": "text", "text": text}]})
        elif isinstance(msg, ToolMessage):
            name = msg.name or call_names.get(msg.tool_call_id) or "tool"
            parts = _split_content(msg.content, where)
            images = [p for p in parts if isinstance(p, _ImageRef)]
            text = _text_of(parts)
            if msg.status == "error":
                text = f"Error: {text}"
            if text and _should_quote(quote_tool_results, name):
                text = quote_document_text(text, source=f"tool {name}")
            if images:
                note = f"[{len(images)} image(s) follow in the next message]"
                text = f"{text}\n{note}" if text else note
            out.append(format_tool_result(name, text))
            if images:
                out.append(
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": f"Image(s) returned by tool {name}:"}],
                    }
                )
                out[-1]["content"].extend(images)
        else:
            role = getattr(msg, "role", msg.type)
            raise InvalidInputError(
                f"{where}: role {role!r} is not supported (system, user, assistant, tool)"
            )
    sys_text = "\n\n".join(t for t in system_texts if t) if system_texts else (system_prompt or "")
    if tools_text:
        sys_text = f"{sys_text}\n\n{tools_text}" if sys_text else tools_text
    if sys_text:
        out.insert(0, {"role": "system", "content": [{"type": "text", "text": sys_text}]})
    return out


def tool_choice_text(tool_choice: Any, names: Sequence[str]) -> str:
    """An instruction standing in for ``tool_choice`` (the native format has no forced-call mechanism)."""
    if tool_choice in (None, "auto", False):
        return ""
    if isinstance(tool_choice, Mapping):
        fn = tool_choice.get("function") if isinstance(tool_choice.get("function"), Mapping) else tool_choice
        tool_choice = fn.get("name")
    if tool_choice in ("any", "required", True):
        return "You must call one of the functions above in this answer."
    if isinstance(tool_choice, str) and tool_choice in names:
        return f"You must call the function {tool_choice} in this answer."
    raise InvalidInputError(
        f"tool_choice {tool_choice!r} is unknown: use auto, none, any or one of {list(names)}"
    )


# ---------------------------------------------------------------------------------------------- images
def fit_images(
    client: MiniMaxVLClient, converted: list[dict[str, Any]], max_tokens: int | None, mml: int
) -> list[dict[str, Any]]:
    """Load, size and encode every image with the client, shrinking them so the request fits the context.

    First pass: each image fitted to its best canvas (``prepare_images``). If text + images + the
    completion budget exceed ``max_model_len``, images are re-fitted under an equal per-image token cap;
    what is left over (cutting ``max_tokens`` or refusing) is the client's budgeting.
    """
    refs = [p for m in converted for p in m["content"] if isinstance(p, _ImageRef)]
    if not refs:
        return converted
    encoded = client.prepare_images([r.source for r in refs])

    def build(images: Sequence[EncodedImage]) -> list[dict[str, Any]]:
        it = iter(images)
        return [
            {
                **m,
                "content": [next(it).to_part() if isinstance(p, _ImageRef) else p for p in m["content"]],
            }
            for m in converted
        ]

    msgs = build(encoded)
    text_tokens, image_tokens, _ = client.count_tokens(msgs)
    budget = client.settings.max_tokens if max_tokens is None else max_tokens
    if text_tokens + image_tokens + budget > mml:
        floor = min(client.min_completion_tokens, budget)
        room = mml - text_tokens - max(floor, min(budget, mml // 4))
        cap = max(room // len(encoded), client.profile.min_image_tokens)
        encoded = client.prepare_images(encoded, max_tokens_per_image=cap)
        msgs = build(encoded)
    return msgs


# ---------------------------------------------------------------------------------------------- answers
def usage_metadata(usage: Usage) -> UsageMetadata:
    """LangChain usage of the client's :class:`Usage`."""
    return UsageMetadata(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
    )


def ai_message(result: ChatResult) -> AIMessage:
    """AIMessage of a client result: native calls parsed out of the text (not for structured answers)."""
    additional: dict[str, Any] = {}
    if result.parsed is not None:  # guided JSON: the text is the answer, never calls
        additional["parsed"] = result.parsed
        parsed = ParsedOutput(result.text)
    else:
        parsed = parse_tool_calls(result.text, id_factory=new_call_id)
    return AIMessage(
        content=parsed.content,
        tool_calls=[tool_call(c) for c in parsed.tool_calls],
        invalid_tool_calls=[invalid_tool_call(c) for c in parsed.invalid_calls],
        additional_kwargs=additional,
        usage_metadata=usage_metadata(result.usage),
        response_metadata={
            "model_name": result.model,
            "finish_reason": result.finish_reason,
            "model_provider": "minimax_vl",
        },
    )


def final_chunk(parser: StreamingToolCallParser, usage: Usage, model_name: str) -> tuple[str, AIMessageChunk]:
    """End of a stream: the last text delta, and a last chunk with the calls as ``tool_call_chunks``."""
    tail = parser.flush()
    out: ParsedOutput = parser.finish()
    chunks = [
        {"name": c.name, "args": json.dumps(c.args, ensure_ascii=False), "id": c.id, "index": i}
        for i, c in enumerate(out.tool_calls)
    ]
    n = len(chunks)
    chunks += [
        {"name": c.name, "args": c.raw, "id": new_call_id(0, "", {}), "index": n + i}
        for i, c in enumerate(out.invalid_calls)
    ]
    msg = AIMessageChunk(
        content="",
        tool_call_chunks=chunks,
        usage_metadata=usage_metadata(usage),
        response_metadata={"model_name": model_name, "model_provider": "minimax_vl"},
        chunk_position="last",
    )
    return tail, msg


def tool_call(call: ParsedCall) -> dict[str, Any]:
    """LangChain ``ToolCall`` of a parsed native call."""
    return {"name": call.name, "args": call.args, "id": call.id, "type": "tool_call"}


def invalid_tool_call(call: InvalidCall) -> dict[str, Any]:
    """LangChain ``InvalidToolCall`` of call text that could not be decoded (with a fresh id)."""
    return {
        "name": call.name,
        "args": call.raw,
        "id": new_call_id(0, "", {}),
        "error": call.error,
        "type": "invalid_tool_call",
    }


def as_last_chunk(msg: BaseMessage) -> AIMessageChunk:
    """A whole AIMessage as the one and last chunk of a stream (structured answers are not streamed)."""
    assert isinstance(msg, AIMessage)
    return AIMessageChunk(
        content=msg.content,
        additional_kwargs=msg.additional_kwargs,
        response_metadata=msg.response_metadata,
        usage_metadata=msg.usage_metadata,
        tool_call_chunks=[
            {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
            for i, c in enumerate(msg.tool_calls)
        ],
        chunk_position="last",
    )


__all__ = [
    "ai_message",
    "as_last_chunk",
    "convert_messages",
    "final_chunk",
    "fit_images",
    "invalid_tool_call",
    "new_call_id",
    "tool_call",
    "tool_choice_text",
    "usage_metadata",
]
