"""Block boxes: where on the page each transcribed line or block was read (pixels and PDF points)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..images.cutting import Region, line_boxes
from ..results import TextBlock

if TYPE_CHECKING:  # pragma: no cover
    from ...images.cutting import Region
from .source import Box, PageImage


@dataclass(frozen=True)
class BlockGeometry:
    """What block boxes need of a page's pixels, small and picklable (a worker computes it beside the
    crops): the image size, the PDF page size in points, and the text-line boxes of each region."""

    size: tuple[int, int]
    pdf_size: tuple[float, float] | None = None
    lines: tuple[tuple[Box, tuple[Box, ...]], ...] = ()

    def lines_of(self, box: Box) -> list[Box]:
        """The line boxes found in the region with this box (none when unknown)."""
        return next((list(ls) for b, ls in self.lines if b == box), [])


def block_geometry(page: PageImage, regions: Sequence[Region] = ()) -> BlockGeometry:
    """The :class:`BlockGeometry` of a rendered page for its plan's ``regions`` (else the whole page)."""
    image = page.pixels()
    parts = list(regions) or [Region((0, 0, image.width, image.height))]
    lines = tuple((r.box, tuple(line_boxes(image, r))) for r in parts)
    return BlockGeometry(image.size, page.pdf_size, lines)


def _text_blocks(
    geometry: BlockGeometry, parts: list[tuple[str, Region]] | None, body: str
) -> list[TextBlock]:
    """Boxes of what was read: per region of a whitespace plan (else the page's text area), split into
    one box per line when the region's text lines (ink rows) and the transcription's lines agree."""
    width, height = geometry.size
    if parts is None:
        if not body.strip():
            return []
        parts = [(body, Region((0, 0, width, height)))]
    scale = None
    if geometry.pdf_size is not None and width and height:
        sx, sy = geometry.pdf_size[0] / width, geometry.pdf_size[1] / height
        if abs(sx - sy) <= 0.02 * max(sx, sy):  # same orientation as the PDF page
            scale = (sx, sy)
    out = []
    for text, region in parts:
        text = text.strip("\n")
        if not text.strip():
            continue
        lines = [ln for ln in text.splitlines() if ln.strip()]
        boxes = geometry.lines_of(region.box)
        if boxes and len(boxes) == len(lines):
            pairs = [(ln, b, "line") for ln, b in zip(lines, boxes, strict=True)]
        else:
            pairs = [(text, _union(boxes) if boxes else region.box, "block")]
        for t, b, kind in pairs:
            pdf = (
                None
                if scale is None
                else (b[0] * scale[0], b[1] * scale[1], b[2] * scale[0], b[3] * scale[1])
            )
            out.append(TextBlock(text=t, box=b, pdf_box=pdf, kind=kind))
    return out


def _union(boxes: Sequence[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
