"""DocumentVQATool: answer a question about document pages, with page numbers and a verbatim quote.

Multi-page documents are planned, not crammed: when pages carry a text layer, keyword overlap with the
question picks the candidate pages; pages go in groups that fit both the server's image limit and its
context (``max_model_len``), and the groups' answers are combined (found first, then confidence).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image
from pydantic import BaseModel, Field

from ..errors import ContextOverflowError, InvalidInputError
from ..images.encode import EncodedImage
from ..pages import encode_page
from ..pdf import parse_page_range
from ..prompts import docvqa as prompts
from ..results import DocumentAnswer
from .base import MiniMaxVLBaseTool

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "that",
        "the",
        "their",
        "there",
        "these",
        "this",
        "those",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "page",
        "document",
        "please",
        "tell",
        "me",
        "show",
        "find",
        "give",
        "list",
    ]
)


def keywords(text: str) -> set[str]:
    """Lower-case content words of ``text`` (stopwords and one-letter words dropped; numbers kept)."""
    return {
        w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in STOPWORDS and len(w) > 1
    }


def score_page(question: str, text_layer: str) -> float:
    """Keyword-overlap score of a page for a question: shared content words, numbers counting double."""
    q = keywords(question)
    if not q or not text_layer:
        return 0.0
    words = keywords(text_layer)
    return float(sum(2 if w.isdigit() else 1 for w in q & words))


@dataclass
class _Page:
    number: int  # as shown to the model and reported (global across sources)
    source: str
    local: int  # page number inside its source
    text: str
    image: Image.Image | None


class DocumentVQAInput(BaseModel):
    """Arguments of :class:`DocumentVQATool`."""

    question: str = Field(description="The question about the document.")
    source: str | list[str] = Field(
        description="The document: a PDF or image file path, http(s) URL or data: URL; or a list of them "
        "(e.g. one scanned image per page, numbered in order)."
    )
    pages: str | None = Field(None, description="Optional page range to search, e.g. '1-5,9' (default: all).")
    short_answer: bool = Field(
        False, description="Answer with the exact words from the document only (no sentence)."
    )


class DocumentVQATool(MiniMaxVLBaseTool):
    """Answer questions about document pages (PDFs, scans, forms, invoices, reports, slides)."""

    name: str = "document_qa"
    description: str = (
        "Answer a QUESTION about a document (PDF, scanned pages, form, invoice, receipt, report, slide, "
        "screenshot of text): returns the answer, the page number(s) and a short quote as evidence. "
        "Use for targeted questions about document content; use ocr_transcribe for the full text and "
        "chart_reader for chart values."
    )
    args_schema: type[BaseModel] = DocumentVQAInput
    max_tokens: int = Field(1024, ge=64, description="Completion budget of each request.")
    max_pages: int = Field(64, ge=1, description="Most pages considered per call (narrow with 'pages').")
    max_candidate_pages: int | None = Field(
        None, ge=1, description="With a text layer, most top-scoring pages sent (default: 2 requests' worth)."
    )
    min_page_tokens: int = Field(2500, ge=576, description="Least image tokens a page may be shrunk to.")
    early_stop_confidence: float = Field(
        0.8, ge=0, le=1, description="Stop ranked search at this confidence."
    )

    # ------------------------------------------------------------------ planning
    @staticmethod
    def _check_question(question: str) -> None:
        """Refuse an empty question before any page is read."""
        if not question or not question.strip():
            raise InvalidInputError("the question is empty: ask something about the document")

    def _collect(self, source: str | list[str], pages: str | None) -> list[_Page]:
        sources = [source] if isinstance(source, str) else list(source)
        if not sources:
            raise InvalidInputError("no source given: pass a document path, URL or data URL")
        out: list[_Page] = []
        if len(sources) == 1:
            for p in self.load_pages(sources[0], pages=pages, render=False):
                out.append(_Page(p.number, sources[0], p.number, p.text_layer, p.image))
        else:
            for src in sources:
                for p in self.load_pages(src, render=False):
                    out.append(_Page(len(out) + 1, src, p.number, p.text_layer, p.image))
            if pages:
                keep = set(parse_page_range(pages, len(out)))
                out = [p for p in out if p.number in keep]
        if not out:
            raise InvalidInputError(f"no pages selected (pages={pages!r})")
        return out

    def _capacity(self, mml: int, question: str, short: bool) -> tuple[int, int]:
        """(pages per request, image tokens per page) that fit the server's image limit and context."""
        client = self.vl_client
        text = prompts.system_prompt() + prompts.user_prompt(question, list(range(1, 9)), short_answer=short)
        text_tokens = client.estimate_text_tokens(text) + 64
        available = mml - self.max_tokens - text_tokens
        n = max(1, min(client.settings.max_images_per_request, available // self.min_page_tokens))
        per_page = min(client.profile.max_image_tokens, available // n)
        if per_page < client.profile.min_image_tokens:
            raise ContextOverflowError(
                f"max_model_len {mml} leaves {available} tokens for page images after the prompt and "
                f"max_tokens {self.max_tokens}: one page needs at least {client.profile.min_image_tokens}; "
                "lower max_tokens or serve a longer --max-model-len",
                max_tokens=self.max_tokens,
                max_model_len=mml,
            )
        return n, per_page

    def _ask_plan(
        self, pages: list[_Page], question: str, short: bool, mml: int
    ) -> tuple[list[list[_Page]], bool, int]:
        """Page groups in the order to ask them, whether they are ranked, and the image tokens per page."""
        n, per_page = self._capacity(mml, question, short)
        groups, ranked = self._groups(pages, question, n)
        return groups, ranked, per_page

    def _groups(self, pages: list[_Page], question: str, n: int) -> tuple[list[list[_Page]], bool]:
        """Page groups in the order to ask them, and whether they are ranked (text layer) or all pages."""
        ranked = False
        order = pages
        if len(pages) > n and any(p.text.strip() for p in pages):
            scores = {p.number: score_page(question, p.text) for p in pages}
            hits = [p for p in pages if scores[p.number] > 0]
            if hits:
                hits.sort(key=lambda p: (-scores[p.number], p.number))
                order = hits[: self.max_candidate_pages or 2 * n]
                ranked = True
        if len(order) > self.max_pages:
            raise InvalidInputError(
                f"{len(order)} pages to examine, over this tool's limit of {self.max_pages}: "
                "pass a page range (pages='1-20') or a document with a text layer"
            )
        groups = [sorted(order[i : i + n], key=lambda p: p.number) for i in range(0, len(order), n)]
        return groups, ranked

    def _render(self, group: list[_Page], per_page: int) -> list[EncodedImage]:
        client = self.vl_client
        missing = [p for p in group if p.image is None]
        by_source: dict[str, list[_Page]] = {}
        for p in missing:
            by_source.setdefault(p.source, []).append(p)
        for src, items in by_source.items():
            rendered = {r.number: r for r in self.load_pages(src, pages=[p.local for p in items])}
            for p in items:
                p.image = rendered[p.local].pixels()
        out = []
        for p in group:
            assert p.image is not None
            out.append(
                encode_page(
                    p.image, max_tokens=per_page, profile=client.profile, quality=client.settings.jpeg_quality
                )
            )
        return out

    # ------------------------------------------------------------------ answers
    @staticmethod
    def _fix(ans: DocumentAnswer, group: Sequence[_Page], short: bool) -> DocumentAnswer:
        sent = [p.number for p in group]
        pages = [p for p in ans.pages if p in sent]
        if ans.found and not pages and len(sent) == 1:
            pages = sent
        short_ans = ans.short_answer or ans.answer
        answer = short_ans if short and short_ans else ans.answer
        return ans.model_copy(
            update={"pages": sorted(set(pages)), "short_answer": short_ans, "answer": answer}
        )

    @staticmethod
    def combine(answers: Sequence[DocumentAnswer]) -> DocumentAnswer:
        """The best of several groups' answers: found ones first, then the highest confidence."""
        if not answers:
            raise InvalidInputError("no answers to combine")
        return max(
            enumerate(answers),
            key=lambda ia: (ia[1].found, ia[1].confidence if ia[1].confidence is not None else 0.5, -ia[0]),
        )[1]

    def _stop(self, ans: DocumentAnswer) -> bool:
        return ans.found and (ans.confidence is None or ans.confidence >= self.early_stop_confidence)

    @staticmethod
    def _content(ans: DocumentAnswer, examined: list[int]) -> str:
        shown = ", ".join(str(n) for n in examined)
        if not ans.found:
            return f"Not found in the page(s) examined ({shown}). {ans.answer}".strip()
        lines = [ans.answer]
        if ans.short_answer and ans.short_answer != ans.answer:
            lines.append(f"Short answer: {ans.short_answer}")
        if ans.pages:
            lines.append("Page(s): " + ", ".join(str(p) for p in ans.pages))
        if ans.evidence:
            lines.append(f'Evidence: "{ans.evidence}"')
        if ans.confidence is not None:
            lines.append(f"Confidence: {ans.confidence:.2f}")
        return "\n".join(lines)

    def _request_args(self, question: str, group: list[_Page], short: bool) -> dict[str, Any]:
        return {
            "text": prompts.user_prompt(question, [p.number for p in group], short_answer=short),
            "schema": DocumentAnswer,
            "system": prompts.system_prompt(),
            "max_tokens": self.max_tokens,
        }

    def _run(
        self,
        question: str,
        source: str | list[str],
        pages: str | None = None,
        short_answer: bool = False,
        **_: Any,
    ) -> tuple[str, DocumentAnswer]:
        def go() -> tuple[str, DocumentAnswer]:
            self._check_question(question)
            collected = self._collect(source, pages)
            mml = self.vl_client.max_model_len()
            groups, ranked, per_page = self._ask_plan(collected, question, short_answer, mml)
            answers: list[DocumentAnswer] = []
            examined: list[int] = []
            for group in groups:
                images = self._render(group, per_page)
                kw = self._request_args(question, group, short_answer)
                res = self.vl_client.chat(kw.pop("text"), images, **kw)
                answers.append(self._fix(res.parsed, group, short_answer))
                examined += [p.number for p in group]
                if ranked and self._stop(answers[-1]):
                    break
            best = self.combine(answers)
            return self._content(best, sorted(examined)), best

        return self.guard(source, go)

    async def _arun(
        self,
        question: str,
        source: str | list[str],
        pages: str | None = None,
        short_answer: bool = False,
        **_: Any,
    ) -> tuple[str, DocumentAnswer]:
        async def one(group: list[_Page], per_page: int) -> DocumentAnswer:
            images = await asyncio.to_thread(self._render, group, per_page)
            kw = self._request_args(question, group, short_answer)
            res = await self.vl_client.achat(kw.pop("text"), images, **kw)
            return self._fix(res.parsed, group, short_answer)

        async def go() -> tuple[str, DocumentAnswer]:
            self._check_question(question)
            collected = await asyncio.to_thread(self._collect, source, pages)
            mml = await self.vl_client.amax_model_len()
            groups, ranked, per_page = self._ask_plan(collected, question, short_answer, mml)
            answers: list[DocumentAnswer] = []
            examined: list[int] = []
            if ranked:  # best pages first: stop as soon as one group answers confidently
                for group in groups:
                    answers.append(await one(group, per_page))
                    examined += [p.number for p in group]
                    if self._stop(answers[-1]):
                        break
            else:  # no ranking: ask every group at once (the client caps concurrency)
                answers = list(await asyncio.gather(*(one(g, per_page) for g in groups)))
                examined = [p.number for g in groups for p in g]
            best = self.combine(answers)
            return self._content(best, sorted(examined)), best

        return await self.aguard(source, go)


__all__ = ["DocumentVQAInput", "DocumentVQATool", "keywords", "score_page"]
