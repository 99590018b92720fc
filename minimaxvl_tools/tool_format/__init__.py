"""MiniMax-VL-01's native function-calling text format: render tools, parse calls, format results.

Pure functions, no network. They let an agent use MiniMax-VL-01 as its own tool-calling model through a vLLM
OpenAI server whose chat template drops OpenAI ``tool_calls``/``tool`` messages.

What the real chat template does (``tokenizer_config.json`` of ``MiniMaxAI/MiniMax-VL-01``, quoted in
MiniMax's "MiniMax-VL-01 Function Call Guide", ``docs/function_call_guide.md`` of ``MiniMax-AI/MiniMax-01``;
read through the code index, which did not show the repository name of that copy):

* Roles ``system`` / ``user`` / ``assistant`` render the *list* of content parts (text and ``<image>``).
  ``assistant.tool_calls`` and role ``tool`` are not handled and vanish from the prompt.
* Role ``function`` renders as ``<beginning_of_sentence>system function_response=functions\\n`` +
  ``{"name": "<name>", "response": <content[0].text>}`` + ``<end_of_sentence>\\n``. The text is pasted in raw,
  so it should itself be JSON (see :func:`format_tool_result`).
* The template HAS a ``tools`` branch: ``{% if tools %}{% for function in tools %}`` renders, AFTER all the
  messages and just before the generation prompt, one turn per tool:
  ``<beginning_of_sentence>system function_setting=functions\\n`` + ``function | tojson`` +
  ``<end_of_sentence>\\n``. The guide's prose shows a bare ``{"name", "description", "parameters"}`` object
  there, while its example code (and vLLM, which passes ``request.tools`` as OpenAI dicts) gives the
  ``{"type": "function", "function": {...}}`` wrapper. :func:`render_tool_setting_turns` reproduces this text.
* The model answers a call with ``<function_call>```typescript\\nfunctions.NAME({json})\\n``` ``.
  ``<function_call>`` is a special token, so servers that skip special tokens when decoding (vLLM's default)
  return the bare fenced block; :func:`parse_tool_calls` accepts both, and even a bare ``functions.NAME(...)``
  line.

Passing ``tools`` through vLLM: a request with ``tools`` and no ``tool_choice`` defaults to ``"auto"``, which
vLLM refuses unless the server runs ``--enable-auto-tool-choice --tool-call-parser ...``, and vLLM's only
MiniMax parser (``minimax``) reads MiniMax-M1's ``<tool_calls>`` format, not this one. Two ways that work:

1. send ``tools`` with ``tool_choice="none"``: vLLM still renders them with the template (unless the server
   runs ``--exclude-tools-when-tool-choice-none``) and returns the call text as plain content, which
   :func:`parse_tool_calls` turns into calls; or
2. append :func:`render_tools` to the system prompt text (works on any server, any template setting).

Which one the model follows better is not measured here; the rendering style is a parameter for that reason.
"""

from __future__ import annotations

from .calls import FUNCTION_CALL_TOKEN, IdFactory, InvalidCall, ParsedCall, ParsedOutput, default_call_id
from .parse import StreamingToolCallParser, parse_tool_calls
from .quoting import neutralize_markers, quote_document_text
from .render import (
    CALL_INSTRUCTIONS,
    format_assistant_tool_calls,
    format_tool_result,
    render_call,
    render_tool_setting_turns,
    render_tools,
)

__all__ = [
    "CALL_INSTRUCTIONS",
    "FUNCTION_CALL_TOKEN",
    "IdFactory",
    "InvalidCall",
    "ParsedCall",
    "ParsedOutput",
    "StreamingToolCallParser",
    "default_call_id",
    "format_assistant_tool_calls",
    "format_tool_result",
    "neutralize_markers",
    "parse_tool_calls",
    "quote_document_text",
    "render_call",
    "render_tool_setting_turns",
    "render_tools",
]
