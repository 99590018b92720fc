"""ChatMiniMaxVL: the BaseChatModel, its fields, tool binding, structured output, generate and stream.

The conversions it relies on are pure functions in :mod:`.messages` (LangChain messages to and from
MiniMax-VL-01's), :mod:`.structured` and :mod:`.arguments`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from ..client import ChatResult as ClientResult
from ..client import MiniMaxVLClient, Usage
from ..errors import InvalidInputError
from ..profile import MINIMAX_SYSTEM_PROMPT
from ..settings import Settings
from ..tool_format import StreamingToolCallParser, render_tools
from .arguments import normalize_init_args
from .messages import (
    ai_message,
    as_last_chunk,
    convert_messages,
    final_chunk,
    fit_images,
    new_call_id,
    tool_choice_text,
)
from .structured import structured_parser

ToolRender = Literal["system", "template"]


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
        super().__init__(**normalize_init_args(type(self), kwargs))

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
            tool_choice_text(tool_choice, names)  # validate early
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
        carrier, parse = structured_parser(schema)
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
            choice_text = tool_choice_text(tool_choice, names)
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

    def _fitted(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[MiniMaxVLClient, list[dict[str, Any]], dict[str, Any]]:
        """The client, the messages with their images encoded to fit the context, and the call arguments."""
        client = self.get_client()
        converted, call = self._request(messages, stop, kwargs)
        return client, fit_images(client, converted, call["max_tokens"], client.max_model_len()), call

    async def _afitted(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[MiniMaxVLClient, list[dict[str, Any]], dict[str, Any]]:
        """Async :meth:`_fitted` (images encoded off the event loop)."""
        client = self.get_client()
        converted, call = self._request(messages, stop, kwargs)
        mml = await client.amax_model_len()
        return client, await asyncio.to_thread(fit_images, client, converted, call["max_tokens"], mml), call

    def _message(self, result: ClientResult) -> AIMessage:
        """AIMessage of a client result: native calls parsed out of the text (not for structured answers)."""
        return ai_message(result)

    def _final_chunk(self, parser: StreamingToolCallParser, usage: Usage) -> tuple[str, AIMessageChunk]:
        """The last text delta of a stream and its last chunk (calls as ``tool_call_chunks``)."""
        return final_chunk(parser, usage, self.model_name)

    # ------------------------------------------------------------------ generate
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        client, msgs, call = self._fitted(messages, stop, kwargs)
        result = client.chat("", messages=msgs, **call)
        return ChatResult(generations=[ChatGeneration(message=self._message(result))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        client, msgs, call = await self._afitted(messages, stop, kwargs)
        result = await client.achat("", messages=msgs, **call)
        return ChatResult(generations=[ChatGeneration(message=self._message(result))])

    # ------------------------------------------------------------------ stream
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if kwargs.get("response_schema") is not None:  # guided JSON: one validated answer, one chunk
            msg = self._generate(messages, stop, run_manager, **kwargs).generations[0].message
            yield ChatGenerationChunk(message=as_last_chunk(msg))
            return
        client, msgs, call = self._fitted(messages, stop, kwargs)
        parser = StreamingToolCallParser(id_factory=new_call_id)
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
            yield ChatGenerationChunk(message=as_last_chunk(res.generations[0].message))
            return
        client, msgs, call = await self._afitted(messages, stop, kwargs)
        parser = StreamingToolCallParser(id_factory=new_call_id)
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


__all__ = ["ChatMiniMaxVL", "ToolRender"]
