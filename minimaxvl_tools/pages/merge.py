"""Merging crop transcriptions so no line is lost or repeated: overlaps aligned, regions joined, tables."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import InvalidInputError
from ..prompts import ocr as ocr_prompts

if TYPE_CHECKING:  # pragma: no cover
    from ...images.cutting import Region
from .source import Box

# ---------------------------------------------------------------------------------------------- merging
_WS = re.compile(r"\s+")
_NOISE = re.compile(r"[#*_`|>\\~-]+")


def _norm_line(line: str) -> str:
    return _WS.sub(" ", _NOISE.sub(" ", line.lower())).strip()


def _strong(line: str) -> bool:
    return sum(ch.isalnum() for ch in line) >= 3


_DIGITS = re.compile(r"\d+")


def _similar(a: str, b: str, min_ratio: float) -> bool:
    """Fuzzy line equality: characters alike (OCR noise) and the numbers alike (table rows differ by them)."""
    if a == b:
        return True
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if not (sm.real_quick_ratio() >= min_ratio and sm.quick_ratio() >= min_ratio and sm.ratio() >= min_ratio):
        return False
    da, db = _DIGITS.findall(a), _DIGITS.findall(b)
    if da or db:
        return difflib.SequenceMatcher(None, da, db, autojunk=False).ratio() >= 0.75
    return True


def join_overlap(
    first: str, second: str, *, min_ratio: float = 0.85, max_lines: int = 40, max_skip: int = 1
) -> str:
    """Join two transcriptions whose end/start overlap: the longest fuzzy line match is kept once.

    Up to ``max_skip`` lines at the cut edge of either side may be skipped (a line cut through by the crop
    edge reads as garbage there and in full on the other side). Blank lines are ignored when matching.
    """
    a_lines = first.rstrip().splitlines()
    b_lines = second.strip("\n").splitlines()
    if not a_lines or not "".join(a_lines).strip():
        return second.strip("\n")
    if not b_lines or not "".join(b_lines).strip():
        return first.rstrip()
    hit = _overlap_at(a_lines, b_lines, min_ratio=min_ratio, max_lines=max_lines, max_skip=max_skip)
    if hit is None:
        return first.rstrip() + "\n" + second.strip("\n")
    a_end, rest_at, gap = hit
    joined = a_lines[: a_end + 1]
    rest = b_lines[rest_at:] if rest_at is not None else []
    if rest:
        # keep one blank line if the second text had one right after the overlap
        joined += ([""] if gap else []) + rest
    return "\n".join(joined)


def _overlap_at(
    a_lines: list[str], b_lines: list[str], *, min_ratio: float, max_lines: int, max_skip: int
) -> tuple[int, int | None, bool] | None:
    """Where two line lists overlap: (last line of ``a`` kept, first line of ``b`` after the overlap or
    None, whether ``b`` has a blank line right after it), from the longest fuzzy match of ``a``'s end with
    ``b``'s start, skipping up to ``max_skip`` partial lines at either cut edge; None without a match."""
    a_idx = [i for i, ln in enumerate(a_lines) if ln.strip()]
    b_idx = [i for i, ln in enumerate(b_lines) if ln.strip()]
    a_norm = [_norm_line(a_lines[i]) for i in a_idx]
    b_norm = [_norm_line(b_lines[i]) for i in b_idx]
    na, nb = len(a_norm), len(b_norm)
    for k in range(min(na, nb, max_lines), 0, -1):
        for sa in range(max_skip + 1):
            for sb in range(max_skip + 1):
                if k + sa > na or k + sb > nb:
                    continue
                a_seg = a_norm[na - sa - k : na - sa]
                b_seg = b_norm[sb : sb + k]
                if not any(_strong(x) for x in a_seg):
                    continue
                if all(_similar(x, y, min_ratio) for x, y in zip(a_seg, b_seg, strict=True)):
                    a_end = a_idx[na - sa - 1]
                    if sb + k < nb:
                        return a_end, b_idx[sb + k], b_idx[sb + k] - b_idx[sb + k - 1] > 1
                    return a_end, None, False
    return None


def merge_overlapping(
    items: Sequence[tuple[str, Box]], *, min_ratio: float = 0.85, max_lines: int = 40
) -> str:
    """Merge crop transcriptions given as ``(text, (left, top, right, bottom))`` into one page text.

    Crops are grouped into rows by their top edge, ordered left to right within a row and rows top to
    bottom; neighbours are joined with :func:`join_overlap`, which drops the duplicated overlap lines.
    """
    if not items:
        return ""
    ordered = sorted(items, key=lambda it: (it[1][1], it[1][0]))
    rows: list[list[tuple[str, Box]]] = []
    for text, box in ordered:
        if rows:
            ref = rows[-1][0][1]
            height = max(1, ref[3] - ref[1])
            if abs(box[1] - ref[1]) <= height // 4:
                rows[-1].append((text, box))
                continue
        rows.append([(text, box)])
    row_texts: list[str] = []
    for row in rows:
        row.sort(key=lambda it: it[1][0])
        merged = ""
        for text, _ in row:
            merged = join_overlap(merged, text, min_ratio=min_ratio, max_lines=max_lines) if merged else text
        row_texts.append(merged)
    out = ""
    for text in row_texts:
        out = join_overlap(out, text, min_ratio=min_ratio, max_lines=max_lines) if out else text
    return out.strip()


