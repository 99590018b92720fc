"""MiniMaxVLToolkit: the four MiniMax-VL-01 tools sharing one client and one input policy."""

from __future__ import annotations

from pathlib import Path

from langchain_core.tools import BaseTool, BaseToolkit
from pydantic import ConfigDict, Field, model_validator

from ..client import MiniMaxVLClient
from ..settings import Settings
from .chart import ChartReaderTool
from .diagram import DiagramReasoningTool
from .docvqa import DocumentVQATool
from .ocr import OCRTool


class MiniMaxVLToolkit(BaseToolkit):
    """Chart reading, document QA, OCR and diagram reasoning over one shared :class:`MiniMaxVLClient`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: MiniMaxVLClient | None = Field(default=None, description="Built from settings/env when None.")
    settings: Settings | None = None
    allowed_roots: list[Path] = Field(default_factory=lambda: [Path.cwd()])
    allow_urls: bool = False

    @model_validator(mode="after")
    def _build_client(self) -> MiniMaxVLToolkit:
        if self.client is None:
            self.client = MiniMaxVLClient(self.settings or Settings.from_env())
        if self.settings is None:
            self.settings = self.client.settings
        return self

    def get_tools(self) -> list[BaseTool]:
        """The four tools, in the order chart, document QA, OCR, diagram; all share this toolkit's client."""
        common = {
            "client": self.client,
            "settings": self.settings,
            "allowed_roots": list(self.allowed_roots),
            "allow_urls": self.allow_urls,
        }
        return [
            ChartReaderTool(**common),
            DocumentVQATool(**common),
            OCRTool(**common),
            DiagramReasoningTool(**common),
        ]


__all__ = ["MiniMaxVLToolkit"]
