"""ChatMiniMaxVL: MiniMax-VL-01 (served by vLLM) as a LangChain chat model with native tool calling.

Why a dedicated chat model instead of ``ChatOpenAI``: MiniMax-VL-01's chat template silently drops OpenAI
``tool_calls`` and ``tool`` messages, wants every content as a *list* of typed parts, and answers tool calls
as text (``<function_call>```typescript\\nfunctions.NAME({json})\\n``` ``) that vLLM has no parser for. This
class translates in both directions (see :mod:`minimaxvl_tools.tool_format`):

* out: tool definitions are rendered for the model (appended to the system prompt, or sent as ``tools`` with
  ``tool_choice="none"`` so the template renders its ``function_setting`` turns); assistant turns with
  ``tool_calls`` are re-rendered as native call text; ``ToolMessage`` results go back as ``function``-role
  messages (never ``tool``), document-derived text quoted as data; images (LangChain standard blocks, OpenAI
  ``image_url`` parts, images returned by tools) become ``image_url`` data-URL parts sized to the model's
  canvases and to the served context by :class:`~minimaxvl_tools.client.MiniMaxVLClient`.
* in: the answer text is parsed into ``AIMessage.tool_calls`` / ``invalid_tool_calls``; streaming yields text
  deltas as they arrive and the calls as ``tool_call_chunks`` at the end.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel, LangSmithParams
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
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, RootModel, SecretStr, model_validator

from .client import MiniMaxVLClient, Usage
from .errors import InvalidInputError
from .images.encode import EncodedImage
from .profile import MINIMAX_SYSTEM_PROMPT
from .settings import Settings
from .tool_format import (
    InvalidCall,
    ParsedCall,
    ParsedOutput,
    StreamingToolCallParser,
    format_assistant_tool_calls,
    format_tool_result,
    parse_tool_calls,
    quote_document_text,
    render_tools,
)

__all__ = ["ChatMiniMaxVL", "convert_messages"]

ToolRender = Literal["system", "template"]


def _new_call_id(index: int, name: str, args: dict[str, Any]) -> str:
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


def _tool_choice_text(tool_choice: Any, names: Sequence[str]) -> str:
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


# ---------------------------------------------------------------------------------------------- structured
def _schema_model(name: str, json_schema: dict[str, Any]) -> type[BaseModel]:
    """A pydantic class that carries an arbitrary JSON schema through the client's ``schema=`` path.

    ``model_json_schema()`` returns ``json_schema`` (sent as vLLM's ``json_schema`` response format) and
    validation checks the decoded JSON against it with :mod:`jsonschema` when installed, so the client's
    one-repair-attempt logic applies to dict / TypedDict schemas too.
    """
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "output"

    def _json_schema(cls: type[BaseModel], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return json_schema

    def _check(self: RootModel[Any]) -> RootModel[Any]:
        try:
            import jsonschema
        except ImportError:  # pragma: no cover - optional: fall back to a type check only
            if json_schema.get("type") == "object" and not isinstance(self.root, dict):
                raise ValueError("expected a JSON object") from None
            return self
        try:
            jsonschema.validate(self.root, json_schema)
        except jsonschema.ValidationError as e:
            raise ValueError(f"does not match the schema: {e.message}") from None
        return self

    return type(
        safe,
        (RootModel[Any],),
        {
            "model_json_schema": classmethod(_json_schema),
            "_check_schema": model_validator(mode="after")(_check),
            "__module__": __name__,
        },
    )


def _is_pydantic_v2(schema: Any) -> bool:
    return isinstance(schema, type) and issubclass(schema, BaseModel)


def _is_pydantic_v1(schema: Any) -> bool:
    try:
        from pydantic.v1 import BaseModel as V1BaseModel
    except ImportError:  # pragma: no cover
        return False
    return isinstance(schema, type) and issubclass(schema, V1BaseModel)


# ---------------------------------------------------------------------------------------------- arguments
# Names langchain-openai's ChatOpenAI declares (field name or alias) that mean the same thing here.
_OPENAI_ALIASES: dict[str, str] = {
    "model_name": "model",
    "openai_api_key": "api_key",
    "openai_api_base": "base_url",
    "request_timeout": "timeout",
    "max_completion_tokens": "max_tokens",
    "stop_sequences": "stop",
}
# ChatOpenAI sampling fields vLLM reads as request-body fields: sent through ``extra_body``.
_BODY_FIELDS = ("top_p", "seed", "presence_penalty", "frequency_penalty", "logit_bias")
# Other ChatOpenAI options, refused with a reason rather than silently ignored.
_UNSUPPORTED: dict[str, str] = {
    "n": "one completion per call is supported (n=1)",
    "openai_organization": "vLLM has no organizations",
    "organization": "vLLM has no organizations",
    "openai_proxy": "give a proxy through the HTTPS_PROXY environment variable",
    "default_headers": "custom headers are not supported",
    "default_query": "custom query parameters are not supported",
    "http_client": "pass a MiniMaxVLClient as client= instead",
    "http_async_client": "pass a MiniMaxVLClient as client= instead",
    "logprobs": "log-probabilities are not returned",
    "top_logprobs": "log-probabilities are not returned",
    "reasoning_effort": "MiniMax-VL-01 is not a reasoning model",
    "reasoning": "MiniMax-VL-01 is not a reasoning model",
    "use_responses_api": "vLLM serves the chat completions API only",
    "tiktoken_model_name": "token counts come from the MiniMax-VL-01 tokenizer profile",
}


def _normalize_init_args(cls: type[BaseModel], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments with ChatOpenAI aliases mapped; unknown or unsupported names refused.

    ``model_name=``, ``openai_api_key=``, ``openai_api_base=``, ``request_timeout=``,
    ``max_completion_tokens=`` and ``stop_sequences=`` mean ``model``, ``api_key``, ``base_url``,
    ``timeout``, ``max_tokens`` and ``stop``; ``top_p``, ``seed``, ``presence_penalty``,
    ``frequency_penalty``, ``logit_bias`` and ``model_kwargs`` go into ``extra_body``.
    """
    out: dict[str, Any] = {}
    body: dict[str, Any] = {}
    known = set(cls.model_fields)
    for key, value in kwargs.items():
        target = _OPENAI_ALIASES.get(key, key)
        if target in out:
            raise InvalidInputError(
                f"ChatMiniMaxVL got {target!r} twice (as {key!r} and as {target!r}): give it once"
            )
        if key in _BODY_FIELDS:
            if value is not None:
                body[key] = value
        elif key == "model_kwargs":
            if not isinstance(value, Mapping):
                raise InvalidInputError("model_kwargs must be a dict of request-body fields")
            body.update(value)
        elif key == "n" and value in (None, 1):
            continue
        elif key in _UNSUPPORTED and target not in known:
            raise InvalidInputError(f"ChatMiniMaxVL does not support {key}=: {_UNSUPPORTED[key]}")
        elif target not in known:
            close = difflib.get_close_matches(key, sorted(known | set(_OPENAI_ALIASES)), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InvalidInputError(
                f"ChatMiniMaxVL got an unknown argument {key!r}{hint} (vLLM request fields go in "
                "extra_body={...})"
            )
        else:
            out[target] = value
    if body:
        merged = dict(body)
        merged.update(out.get("extra_body") or {})
        out["extra_body"] = merged
    return out


# ---------------------------------------------------------------------------------------------- model
class ChatMiniMaxVL(BaseChatModel):
    """MiniMax-VL-01 on vLLM as a LangChain chat model, with the model's native tool-call format.

    Example::

        llm = ChatMiniMaxVL(base_url="http://gpu-host:8000/v1")
        agent = create_agent(llm, tools=[...])

    ``client`` (a :class:`MiniMaxVLClient`) is built from ``base_url`` / ``api_key`` / ``model`` and the
    ``MINIMAXVL_*`` environment when not given. ``system_prompt`` is sent when the messages carry no
    SystemMessage (None: send none). ``tool_render`` picks how bound tools reach the model: ``"system"``
    appends their definitions to the system prompt (works on any server), ``"template"`` sends them as
    ``tools`` with ``tool_choice="none"`` so vLLM's chat template renders its ``function_setting`` turns.
    ``quote_tool_results`` wraps tool results as quoted document data (True: every tool; a collection of
    names: only those tools; False: none), so OCR output and text layers are never read as instructions.

    ``base_url``, ``model`` and ``api_key`` not given are read at construction from ``client`` when given,
    else from the ``MINIMAXVL_*`` environment. The names langchain-openai's ``ChatOpenAI`` uses are
    accepted (``model_name``, ``openai_api_key``, ``openai_api_base``, ``request_timeout``,
    ``max_completion_tokens``, ``stop_sequences``, ``streaming``; ``top_p``, ``seed``, penalties and
    ``model_kwargs`` go into ``extra_body``); any other unknown argument raises
    :class:`~minimaxvl_tools.errors.InvalidInputError`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True, extra="forbid")

    client: Any = Field(default=None, exclude=True)
    """A :class:`MiniMaxVLClient`; built lazily from the fields below when None."""
    base_url: str | None = None
    """OpenAI-compatible vLLM endpoint ending in ``/v1`` (default: settings / ``MINIMAXVL_BASE_URL``)."""
    api_key: SecretStr | None = None
    """Bearer token (default: settings / ``MINIMAXVL_API_KEY``)."""
    model: str | None = None
    """Served model name (default: settings / ``MINIMAXVL_MODEL``)."""
    timeout: float | None = None
    max_retries: int | None = None
    temperature: float | None = None
    """Sampling temperature (None: the client's default, 0.0)."""
    max_tokens: int | None = None
    """Completion budget (None: the client's default); budgeting may cut it to fit the context."""
    stop: list[str] | None = None
    system_prompt: str | None = MINIMAX_SYSTEM_PROMPT
    tool_render: ToolRender = "system"
    tool_style: Literal["json", "typescript"] = "json"
    """Style of :func:`render_tools` when ``tool_render="system"``."""
    quote_tool_results: bool | list[str] = True
    extra_body: dict[str, Any] | None = None
    """Extra vLLM request fields (``top_p``, ``repetition_penalty``, ``stop_token_ids`` ...)."""
    streaming: bool = False
    """``invoke`` streams internally (as ``ChatOpenAI(streaming=True)``), so callbacks see each token."""

    _client: MiniMaxVLClient | None = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_normalize_init_args(type(self), kwargs))

    @model_validator(mode="after")
    def _endpoint_from_env(self) -> ChatMiniMaxVL:
        """Fill ``base_url`` / ``model`` / ``api_key`` from the client or ``MINIMAXVL_*`` at construction."""
        if self.base_url and self.model and self.api_key is not None:
            return self
        settings = self.client.settings if self.client is not None else Settings.from_env()
        if not self.base_url:
            self.base_url = settings.endpoints[0]
        if not self.model:
            self.model = settings.model
        if self.api_key is None:
            key = settings.api_key
            self.api_key = key if isinstance(key, SecretStr) else SecretStr(str(key))
        return self

    # ------------------------------------------------------------------ identity
    @property
    def _llm_type(self) -> str:
        return "minimax-vl"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "base_url": self.get_client().settings.base_url if self._client or self.client else self.base_url,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "tool_render": self.tool_render,
        }

    @property
    def model_name(self) -> str:
        """The served model name this instance talks to."""
        if self.model:
            return self.model
        return self.get_client().settings.model

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="minimax_vl",
            ls_model_name=kwargs.get("model") or self.model_name,
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self.temperature),
        )
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens:
            params["ls_max_tokens"] = max_tokens
        stop = stop or kwargs.get("stop") or self.stop
        if stop:
            params["ls_stop"] = stop
        return params

    def get_client(self) -> MiniMaxVLClient:
        """The client (given, or built once from the fields and ``MINIMAXVL_*`` environment)."""
        if self.client is not None:
            return self.client
        if self._client is None:
            self._client = MiniMaxVLClient(
                base_url=self.base_url,
                api_key=self.api_key.get_secret_value() if self.api_key else None,
                model=self.model,
                timeout=self.timeout,
                max_retries=self.max_retries,
            )
        return self._client

    # ------------------------------------------------------------------ tools and structured output
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (BaseTool, functions, dicts, pydantic classes) for native MiniMax-VL-01 tool calling.

        ``tool_choice``: ``"auto"``/None (model decides), ``"none"`` (tools not shown), ``"any"``/
        ``"required"``/a tool name (an instruction to call; the native format cannot force a call).
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        names = [t["function"]["name"] for t in formatted]
        if tool_choice not in (None, "none"):
            _tool_choice_text(tool_choice, names)  # validate early
        return super().bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["json_schema", "function_calling", "json_mode"] = "json_schema",
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answers as ``schema`` via vLLM's ``json_schema`` guided decoding (the client's ``schema=`` path).

        ``schema``: a pydantic (v2 or v1) class -> instances; a JSON-schema dict, OpenAI tool dict or
        TypedDict -> dicts. ``method`` is accepted for API compatibility; every method uses guided JSON
        decoding (more reliable than asking for a call). ``include_raw=True`` returns
        ``{"raw", "parsed", "parsing_error"}``.
        """
        if kwargs.pop("strict", None) not in (None, True, False):
            raise InvalidInputError("strict must be a bool or None")
        if kwargs:
            raise InvalidInputError(f"unknown with_structured_output arguments: {sorted(kwargs)}")
        if _is_pydantic_v2(schema):
            carrier: type[BaseModel] = schema  # type: ignore[assignment]
            json_schema = schema.model_json_schema()  # type: ignore[union-attr]

            def to_output(parsed: Any) -> Any:
                return parsed if isinstance(parsed, schema) else schema.model_validate(parsed)  # type: ignore[arg-type,union-attr]

        else:
            if isinstance(schema, Mapping) and "properties" in schema and "function" not in schema:
                json_schema = dict(schema)
                name = str(schema.get("title") or "output")
            else:
                tool = convert_to_openai_tool(schema)
                name = tool["function"]["name"]
                json_schema = convert_to_json_schema(schema) if not _is_pydantic_v1(schema) else {}
                json_schema = json_schema or dict(tool["function"].get("parameters") or {})
                json_schema.setdefault("title", name)
            carrier = _schema_model(name, json_schema)
            v1 = schema if _is_pydantic_v1(schema) else None

            def to_output(parsed: Any) -> Any:
                value = parsed.root if isinstance(parsed, RootModel) else parsed
                return v1.parse_obj(value) if v1 is not None else value  # type: ignore[union-attr]

        def parse(message: BaseMessage) -> Any:
            parsed = message.additional_kwargs.get("parsed") if isinstance(message, AIMessage) else None
            if parsed is None:
                text = message.text if isinstance(message.text, str) else str(message.content)
                parsed = carrier.model_validate_json(_strip_fences(text))
            return to_output(parsed)

        llm = self.bind(
            response_schema=carrier,
            ls_structured_output_format={
                "kwargs": {"method": method},
                "schema": convert_to_json_schema(schema),
            },
        )
        parser = RunnableLambda(parse, name="MiniMaxVLStructuredParser")
        if not include_raw:
            return llm | parser
        parser_assign = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
        fallback = parser_assign.with_fallbacks([parser_none], exception_key="parsing_error")
        return RunnableMap(raw=llm) | fallback

    # ------------------------------------------------------------------ request assembly
    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Converted messages (images still ``_ImageRef``) and the client call arguments."""
        kwargs = dict(kwargs)
        kwargs.pop("ls_structured_output_format", None)
        tools: list[dict[str, Any]] = list(kwargs.pop("tools", None) or [])
        tool_choice = kwargs.pop("tool_choice", None)
        schema = kwargs.pop("response_schema", None)
        extra_body = dict(self.extra_body or {})
        extra_body.update(kwargs.pop("extra_body", None) or {})
        if tools and tool_choice == "none":
            tools = []
        tools_text = ""
        if tools:
            tools = [t if t.get("type") == "function" else convert_to_openai_tool(t) for t in tools]
            names = [t["function"]["name"] for t in tools]
            choice_text = _tool_choice_text(tool_choice, names)
            if self.tool_render == "template":
                extra_body["tools"] = tools
                extra_body["tool_choice"] = "none"
                tools_text = choice_text
            else:
                rendered = render_tools(tools, style=self.tool_style)
                tools_text = f"{rendered}\n{choice_text}" if choice_text else rendered
        converted = convert_messages(
            messages,
            system_prompt=self.system_prompt,
            tools_text=tools_text,
            quote_tool_results=self.quote_tool_results,
        )
        stop = stop or kwargs.pop("stop", None) or self.stop
        call: dict[str, Any] = {
            "system": "",
            "max_tokens": kwargs.pop("max_tokens", self.max_tokens),
            "temperature": kwargs.pop("temperature", self.temperature),
            "stop": stop,
            "extra_body": extra_body or None,
        }
        if schema is not None:
            call["schema"] = schema
        model_override = kwargs.pop("model", None)
        if model_override and model_override != self.model_name:
            raise InvalidInputError(
                f"model override {model_override!r} is not supported: build another ChatMiniMaxVL"
            )
        if kwargs:
            raise InvalidInputError(f"unknown ChatMiniMaxVL call arguments: {sorted(kwargs)}")
        return converted, call

    def _fit_images(
        self, client: MiniMaxVLClient, converted: list[dict[str, Any]], max_tokens: int | None, mml: int
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

    @staticmethod
    def _usage_metadata(usage: Usage) -> UsageMetadata:
        return UsageMetadata(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            total_tokens=usage.prompt_tokens + usage.completion_tokens,
        )

    def _message(self, result: Any) -> AIMessage:
        """AIMessage of a client result: native calls parsed out of the text (not for structured answers)."""
        additional: dict[str, Any] = {}
        if result.parsed is not None:  # guided JSON: the text is the answer, never calls
            additional["parsed"] = result.parsed
            parsed = ParsedOutput(result.text)
        else:
            parsed = parse_tool_calls(result.text, id_factory=_new_call_id)
        return AIMessage(
            content=parsed.content,
            tool_calls=[_tool_call(c) for c in parsed.tool_calls],
            invalid_tool_calls=[_invalid(c) for c in parsed.invalid_calls],
            additional_kwargs=additional,
            usage_metadata=self._usage_metadata(result.usage),
            response_metadata={
                "model_name": result.model,
                "finish_reason": result.finish_reason,
                "model_provider": "minimax_vl",
            },
        )

    # ------------------------------------------------------------------ generate
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        client = self.get_client()
        converted, call = self._request(messages, stop, kwargs)
        msgs = self._fit_images(client, converted, call["max_tokens"], client.max_model_len())
        result = client.chat("", messages=msgs, **call)
        return ChatResult(generations=[ChatGeneration(message=self._message(result))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        client = self.get_client()
        converted, call = self._request(messages, stop, kwargs)
        mml = await client.amax_model_len()
        msgs = await asyncio.to_thread(self._fit_images, client, converted, call["max_tokens"], mml)
        result = await client.achat("", messages=msgs, **call)
        return ChatResult(generations=[ChatGeneration(message=self._message(result))])

    # ------------------------------------------------------------------ stream
    def _final_chunk(self, parser: StreamingToolCallParser, usage: Usage) -> tuple[str, AIMessageChunk]:
        tail = parser.flush()
        out: ParsedOutput = parser.finish()
        chunks = [
            {"name": c.name, "args": json.dumps(c.args, ensure_ascii=False), "id": c.id, "index": i}
            for i, c in enumerate(out.tool_calls)
        ]
        n = len(chunks)
        chunks += [
            {"name": c.name, "args": c.raw, "id": _new_call_id(0, "", {}), "index": n + i}
            for i, c in enumerate(out.invalid_calls)
        ]
        msg = AIMessageChunk(
            content="",
            tool_call_chunks=chunks,
            usage_metadata=self._usage_metadata(usage),
            response_metadata={"model_name": self.model_name, "model_provider": "minimax_vl"},
            chunk_position="last",
        )
        return tail, msg

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if kwargs.get("response_schema") is not None:  # guided JSON: one validated answer, one chunk
            msg = self._generate(messages, stop, run_manager, **kwargs).generations[0].message
            yield ChatGenerationChunk(message=_as_last_chunk(msg))
            return
        client = self.get_client()
        converted, call = self._request(messages, stop, kwargs)
        msgs = self._fit_images(client, converted, call["max_tokens"], client.max_model_len())
        parser = StreamingToolCallParser(id_factory=_new_call_id)
        got: list[Usage] = []  # this stream's own usage (exact even with other calls on the same client)
        for delta in client.stream("", messages=msgs, on_usage=got.append, **call):
            text = parser.feed(delta)
            if text:
                if run_manager:
                    run_manager.on_llm_new_token(text)
                yield ChatGenerationChunk(message=AIMessageChunk(content=text))
        tail, last = self._final_chunk(parser, got[-1] if got else Usage())
        if tail:
            if run_manager:
                run_manager.on_llm_new_token(tail)
            yield ChatGenerationChunk(message=AIMessageChunk(content=tail))
        yield ChatGenerationChunk(message=last)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if kwargs.get("response_schema") is not None:
            res = await self._agenerate(messages, stop, run_manager, **kwargs)
            yield ChatGenerationChunk(message=_as_last_chunk(res.generations[0].message))
            return
        client = self.get_client()
        converted, call = self._request(messages, stop, kwargs)
        mml = await client.amax_model_len()
        msgs = await asyncio.to_thread(self._fit_images, client, converted, call["max_tokens"], mml)
        parser = StreamingToolCallParser(id_factory=_new_call_id)
        got: list[Usage] = []
        async for delta in client.astream("", messages=msgs, on_usage=got.append, **call):
            text = parser.feed(delta)
            if text:
                if run_manager:
                    await run_manager.on_llm_new_token(text)
                yield ChatGenerationChunk(message=AIMessageChunk(content=text))
        tail, last = self._final_chunk(parser, got[-1] if got else Usage())
        if tail:
            if run_manager:
                await run_manager.on_llm_new_token(tail)
            yield ChatGenerationChunk(message=AIMessageChunk(content=tail))
        yield ChatGenerationChunk(message=last)


# ---------------------------------------------------------------------------------------------- helpers
def _tool_call(call: ParsedCall) -> dict[str, Any]:
    return {"name": call.name, "args": call.args, "id": call.id, "type": "tool_call"}


def _invalid(call: InvalidCall) -> dict[str, Any]:
    return {
        "name": call.name,
        "args": call.raw,
        "id": _new_call_id(0, "", {}),
        "error": call.error,
        "type": "invalid_tool_call",
    }


def _as_last_chunk(msg: BaseMessage) -> AIMessageChunk:
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


def _strip_fences(text: str) -> str:
    s = text.strip()
    m = re.fullmatch(r"```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```", s, re.DOTALL)
    return m.group(1) if m else s
