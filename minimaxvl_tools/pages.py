"""The per-page pipeline shared by tools, loader, CLI and eval: source -> pages -> plan -> requests.

:func:`iter_pages` turns any input (image, multi-page TIFF, PDF) into :class:`PageImage` objects;
:func:`plan_page` decides, without a server, whether a page goes in one fitted image or in crops, and
:func:`plan_page_image` refines that from the pixels (print size measured, crops cut in whitespace);
:func:`ocr_page` / :func:`aocr_page` run the plan against a :class:`~minimaxvl_tools.client.MiniMaxVLClient`
and merge crop transcriptions (:func:`merge_crops` for whitespace cuts, :func:`merge_overlapping` for
overlapping strips) so no line is lost or repeated; each page keeps its text blocks' boxes.
"""

from __future__ import annotations

import asyncio
import difflib
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image

from .errors import AspectRatioError, InvalidInputError, MiniMaxVLError
from .images.encode import EncodedImage, encode_image
from .profile import DEFAULT_PROFILE, ModelProfile
from .prompts import ocr as ocr_prompts
from .results import CropInfo, OCRPage, TextBlock, markdown_to_text

if TYPE_CHECKING:  # pragma: no cover
    from .client import ChatResult, MiniMaxVLClient
    from .images.cutting import Region
    from .images.policy import InputPolicy
    from .images.sizing import SizePlan
    from .images.tiling import Tile, TilePlan
    from .local_ocr import LocalOCREngine

Box = tuple[int, int, int, int]
TileMode = Literal["auto"] | bool
PageSpec = str | Sequence[int] | None

__all__ = [
    "MIN_X_HEIGHT",
    "PageImage",
    "PagePlan",
    "aocr_page",
    "clean_transcription",
    "cut_page",
    "encode_page",
    "iter_pages",
    "join_overlap",
    "join_tables",
    "merge_crops",
    "merge_overlapping",
    "merged_text",
    "ocr_page",
    "plan_page",
    "plan_page_image",
    "single_fit",
]


