"""DiagramReasoningTool: chain-of-thought answers about science diagrams, flowcharts and multiple choice."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from ..errors import InvalidInputError
from ..images.encode import EncodedImage
from ..pages import encode_page
from ..prompts import diagram as prompts
from ..results import DiagramAnswer
from .base import CutRetryTool


class DiagramInput(BaseModel):
    """Arguments of :class:`DiagramReasoningTool`."""

    source: str = Field(
        description="The diagram: an image file path, an http(s) URL, a data: URL or a PDF path."
    )
    question: str = Field(description="The question about the diagram.")
    options: list[str] | None = Field(
        None, description="Answer choices for a multiple-choice question, in order (they become A, B, C...)."
    )


class DiagramReasoningTool(CutRetryTool):
    """Reason step by step over a diagram and answer; with options, the chosen letter is parsed reliably.

    A reply cut at ``max_tokens`` usually lacks the answer line (it comes last): the client asks again
    once with more room (``max_retry_tokens``)."""

    name: str = "diagram_reasoning"
    description: str = (
        "Answer a question that needs REASONING over a diagram: science figures (food webs, life cycles, "
        "circuits, anatomy, physics setups), flowcharts, geometry, maps, labelled illustrations; supports "
        "multiple-choice options (returns the letter). Not for extracting chart numbers or transcribing text."
    )
    args_schema: type[BaseModel] = DiagramInput
    max_reasoning_chars: int = Field(
        1500, ge=0, description="Reasoning shown to the agent (full in artifact)."
    )

    def _prepare(self, source: str, question: str, options: list[str] | None) -> tuple[EncodedImage, str]:
        if not question or not question.strip():
            raise InvalidInputError("the question is empty: ask something about the diagram")
        if options is not None and not 2 <= len(options) <= 26:
            raise InvalidInputError(f"give between 2 and 26 options, got {len(options)}")
        page = self.load_pages(source, pages="1")[0]
        client = self.vl_client
        enc = encode_page(page.pixels(), profile=client.profile, quality=client.settings.jpeg_quality)
        return enc, prompts.user_prompt(question, options)

    def _finish(self, text: str, options: list[str] | None) -> tuple[str, DiagramAnswer]:
        ans = DiagramAnswer.from_text(text, options)
        head = f"Answer: {ans.option}. {ans.answer}" if ans.option and options else f"Answer: {ans.answer}"
        if options and not ans.option:
            head += " (no option letter could be parsed from the model's reply)"
        reasoning = ans.reasoning
        if len(reasoning) > self.max_reasoning_chars:
            reasoning = reasoning[: self.max_reasoning_chars] + " [...]"
        content = head if not reasoning else f"{head}\n\nReasoning: {reasoning}"
        return content, ans

    def _run(
        self, source: str, question: str, options: list[str] | None = None, **_: Any
    ) -> tuple[str, DiagramAnswer]:
        def go() -> tuple[str, DiagramAnswer]:
            enc, text = self._prepare(source, question, options)
            res = self.vl_client.chat(text, [enc], system=prompts.system_prompt(), **self.budget())
            return self._finish(res.text, options)

        return self.guard(source, go)

    async def _arun(
        self, source: str, question: str, options: list[str] | None = None, **_: Any
    ) -> tuple[str, DiagramAnswer]:
        async def go() -> tuple[str, DiagramAnswer]:
            enc, text = await asyncio.to_thread(self._prepare, source, question, options)
            res = await self.vl_client.achat(text, [enc], system=prompts.system_prompt(), **self.budget())
            return self._finish(res.text, options)

        return await self.aguard(source, go)


__all__ = ["DiagramInput", "DiagramReasoningTool"]
