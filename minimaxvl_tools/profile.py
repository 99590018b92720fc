"""Model profiles: the anyres geometry and token arithmetic of a vision-language model.

:data:`MINIMAX_VL_01` describes MiniMax-VL-01 (28 canvases of 336 px tiles, patch 14, a 24x24 thumbnail).
Every other part of the package sizes, tiles and budgets images through a profile, so another LLaVA-NeXT
style model can be described by another :class:`ModelProfile` without touching the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from .errors import InvalidInputError

Size = tuple[int, int]

MINIMAX_SYSTEM_PROMPT = "You are a helpful assistant created by MiniMax based on MiniMax-VL-01 model."


def _pinpoints(tile: int, max_side_tiles: int, max_tiles: int) -> tuple[Size, ...]:
    """Canvases as (width, height), in the order of the model's ``image_grid_pinpoints`` ([h, w] pairs)."""
    out: list[Size] = []
    for h in range(1, max_side_tiles + 1):
        for w in range(1, max_side_tiles + 1):
            if h * w <= max_tiles:
                out.append((w * tile, h * tile))
    return tuple(out)


@dataclass(frozen=True)
class ModelProfile:
    """Geometry and token facts of one anyres model, plus its chat-format constants."""

    name: str
    tile: int = 336
    patch: int = 14
    canvases: tuple[Size, ...] = field(default_factory=tuple)
    stop_token_ids: tuple[int, ...] = ()
    image_token_id: int | None = None
    system_prompt: str | None = None
    max_aspect_ratio: float = 6.0

    def __post_init__(self) -> None:
        if not self.canvases:
            raise ValueError(f"profile {self.name!r} has no canvases")
        for w, h in self.canvases:
            if w % self.tile or h % self.tile:
                raise ValueError(f"canvas {w}x{h} of {self.name!r} is not a multiple of tile {self.tile}")

    # ------------------------------------------------------------ derived constants
    @property
    def features_per_side(self) -> int:
        """Feature rows/columns per tile (336 / 14 = 24)."""
        return self.tile // self.patch

    @property
    def thumbnail_tokens(self) -> int:
        """Tokens of the whole-image thumbnail (24 * 24 = 576)."""
        return self.features_per_side**2

    @property
    def max_tiles(self) -> int:
        """Largest number of tiles any canvas holds."""
        return max((w // self.tile) * (h // self.tile) for w, h in self.canvases)

    @property
    def canvas_edges(self) -> tuple[int, ...]:
        """Distinct canvas side lengths, ascending (336, 672, ..., 2016)."""
        return tuple(sorted({s for c in self.canvases for s in c}))

    @property
    def min_image_tokens(self) -> int:
        """Cost of the smallest image (one tile)."""
        return self.image_tokens(self.tile, self.tile)

    @property
    def max_image_tokens(self) -> int:
        """Largest cost any image can have under this profile."""
        return _max_tokens(self)

    # ------------------------------------------------------------ the arithmetic
    def best_canvas(self, width: int, height: int) -> Size:
        """Canvas (w, h) the server resizes a ``width`` x ``height`` image into (LLaVA-NeXT's rule)."""
        _check_size(width, height)
        return _best_canvas(self, width, height)

    def image_tokens(self, width: int, height: int) -> int:
        """Exact number of prompt tokens an image of ``width`` x ``height`` pixels costs."""
        _check_size(width, height)
        return _image_tokens(self, width, height)

    def tokens_for_canvas(self, width: int, height: int, canvas: Size) -> int:
        """Tokens of an image of this size placed in ``canvas`` (unpadded features + newlines + thumbnail)."""
        bw, bh = canvas
        cw, ch = bw // self.patch, bh // self.patch
        if width / height > cw / ch:
            nh = (height * cw) // width
            pad = (ch - nh) // 2
            w, h = cw, ch - 2 * pad
        else:
            nw = (width * ch) // height
            pad = (cw - nw) // 2
            w, h = cw - 2 * pad, ch
        return (w + 1) * h + self.thumbnail_tokens


def _check_size(width: int, height: int) -> None:
    if not isinstance(width, int) or not isinstance(height, int) or isinstance(width, bool):
        raise InvalidInputError(f"image size must be integers, got width={width!r}, height={height!r}")
    if width <= 0 or height <= 0:
        raise InvalidInputError(f"image size must be positive, got {width}x{height}: pass a non-empty image")


@lru_cache(maxsize=65536)
def _best_canvas(profile: ModelProfile, width: int, height: int) -> Size:
    best: Size | None = None
    max_eff, min_waste = -1, float("inf")
    for cw, ch in profile.canvases:
        scale = min(cw / width, ch / height)
        dw, dh = int(width * scale), int(height * scale)
        eff = min(dw * dh, width * height)
        waste = cw * ch - eff
        if eff > max_eff or (eff == max_eff and waste < min_waste):
            best, max_eff, min_waste = (cw, ch), eff, waste
    assert best is not None
    return best


@lru_cache(maxsize=65536)
def _image_tokens(profile: ModelProfile, width: int, height: int) -> int:
    return profile.tokens_for_canvas(width, height, _best_canvas(profile, width, height))


@lru_cache(maxsize=8)
def _max_tokens(profile: ModelProfile) -> int:
    # The unpadded count is largest when the image's aspect equals its canvas's: the canvas itself.
    return max(profile.tokens_for_canvas(w, h, (w, h)) for w, h in profile.canvases)


MINIMAX_VL_01 = ModelProfile(
    name="MiniMax-VL-01",
    tile=336,
    patch=14,
    canvases=_pinpoints(336, 6, 18),
    stop_token_ids=(200020,),
    image_token_id=200025,
    system_prompt=MINIMAX_SYSTEM_PROMPT,
    max_aspect_ratio=6.0,
)

DEFAULT_PROFILE = MINIMAX_VL_01


def best_canvas(width: int, height: int, profile: ModelProfile = DEFAULT_PROFILE) -> Size:
    """MiniMax-VL-01's canvas (w, h) for an image of ``width`` x ``height`` pixels."""
    return profile.best_canvas(width, height)


def image_tokens(width: int, height: int, profile: ModelProfile = DEFAULT_PROFILE) -> int:
    """Exact prompt tokens MiniMax-VL-01 spends on an image of ``width`` x ``height`` pixels."""
    return profile.image_tokens(width, height)


__all__ = [
    "DEFAULT_PROFILE",
    "MINIMAX_SYSTEM_PROMPT",
    "MINIMAX_VL_01",
    "ModelProfile",
    "best_canvas",
    "image_tokens",
]