# ---------------------------------------------------------------------------------------------- pages
@dataclass
class PageImage:
    """One page of any source: 1-based ``number`` of ``page_count``, the RGB image, its text layer."""

    number: int
    page_count: int
    image: Image.Image | None  # None only for PDF pages iterated with render=False
    text_layer: str = ""
    source: str = ""
    rotation: int = 0
    warnings: list[str] = field(default_factory=list)  # how it was rendered (e.g. dpi lowered for the cap)
    error: MiniMaxVLError | None = None  # why a page iterated with page_errors=True has no image
    pdf_size: tuple[float, float] | None = None  # page size in PDF points as displayed (PDF pages only)

    @property
    def has_text_layer(self) -> bool:
        """True when the page carries extractable text (a born-digital PDF page)."""
        return bool(self.text_layer and self.text_layer.strip())

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the rendered image in pixels."""
        return self.pixels().size

    def pixels(self) -> Image.Image:
        """The rendered image; InvalidInputError if the page was iterated with ``render=False``."""
        if self.image is None:
            raise InvalidInputError(f"page {self.number} of {self.source} was not rendered (render=False)")
        return self.image


def _is_pathlike(source: Any) -> bool:
    if isinstance(source, os.PathLike):
        return True
    if isinstance(source, str):
        s = source.strip()
        return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", s) and not s.startswith("data:") and len(s) < 4096
    return False


def iter_pages(
    source: Any,
    *,
    pages: PageSpec = None,
    dpi: int = 200,
    policy: InputPolicy | None = None,
    password: str | None = None,
    render: bool = True,
    fit: Callable[[int, int], tuple[int, int] | None] | None = None,
    text: bool = True,
    page_errors: bool = False,
) -> Iterator[PageImage]:
    """Pages of any input, streamed: an image (one page), a multi-page TIFF (its frames) or a PDF (rendered).

    ``pages`` is a 1-based selection (``"1-3,5"`` or a list); ``policy`` guards paths and URLs; errors are
    :class:`~minimaxvl_tools.errors.MiniMaxVLError` subclasses naming the input. ``render=False`` skips
    rendering PDF pages (``image`` is None; text layers only), to pick pages before paying for pixels.
    ``fit`` lets a PDF page be rendered straight at the size it will be sent (see ``iter_pdf_pages``);
    ``text=False`` skips PDF text layers (page counts and selection only need neither text nor pixels).
    ``page_errors=True`` yields a PDF page that cannot be rendered (over the pixel cap even at 1 dpi) with
    ``image=None`` and the reason in ``error`` instead of raising, so the pages after it still come.
    """
    from .images import load
    from .pdf import iter_pdf_pages, parse_page_range

    name = _describe(source)
    if isinstance(source, Image.Image):
        for n in parse_page_range(pages, 1):
            yield PageImage(n, 1, load.load_image(source, policy=policy), "", name)
        return

    target: Any = source
    if _is_pathlike(source):
        path = policy.check_path(source) if policy is not None else Path(source).expanduser()
        if path.is_dir():
            raise InvalidInputError(f"{name!r} is a directory: pass a file (an image or a PDF)")
        if path.is_file():
            with open(path, "rb") as fh:
                head = fh.read(2048)
            if load.sniff(head) == "pdf":
                yield from _pdf_pages(
                    iter_pdf_pages,
                    path,
                    name,
                    pages=pages,
                    dpi=dpi,
                    password=password,
                    policy=policy,
                    render=render,
                    fit=fit,
                    text=text,
                    page_errors=page_errors,
                )
                return
            target = path
    if target is source:  # URL, data URL, base64, bytes, file object (or a missing path: read_bytes says so)
        data, name = load.read_bytes(source, policy=policy)
        if load.sniff(data) == "pdf":
            yield from _pdf_pages(
                iter_pdf_pages,
                data,
                name,
                pages=pages,
                dpi=dpi,
                password=password,
                policy=policy,
                render=render,
                fit=fit,
                text=text,
                page_errors=page_errors,
            )
            return
        target = data

    frames = list(load.iter_images(target, policy=policy))
    count = len(frames)
    for n in parse_page_range(pages, count):
        yield PageImage(n, count, frames[n - 1], "", name)


def _pdf_pages(iter_pdf_pages: Any, src: Any, name: str, **kw: Any) -> Iterator[PageImage]:
    for p in iter_pdf_pages(src, **kw):
        yield PageImage(
            number=p.number,
            page_count=p.page_count,
            image=p.image,
            text_layer=p.text or "",
            source=name,
            rotation=p.rotation,
            warnings=list(p.warnings),
            error=p.error,
            pdf_size=(p.width_pt, p.height_pt),
        )


def _describe(source: Any) -> str:
    try:
        from .images.load import describe

        return describe(source)
    except Exception:  # pragma: no cover - describe must never hide the real error
        return type(source).__name__


# ---------------------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class PagePlan:
    """How one page will be sent: ``mode`` single (one fitted image) or tiles (overlapping crops)."""

    width: int
    height: int
    mode: Literal["single", "tiles"]
    tokens: int
    requests: int
    size: SizePlan | None = None
    tiles: TilePlan | None = None
    boxes: tuple[Box, ...] = field(default_factory=tuple)
    scale: float = 1.0
    x_height: float | None = None  # the small print's x-height (px) the plan was sized for, if measured
    regions: tuple[Region, ...] = ()  # whitespace cuts (reading order), when the page's pixels were laid out
    cut: str = ""  # "whitespace", "whitespace+overlap" (no gap somewhere), "grid" (overlapping strips) or ""
    shown_x_height: float | None = None  # the small print's x-height in the images sent (px)
    single_x_height: float | None = None  # ... had the whole page gone as one image

    @property
    def legibility_gain(self) -> float | None:
        """How much larger the small print is shown than in one image of the page (1.0: no gain)."""
        if self.shown_x_height is None or not self.single_x_height:
            return None
        return self.shown_x_height / self.single_x_height

    @property
    def tiled_size(self) -> tuple[int, int]:
        """Size the page is scaled to before cutting crops (the page size when ``scale`` is 1)."""
        return self.tiles.page if self.tiles is not None else (self.width, self.height)

    @property
    def crops(self) -> int:
        """Number of crops (0 when the page goes in one image)."""
        return len(self.boxes) if self.mode == "tiles" else 0


def _tile_plan(width: int, height: int, profile: ModelProfile) -> TilePlan:
    """Crops of full page width when a canvas is that wide (text lines stay whole), else the cheapest grid."""
    from .images.tiling import plan_tiles

    limit = profile.max_aspect_ratio
    shaped = [c for c in profile.canvases if c[1] <= limit * width and c[0] <= limit * height]
    full_width = [c for c in shaped if c[0] >= width]
    return plan_tiles(width, height, profile=profile, candidates=full_width or shaped or None)


def _unscale(box: tuple[int, ...], scale: float) -> Box:
    left, top, right, bottom = box
    return (round(left / scale), round(top / scale), round(right / scale), round(bottom / scale))


MIN_X_HEIGHT = 8.0
"""Default legibility target: the small print's x-height, in pixels, in the image the server sees.

