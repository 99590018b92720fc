"""OCRTool: full transcription of images and PDF pages as markdown (or plain text), page by page."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from ..pages import PageImage, aocr_page, ocr_page
from ..results import OCRPage, OCRResult
from .base import MiniMaxVLBaseTool


class OCRInput(BaseModel):
    """Arguments of :class:`OCRTool`."""

    source: str = Field(description="An image or PDF: a file path, an http(s) URL or a data: URL.")
    pages: str | None = Field(None, description="PDF/TIFF pages to transcribe, e.g. '1-3,5' (default: all).")
    plain: bool = Field(False, description="Plain text instead of markdown (headings, lists, tables).")


class OCRTool(MiniMaxVLBaseTool):
    """Transcribe every word of an image or document pages; dense pages are read in overlapping crops."""

    name: str = "ocr_transcribe"
    description: str = (
        "Transcribe ALL the text of an image, scan, screenshot or PDF pages, verbatim, as markdown "
        "(reading order, headings, lists, tables) or plain text. Use when the full text is needed; "
        "to answer one question about a document use document_qa instead."
    )
    args_schema: type[BaseModel] = OCRInput
    max_tokens: int | None = Field(
        None, ge=64, description="Completion budget per request (default: settings)."
    )
    max_pages: int = Field(50, ge=1, description="Most pages one call transcribes.")
    tile: bool | str = Field("auto", description="'auto': crops for dense pages; True always; False never.")

    def _pages(self, source: str, pages: str | None) -> list[PageImage]:
        selected = self.load_pages(source, pages=pages)
        if len(selected) > self.max_pages:
            from ..errors import InvalidInputError

            raise InvalidInputError(
                f"{len(selected)} pages selected, over this tool's limit of {self.max_pages}: "
                "pass a page range such as pages='1-10'"
            )
        return selected

    def _finish(self, source: str, pages: list[OCRPage]) -> tuple[str, OCRResult]:
        result = OCRResult(source=source if not source.startswith("data:") else "data URL", pages=pages)
        failed = [p for p in pages if p.status == "failed"]
        if failed and len(failed) == len(pages):
            from ..errors import MiniMaxVLError

            raise MiniMaxVLError(f"every page failed; page {failed[0].page}: {failed[0].error}")
        body = result.to_markdown()
        notes = []
        if failed:
            notes.append("failed pages: " + ", ".join(f"{p.page} ({p.error})" for p in failed))
        blank = [str(p.page) for p in pages if p.status == "blank"]
        if blank:
            notes.append("blank pages: " + ", ".join(blank))
        if not body.strip():
            body = "(no text found)"
        content = self.truncate(body)
        if notes:
            content += "\n\n[" + "; ".join(notes) + "]"
        return content, result

    def _run(
        self, source: str, pages: str | None = None, plain: bool = False, **_: Any
    ) -> tuple[str, OCRResult]:
        def go() -> tuple[str, OCRResult]:
            done = [
                ocr_page(self.vl_client, p, plain=plain, max_tokens=self.max_tokens, tile=self.tile)  # type: ignore[arg-type]
                for p in self._pages(source, pages)
            ]
            return self._finish(source, done)

        return self.guard(source, go)

    async def _arun(
        self, source: str, pages: str | None = None, plain: bool = False, **_: Any
    ) -> tuple[str, OCRResult]:
        async def go() -> tuple[str, OCRResult]:
            selected = await asyncio.to_thread(self._pages, source, pages)
            done = await asyncio.gather(
                *(
                    aocr_page(self.vl_client, p, plain=plain, max_tokens=self.max_tokens, tile=self.tile)  # type: ignore[arg-type]
                    for p in selected
                )
            )
            return self._finish(source, list(done))

        return await self.aguard(source, go)


__all__ = ["OCRInput", "OCRTool"]
