"""Tiling: cut a dense page into overlapping crops that are each read at native resolution.

Fitting an A4 scan at 300 dpi (2480x3508) into the best canvas shrinks it to about 40 %, which makes small
print unreadable. :func:`plan_tiles` instead cuts the page into crops no larger than a canvas, so the server
never downscales them, and picks the crop canvas with the lowest total token cost. Plans depend only on the
page size, so cost and request counts are known before any pixel is rendered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from ..errors import InvalidInputError
from ..profile import MINIMAX_VL_01, ModelProfile
from .sizing import Box, Size, SizePlan, plan_size


@dataclass(frozen=True)
class Tile:
    """One crop: its index, its box on the page, the size sent, the server's canvas and its exact tokens."""

    index: int
    box: Box
    size: Size
    canvas: Size
    tokens: int


@dataclass(frozen=True)
class TilePlan:
    """All crops of a page (plus an optional downscaled overview) and their total token cost."""

    page: Size
    tiles: tuple[Tile, ...]
    overview: SizePlan | None
    total_tokens: int
    grid: Size = (1, 1)  # (columns, rows)

    @property
    def images(self) -> int:
        """Number of images this plan sends (tiles plus the overview, if any)."""
        return len(self.tiles) + (1 if self.overview is not None else 0)

    def requests(self, images_per_request: int) -> int:
        """Requests needed when each request carries at most ``images_per_request`` images."""
        if not isinstance(images_per_request, int) or images_per_request < 1:
            msg = f"images_per_request must be a positive integer, got {images_per_request!r}"
            raise InvalidInputError(msg)
        return math.ceil(self.images / images_per_request)


def _axis(length: int, edge: int, overlap: int) -> tuple[int, int, list[int]]:
    """Pieces on one axis: (count, piece length, starts); pieces <= ``edge``, overlapping >= ``overlap``."""
    if length <= edge:
        return 1, length, [0]
    n = math.ceil((length - overlap) / (edge - overlap))
    piece = min(edge, math.ceil((length + (n - 1) * overlap) / n))
    starts = [round(i * (length - piece) / (n - 1)) for i in range(n)]
    return n, piece, starts


def _plan_for_canvas(width: int, height: int, canvas: Size, overlap: int, profile: ModelProfile) -> TilePlan:
    cw, ch = canvas
    if overlap >= min(cw, ch) // 2:
        msg = f"overlap {overlap} is too large for canvas {cw}x{ch}: use < {min(cw, ch) // 2}"
        raise InvalidInputError(msg)
    cols, tw, xs = _axis(width, cw, overlap)
    rows, th, ys = _axis(height, ch, overlap)
    tokens = profile.image_tokens(tw, th)
    server_canvas = profile.best_canvas(tw, th)
    tiles = tuple(
        Tile(r * cols + c, (x, y, x + tw, y + th), (tw, th), server_canvas, tokens)
        for r, y in enumerate(ys)
        for c, x in enumerate(xs)
    )
    return TilePlan((width, height), tiles, None, tokens * len(tiles), (cols, rows))


def plan_tiles(
    width: int,
    height: int,
    *,
    canvas: Size | Literal["auto"] = "auto",
    overlap: int = 64,
    include_overview: bool = False,
    profile: ModelProfile = MINIMAX_VL_01,
    candidates: Sequence[Size] | None = None,
) -> TilePlan:
    """Plan native-resolution crops of a ``width`` x ``height`` page, overlapping by at least ``overlap`` px.

    ``canvas="auto"`` tries every canvas of the profile (or ``candidates``) as the crop limit and keeps the
    plan with the fewest total tokens (then fewer tiles). Crops are shrunk to what the grid needs, since the
    cost counts only the image's own features. ``include_overview`` adds the whole page fitted to one canvas.
    """
    profile.image_tokens(width, height)  # validates the size
    if not isinstance(overlap, int) or overlap < 0:
        raise InvalidInputError(f"overlap must be a non-negative integer, got {overlap!r}")
    if canvas == "auto":
        options = list(candidates) if candidates else list(profile.canvases)
    else:
        if tuple(canvas) not in profile.canvases:
            raise InvalidInputError(
                f"canvas {canvas} is not one of {profile.name}'s canvases: use 'auto' or one of "
                f"{sorted(profile.canvases)}"
            )
        options = [tuple(canvas)]  # type: ignore[list-item]
    plans = [
        _plan_for_canvas(width, height, c, overlap, profile)  # type: ignore[arg-type]
        for c in options
        if overlap < min(c) // 2
    ]
    if not plans:
        raise InvalidInputError(f"overlap {overlap} is too large for every candidate canvas: lower it")
    best = min(plans, key=lambda p: (p.total_tokens, len(p.tiles), -p.tiles[0].size[0] * p.tiles[0].size[1]))
    if include_overview:
        overview = plan_size(width, height, mode="legibility", profile=profile, allow_extreme_aspect=True)
        best = TilePlan(best.page, best.tiles, overview, best.total_tokens + overview.tokens, best.grid)
    return best


def fit_scale(width: int, height: int, profile: ModelProfile = MINIMAX_VL_01) -> float:
    """Scale (<= 1) at which the whole ``width`` x ``height`` image fits the best canvas."""
    profile.image_tokens(width, height)
    return min(1.0, max(min(cw / width, ch / height) for cw, ch in profile.canvases))


def needs_tiling(
    width: int, height: int, *, threshold: float = 0.75, profile: ModelProfile = MINIMAX_VL_01
) -> bool:
    """True when fitting the whole page into the best canvas would shrink it below ``threshold`` scale."""
    return fit_scale(width, height, profile) < threshold


def cut_tiles(image: Image.Image, plan: TilePlan) -> list[tuple[Image.Image, Tile]]:
    """Crop ``image`` (of the plan's page size) into the plan's tiles, in plan order."""
    if image.size != plan.page:
        raise InvalidInputError(
            f"image is {image.width}x{image.height} but the tile plan is for a {plan.page[0]}x{plan.page[1]} "
            "page: plan the tiles of this image with plan_tiles(image.width, image.height)"
        )
    return [(image.crop(t.box), t) for t in plan.tiles]


__all__ = ["Tile", "TilePlan", "cut_tiles", "fit_scale", "needs_tiling", "plan_tiles"]