Calibrated with Tesseract on DejaVu Sans at 200 dpi (``python -m benchmarks --only tokens``, one-image
column): print shown at 6.7-7.3 px x-height (7-8 pt on a letter page fitted to one canvas) reads without
errors, at 5.5 px (6 pt) the error rate is ~0.9 %; 8 px leaves a margin. The real model could not be
measured here, so it is a setting (``min_x_height``): raise it for harder print, lower it to save tokens.
"""


def plan_page(
    width: int,
    height: int,
    *,
    tile: TileMode = "auto",
    max_tokens: int | None = None,
    x_height: float | None = None,
    min_x_height: float = MIN_X_HEIGHT,
    profile: ModelProfile = DEFAULT_PROFILE,
) -> PagePlan:
    """Decide, with no server, how a ``width`` x ``height`` page is sent and what it costs (tokens, requests).

    ``tile="auto"`` cuts crops only when one canvas would blur the print: with ``x_height`` (the small
    print's x-height in page pixels, see :func:`~.images.quality.estimate_x_height`) when the page fitted
    to one canvas would show it under ``min_x_height`` px; without it, when
    :func:`~minimaxvl_tools.images.tiling.needs_tiling` says the page shrinks too much. Crops are then cut
    from the page scaled to the lowest resolution that keeps the print legible (never above the render),
    choosing the scale whose full-width strips cost the fewest tokens. ``True`` always tiles, ``False``
    never does (one image fitted to ``max_tokens``).
    """
    from .images.sizing import plan_size
    from .images.tiling import needs_tiling

    if x_height is not None and not (x_height > 0 and min_x_height > 0):
        raise InvalidInputError(f"x_height={x_height} and min_x_height={min_x_height} must be positive")
    need = 1.0 if x_height is None else min(1.0, min_x_height / x_height)  # scale the print needs
    try:
        sp: SizePlan | None = plan_size(width, height, max_tokens=max_tokens, profile=profile)
    except AspectRatioError:
        if tile is False:
            raise
        sp = None  # a strip beyond the model's aspect limit: only pieces can be sent
    if sp is None:
        use_tiles = True
    elif tile == "auto":
        # with the print measured: tiles only when the one image actually sent would show it too small
        use_tiles = needs_tiling(width, height, profile=profile) if x_height is None else sp.scale < need
    else:
        use_tiles = bool(tile)
    if use_tiles:
        plans = []
        for scale in _tile_scales(width, need, profile):
            sw, sh = max(1, round(width * scale)), max(1, round(height * scale))
            plans.append((scale, _tile_plan(sw, sh, profile)))
        if sp is None:  # a strip must go in pieces: never at a scale that leaves one
            plans = [p for p in plans if len(p[1].tiles) > 1] or [(1.0, _tile_plan(width, height, profile))]
        scale, tp = min(plans, key=lambda p: (p[1].total_tokens, len(p[1].tiles), -p[0]))
        if len(tp.tiles) > 1:
            return PagePlan(
                width,
                height,
                "tiles",
                tokens=sum(t.tokens for t in tp.tiles),
                requests=len(tp.tiles),
                tiles=tp,
                boxes=tuple(_unscale(t.box, scale) for t in tp.tiles),
                scale=scale,
                x_height=x_height,
            )
    assert sp is not None  # an extreme strip always gives more than one piece
    return PagePlan(width, height, "single", tokens=sp.tokens, requests=1, size=sp, x_height=x_height)


def _tile_scales(width: int, need: float, profile: ModelProfile) -> list[float]:
    """Page scales worth trying for crops: the lowest legible one, and each that makes the page exactly a
    canvas wide (strips then fill their canvas: no token pays for server-side upscaling), never above 1."""
    widest = max(c[0] for c in profile.canvases)
    top = min(1.0, widest / width)  # wider than the widest canvas: full-width strips need a downscale
    low = min(need, top)
    scales = {low}
    for cw in {c[0] for c in profile.canvases}:
        if low < cw / width <= top:
            scales.add(cw / width)
    return sorted(scales)


def plan_page_image(
    image: Image.Image,
    *,
    tile: TileMode = "auto",
    max_tokens: int | None = None,
    min_x_height: float = MIN_X_HEIGHT,
    profile: ModelProfile = DEFAULT_PROFILE,
) -> PagePlan:
    """:func:`plan_page` for a page you have the pixels of: a page that might need crops has its small
    print measured first (:func:`~.images.quality.estimate_x_height`); it goes as one image when that print
    stays legible there (``min_x_height`` px), else as the cheapest set of crops cut in its whitespace
    (:mod:`~.images.cutting`: between text lines, at column gutters, margins left out) that shows it at
    ``min_x_height``. Pages without measurable text (figures, photos) keep the size-only plan."""
    plan = plan_page(image.width, image.height, tile=tile, max_tokens=max_tokens, profile=profile)
    if plan.mode != "tiles" or tile is False:
        return plan
    from .images.quality import estimate_x_height

    x = estimate_x_height(image)
    if x is None or x > min(image.size) / 4:  # no text lines (a figure, a photo): the render's resolution
        return replace(plan, cut="grid")
    sized = plan_page(
        image.width,
        image.height,
        tile=tile,
        max_tokens=max_tokens,
        x_height=x,
        min_x_height=min_x_height,
        profile=profile,
    )
    single_x = x * _fit_scale(image.width, image.height, profile)
    if sized.mode != "tiles":
        return replace(sized, shown_x_height=single_x, single_x_height=single_x)
    cut = _whitespace_plan(image, x, min_x_height, profile)
    if cut is None:
        return replace(sized, cut="grid", shown_x_height=x * sized.scale, single_x_height=single_x)
    return replace(cut, single_x_height=single_x)


def _fit_scale(width: int, height: int, profile: ModelProfile) -> float:
    """Scale at which the server shows a ``width`` x ``height`` image (in its best canvas; may be > 1)."""
    cw, ch = profile.best_canvas(width, height)
    return min(cw / width, ch / height)


def _whitespace_plan(
    image: Image.Image, x_height: float, min_x_height: float, profile: ModelProfile
) -> PagePlan | None:
    """The cheapest whitespace-cut plan that shows print of ``x_height`` at ``min_x_height`` px: the
    content box as one image when that suffices, else crops cut between lines and at gutters, tried at
    the lowest legible scale and at the scales that make the text columns exactly a canvas wide."""
    from .images.cutting import Region, cut_regions, find_layout
    from .images.tiling import Tile, TilePlan

    layout = find_layout(image, x_height=x_height)
    if layout.content is None:
        return None
    need = min(1.0, min_x_height / x_height)
    widest = max(c[0] for c in profile.canvases)
    line = max(8, round(3 * x_height))
    options: list[tuple[int, int, float, list[Region], list[float]]] = []
    content = Region(layout.content)
    fit = _fit_scale(content.width, content.height, profile)
    if x_height * min(1.0, fit) >= min_x_height:  # the text block alone, as one image, is legible
        s = min(1.0, fit)
        options.append((_region_tokens([content], [s], profile), 1, s, [content], [s]))
    scales = {need}
    for band in layout.bands:
        for cw in {c[0] for c in profile.canvases}:
            if need < cw / band.width <= 1.0:
                scales.add(cw / band.width)
    for s in sorted(scales):
        band_scales = [min(s, widest / b.width) for b in layout.bands]
        limits = []
        for b, sb in zip(layout.bands, band_scales, strict=True):
            sw = max(1, round(b.width * sb))
            tallest = max(ch for cw, ch in profile.canvases if cw >= sw)
            limits.append(max(16, min(int(tallest / sb), int(profile.max_aspect_ratio * b.width))))
        regions = cut_regions(layout, limits, line=line)
        index = {b.band * 1000 + b.column: sb for b, sb in zip(layout.bands, band_scales, strict=True)}
        rscales = [index[r.band * 1000 + r.column] for r in regions]
        options.append((_region_tokens(regions, rscales, profile), len(regions), s, regions, rscales))
    tokens, _count, scale, regions, rscales = min(options, key=lambda o: (o[0], o[1], -o[2]))
    tiles = []
    for i, (r, sb) in enumerate(zip(regions, rscales, strict=True)):
        size = (max(1, round(r.width * sb)), max(1, round(r.height * sb)))
        left, top = round(r.box[0] * sb), round(r.box[1] * sb)
        tiles.append(
            Tile(
                i,
                (left, top, left + size[0], top + size[1]),
                size,
                profile.best_canvas(*size),
                profile.image_tokens(*size),
            )
        )
    page = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    columns = max((r.column for r in regions), default=0) + 1
    tp = TilePlan(page, tuple(tiles), None, tokens, (columns, max(1, len(regions) // columns)))
    overlap = any(r.overlap for r in regions)
    return PagePlan(
        image.width,
        image.height,
        "tiles",
        tokens=tokens,
        requests=len(regions),
        tiles=tp,
        boxes=tuple(r.box for r in regions),
        scale=scale,
        x_height=x_height,
        regions=tuple(regions),
        cut="whitespace+overlap" if overlap else "whitespace",
        shown_x_height=x_height * min(rscales),
    )


def _padded(size: tuple[int, int], max_aspect: float) -> tuple[int, int]:
    """``size`` with its short side padded so the image stays within the model's aspect limit (a one-line
    band would otherwise go as a degenerate strip); the padding is white and carries no text."""
    w, h = size
    if w > max_aspect * h:
        return w, math.ceil(w / max_aspect)
    if h > max_aspect * w:
        return math.ceil(h / max_aspect), h
    return size


def _region_tokens(regions: Sequence[Region], scales: Sequence[float], profile: ModelProfile) -> int:
    return sum(
        profile.image_tokens(
            *_padded((max(1, round(r.width * s)), max(1, round(r.height * s))), profile.max_aspect_ratio)
        )
        for r, s in zip(regions, scales, strict=True)
    )


def single_fit(
    tile: TileMode = "auto", *, max_tokens: int | None = None, profile: ModelProfile = DEFAULT_PROFILE
) -> Callable[[int, int], tuple[int, int] | None]:
    """A ``fit`` hook for :func:`iter_pages`: a page sent as one image is rendered at the size sent."""

    def fit(width: int, height: int) -> tuple[int, int] | None:
        plan = plan_page(width, height, tile=tile, max_tokens=max_tokens, profile=profile)
        if plan.mode != "single" or plan.size is None or plan.size.resized == (width, height):
            return None
        return plan.size.resized

    return fit


def encode_page(
    image: Image.Image,
    *,
    max_tokens: int | None = None,
    mode: Literal["legibility", "economy"] = "legibility",
    quality: int = 90,
    profile: ModelProfile = DEFAULT_PROFILE,
) -> EncodedImage:
    """Fit a whole page to the token budget (:func:`~.images.sizing.fit_image`) and encode it."""
    from .images.sizing import fit_image

    fitted, _ = fit_image(image, max_tokens=max_tokens, mode=mode, profile=profile)
    return encode_image(fitted, quality=quality, profile=profile)


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


def _default_max_tokens(client: MiniMaxVLClient, max_tokens: int | None) -> int:
    if max_tokens is not None:
        return max_tokens
    return int(getattr(getattr(client, "settings", None), "max_tokens", 2048) or 2048)


def cut_page(image: Image.Image, plan: PagePlan) -> list[tuple[Image.Image, Tile]]:
    """The crops of a tiled ``plan`` from the page's pixels, in plan order: whitespace regions cut from the
    page (ink beyond their seams whitened) and scaled to their tile size; or, for a grid plan, the page
    scaled to the plan first (Lanczos, sharpest for small print), then cut."""
    from .images.tiling import cut_tiles

    if plan.tiles is None:
        raise InvalidInputError("cut_page() needs a tiled plan (plan.mode == 'tiles')")
    if image.size != (plan.width, plan.height):
        raise InvalidInputError(
            f"image is {image.width}x{image.height} but the plan is for a {plan.width}x{plan.height} page"
        )
    if plan.regions:
        from .images.cutting import region_image

        out = []
        for region, t in zip(plan.regions, plan.tiles.tiles, strict=True):
            crop = region_image(image, region)
            scaled = (t.box[2] - t.box[0], t.box[3] - t.box[1])
            if crop.size != scaled:
                crop = crop.resize(scaled, Image.Resampling.LANCZOS)
            if scaled != t.size:  # a thin band padded to the aspect limit, centred on white
                canvas = Image.new(crop.mode, t.size, "white")
                canvas.paste(crop, ((t.size[0] - scaled[0]) // 2, (t.size[1] - scaled[1]) // 2))
                crop = canvas
            out.append((crop, t))
        return out
    if image.size != plan.tiles.page:
        image = image.resize(plan.tiles.page, Image.Resampling.LANCZOS)
    return cut_tiles(image, plan.tiles)


def _crop_requests(
    page: PageImage, plan: PagePlan, plain: bool, profile: ModelProfile, quality: int
) -> list[tuple[str, EncodedImage, Tile, Image.Image]]:
    """One (prompt, encoded crop, tile, crop pixels) per crop of a tiled plan; the pixels serve retries."""
    crops = cut_page(page.pixels(), plan)
    tops = sorted({t.box[1] for _, t in crops})
    out = []
    for i, (img, t) in enumerate(crops, start=1):
        row = tops.index(t.box[1]) + 1
        column = 1 + sum(1 for _, o in crops if o.box[1] == t.box[1] and o.box[0] < t.box[0])
        prompt = ocr_prompts.crop_prompt(i, len(crops), row=row, column=column, plain=plain)
        out.append((prompt, encode_image(img, quality=quality, profile=profile), t, img))
    return out


# ---------------------------------------------------------------------------------------------- retries
# Why: at temperature 0 the model sometimes loops ("the the the ...") or runs into max_tokens on a dense
# region. Such a reply must never be merged as if it were the transcription. Each region (the whole page
# or one crop) is checked with :func:`~.output_checks.check_output`; a bad reply is retried one step
# hotter on the :func:`~.output_checks.temperature_schedule` and on two overlapping halves of the region
# (less text per reply, so it fits max_tokens, and a different view breaks the loop). Only the halves
# that fail again are split again; after ``max_attempts`` the page is marked failed with the reason.
_MIN_SPLIT = 64  # pixels: a region smaller than twice this is retried whole, not split
_MAX_HALF_ASPECT = 5.0  # halves stay within the model's 6:1 aspect limit


@dataclass
class _Job:
    """What every request of one page shares, and the running cost (kept even when a request raises)."""

    client: Any
    system: str
    budget: int
    temperatures: list[float]
    plain: bool
    profile: ModelProfile
    quality: int
    requests: int = 0
    tokens: int = 0
    regions: tuple[Region, ...] = ()  # the plan's whitespace cuts, for the merge and the block boxes
    geometry: BlockGeometry | None = None  # block geometry computed beforehand (page work in a worker)

    @property
    def max_attempts(self) -> int:
        return len(self.temperatures)


@dataclass
class _Read:
    """The outcome of one region: its text, the deepest attempt used, notes, and why it failed (if it did)."""

    text: str = ""
    attempts: int = 1
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None
    failure_type: str | None = None  # the errors.py class the failure stands for
    said_blank: bool = False  # the model answered the blank-page marker


def _halves(image: Image.Image, overlap: float = 0.08) -> list[Image.Image]:
    """Two overlapping halves of ``image``: top/bottom (text lines stay whole), else left/right.

    Top/bottom is used unless the halves would be wider than ``_MAX_HALF_ASPECT``:1 (a thin strip); an
    image too small to split in either direction comes back whole (retried with a hotter temperature only).
    """
    w, h = image.size
    if h >= 2 * _MIN_SPLIT and w / (h / 2) <= _MAX_HALF_ASPECT:
        pad = max(16, round(h * overlap))
        mid = h // 2
        return [image.crop((0, 0, w, min(h, mid + pad))), image.crop((0, max(0, mid - pad), w, h))]
    if w >= 2 * _MIN_SPLIT and h / (w / 2) <= _MAX_HALF_ASPECT:
        pad = max(16, round(w * overlap))
        mid = w // 2
        return [image.crop((0, 0, min(w, mid + pad), h)), image.crop((max(0, mid - pad), 0, w, h))]
    return [image]


def _join_parts(parts: list[str], side_by_side: bool) -> str:
    """Transcriptions of the halves of one region as one text (the overlap kept once)."""
    cleaned = [clean_transcription(p) for p in parts]
    if len(cleaned) == 1:
        return cleaned[0]
    if side_by_side:
        # left/right halves of a strip: merge_overlapping orders them by their boxes
        return merge_overlapping([(cleaned[0], (0, 0, 2, 1)), (cleaned[1], (1, 0, 3, 1))])
    return join_overlap(cleaned[0], cleaned[1]).strip()


_FAILURE_TYPES = {
    "truncated": "TruncatedOutputError",
    "repetition": "RepetitionError",
    "empty": "EmptyOutputError",
}


def _verdict(job: _Job, res: ChatResult, attempt: int, label: str) -> tuple[_Read | None, str]:
    """Check one reply: (the final result when it is good or no try is left, else None; the retry note).

    The whole page's first reply must not be empty (a page sent was judged non-blank, and the prompt asks
    for the blank-page marker otherwise); a crop or a half of a retried page may be empty.
    """
    from .output_checks import check_output

    text = res.text or ""
    chk = check_output(text, res.finish_reason, allow_empty=bool(label) or attempt > 1)
    if chk.ok:
        said_blank = bool(text.strip()) and not clean_transcription(text)
        return _Read(text, attempt, said_blank=said_blank), ""
    reason = "empty reply for a page judged non-blank" if chk.kind == "empty" else chk.reason
    note = f"{label}attempt {attempt} at temperature {job.temperatures[attempt - 1]:g}: {reason}"
    if attempt >= job.max_attempts:
        final = f"{reason} after {attempt} attempts" + (f" ({label.rstrip(': ')})" if label else "")
        return _Read("", attempt, [note], failure=final, failure_type=_FAILURE_TYPES.get(chk.kind)), note
    return None, note


def _combine(reads: list[_Read], note: str, side_by_side: bool) -> _Read:
    """One region's result from the results of its halves (the first failure wins)."""
    warnings = [note] + [w for r in reads for w in r.warnings]
    attempts = max(r.attempts for r in reads)
    failed = next((r for r in reads if r.failure), None)
    if failed:
        return _Read("", attempts, warnings, failure=failed.failure, failure_type=failed.failure_type)
    text = _join_parts([r.text for r in reads], side_by_side)
    return _Read(text, attempts, warnings, said_blank=any(r.said_blank for r in reads))


