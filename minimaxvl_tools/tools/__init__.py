"""LangChain tools for MiniMax-VL-01: charts, document QA, OCR, diagrams, and the toolkit bundling them."""

from __future__ import annotations

from .base import MiniMaxVLBaseTool
from .chart import ChartReaderInput, ChartReaderTool
from .diagram import DiagramInput, DiagramReasoningTool
from .docvqa import DocumentVQAInput, DocumentVQATool
from .ocr import OCRInput, OCRTool
from .toolkit import MiniMaxVLToolkit

__all__ = [
    "ChartReaderInput",
    "ChartReaderTool",
    "DiagramInput",
    "DiagramReasoningTool",
    "DocumentVQAInput",
    "DocumentVQATool",
    "MiniMaxVLBaseTool",
    "MiniMaxVLToolkit",
    "OCRInput",
    "OCRTool",
]
