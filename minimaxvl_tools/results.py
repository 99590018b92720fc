"""Pydantic results: what the tools, loader, CLI and eval hand to programs.

Each result is small, validated and serialisable (``model_dump_json``); the tools put one in the
``artifact`` of their ToolMessage and a short text rendering in its ``content``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Literal, TypedDict

from pydantic import BaseModel, Field

__all__ = [
    "Axis",
    "BlockMeta",
    "ChartData",
    "CropInfo",
    "DataPoint",
    "DiagramAnswer",
    "DocumentAnswer",
    "OCRPage",
    "OCRResult",
    "OCRStatus",
    "Series",
    "TextBlock",
    "markdown_to_text",
    "parse_choice",
]


# ---------------------------------------------------------------- charts
class DataPoint(BaseModel):
    """One value of a series: ``x`` is a category or a number; ``y`` is None where no value is shown."""

    x: str | float = Field(description="Category label or numeric x value, as printed on the chart.")
    y: float | None = Field(None, description="Numeric value (no units, no thousands separators).")


class Series(BaseModel):
    """One named series of a chart (a line, a bar colour, a pie)."""

    name: str = Field(description="Series name from the legend; the y-axis label if there is no legend.")
    points: list[DataPoint] = Field(default_factory=list)


class Axis(BaseModel):
    """Label and unit of one axis (either may be absent)."""

    label: str | None = None
    unit: str | None = Field(None, description="Unit such as '%', 'USD', 'millions', 'kg'.")


class ChartData(BaseModel):
    """The data a chart encodes, plus an optional answer to the question asked about it."""

    chart_type: str = Field("unknown", description="bar, line, pie, scatter, area, table, other...")
    title: str | None = None
    x_axis: Axis = Field(default_factory=Axis)
    y_axis: Axis = Field(default_factory=Axis)
    series: list[Series] = Field(default_factory=list)
    legend: list[str] = Field(default_factory=list)
    answer: str | None = Field(None, description="Answer to the user's question, if one was asked.")
    notes: str | None = Field(None, description="Caveats: estimated values, unreadable labels, log scale.")

    def x_values(self) -> list[str | float]:
        """Distinct x values in first-seen order across all series (the table's rows)."""
        seen: dict[str, str | float] = {}
        for s in self.series:
            for p in s.points:
                seen.setdefault(_fmt_x(p.x), p.x)
        return list(seen.values())

    def _rows(self) -> tuple[list[str], list[list[str]]]:
        header = [_axis_title(self.x_axis, "x")] + [s.name for s in self.series]
        index = {_fmt_x(x): i for i, x in enumerate(self.x_values())}
        rows = [[_fmt_x(x)] + [""] * len(self.series) for x in self.x_values()]
        for j, s in enumerate(self.series):
            for p in s.points:
                rows[index[_fmt_x(p.x)]][j + 1] = _fmt_num(p.y)
        return header, rows

    def to_csv(self) -> str:
        """CSV with one row per x value and one column per series (empty cells for missing values)."""
        header, rows = self._rows()
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buf.getvalue()

    def to_markdown(self) -> str:
        """A markdown table of the data (same layout as :meth:`to_csv`), headed by title and y-axis unit."""
        lines: list[str] = []
        if self.title:
            lines += [f"**{_md_cell(self.title)}**", ""]
        if self.series:
            header, rows = self._rows()
            lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        else:
            lines.append("(no data series read)")
        if self.y_axis.label or self.y_axis.unit:
            lines += ["", f"y: {_axis_title(self.y_axis, 'value')}"]
        return "\n".join(lines)


def _axis_title(axis: Axis, default: str) -> str:
    label = axis.label or default
    return f"{label} ({axis.unit})" if axis.unit else label


def _fmt_num(y: float | None) -> str:
    if y is None:
        return ""
    if float(y).is_integer() and abs(y) < 1e15:
        return str(int(y))
    return format(y, ".10g")


def _fmt_x(x: str | float) -> str:
    return x if isinstance(x, str) else _fmt_num(x)


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------- document VQA
class DocumentAnswer(BaseModel):
    """An answer about document pages, with the pages it came from and a short quote as evidence."""

    answer: str = Field(description="The answer; a short phrase or sentence.")
    short_answer: str | None = Field(None, description="Exact words from the document (DocVQA/ANLS style).")
    pages: list[int] = Field(default_factory=list, description="1-based page numbers the answer is on.")
    evidence: str = Field("", description="A short verbatim quote from the page supporting the answer.")
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    found: bool = Field(True, description="False when the pages do not contain the answer.")


# ---------------------------------------------------------------- OCR
OCRStatus = Literal["ok", "blank", "failed", "fallback"]


class CropInfo(BaseModel):
    """One crop sent for a dense page: its box in page pixels and its image tokens."""

    box: tuple[int, int, int, int] = Field(description="(left, top, right, bottom) in page pixels.")
    tokens: int = 0


class _BlockBox(TypedDict):
    box: list[int]
    kind: str


class BlockMeta(_BlockBox, total=False):
    """A text block as page Document metadata carries it: its box and kind, the box in PDF points when
    the page is a PDF's, and ``span`` ([start, end) of its text in the page text) when the loader found it."""

    pdf_box: list[float]
    span: list[int]


class TextBlock(BaseModel):
    """Where on the page a transcribed line or block was read, so an answer can cite a region.

    ``box`` is in pixels of the page image as read (after any rotation correction); ``pdf_box`` is the
    same region in PDF points from the top-left corner of the page as displayed (PDF pages only).
    """

    text: str
    box: tuple[int, int, int, int] = Field(description="(left, top, right, bottom) in page pixels.")
    pdf_box: tuple[float, float, float, float] | None = Field(
        None, description="(left, top, right, bottom) in PDF points, top-left origin; None off PDFs."
    )
    kind: Literal["line", "block"] = Field("block", description="One text line, or a block of lines.")

    def compact(self) -> BlockMeta:
        """JSON-ready dict without None values (for Document metadata)."""
        out = BlockMeta(box=list(self.box), kind=self.kind)
        if self.pdf_box is not None:
            out["pdf_box"] = [round(v, 2) for v in self.pdf_box]
        return out


class OCRPage(BaseModel):
    """The transcription of one page and what it cost; ``status`` says whether it can be trusted."""

    page: int = Field(1, ge=1, description="1-based page number.")
    markdown: str = ""
    text: str = Field("", description="Plain text (markdown syntax stripped).")
    crops: list[CropInfo] = Field(default_factory=list, description="Empty when the page went in one image.")
    image_tokens: int = 0
    requests: int = 0
    status: OCRStatus = "ok"
    error: str | None = Field(None, description="Why it failed; with status ok, a warning (output cut).")
    error_type: str | None = Field(
        None, description="Name of the minimaxvl_tools.errors class of the failure (status failed)."
    )
    engine: str = Field("minimax-vl-01", description="What produced the text (the fallback's name).")
    rotation: int = Field(0, description="Clockwise degrees the page was turned to read it upright.")
    attempts: int = Field(
        1, ge=0, description="Deepest try used for a region (1 = first answer good; 0 = no request)."
    )
    warnings: list[str] = Field(
        default_factory=list, description="Retries, rotation and fallback notes, in order."
    )
    blocks: list[TextBlock] = Field(
        default_factory=list, description="The transcription's lines or blocks with their page boxes."
    )


class OCRResult(BaseModel):
    """The pages of one source, in order."""

    source: str
    pages: list[OCRPage] = Field(default_factory=list)

    def to_markdown(self, *, page_markers: bool = True) -> str:
        """All pages' markdown, separated by ``<!-- page N -->`` markers (one page: no marker)."""
        if len(self.pages) == 1 or not page_markers:
            return "\n\n".join(p.markdown.strip() for p in self.pages)
        return "\n\n".join(f"<!-- page {p.page} -->\n{p.markdown.strip()}" for p in self.pages)

    def to_text(self) -> str:
        """All pages' plain text, separated by form feeds (the usual page break of text extractors)."""
        return "\n\f".join(p.text for p in self.pages)

    @property
    def text(self) -> str:
        """Same as :meth:`to_text`."""
        return self.to_text()

    @property
    def blocks(self) -> list[tuple[int, TextBlock]]:
        """Every page's text blocks as (page number, block), in reading order."""
        return [(p.page, b) for p in self.pages for b in p.blocks]

    @property
    def image_tokens(self) -> int:
        """Image tokens spent on all pages."""
        return sum(p.image_tokens for p in self.pages)

    @property
    def requests(self) -> int:
        """Requests sent for all pages."""
        return sum(p.requests for p in self.pages)

    @property
    def failed_pages(self) -> list[int]:
        """Numbers of the pages whose status is ``failed``."""
        return [p.page for p in self.pages if p.status == "failed"]

    @property
    def fallback_pages(self) -> list[int]:
        """Numbers of the pages read by a fallback (text layer, local engine) after the model path failed."""
        return [p.page for p in self.pages if p.status == "fallback"]

    @property
    def retried_pages(self) -> list[int]:
        """Numbers of the pages that needed more than one try (looping or cut replies retried)."""
        return [p.page for p in self.pages if p.attempts > 1]


_MD_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^[ \t]*```[\w-]*[ \t]*(?:\n|$)", re.M), ""),  # code fences
    # table rule rows such as |---|:-:|
    (re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*(?:\n|$)", re.M), ""),
    (re.compile(r"^#{1,6}\s+", re.M), ""),  # headings
    (re.compile(r"^\s*>\s?", re.M), ""),  # quotes
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])([*_])(?!\s)(.+?)(?<!\s)\1(?![\w*])"), r"\2"),  # italics
    (re.compile(r"`([^`]*)`"), r"\1"),  # inline code
    (re.compile(r"<br\s*/?>", re.I), " "),
)


def markdown_to_text(markdown: str) -> str:
    """Plain text from model markdown: markup removed, table cells joined by tabs, list markers kept."""
    out = markdown
    for pattern, repl in _MD_RULES:
        out = pattern.sub(repl, out)
    lines = []
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("|") and s.endswith("|") and len(s) > 1:
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", s[1:-1])]
            line = "\t".join(cells)
        lines.append(line.rstrip())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# ---------------------------------------------------------------- diagrams
class DiagramAnswer(BaseModel):
    """An answer about a diagram: free text, the option letter when choices were given, and the reasoning."""

    answer: str = Field(description="The answer text (the chosen option's text for multiple choice).")
    option: str | None = Field(None, description="Letter of the chosen option (A, B, ...), if any.")
    reasoning: str = ""

    @classmethod
    def from_text(cls, text: str, options: Sequence[str] | None = None) -> DiagramAnswer:
        """Parse a chain-of-thought reply ending in ``Answer: X`` (see :func:`parse_choice`)."""
        reasoning, answer, letter = parse_choice(text, options)
        return cls(answer=answer, option=letter, reasoning=reasoning)


_ANSWER_LINE = re.compile(r"(?:final\s+answer|answer)\s*(?:is)?\s*[:：]\s*(?P<ans>.+?)\s*$", re.I | re.M)
_ANSWER_IS = re.compile(r"(?:final\s+answer|answer)\s+is\s*[:：]?\s*(?P<ans>.+?)\s*$", re.I | re.M)
_LETTER = re.compile(r"^\W*\(?(?P<l>[A-Z])\)?(?:[.):\s]|$)")
_BOXED = re.compile(r"\\boxed\{(?P<ans>[^{}]*)\}")


def _strip_md(s: str) -> str:
    return re.sub(r"[*_`$]", "", s).strip().rstrip(".").strip()


def parse_choice(text: str, options: Sequence[str] | None = None) -> tuple[str, str, str | None]:
    """Split a chain-of-thought reply into (reasoning, answer, option letter or None).

    The last ``Answer: X`` / ``The answer is X`` / ``\\boxed{X}`` line wins; with ``options``, ``X`` may be a
    letter (``B``, ``(B)``, ``B.``, ``B) text``) or an option's text, and the answer becomes that option's
    text. Without a final line, the last line that names an option letter or text is used.
    """
    raw = (text or "").strip()
    candidate: str | None = None
    cut = len(raw)
    for rx in (_ANSWER_LINE, _ANSWER_IS, _BOXED):
        matches = list(rx.finditer(raw))
        if matches:
            m = matches[-1]
            candidate, cut = m.group("ans"), m.start()
            break
    reasoning = raw[:cut].strip() if candidate is not None else raw
    opts = list(options or [])
    letters = [chr(ord("A") + i) for i in range(len(opts))]
    if candidate is None:
        lines = [ln for ln in raw.splitlines() if ln.strip()]
        candidate = _strip_md(lines[-1]) if lines else ""
        if opts:  # look backwards for a line that names an option
            for ln in reversed(lines):
                letter = _match_option(_strip_md(ln), opts, letters, loose=True)
                if letter:
                    return reasoning, opts[letters.index(letter)], letter
    cand = _strip_md(candidate)
    cand = _BOXED.sub(lambda m: m.group("ans"), cand)
    if opts:
        letter = _match_option(cand, opts, letters, loose=False)
        if letter:
            return reasoning, opts[letters.index(letter)], letter
        return reasoning, cand, None
    m = _LETTER.match(cand)
    if m and (len(cand) <= 3 or cand[1:2] in {".", ")", ":"}):
        return reasoning, cand, m.group("l")
    return reasoning, cand, None


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s.%-]", " ", s.lower())).strip()


def _match_option(cand: str, opts: list[str], letters: list[str], *, loose: bool) -> str | None:
    if not cand:
        return None
    nc = _norm(cand)
    for letter, opt in zip(letters, opts, strict=True):
        if nc and nc == _norm(opt):
            return letter
    m = _LETTER.match(cand.upper() if len(cand) <= 3 else cand)
    if m and m.group("l") in letters and (not loose or len(cand) <= 3 or cand[1:2] in {".", ")", ":"}):
        return m.group("l")
    if not loose:
        hits = [letter for letter, opt in zip(letters, opts, strict=True) if _norm(opt) and _norm(opt) in nc]
        if len(hits) == 1:
            return hits[0]
    return None