def _half_prompt(i: int, n: int, plain: bool) -> str:
    return ocr_prompts.crop_prompt(i, n, plain=plain) if n > 1 else ocr_prompts.page_prompt(plain=plain)


def _read_region(
    job: _Job, image: Image.Image, enc: EncodedImage, prompt: str, attempt: int = 1, label: str = ""
) -> _Read:
    """Transcribe one region, retrying a looping or cut reply hotter and on halves (see the notes above)."""
    res = job.client.chat(
        prompt, [enc], system=job.system, max_tokens=job.budget, temperature=job.temperatures[attempt - 1]
    )
    job.requests += 1
    final, note = _verdict(job, res, attempt, label)
    if final is not None:
        return final
    parts = _halves(image)
    side = len(parts) == 2 and parts[0].height == image.height
    reads = []
    for i, part in enumerate(parts, start=1):
        penc = encode_page(part, profile=job.profile, quality=job.quality)
        job.tokens += penc.tokens
        reads.append(
            _read_region(job, part, penc, _half_prompt(i, len(parts), job.plain), attempt + 1, label)
        )
        if reads[-1].failure:  # the region has failed for good: the other half would be wasted
            break
    return _combine(reads, note, side)


async def _aread_region(
    job: _Job, image: Image.Image, enc: EncodedImage, prompt: str, attempt: int = 1, label: str = ""
) -> _Read:
    """Async :func:`_read_region`: the halves of a retried region are sent concurrently."""
    res = await job.client.achat(
        prompt, [enc], system=job.system, max_tokens=job.budget, temperature=job.temperatures[attempt - 1]
    )
    job.requests += 1
    final, note = _verdict(job, res, attempt, label)
    if final is not None:
        return final
    parts = _halves(image)
    side = len(parts) == 2 and parts[0].height == image.height
    encs = [encode_page(p, profile=job.profile, quality=job.quality) for p in parts]
    job.tokens += sum(e.tokens for e in encs)
    reads = await asyncio.gather(
        *(
            _aread_region(job, p, e, _half_prompt(i, len(parts), job.plain), attempt + 1, label)
            for i, (p, e) in enumerate(zip(parts, encs, strict=True), start=1)
        )
    )
    return _combine(list(reads), note, side)


