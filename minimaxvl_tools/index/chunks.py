"""Page Documents -> chunks that keep their page and, when the page carries block boxes, their region box.

A page's regions are read from ``metadata["blocks"]`` (or ``"regions"``) when present: a list of
``{"text": ..., "box": [left, top, right, bottom]}`` (``"bbox"`` accepted), boxes in page pixels at the
loader's ``dpi``. A chunk's box is the union of the boxes of the blocks its characters overlap; pages
without blocks give chunks without a box (the whole page is the region).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.documents import Document

Box = tuple[float, float, float, float]


@dataclass
class Chunk:
    """One indexed piece of a page: its text, where it sits (source, page, box) and its id."""

    text: str
    source: str
    page: int
    index: int
    box: Box | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable id: the same page and chunk number always give the same id (re-adds are idempotent)."""
        return f"{page_id(self.source, self.page)}:{self.index}"


def page_number(metadata: dict[str, Any]) -> int | None:
    """1-based page of a loader Document: ``page_number``, else LangChain's 0-based ``page`` + 1."""
    if metadata.get("page_number") is not None:
        return int(metadata["page_number"])
    if metadata.get("page") is not None:
        return int(metadata["page"]) + 1
    return None


def page_id(source: str, page: int) -> str:
    """The manifest id of a page: a hash of its source path and page number."""
    return hashlib.sha1(f"{source}#{page}".encode()).hexdigest()[:20] + f"-{page}"


def _block_box(block: Any) -> Box | None:
    if not isinstance(block, dict):
        return None
    raw = block.get("box", block.get("bbox", block.get("rect")))
    if raw is None:
        return None
    if isinstance(raw, dict):
        raw = [raw.get(k) for k in ("left", "top", "right", "bottom")]
    try:
        x0, y0, x1, y1 = (float(v) for v in raw)
    except (TypeError, ValueError):
        return None
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def page_blocks(doc: Document) -> list[tuple[int, int, Box]]:
    """The (start, end, box) character spans of a page's blocks in its text; [] when it has none."""
    blocks = doc.metadata.get("blocks") or doc.metadata.get("regions") or []
    if not isinstance(blocks, list):
        return []
    out: list[tuple[int, int, Box]] = []
    text, pos = doc.page_content, 0
    for b in blocks:
        box = _block_box(b)
        if box is None:
            continue
        span = b.get("span")  # the loader's [start, end) of the block in the page text
        if isinstance(span, list | tuple) and len(span) == 2:
            out.append((int(span[0]), int(span[1]), box))
            continue
        btext = str(b.get("text", "")).strip()
        if not btext:
            continue
        at = text.find(btext, pos)
        if at < 0:
            at = text.find(btext)
        if at < 0:
            continue
        out.append((at, at + len(btext), box))
        pos = at + len(btext)
    return out


def union(boxes: Sequence[Box]) -> Box | None:
    """The smallest box holding every box (None for none)."""
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def split_page(doc: Document, *, chunk_size: int = 800, chunk_overlap: int = 100) -> list[Chunk]:
    """Split one page Document (langchain's RecursiveCharacterTextSplitter) into chunks with boxes."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    text = doc.page_content
    if not text.strip():
        return []
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True
    )
    spans = page_blocks(doc)
    source, page = str(doc.metadata.get("source", "")), page_number(doc.metadata) or 0
    out: list[Chunk] = []
    for i, piece in enumerate(splitter.create_documents([text])):
        start = int(piece.metadata.get("start_index", 0))
        end = start + len(piece.page_content)
        box = union([b for s, e, b in spans if s < end and e > start])
        out.append(Chunk(piece.page_content, source, page, i, box, {"start": start}))
    return out


__all__ = ["Box", "Chunk", "page_blocks", "page_id", "split_page", "union"]
