"""ChatMiniMaxVL: MiniMax-VL-01 (served by vLLM) as a LangChain chat model with native tool calling.

Why a dedicated chat model instead of ``ChatOpenAI``: MiniMax-VL-01's chat template silently drops OpenAI
``tool_calls`` and ``tool`` messages, wants every content as a *list* of typed parts, and answers tool calls
as text (``<function_call>```typescript\\nfunctions.NAME({json})\\n``` ``) that vLLM has no parser for.
:class:`ChatMiniMaxVL` (:mod:`.base`) translates in both directions (see :mod:`minimaxvl_tools.tool_format`):

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

from .base import ChatMiniMaxVL, ToolRender
from .messages import _ImageRef as _ImageRef  # the image placeholder in convert_messages output
from .messages import convert_messages

__all__ = ["ChatMiniMaxVL", "ToolRender", "convert_messages"]