# ---------------------------------------------------------------------------------------------- page
def _page_result(
    page: PageImage,
    plain: bool,
    texts: list[tuple[str, Box]],
    crops: list[CropInfo],
    reads: list[_Read],
    job: _Job,
    warnings: list[str],
) -> OCRPage:
    """The page's OCRPage: crop texts merged, or ``failed`` with the first region's reason.

    Nothing read at all (every reply empty after the retries, none the blank-page marker) is a failed
    page (EmptyOutputError), never a blank one: the page was judged non-blank before it was sent.
    """
    attempts = max((r.attempts for r in reads), default=1)
    warnings = warnings + [w for r in reads for w in r.warnings]
    failed = next((r for r in reads if r.failure), None)
    common: dict[str, Any] = {
        "page": page.number,
        "crops": crops,
        "image_tokens": job.tokens,
        "requests": job.requests,
        "rotation": page.rotation,
        "attempts": attempts,
        "warnings": warnings,
    }
    if failed is not None:
        return OCRPage(status="failed", error=failed.failure, error_type=failed.failure_type, **common)
    blocks: Any = None
    if crops and job.regions:
        blocks = merge_crops([clean_transcription(t) for t, _ in texts], job.regions[: len(texts)])
        body = merged_text(blocks)
    elif crops:
        body = merge_overlapping([(clean_transcription(t), b) for t, b in texts])
    else:
        body = clean_transcription(texts[0][0]) if texts else ""
    if not body.strip() and not any(r.said_blank for r in reads):
        error = f"empty reply for a page judged non-blank after {attempts} attempts"
        return OCRPage(status="failed", error=error, error_type="EmptyOutputError", **common)
    geometry = job.geometry or block_geometry(page, job.regions if crops else ())
    blocks = _text_blocks(geometry, blocks if crops and job.regions else None, body)
    return OCRPage(
        markdown=body,
        text=body if plain else markdown_to_text(body),
        status="ok" if body.strip() else "blank",
        blocks=blocks,
        **common,
    )


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
    from .images.cutting import Region, line_boxes

    image = page.pixels()
    parts = list(regions) or [Region((0, 0, image.width, image.height))]
    lines = tuple((r.box, tuple(line_boxes(image, r))) for r in parts)
    return BlockGeometry(image.size, page.pdf_size, lines)


