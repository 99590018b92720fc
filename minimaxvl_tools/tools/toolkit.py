"""MiniMaxVLToolkit: the four MiniMax-VL-01 tools sharing one client and one input policy."""

from __future__ import annotations

from pathlib import Path

from langchain_core.tools import BaseTool, BaseToolkit
from pydantic import ConfigDict, Field, model_validator

from ..client import MiniMaxVLClient
from ..images.policy import InputPolicy
from ..settings import Settings
from .base import shared_client
from .chart import ChartReaderTool
from .diagram import DiagramReasoningTool
from .docvqa import DocumentVQATool
from .ocr import OCRTool


class MiniMaxVLToolkit(BaseToolkit):
    """Chart reading, document QA, OCR and diagram reasoning over one shared :class:`MiniMaxVLClient`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: MiniMaxVLClient | None = Field(default=None, description="Built from settings/env when None.")
    settings: Settings | None = None
    allowed_roots: list[Path] | None = Field(None, description="Default: the settings' (the cwd).")
    allow_urls: bool | None = Field(None, description="Default: the settings' (off).")
    allow_private_hosts: bool | None = Field(None, description="Default: the settings' (off).")
    input_policy: InputPolicy | None = Field(None, description="A ready policy for every tool.")

    @model_validator(mode="after")
    def _build_client(self) -> MiniMaxVLToolkit:
        self.client, self.settings = shared_client(self.client, self.settings)
        return self

    def get_tools(self) -> list[BaseTool]:
        """The four tools, in the order chart, document QA, OCR, diagram; all share this toolkit's client."""
        common = {
            "client": self.client,
            "settings": self.settings,
            "allowed_roots": list(self.allowed_roots) if self.allowed_roots is not None else None,
            "allow_urls": self.allow_urls,
            "allow_private_hosts": self.allow_private_hosts,
            "input_policy": self.input_policy,
        }
        return [
            ChartReaderTool(**common),
            DocumentVQATool(**common),
            OCRTool(**common),
            DiagramReasoningTool(**common),
        ]


__all__ = ["MiniMaxVLToolkit"]
