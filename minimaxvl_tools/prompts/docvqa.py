"""Document VQA: answer a question about document page images, citing pages and a verbatim quote."""

from __future__ import annotations

from collections.abc import Sequence

TASK = """You answer questions about document pages (scans, forms, reports, invoices, slides).
Read the pages carefully, including tables, headers, footnotes and handwriting. Answer only from what
the pages show; if they do not contain the answer, say so instead of guessing."""

SCHEMA_HINT = (
    '{"answer": str, "short_answer": str, "pages": [int], "evidence": str, '
    '"confidence": number, "found": bool}'
)

SHORT_RULES = (
    "Answer with the exact words as written in the document (copy the span verbatim: a name, number, date, "
    "amount or short phrase), not a sentence, no explanation, no added units or punctuation."
)


def system_prompt() -> str:
    """System text for document question answering."""
    from . import with_identity

    return with_identity(TASK)


def page_label(number: int, page_count: int | None = None) -> str:
    """The text part placed just before a page image so the model can cite page numbers."""
    return f"Page {number}:" if not page_count else f"Page {number} of {page_count}:"


def user_prompt(question: str, pages: Sequence[int], *, short_answer: bool = False) -> str:
    """User text after the labelled page images: asks for the JSON answer with pages and evidence."""
    listed = ", ".join(str(p) for p in pages) or "1"
    text = (
        f"The images above are page(s) {listed} of a document, each preceded by its page label.\n"
        f"Question: {question.strip()}\n\n"
        f"Reply with one JSON object of this shape:\n{SCHEMA_HINT}\n"
        '- "pages": the page number(s) where the answer is found (from the labels);\n'
        '- "evidence": a short verbatim quote (at most 25 words) from the page that supports the answer;\n'
        '- "confidence": between 0 and 1;\n'
        '- "found": false if these pages do not contain the answer (then "answer" says what is missing).\n'
    )
    if short_answer:
        text += f'- "answer" and "short_answer": {SHORT_RULES}\n'
    else:
        text += f'- "answer": a concise answer (a phrase or one sentence);\n- "short_answer": {SHORT_RULES}\n'
    return text + "Reply with the JSON object only."


def plain_short_prompt(question: str) -> str:
    """Plain-text short-answer prompt (no JSON), the form DocVQA/ANLS evaluation expects."""
    return f"{question.strip()}\n{SHORT_RULES} Reply with the answer only."


__all__ = [
    "SCHEMA_HINT",
    "SHORT_RULES",
    "TASK",
    "page_label",
    "plain_short_prompt",
    "system_prompt",
    "user_prompt",
]
