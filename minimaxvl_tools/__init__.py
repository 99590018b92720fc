"""minimaxvl-tools: LangChain tools for MiniMax-VL-01 served by vLLM.

Chart reading, document VQA, OCR and diagram reasoning tools, a document loader, a chat model with the
model's native tool calling, and the image math that sizes inputs to MiniMax-VL-01's anyres canvases.
Names are imported lazily so ``import minimaxvl_tools`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports, lazy_names
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .profile import MINIMAX_VL_01, ModelProfile, best_canvas, image_tokens
from .settings import Settings

__version__ = "0.1.0"

_LAZY = lazy_names(
    {
        "images.policy": ["InputPolicy"],
        "images.load": ["load_image", "iter_images"],
        "images.sizing": ["SizePlan", "plan_size", "fit_image"],
        "images.tiling": ["Tile", "TilePlan", "plan_tiles"],
        "images.encode": ["EncodedImage", "encode_image"],
        "pdf": ["PDFPage", "iter_pdf_pages", "pdf_page_count"],
        "client": ["MiniMaxVLClient", "ChatResult", "Usage", "HealthStatus"],
        "results": ["ChartData", "DocumentAnswer", "OCRPage", "OCRResult", "DiagramAnswer"],
        "tools": [
            "ChartReaderTool",
            "DocumentVQATool",
            "OCRTool",
            "DiagramReasoningTool",
            "MiniMaxVLToolkit",
        ],
        "loaders": ["MiniMaxVLDocumentLoader", "JobStats"],
        "chat_model": ["ChatMiniMaxVL"],
        "blob_parser": ["MiniMaxVLImageBlobParser"],
        "index": ["PageIndex", "MiniMaxVLIndexRetriever"],
        "local_ocr": ["LocalOCREngine"],
        "backpressure": ["AdaptiveConcurrencyLimiter"],
        "serve": ["ServePlan"],
        "tool_format": ["parse_tool_calls", "quote_document_text"],
    }
)

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)


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
