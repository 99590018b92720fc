"""Cut a page in its whitespace: crops whose edges run between text lines and along column gutters.

Why: a crop edge through a text line leaves half a line in two crops; each reads as garbage there and the
merge must guess which copy to keep. Cut between lines instead and crops need no overlap and no guessing.

How (:func:`find_layout`, then :func:`cut_regions`): the page's ink (dark against its median paper, specks
without a dark neighbour dropped, dark scan borders at the edges ignored) is projected on columns in
horizontal bands; a gap present in most bands is a column gutter. Rows whose ink crosses a gutter (a title,
a wide table) form full-width bands, the rest is split at the gutters, read band by band, columns left to
right. A region taller than a crop may be is cut along *seams*: left-to-right paths of least ink found by
dynamic programming that move at most one row per ``step`` columns (about 7 degrees), so they follow a
skewed scan's line gaps; ink beyond a seam is whitened in the crop, so every ink pixel lands in exactly one
crop. Where no path free of ink exists within a crop's height (a figure, a photo, a dense table), the cut is
straight with ``overlap`` rows shared by both crops, marked ``overlap=True`` for the merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import InvalidInputError

Box = tuple[int, int, int, int]
Seam = tuple[int, ...]  # y (page px) at x = left, left + step, ... across a region

__all__ = ["Layout", "Region", "cut_regions", "find_layout", "line_boxes", "region_image"]


@dataclass(frozen=True)
class Region:
    """One crop of the page in reading order: its box, the seams bounding it (None: the box edge itself),
    its band and column, and whether its top edge is an overlapping straight cut (no whitespace found)."""

    box: Box
    top: Seam | None = None
    bottom: Seam | None = None
    band: int = 0
    column: int = 0
    overlap: bool = False
    step: int = 8

    @property
    def width(self) -> int:
        """Box width in page pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        """Box height in page pixels."""
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class Layout:
    """Where the page's ink is: content box, column gutters (x ranges) and bands (rows), in page pixels."""

    size: tuple[int, int]
    content: Box | None  # None: no ink at all
    gutters: tuple[tuple[int, int], ...]
    bands: tuple[Region, ...]  # full-width or column bands, before cutting to crop height
    ink: np.ndarray  # the cleaned ink mask (H x W, bool)

    @property
    def columns(self) -> int:
        """Number of text columns found (1 without gutters)."""
        return len(self.gutters) + 1