def _text_blocks(
    geometry: BlockGeometry, parts: list[tuple[str, Region]] | None, body: str
) -> list[TextBlock]:
    """Boxes of what was read: per region of a whitespace plan (else the page's text area), split into
    one box per line when the region's text lines (ink rows) and the transcription's lines agree."""
    from .images.cutting import Region

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


def _blank(page: PageImage) -> bool:
    """True for an empty page (checked on the client, so no request is spent on it).

    A page whose text layer holds real text is not blank: the pixel check is skipped for it.
    """
    from .pdf import text_layer_is_good

    if page.text_layer and text_layer_is_good(page.text_layer):
        return False
    try:
        from .images.quality import is_blank
    except ImportError:  # pragma: no cover
        return False
    return bool(is_blank(page.pixels()).blank)


def _upright(
    page: PageImage, engine: LocalOCREngine | None, *, precheck: bool = True
) -> tuple[PageImage, list[str]]:
    """``page`` turned upright by :func:`~.images.quality.detect_rotation`.

    Its image-only pre-check answers pages it finds upright; only suspect pages cost a Tesseract OSD run
    (when installed); ``precheck=False`` asks Tesseract about every page. Why: a sideways or upside-down
    scan is read far worse by the model. The returned copy's ``rotation``
    adds the clockwise correction to the page's own (PDF ``/Rotate``) rotation; the caller's page is left
    untouched. Detection errors never stop the page: it is sent as it is, with a warning.
    """
    from .images.quality import correct_rotation, detect_rotation

    try:
        chk = detect_rotation(page.pixels(), engine=engine, precheck=precheck)
    except InvalidInputError:
        raise
    except MiniMaxVLError as e:  # e.g. Tesseract crashed: send the page as it is
        return page, [f"rotation check failed ({e}); page sent as it is"]
    if not chk.angle:
        return page, []
    fixed = replace(
        page,
        image=correct_rotation(page.pixels(), chk),
        rotation=(page.rotation + chk.angle) % 360,
        pdf_size=None,  # pixel boxes of the turned image no longer map onto the PDF page
    )
    note = f"rotated {chk.angle} degrees clockwise to upright ({chk.method}, confidence {chk.confidence:.2f})"
    return fixed, [note]


