"""ChartReaderTool: the numbers behind a chart or plot, as a table, plus an optional answer."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from ..errors import InvalidInputError, TruncatedOutputError
from ..images.encode import EncodedImage
from ..pages import encode_page
from ..prompts import chart as prompts
from ..results import ChartData
from .base import CutRetryTool


class ChartReaderInput(BaseModel):
    """Arguments of :class:`ChartReaderTool`."""

    source: str = Field(
        description="The chart: an image file path, an http(s) URL, a data: URL, or a PDF file path."
    )
    question: str | None = Field(
        None, description="Optional question about the chart (e.g. 'Which year had the highest sales?')."
    )
    pages: str | None = Field(
        None, description="For a PDF: the page(s) holding the chart, e.g. '3' or '2-3' (default: page 1)."
    )


def summarize_chart(data: ChartData) -> str:
    """Agent-facing text: one summary line, the answer if any, the data as a markdown table, the notes."""
    kind = data.chart_type if data.chart_type and data.chart_type != "unknown" else "chart"
    title = f" '{data.title}'" if data.title else ""
    names = ", ".join(s.name for s in data.series) or "none"
    lines = [
        f"{kind.capitalize()}{title}: {len(data.series)} series ({names}), {len(data.x_values())} x values."
    ]
    if data.answer:
        lines.append(f"Answer: {data.answer}")
    lines += ["", data.to_markdown()]
    if data.notes:
        lines += ["", f"Notes: {data.notes}"]
    return "\n".join(lines)


class ChartReaderTool(CutRetryTool):
    """Extract the data of a chart or plot (bar, line, pie, scatter) into a table, and answer a question."""

    name: str = "chart_reader"
    description: str = (
        "Read the NUMBERS from a chart, plot or graph image (bar, line, pie, scatter, area; also a chart "
        "on a PDF page) and return its data as a table, optionally answering a question about the values "
        "(maxima, differences, trends). Use for charts/plots only; not for text documents or diagrams."
    )
    args_schema: type[BaseModel] = ChartReaderInput

    def _images(self, source: str, pages: str | None) -> list[EncodedImage]:
        limit = self.vl_client.settings.max_images_per_request
        selected = self.load_pages(source, pages=pages or "1")
        if len(selected) > limit:
            raise InvalidInputError(
                f"{len(selected)} pages selected but one request holds at most {limit} images: "
                "select the page(s) that show the chart"
            )
        profile, quality = self.vl_client.profile, self.vl_client.settings.jpeg_quality
        return [encode_page(p.pixels(), profile=profile, quality=quality) for p in selected]

    def _options(self) -> dict[str, Any]:
        """The chart call's options: its prompt, its budget, and the client's one retry of a cut JSON."""
        return {"system": prompts.system_prompt(), **self.budget()}

    def _still_cut(self, cut: TruncatedOutputError) -> TruncatedOutputError:
        """The error for a chart whose JSON outgrew every budget tried, saying what to do about it."""
        tried = (
            f"{self.max_tokens}, then {cut.budgets[-1]}"
            if len(cut.budgets) > 1
            else f"{self.max_tokens} (no room to retry with more: max_retry_tokens or the context)"
        )
        return TruncatedOutputError(
            f"the chart's data did not fit the completion budget (JSON cut at max_tokens {tried}; "
            "finish_reason=length): ask about fewer series, crop the chart (or pick its page) to the part "
            "you need, or raise max_tokens/max_retry_tokens",
            raw=cut.raw,
            errors=cut.errors,
            budgets=cut.budgets,
        )

    def _read(self, text: str, images: list[EncodedImage]) -> ChartData:
        """The chart's data (a JSON cut at max_tokens is asked again once with more room by the client)."""
        try:
            return self.vl_client.structured(text, images, ChartData, **self._options())
        except TruncatedOutputError as cut:
            raise self._still_cut(cut) from cut

    async def _aread(self, text: str, images: list[EncodedImage]) -> ChartData:
        """Async :meth:`_read`."""
        try:
            return await self.vl_client.astructured(text, images, ChartData, **self._options())
        except TruncatedOutputError as cut:
            raise self._still_cut(cut) from cut

    def _finish(self, data: Any) -> tuple[str, ChartData]:
        chart = data if isinstance(data, ChartData) else ChartData.model_validate(data)
        return summarize_chart(chart), chart

    def _run(
        self, source: str, question: str | None = None, pages: str | None = None, **_: Any
    ) -> tuple[str, ChartData]:
        def go() -> tuple[str, ChartData]:
            images = self._images(source, pages)
            return self._finish(self._read(prompts.user_prompt(question, pages=len(images)), images))

        return self.guard(source, go)

    async def _arun(
        self, source: str, question: str | None = None, pages: str | None = None, **_: Any
    ) -> tuple[str, ChartData]:
        async def go() -> tuple[str, ChartData]:
            images = await asyncio.to_thread(self._images, source, pages)
            text = prompts.user_prompt(question, pages=len(images))
            return self._finish(await self._aread(text, images))

        return await self.aguard(source, go)


__all__ = ["ChartReaderInput", "ChartReaderTool", "summarize_chart"]