# ------------------------------------------------------------------------------------------------- ink
def _ink(image: Image.Image, ink_delta: int) -> np.ndarray:
    gray = np.asarray(image if image.mode == "L" else image.convert("L"))
    # background: the median grey of a 1-in-16 sample, from its histogram (uint8, no sort)
    sample = gray[::4, ::4].ravel()
    cdf = np.cumsum(np.bincount(sample, minlength=256))
    n = sample.size
    lo, hi = np.searchsorted(cdf, [(n - 1) // 2 + 1, n // 2 + 1])
    background = int((int(lo) + int(hi)) / 2)
    ink = gray < background - ink_delta  # darker than the background by more than ink_delta
    # specks: a pixel with no ink among its 8 neighbours is noise, not print (3x3 sums, separable,
    # zero outside the image; uint8 sums in place: no padded copy, no temporaries)
    u = ink.view(np.uint8)
    rows = u.copy()
    rows[:, 1:] += u[:, :-1]
    rows[:, :-1] += u[:, 1:]
    nb = rows.copy()
    nb[1:] += rows[:-1]
    nb[:-1] += rows[1:]
    ink &= nb >= 2
    h, w = ink.shape
    # scan borders: rows/columns near an edge that are mostly dark belong to the scanner, not the page
    for axis, length, across in ((0, h, w), (1, w, h)):
        counts = u.sum(axis=1 - axis, dtype=np.int32)  # ink pixels per row (axis 0) or column (axis 1)
        edge = max(1, length // 16)
        for idx in np.flatnonzero(counts / across > 0.35):
            if idx < edge or idx >= length - edge:
                if axis == 0:
                    ink[idx, :] = False
                else:
                    ink[:, idx] = False
    return ink


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(mask.astype(np.int8), prepend=0, append=0)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def _content(ink: np.ndarray) -> Box | None:
    rows = np.flatnonzero(ink.sum(axis=1) > 0)
    cols = np.flatnonzero(ink.sum(axis=0) > 0)
    if rows.size == 0 or cols.size == 0:
        return None
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _gutters(ink: np.ndarray, content: Box, line: int, bands: int = 8) -> list[tuple[int, int]]:
    """Column gutters: x runs inside the content's middle that are empty in most horizontal bands."""
    left, top, right, bottom = content
    width = right - left
    region = ink[top:bottom, left:right]
    votes = np.zeros(width, dtype=np.int32)
    used = 0
    for rows in np.array_split(np.arange(region.shape[0]), bands):
        if rows.size == 0:
            continue
        prof = region[rows[0] : rows[-1] + 1].sum(axis=0)
        if prof.sum() < 4 * line:
            continue  # an empty band says nothing about columns
        votes += prof == 0
        used += 1
    if used < 2:
        return []
    min_width = max(2 * line // 3, width // 80, 6)
    out = []
    for a, b in _runs(votes >= 0.6 * used):
        mid = (a + b) / 2
        if b - a >= min_width and 0.2 * width <= mid <= 0.8 * width:
            side_l, side_r = region[:, :a].sum(), region[:, b:].sum()
            if min(side_l, side_r) >= 0.15 * region.sum():  # text on both sides, not a margin note
                # the gutter's core: the columns empty in the most bands (long lines may reach the rest)
                core = np.flatnonzero(votes[a:b] == votes[a:b].max())
                out.append((left + a + int(core[0]), left + a + int(core[-1]) + 1))
    return out


# ------------------------------------------------------------------------------------------------- seams
def _cells(ink: np.ndarray, x0: int, x1: int, step: int) -> np.ndarray:
    """Ink per (row, ``step``-px cell) over columns x0..x1, plus a small cost for rows next to ink."""
    part = ink[:, x0:x1]
    n = -(-part.shape[1] // step)
    pad = n * step - part.shape[1]
    if pad:
        part = np.pad(part, ((0, 0), (0, pad)))
    cells = part.reshape(part.shape[0], n, step).sum(axis=2).astype(np.float32)
    # rows inside a text line have ink nearby along the row (within ~128 px) even where a seam could
    # slip between descenders; such rows cost, so seams keep to the gaps between lines
    near = (cells > 0).astype(np.float32)
    k = 8
    csum = np.cumsum(np.pad(near, ((0, 0), (k + 1, k))), axis=1)
    local = (csum[:, 2 * k + 1 :] - csum[:, : -2 * k - 1]) / (2 * k + 1)
    grown = local.copy()
    for d in (1, 2):
        grown[d:] = np.maximum(grown[d:], local[:-d])
        grown[:-d] = np.maximum(grown[:-d], local[d:])
    return cells + 0.5 * grown


def _seam(cost: np.ndarray, lo: int, hi: int, prefer: str) -> tuple[float, list[int]]:
    """Least-cost left-to-right path over rows lo..hi of ``cost`` (rows x cells), one row per cell at most.

    ``prefer="low"`` breaks near-ties towards the bottom of the window (taller crops), ``"mid"`` towards
    the window's middle. Returns (ink crossed, row per cell).
    """
    window = cost[lo : hi + 1]
    n_rows, n_cells = window.shape
    acc = window[:, 0].copy()
    moves = np.zeros((n_cells, n_rows), dtype=np.int8)
    big = np.float32(1e9)
    for j in range(1, n_cells):
        up = np.concatenate(([big], acc[:-1])) + 0.01
        down = np.concatenate((acc[1:], [big])) + 0.01
        stack = np.stack((acc, up, down))
        arg = np.argmin(stack, axis=0)
        moves[j] = arg
        acc = stack[arg, np.arange(n_rows)] + window[:, j]
    best = float(acc.min())
    ok = np.flatnonzero(acc <= best + 0.5)
    if prefer == "low":
        # the middle of the lowest run of near-best ends: away from the lines on both sides
        run_start = int(ok[-1])
        for k in range(len(ok) - 2, -1, -1):
            if ok[k] != run_start - 1:
                break
            run_start = int(ok[k])
        end = (run_start + int(ok[-1])) // 2
    else:
        end = int(ok[np.argmin(np.abs(ok - n_rows // 2))])
    path = [end]
    for j in range(n_cells - 1, 0, -1):
        m = moves[j][path[-1]]
        path.append(path[-1] + (0 if m == 0 else (-1 if m == 1 else 1)))
    path.reverse()
    crossed = float(sum(np.floor(window[r, j]) for j, r in enumerate(path)))
    return crossed, [lo + r for r in path]


def _seam_at(
    ink: np.ndarray, x0: int, x1: int, lo: int, hi: int, step: int, prefer: str = "mid"
) -> tuple[float, Seam]:
    lo, hi = max(0, lo), min(ink.shape[0] - 1, hi)
    crossed, path = _seam(_cells(ink, x0, x1, step), lo, hi, prefer)
    return crossed, tuple(path)


# ------------------------------------------------------------------------------------------------- layout
def find_layout(
    image: Image.Image, *, x_height: float | None = None, ink_delta: int = 80, step: int = 8
) -> Layout:
    """Content box, column gutters and reading-order bands of a page (see the module notes)."""
    if not isinstance(image, Image.Image):
        raise InvalidInputError(f"find_layout() needs a PIL.Image.Image, got {type(image).__name__}")
    if image.width < 1 or image.height < 1:
        raise InvalidInputError(f"cannot lay out an empty {image.width}x{image.height} image")
    ink = _ink(image, ink_delta)
    w, h = image.size
    content = _content(ink)
    if content is None:
        return Layout((w, h), None, (), (Region((0, 0, w, h), step=step),), ink)
    line = max(8, round(3 * x_height)) if x_height else max(8, h // 60)  # about one line pitch
    gutters = _gutters(ink, content, line)
    left, top, right, bottom = content
    if not gutters:
        return Layout((w, h), content, (), (Region(content, step=step),), ink)
    # rows whose ink crosses a gutter span the columns (titles, wide tables, full-width figures)
    crossing = np.zeros(h, dtype=bool)
    for g0, g1 in gutters:
        crossing |= ink[:, g0:g1].any(axis=1)
    spans = []
    for a, b in _runs(crossing):
        if spans and a - spans[-1][1] <= line:
            spans[-1] = (spans[-1][0], b)
        else:
            spans.append((a, b))
    # band limits: each span's top and bottom, moved to a seam in the gap next to it
    edges: list[tuple[int, str]] = []
    for a, b in spans:
        edges += [(a, "above"), (b, "below")]
    cur_top: Seam | None = None
    cur_y = top
    cur_span = bool(spans and spans[0][0] <= top + line // 2)
    bands: list[tuple[int, int, Seam | None, Seam | None, bool]] = []
    for y, side in edges:
        if y <= top + line // 2 or y >= bottom - line // 2:
            continue
        lo, hi = (y - line, y) if side == "above" else (y, y + line)
        crossed, seam = _seam_at(ink, left, right, lo, hi, step)
        if crossed > 2 or min(seam) <= cur_y:
            continue
        bands.append((cur_y, max(seam), cur_top, seam, cur_span))
        cur_top, cur_y, cur_span = seam, min(seam), side == "above"
    bands.append((cur_y, bottom, cur_top, None, cur_span))
    regions: list[Region] = []
    xs = [left] + [(g0 + g1) // 2 for g0, g1 in gutters] + [right]
    for i, (y0, y1, tseam, bseam, spanning) in enumerate(bands):
        if spanning:
            regions.append(Region((left, y0, right, y1), tseam, bseam, band=i, step=step))
            continue
        for c in range(len(xs) - 1):
            a, b = xs[c], xs[c + 1]
            regions.append(
                Region(
                    (a, y0, b, y1),
                    _clip(tseam, left, a, b, step),
                    _clip(bseam, left, a, b, step),
                    band=i,
                    column=c,
                    step=step,
                )
            )
    return Layout((w, h), content, tuple(gutters), tuple(regions), ink)


def _clip(seam: Seam | None, left: int, a: int, b: int, step: int) -> Seam | None:
    """The part of a seam defined from x = ``left`` that lies over columns a..b."""
    if seam is None:
        return None
    i0, i1 = (a - left) // step, -(-(b - left) // step)
    part = seam[i0:i1]
    return tuple(part) if part else None


def _seam_y(seam: Seam, left: int, step: int, width: int) -> np.ndarray:
    """The seam's y for every x of a region of ``width`` px starting at ``left`` (cells repeated)."""
    ys = np.repeat(np.asarray(seam, dtype=np.int32), step)
    if ys.size < width:
        ys = np.pad(ys, (0, width - ys.size), mode="edge")
    return ys[:width]


# ------------------------------------------------------------------------------------------------- crops
def cut_regions(
    layout: Layout, max_height: Sequence[int] | int, *, overlap: int | None = None, line: int | None = None
) -> list[Region]:
    """Cut each band into crops at most ``max_height`` page px tall (one value, or one per band region),
    along ink-free seams in the lower part of each crop; a straight cut with ``overlap`` rows where the
    window holds no ink-free path. Crops come in reading order."""
    bands = layout.bands
    limits = [max_height] * len(bands) if isinstance(max_height, int) else list(max_height)
    if len(limits) != len(bands) or any(m < 16 for m in limits):
        raise InvalidInputError(f"max_height needs one value >= 16 per band, got {max_height!r}")
    ink = layout.ink
    out: list[Region] = []
    for band, limit in zip(bands, limits, strict=True):
        left, top, right, bottom = band.box
        pitch = line or max(8, limit // 20)
        shared = overlap if overlap is not None else max(2 * pitch, 48)
        tseam, y0, was_overlap = band.top, top, band.overlap
        while True:
            if bottom - y0 <= limit:
                out.append(
                    Region(
                        (left, y0, right, bottom),
                        tseam,
                        band.bottom,
                        band.band,
                        band.column,
                        was_overlap,
                        band.step,
                    )
                )
                break
            hi = y0 + limit - 1
            lo = max(y0 + limit // 2, hi - max(limit // 3, 4 * pitch))
            crossed, seam = _seam_at(ink, left, right, lo, hi, band.step, prefer="low")
            if crossed <= 2:
                out.append(
                    Region(
                        (left, y0, right, max(seam) + 1),
                        tseam,
                        seam,
                        band.band,
                        band.column,
                        was_overlap,
                        band.step,
                    )
                )
                tseam, y0, was_overlap = seam, min(seam), False
            else:  # no whitespace within reach: a straight cut, the next crop overlapping this one
                out.append(
                    Region(
                        (left, y0, right, hi + 1), tseam, None, band.band, band.column, was_overlap, band.step
                    )
                )
                tseam, y0, was_overlap = None, hi + 1 - min(shared, limit // 2), True
    return out


def region_image(image: Image.Image, region: Region, fill: int = 255) -> Image.Image:
    """The region's pixels: its box cropped, ink above its top seam and below its bottom seam whitened."""
    crop = image.crop(region.box)
    if region.top is None and region.bottom is None:
        return crop
    arr = np.array(crop)
    h, w = arr.shape[:2]
    rows = np.arange(h)[:, None] + region.box[1]
    outside = np.zeros((h, w), dtype=bool)
    if region.top is not None:
        outside |= rows < _seam_y(region.top, region.box[0], region.step, w)[None, :]
    if region.bottom is not None:
        outside |= rows > _seam_y(region.bottom, region.box[0], region.step, w)[None, :]
    arr[outside] = fill
    return Image.fromarray(arr, mode=crop.mode)


def line_boxes(image: Image.Image, region: Region, *, ink_delta: int = 80) -> list[Box]:
    """Page-pixel boxes of the text lines inside ``region`` (ink rows between seams), top to bottom.

    Rows are lines where their ink is over 2 % of the region's densest row; lines closer than a third of
    the typical line height are one line (accents, dots). Boxes span the line's own ink horizontally.
    """
    crop = region_image(image.convert("L") if image.mode != "L" else image, region)
    ink = _ink(crop, ink_delta)
    rows = ink.sum(axis=1)
    if rows.max(initial=0) == 0:
        return []
    runs = [(a, b) for a, b in _runs(rows > 0.02 * rows.max()) if b - a >= 3]
    if not runs:
        return []
    typical = float(np.median([b - a for a, b in runs]))
    merged: list[tuple[int, int]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] < typical / 3:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    out = []
    left, top = region.box[0], region.box[1]
    for a, b in merged:
        cols = np.flatnonzero(ink[a:b].any(axis=0))
        out.append((left + int(cols[0]), top + a, left + int(cols[-1]) + 1, top + b))
    return out