def _failed(
    page: PageImage, err: Exception, job: _Job | None = None, warnings: Sequence[str] = ()
) -> OCRPage:
    return OCRPage(
        page=page.number,
        status="failed",
        error=str(err),
        error_type=type(err).__name__,
        requests=job.requests if job else 0,
        image_tokens=job.tokens if job else 0,
        rotation=page.rotation,
        warnings=list(warnings),
    )


def _profile_of(client: Any) -> ModelProfile:
    prof = getattr(client, "profile", None)
    return prof if isinstance(prof, ModelProfile) else DEFAULT_PROFILE


def _quality_of(client: Any) -> int:
    return int(getattr(getattr(client, "settings", None), "jpeg_quality", 90) or 90)


def _temperature_of(client: Any) -> float:
    value = getattr(getattr(client, "settings", None), "temperature", 0.0)
    return float(value) if isinstance(value, int | float) else 0.0


def _prepare(
    client: MiniMaxVLClient,
    page: PageImage,
    *,
    plain: bool,
    max_tokens: int | None,
    tile: TileMode,
    skip_blank: bool,
    fix_rotation: bool,
    rotation_engine: LocalOCREngine | None,
    max_attempts: int,
    min_x_height: float = MIN_X_HEIGHT,
) -> tuple[PageImage, OCRPage | None, _Job, PagePlan, list[str]]:
    """Shared start of :func:`ocr_page` / :func:`aocr_page`: blank check, rotation, plan and request context.

    Returns the (possibly rotated) page, an early result for a blank page (None otherwise), the job, the
    plan and the warnings so far.
    """
    from .output_checks import temperature_schedule

    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise InvalidInputError(f"max_attempts={max_attempts!r} must be a positive integer")
    profile = _profile_of(client)
    job = _Job(
        client=client,
        system=ocr_prompts.system_prompt(plain=plain),
        budget=_default_max_tokens(client, max_tokens),
        temperatures=temperature_schedule(_temperature_of(client), max_attempts),
        plain=plain,
        profile=profile,
        quality=_quality_of(client),
    )
    warnings: list[str] = list(page.warnings)
    if skip_blank and _blank(page):
        blank = OCRPage(
            page=page.number, status="blank", rotation=page.rotation, attempts=0, warnings=warnings
        )
        return page, blank, job, plan_page(1, 1, tile=False, profile=profile), warnings
    if fix_rotation:
        page, turned = _upright(page, rotation_engine)
        warnings += turned
    plan = plan_page_image(page.pixels(), tile=tile, min_x_height=min_x_height, profile=profile)
    job.regions = plan.regions
    return page, None, job, plan, warnings


