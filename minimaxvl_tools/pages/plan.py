"""Page plans: one fitted image or crops (print size measured, cuts in whitespace), and the crops."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image

from ..errors import AspectRatioError, InvalidInputError
from ..images.cutting import Region, cut_regions, find_layout, region_image
from ..images.encode import EncodedImage, encode_image
from ..images.quality import estimate_x_height
from ..images.sizing import fit_image, plan_size
from ..images.tiling import Tile, TilePlan, cut_tiles, needs_tiling, plan_tiles
from ..profile import DEFAULT_PROFILE, ModelProfile
from ..prompts import ocr as ocr_prompts

if TYPE_CHECKING:  # pragma: no cover
    from ...images.cutting import Region
    from ...images.sizing import SizePlan
    from ...images.tiling import Tile, TilePlan
    from ..images.policy import InputPolicy
from .source import Box, PageImage, PageSpec, TileMode, iter_pages


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

    def summary(self) -> dict[str, Any]:
        """What a dry run reports of this plan, JSON-ready: mode, size sent, crops, canvases, image tokens,
        requests, the cut kind and boxes, and the small print's x-height on the page and as sent."""
        if self.mode == "tiles" and self.tiles is not None:
            canvases = sorted({t.canvas for t in self.tiles.tiles})
            sent = list(self.tiled_size)
        else:
            assert self.size is not None
            canvases = [self.size.canvas]
            sent = list(self.size.final)
        gain = self.legibility_gain
        return {
            "mode": self.mode,
            "sent_size": sent,
            "crops": self.crops,
            "canvases": [list(c) for c in canvases],
            "image_tokens": self.tokens,
            "requests": self.requests,
            "cut": self.cut or "none",  # whitespace, whitespace+overlap, grid (overlapping strips), none
            "cuts": [list(b) for b in self.boxes] if self.mode == "tiles" else [],
            "x_height": self.x_height,  # the small print, page px (None: no text measured)
            "x_height_shown": self.shown_x_height,  # ... as the server sees it in the images sent
            "legibility_gain": None if gain is None else round(gain, 3),
        }


def _tile_plan(width: int, height: int, profile: ModelProfile) -> TilePlan:
    """Crops of full page width when a canvas is that wide (text lines stay whole), else the cheapest grid."""
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
    gray: bool | None = None,
) -> EncodedImage:
    """Fit a whole page to the token budget (:func:`~.images.sizing.fit_image`) and encode it; ``gray``:
    whether every pixel is gray, when the caller knows (None: found out here)."""
    fitted, _ = fit_image(image, max_tokens=max_tokens, mode=mode, profile=profile, gray=gray)
    return encode_image(fitted, quality=quality, profile=profile, gray=gray is not False)


def cut_page(image: Image.Image, plan: PagePlan) -> list[tuple[Image.Image, Tile]]:
    """The crops of a tiled ``plan`` from the page's pixels, in plan order: whitespace regions cut from the
    page (ink beyond their seams whitened) and scaled to their tile size; or, for a grid plan, the page
    scaled to the plan first (Lanczos, sharpest for small print), then cut."""
    if plan.tiles is None:
        raise InvalidInputError("cut_page() needs a tiled plan (plan.mode == 'tiles')")
    if image.size != (plan.width, plan.height):
        raise InvalidInputError(
            f"image is {image.width}x{image.height} but the plan is for a {plan.width}x{plan.height} page"
        )
    if plan.regions:
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


def plan_rows(
    source: Any, *, pages: PageSpec = None, dpi: int = 200, policy: InputPolicy | None = None
) -> Iterator[dict[str, Any]]:
    """One dry-run row per page of ``source``, no server: source, page, size and :meth:`PagePlan.summary`.

    Pages are planned as the OCR tool plans them (:func:`plan_page_image`: small print measured), one
    rendered page in memory at a time.
    """
    for page in iter_pages(source, pages=pages, dpi=dpi, policy=policy):
        plan = plan_page_image(page.pixels())
        w, h = page.size
        page.image = None
        yield {"source": source, "page": page.number, "width": w, "height": h, **plan.summary()}


def plan_totals(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Totals over :func:`plan_rows` rows: pages, tiled pages, crops, image tokens and requests."""
    return {
        "pages": len(rows),
        "tiled_pages": sum(r["mode"] == "tiles" for r in rows),
        "crops": sum(r["crops"] for r in rows),
        "image_tokens": sum(r["image_tokens"] for r in rows),
        "requests": sum(r["requests"] for r in rows),
    }
