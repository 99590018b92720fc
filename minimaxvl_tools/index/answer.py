"""Answers over an index, with regions: retrieve chunks, send the top pages' images (cropped to the cited
region when that costs fewer image tokens) to DocumentVQATool, cite source, page and box.

With no endpoint, the answer is the retrieved line sharing most words with the question (extractive), and
the engine string says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from langchain_core.documents import Document
from PIL import Image

from ..profile import image_tokens
from ..tools.docvqa import keywords
from .chunks import Box, union
from .store import PageIndex

if TYPE_CHECKING:  # pragma: no cover
    from ..client import MiniMaxVLClient
    from ..images.policy import InputPolicy

CROP_MARGIN = 24
MAX_CROP_RATIO = 4.0


class Citation(TypedDict):
    """A cited region: the file, its 1-based page, and the box in page pixels (None: the whole page)."""

    source: str
    page: int
    box: list[float] | None


def citation(source: str, page: int, box: Sequence[float] | None) -> Citation:
    """The citation of ``box`` (or the whole page) on ``page`` of ``source``."""
    return Citation(source=source, page=int(page), box=list(box) if box else None)


@dataclass
class IndexAnswer:
    """An answer, the regions it cites (source, page, box) and which engine produced it."""

    question: str
    answer: str
    citations: list[Citation] = field(default_factory=list)
    engine: str = ""
    evidence: str = ""
    found: bool = False
    image_tokens: int = 0
    cropped: int = 0

    def render(self) -> str:
        """Human-readable answer with its citations."""
        cites = []
        for c in self.citations:
            box = c.get("box")
            where = f" box {[round(v) for v in box]}" if box else ""
            cites.append(f"{Path(c['source']).name} p.{c['page']}{where}")
        shown = ", ".join(cites) or "no citation"
        return f"Q: {self.question}\nA: {self.answer}\n   [{shown}] (engine: {self.engine})"


def best_sentence(question: str, chunks: Sequence[Document]) -> tuple[str, Document | None]:
    """Extractive answer: the line of ``chunks`` sharing most content words with the question (numbers
    break ties), and the chunk it came from."""
    q = keywords(question)
    best, best_doc, best_score = "", None, 0.0
    for d in chunks:
        for line in d.page_content.splitlines():
            words = keywords(line)
            score = len(q & words) + 0.5 * sum(ch.isdigit() for ch in line) / max(1, len(line))
            if score > best_score:
                best, best_doc, best_score = line.strip(), d, score
    return best, best_doc


def _page_groups(hits: Sequence[Document], max_pages: int) -> list[tuple[str, int, list[Document]]]:
    """Hits grouped by (source, page), best page first, at most ``max_pages``: the best page always, the
    others only when a hit on them matched words of the question too (a dense-only match is weak
    evidence and would cost a page image)."""
    groups: dict[tuple[str, int], list[Document]] = {}
    for h in hits:
        groups.setdefault((h.metadata["source"], int(h.metadata["page"])), []).append(h)
    items = list(groups.items())
    keep = items[:1] + [(key, hs) for key, hs in items[1:] if any(h.metadata.get("lexical_rank") for h in hs)]
    return [(s, p, hs) for (s, p), hs in keep[:max_pages]]


def region_image(image: Image.Image, boxes: Sequence[Box | None]) -> tuple[Image.Image, Box | None]:
    """The page, or its crop to the union of ``boxes`` (plus a margin) when the crop costs fewer image
    tokens than the whole page (:func:`~minimaxvl_tools.profile.image_tokens`)."""
    known = [b for b in boxes if b]
    if not known or len(known) != len(boxes):
        return image, None
    u = union(known)
    assert u is not None
    w, h = image.size
    box = (
        max(0, int(u[0]) - CROP_MARGIN),
        max(0, int(u[1]) - CROP_MARGIN),
        min(w, int(u[2]) + CROP_MARGIN),
        min(h, int(u[3]) + CROP_MARGIN),
    )
    box = _widen(box, w, h)
    if box[2] - box[0] < 8 or box[3] - box[1] < 8:
        return image, None
    if image_tokens(box[2] - box[0], box[3] - box[1]) < image_tokens(w, h):
        return image.crop(box), (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
    return image, None


def _widen(
    box: tuple[int, int, int, int], w: int, h: int, ratio: float = MAX_CROP_RATIO
) -> tuple[int, int, int, int]:
    """``box`` grown about its centre (inside the page) until its sides are within ``ratio``: a one-line
    region is not sent as a strip more elongated than the model's canvases hold."""
    left, top, right, bottom = box
    bw, bh = right - left, bottom - top
    if bw > ratio * bh:
        need = min(h, int(bw / ratio) + 1)
        top = max(0, min(top - (need - bh) // 2, h - need))
        bottom = top + need
    elif bh > ratio * bw:
        need = min(w, int(bh / ratio) + 1)
        left = max(0, min(left - (need - bw) // 2, w - need))
        right = left + need
    return (left, top, right, bottom)


def ask(
    index: PageIndex,
    question: str,
    *,
    client: MiniMaxVLClient | None = None,
    k: int = 5,
    max_pages: int = 2,
    policy: InputPolicy | None = None,
    online: bool | None = None,
) -> IndexAnswer:
    """Answer ``question`` from ``index``: DocumentVQA over the retrieved regions when the endpoint is up
    (``online=None`` asks ``/health``), else the extractive answer, flagged as offline."""
    hits = index.search(question, k=k)
    if not hits:
        return IndexAnswer(question, "No relevant passage found in the index.", engine="hybrid retrieval")
    if online is None:
        online = client is not None and _endpoint_up(client)
    if not online or client is None:
        line, doc = best_sentence(question, hits)
        cites = [_cite(doc)] if doc else []
        return IndexAnswer(
            question,
            line or "No answer found.",
            cites,
            engine="offline (no endpoint): hybrid retrieval + extractive answer",
            evidence=line,
            found=bool(line),
        )
    return _ask_vlm(question, hits, client, max_pages=max_pages, policy=policy)


def _cite(doc: Document) -> Citation:
    return citation(doc.metadata["source"], doc.metadata["page"], doc.metadata.get("box"))


def _endpoint_up(client: MiniMaxVLClient) -> bool:
    try:
        h = client.health()
    except Exception:  # any failure means: answer offline
        return False
    return bool(h.ok and h.model_served)


def _ask_vlm(
    question: str,
    hits: Sequence[Document],
    client: MiniMaxVLClient,
    *,
    max_pages: int,
    policy: InputPolicy | None,
) -> IndexAnswer:
    from ..images.encode import encode_image
    from ..pages import iter_pages
    from ..tools import DocumentVQATool

    sources: list[str] = []
    regions: list[tuple[str, int, Box | None]] = []
    tokens = cropped = 0
    for src, page, group in _page_groups(hits, max_pages):
        dpi = int(group[0].metadata.get("dpi") or 200)
        rendered = next(iter(iter_pages(src, pages=[page], dpi=dpi, policy=policy)))
        img, box = region_image(
            rendered.pixels(), [tuple(h.metadata["box"]) if h.metadata.get("box") else None for h in group]
        )
        cropped += box is not None
        tokens += image_tokens(*img.size)
        sources.append(encode_image(img, format="png").data_url)
        regions.append((src, page, box))
    tool = DocumentVQATool(client=client, handle_tool_error=False)
    msg = tool.invoke(
        {
            "type": "tool_call",
            "id": "index-ask",
            "name": tool.name,
            "args": {"question": question, "source": sources if len(sources) > 1 else sources[0]},
        }
    )
    ans = msg.artifact
    cited = [regions[p - 1] for p in ans.pages if 1 <= p <= len(regions)] or (
        [regions[0]] if ans.found else []
    )
    return IndexAnswer(
        question,
        ans.answer,
        [citation(s, p, b) for s, p, b in cited],
        engine=f"MiniMax-VL-01 DocumentVQA ({client.settings.model}) over {len(sources)} retrieved region(s)",
        evidence=ans.evidence or "",
        found=bool(ans.found),
        image_tokens=tokens,
        cropped=cropped,
    )


__all__ = ["Citation", "IndexAnswer", "ask", "best_sentence", "citation", "region_image"]
