"""OCR: faithful transcription of a page (or a crop of one) as markdown or plain text."""

from __future__ import annotations

TASK_MARKDOWN = """You transcribe document images exactly, as Markdown.
- Follow the reading order (columns top to bottom, left column first).
- Keep headings as #/##/###, lists as - or 1., tables as Markdown tables (| a | b | with a |---| row),
  bold/italic only where the page uses them; math in LaTeX ($...$).
- Copy every word, number and symbol as printed, including typos; never summarise, translate, reorder or
  correct. Keep line breaks between paragraphs.
- For figures or photos without text write a one-line placeholder such as ![figure](figure); transcribe text
  inside figures.
- Output only the transcription: no preamble, no comments, no code fences."""

TASK_PLAIN = """You transcribe document images exactly, as plain text.
- Follow the reading order (columns top to bottom, left column first); one line of output per printed line.
- Copy every word, number and symbol as printed, including typos; never summarise, translate or correct.
- Tables: one row per line, cells separated by a tab. No Markdown syntax.
- Output only the transcription: no preamble, no comments."""

BLANK_MARKER = "[blank page]"


def system_prompt(*, plain: bool = False) -> str:
    """System text for OCR (markdown by default, plain text when ``plain``)."""
    from . import with_identity

    return with_identity(TASK_PLAIN if plain else TASK_MARKDOWN)


def page_prompt(*, plain: bool = False) -> str:
    """User text after a whole-page image."""
    fmt = "plain text" if plain else "Markdown"
    return (
        f"Transcribe all text of this page as {fmt}. "
        f"If the page has no text at all, reply exactly {BLANK_MARKER}."
    )


def crop_prompt(
    index: int, count: int, *, row: int | None = None, column: int | None = None, plain: bool = False
) -> str:
    """User text after one crop of a dense page: transcribe only what is visible, complete nothing."""
    fmt = "plain text" if plain else "Markdown"
    where = f" (row {row}, column {column})" if row is not None and column is not None else ""
    return (
        f"This image is crop {index} of {count}{where} of a larger page; "
        "neighbouring crops overlap slightly. "
        f"Transcribe, as {fmt}, only the text visible in this crop, top to bottom. "
        "Do not complete words or lines cut off at the crop's edges and do not guess text outside it; "
        "skip a line that is cut through horizontally so that it cannot be read. "
        f"If the crop has no text, reply exactly {BLANK_MARKER}."
    )


__all__ = ["BLANK_MARKER", "TASK_MARKDOWN", "TASK_PLAIN", "crop_prompt", "page_prompt", "system_prompt"]