def ocr_page(
    client: MiniMaxVLClient,
    page: PageImage,
    *,
    plain: bool = False,
    max_tokens: int | None = None,
    tile: TileMode = "auto",
    raise_errors: bool = False,
    skip_blank: bool = True,
    fix_rotation: bool = False,
    rotation_engine: LocalOCREngine | None = None,
    max_attempts: int = 3,
    min_x_height: float = MIN_X_HEIGHT,
) -> OCRPage:
    """Transcribe one page: one fitted image, or overlapping crops merged without the duplicated overlap.

    * Blank pages (``skip_blank``) cost no request: ``status="blank"``, empty text, ``attempts=0``.
    * ``fix_rotation`` turns a sideways or upside-down scan upright first
      (:func:`~.images.quality.detect_rotation`, Tesseract OSD via ``rotation_engine`` or the default
      local engine when installed); ``OCRPage.rotation`` records the correction.
    * A reply that loops or is cut at ``max_tokens`` is retried, up to ``max_attempts`` tries in all, one
      step hotter on the temperature schedule and on two overlapping halves of the region; after the
      last try the page is ``failed`` with the reason (e.g. ``"truncated (finish_reason=length) after 3
      attempts"``), never returned as if fine. ``OCRPage.attempts`` and ``warnings`` record the retries.
    * With ``tile="auto"`` a page that might need crops has its small print measured first
      (:func:`plan_page_image`): crops only when one image would show it under ``min_x_height`` px.

    Failures of the server come back as ``status="failed"`` with the error text, unless ``raise_errors``;
    input errors always raise.
    """
    page, early, job, plan, warnings = _prepare(
        client,
        page,
        plain=plain,
        max_tokens=max_tokens,
        tile=tile,
        skip_blank=skip_blank,
        fix_rotation=fix_rotation,
        rotation_engine=rotation_engine,
        max_attempts=max_attempts,
        min_x_height=min_x_height,
    )
    if early is not None:
        return early
    try:
        if plan.mode == "tiles":
            texts: list[tuple[str, Box]] = []
            crops: list[CropInfo] = []
            reads: list[_Read] = []
            reqs = _crop_requests(page, plan, plain, job.profile, job.quality)
            for prompt, enc, t, img in reqs:
                job.tokens += enc.tokens
                read = _read_region(job, img, enc, prompt, label=f"crop {t.index + 1}/{len(reqs)}: ")
                reads.append(read)
                texts.append((read.text, plan.boxes[t.index]))
                crops.append(CropInfo(box=plan.boxes[t.index], tokens=enc.tokens))
                if read.failure:  # the page has failed for good: spend nothing on its other crops
                    break
            return _page_result(page, plain, texts, crops, reads, job, warnings)
        image = page.pixels()
        enc = encode_page(image, profile=job.profile, quality=job.quality)
        job.tokens += enc.tokens
        read = _read_region(job, image, enc, ocr_prompts.page_prompt(plain=plain))
        return _page_result(page, plain, [(read.text, (0, 0, *page.size))], [], [read], job, warnings)
    except InvalidInputError:
        raise
    except MiniMaxVLError as e:
        if raise_errors:
            raise
        return _failed(page, e, job, warnings)


async def aocr_page(
    client: MiniMaxVLClient,
    page: PageImage,
    *,
    plain: bool = False,
    max_tokens: int | None = None,
    tile: TileMode = "auto",
    raise_errors: bool = False,
    skip_blank: bool = True,
    fix_rotation: bool = False,
    rotation_engine: LocalOCREngine | None = None,
    max_attempts: int = 3,
    min_x_height: float = MIN_X_HEIGHT,
) -> OCRPage:
    """Async :func:`ocr_page`: crops (and retried halves) are sent concurrently, bounded by the client.

    Rotation detection (CPU, possibly Tesseract) runs in a worker thread so the event loop stays free.
    """
    page, early, job, plan, warnings = await asyncio.to_thread(
        _prepare,
        client,
        page,
        plain=plain,
        max_tokens=max_tokens,
        tile=tile,
        skip_blank=skip_blank,
        fix_rotation=fix_rotation,
        rotation_engine=rotation_engine,
        max_attempts=max_attempts,
        min_x_height=min_x_height,
    )
    if early is not None:
        return early
    try:
        if plan.mode == "tiles":
            reqs = await asyncio.to_thread(_crop_requests, page, plan, plain, job.profile, job.quality)
            job.tokens += sum(enc.tokens for _, enc, _, _ in reqs)
            reads = await asyncio.gather(
                *(
                    _aread_region(job, img, enc, p, label=f"crop {t.index + 1}/{len(reqs)}: ")
                    for p, enc, t, img in reqs
                )
            )
            texts = [(r.text, plan.boxes[t.index]) for r, (_, _, t, _) in zip(reads, reqs, strict=True)]
            crops = [CropInfo(box=plan.boxes[t.index], tokens=enc.tokens) for _, enc, t, _ in reqs]
            return _page_result(page, plain, texts, crops, list(reads), job, warnings)
        image = page.pixels()
        enc = await asyncio.to_thread(encode_page, image, profile=job.profile, quality=job.quality)
        job.tokens += enc.tokens
        read = await _aread_region(job, image, enc, ocr_prompts.page_prompt(plain=plain))
        return _page_result(page, plain, [(read.text, (0, 0, *page.size))], [], [read], job, warnings)
    except InvalidInputError:
        raise
    except MiniMaxVLError as e:
        if raise_errors:
            raise
        return _failed(page, e, job, warnings)
