"""OCRTool: full transcription of images and PDF pages as markdown (or plain text), page by page."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..errors import InvalidInputError, MiniMaxVLError
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
    tile: Literal["auto"] | bool = Field(
        "auto", description="'auto': crops for dense pages; True always; False never."
    )

    def _pages(self, source: str, pages: str | None) -> list[PageImage]:
        """The selected pages, PDF pages not rendered yet: the count is checked before any pixels."""
        selected = self.load_pages(source, pages=pages, render=False)
        if len(selected) > self.max_pages:
            raise InvalidInputError(
                f"{len(selected)} pages selected, over this tool's limit of {self.max_pages}: "
                "pass a page range such as pages='1-10'"
            )
        return selected

    def _rendered(self, source: str, page: PageImage) -> PageImage:
        """``page`` with its image: PDF pages are rendered one at a time, so memory stays bounded."""
        if page.image is not None:
            return page
        return self.load_pages(source, pages=[page.number])[0]

    def _finish(self, source: str, pages: list[OCRPage]) -> tuple[str, OCRResult]:
        result = OCRResult(source=source if not source.startswith("data:") else "data URL", pages=pages)
        failed = [p for p in pages if p.status == "failed"]
        if failed and len(failed) == len(pages):
            raise MiniMaxVLError(f"every page failed; page {failed[0].page}: {failed[0].error}")
        body = result.to_markdown()
        notes = []
        if failed:
            notes.append("failed pages: " + ", ".join(f"{p.page} ({p.error})" for p in failed))
        cut = [str(p.page) for p in pages if p.status == "ok" and p.error]
        if cut:
            notes.append("output cut at max_tokens on pages: " + ", ".join(cut) + " (raise max_tokens)")
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
            done = []
            for meta in self._pages(source, pages):
                page = self._rendered(source, meta)
                done.append(
                    ocr_page(self.vl_client, page, plain=plain, max_tokens=self.max_tokens, tile=self.tile)
                )
                page.image = None  # free the pixels before the next page
            return self._finish(source, done)

        return self.guard(source, go)

    async def _arun(
        self, source: str, pages: str | None = None, plain: bool = False, **_: Any
    ) -> tuple[str, OCRResult]:
        # pages run concurrently (their requests capped by the client); rendering is bounded the same way
        gate = asyncio.Semaphore(self.vl_client.settings.max_concurrency)

        async def one(meta: PageImage) -> OCRPage:
            async with gate:
                page = await asyncio.to_thread(self._rendered, source, meta)
                try:
                    return await aocr_page(
                        self.vl_client,
                        page,
                        plain=plain,
                        max_tokens=self.max_tokens,
                        tile=self.tile,
                    )
                finally:
                    page.image = None

        async def go() -> tuple[str, OCRResult]:
            selected = await asyncio.to_thread(self._pages, source, pages)
            done = await asyncio.gather(*(one(p) for p in selected))
            return self._finish(source, list(done))

        return await self.aguard(source, go)


__all__ = ["OCRInput", "OCRTool"]
