"""Structured output for ChatMiniMaxVL: any LangChain schema as a pydantic carrier for the client's
``schema=`` path (json_schema guided decoding, validation, one repair), and the parser of its answers."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from pydantic import BaseModel, RootModel, model_validator


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


def structured_parser(schema: dict[str, Any] | type) -> tuple[type[BaseModel], Callable[[BaseMessage], Any]]:
    """The carrier class to send as ``response_schema`` and the parser of the answer message.

    A pydantic (v2 or v1) class parses into instances; a JSON-schema dict, OpenAI tool dict or TypedDict
    parses into dicts.
    """
    if _is_pydantic_v2(schema):
        carrier: type[BaseModel] = schema  # type: ignore[assignment]

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

    return carrier, parse


def _strip_fences(text: str) -> str:
    """A JSON answer without the one Markdown code fence around it, if any."""
    s = text.strip()
    m = re.fullmatch(r"```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```", s, re.DOTALL)
    return m.group(1) if m else s


__all__ = ["structured_parser"]
