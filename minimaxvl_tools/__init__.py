"""minimaxvl-tools: LangChain tools for MiniMax-VL-01 served by vLLM.

Chart reading, document VQA, OCR and diagram reasoning tools, a document loader, a chat model with the
model's native tool calling, and the image math that sizes inputs to MiniMax-VL-01's anyres canvases.
Names are imported lazily so ``import minimaxvl_tools`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .profile import MINIMAX_VL_01, ModelProfile, best_canvas, image_tokens
from .settings import Settings

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # images
    "InputPolicy": "images.policy",
    "load_image": "images.load",
    "iter_images": "images.load",
    "SizePlan": "images.sizing",
    "plan_size": "images.sizing",
    "fit_image": "images.sizing",
    "Tile": "images.tiling",
    "TilePlan": "images.tiling",
    "plan_tiles": "images.tiling",
    "EncodedImage": "images.encode",
    "encode_image": "images.encode",
    # pdf
    "PDFPage": "pdf",
    "iter_pdf_pages": "pdf",
    "pdf_page_count": "pdf",
    # client
    "MiniMaxVLClient": "client",
    "ChatResult": "client",
    "Usage": "client",
    "HealthStatus": "client",
    # results
    "ChartData": "results",
    "DocumentAnswer": "results",
    "OCRPage": "results",
    "OCRResult": "results",
    "DiagramAnswer": "results",
    # tools
    "ChartReaderTool": "tools",
    "DocumentVQATool": "tools",
    "OCRTool": "tools",
    "DiagramReasoningTool": "tools",
    "MiniMaxVLToolkit": "tools",
    # loader, chat model, local engine
    "MiniMaxVLDocumentLoader": "loaders",
    "ChatMiniMaxVL": "chat_model",
    "MiniMaxVLImageBlobParser": "blob_parser",
    "PageIndex": "index",
    "MiniMaxVLIndexRetriever": "index",
    "LocalOCREngine": "local_ocr",
    "JobStats": "loaders",
    "AdaptiveConcurrencyLimiter": "backpressure",
    "ServePlan": "serve",
    "parse_tool_calls": "tool_format",
    "quote_document_text": "tool_format",
}

__all__ = [
    "MINIMAX_VL_01",
    "ModelProfile",
    "Settings",
    "__version__",
    "best_canvas",
    "image_tokens",
    *_errors_all,
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'minimaxvl_tools' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from .backpressure import AdaptiveConcurrencyLimiter
    from .blob_parser import MiniMaxVLImageBlobParser
    from .chat_model import ChatMiniMaxVL
    from .client import ChatResult, HealthStatus, MiniMaxVLClient, Usage
    from .images.encode import EncodedImage, encode_image
    from .images.load import iter_images, load_image
    from .images.policy import InputPolicy
    from .images.sizing import SizePlan, fit_image, plan_size
    from .images.tiling import Tile, TilePlan, plan_tiles
    from .index import MiniMaxVLIndexRetriever, PageIndex
    from .loaders import JobStats, MiniMaxVLDocumentLoader
    from .local_ocr import LocalOCREngine
    from .pdf import PDFPage, iter_pdf_pages, pdf_page_count
    from .results import ChartData, DiagramAnswer, DocumentAnswer, OCRPage, OCRResult
    from .serve import ServePlan
    from .tool_format import parse_tool_calls, quote_document_text
    from .tools import ChartReaderTool, DiagramReasoningTool, DocumentVQATool, MiniMaxVLToolkit, OCRTool