_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _is_row(line: str) -> bool:
    return line.lstrip().startswith("|")


def join_tables(first: str, second: str) -> str | None:
    """``first`` + ``second`` as one text when ``first`` ends in a markdown table and ``second`` starts
    with one (a table cut between two crops): the second part's repeated header, or the separator it was
    given under its first row, is dropped; None when the texts do not meet inside a table."""
    a = first.rstrip().splitlines()
    b = second.strip("\n").splitlines()
    while b and not b[0].strip():
        b.pop(0)
    if not a or not b or not _is_row(a[-1]) or not _is_row(b[0]):
        return None
    start = len(a) - 1
    while start > 0 and _is_row(a[start - 1]):
        start -= 1
    header = _norm_line(a[start])
    if len(b) > 1 and _TABLE_SEP.match(b[1]):
        b = b[2:] if _norm_line(b[0]) == header else b[:1] + b[2:]
    return "\n".join(a + b)


def merge_crops(
    texts: Sequence[str], regions: Sequence[Region], *, min_ratio: float = 0.85
) -> list[tuple[str, Region]]:
    """Crop transcriptions of a whitespace plan, in its reading order, as (new text, region) parts.

    Crops of one column cut in whitespace share no line: they are joined as they are (a table cut
    between them is joined back, :func:`join_tables`); after an overlapping straight cut the next crop's
    repeated lines are dropped by fuzzy line alignment (:func:`join_overlap`, tolerant of the partial
    lines at the cut). Each part is the text a region added; ``"\n\n".join`` of the column/band groups
    is the page (see :func:`merged_text`).
    """
    if len(texts) != len(regions):
        raise InvalidInputError(f"{len(texts)} texts for {len(regions)} regions: pass one text per region")
    parts: list[tuple[str, Region]] = []
    acc = ""
    prev: Region | None = None
    for text, region in zip(texts, regions, strict=True):
        text = text.strip("\n")
        same = prev is not None and (prev.band, prev.column) == (region.band, region.column)
        if not same or not acc.strip():
            parts.append((text, region))
            acc = text
        elif region.overlap:
            a_lines = acc.rstrip().splitlines()
            b_lines = text.splitlines()
            hit = _overlap_at(a_lines, b_lines, min_ratio=min_ratio, max_lines=40, max_skip=1)
            if hit is None:
                parts.append((text, region))
                acc = acc.rstrip() + "\n" + text
            else:
                a_end, rest_at, _ = hit
                drop = len(a_lines) - (a_end + 1)  # a partial last line of the previous crop goes
                if drop:
                    _drop_tail(parts, drop)
                added = "\n".join(b_lines[rest_at:]) if rest_at is not None else ""
                parts.append((added, region))
                acc = "\n".join(a_lines[: a_end + 1] + ([added] if added else []))
        else:
            tables = join_tables(acc, text)
            if tables is not None:
                added = tables[len(acc.rstrip()) :].strip("\n")
                parts.append((added, region))
                acc = tables
            else:
                parts.append((text, region))
                acc = acc.rstrip() + "\n" + text
        prev = region
    return parts


def _drop_tail(parts: list[tuple[str, Region]], n: int) -> None:
    """Remove the last ``n`` lines of the latest part's text (a partial line at the previous cut)."""
    text, region = parts[-1]
    lines = text.rstrip().splitlines()
    parts[-1] = ("\n".join(lines[: max(0, len(lines) - n)]), region)


def merged_text(parts: Sequence[tuple[str, Region]]) -> str:
    """Page text from :func:`merge_crops` parts: crops of one column joined by a line break, column and
    band groups by a blank line (reading order: bands top to bottom, columns left to right)."""
    out: list[str] = []
    prev: Region | None = None
    for text, region in parts:
        if not text.strip():
            prev = prev or region
            continue
        if out:
            same = prev is not None and (prev.band, prev.column) == (region.band, region.column)
            out.append("\n" if same else "\n\n")
        out.append(text.strip("\n"))
        prev = region
    return "".join(out).strip()


# ---------------------------------------------------------------------------------------------- OCR
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(?P<body>.*?)\n\s*```\s*$", re.S)


def clean_transcription(text: str) -> str:
    """Model reply -> transcription: an enclosing code fence and the blank-page marker are removed."""
    t = (text or "").strip()
    m = _FENCE.match(t)
    if m:
        t = m.group("body").strip()
    if t.strip().strip(".").lower() == ocr_prompts.BLANK_MARKER.strip(".").lower():
        return ""
    return t
