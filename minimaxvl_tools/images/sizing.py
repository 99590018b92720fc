"""Token-aware sizing: choose the pixel size an image is sent at, knowing exactly what each size costs.

The server resizes every image into one of the profile's canvases and the token cost is a step function of
the size (672x672 costs 2928 tokens, 673x673 costs 5832). :func:`plan_size` picks the size on the client:

* ``"legibility"`` keeps as many source pixels as the best canvas allows, never upscales (the server does that
  for free), and snaps an image that is slightly larger than a canvas edge onto that edge when the linear loss
  is at most ``shrink_tolerance`` (5 %), so the long side lands on the edge instead of one pixel past it;
* ``"economy"`` does the same with a looser tolerance (25 %): fewer tokens for a modest loss of detail;
* ``max_tokens`` picks the largest size whose exact cost fits the budget.

Every :class:`SizePlan` carries ``tokens == profile.image_tokens(*final)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from ..errors import AspectRatioError, InvalidInputError
from ..profile import MINIMAX_VL_01, ModelProfile
from .encode import is_grayscale

Size = tuple[int, int]
Box = tuple[int, int, int, int]
SizingMode = Literal["legibility", "economy"]

DEFAULT_SHRINK_TOLERANCE: dict[str, float] = {"legibility": 0.05, "economy": 0.25}


@dataclass(frozen=True)
class SizePlan:
    """How one image is sent: source size, resized size, final size after padding, canvas and exact tokens."""

    source: Size
    resized: Size
    final: Size
    canvas: Size
    tokens: int
    scale: float
    padded: bool
    offset: Size = (0, 0)  # where the resized image sits inside the padded final image (left, top)


def _fit_options(width: int, height: int, cw: int, ch: int) -> list[Size]:
    """Largest aspect-kept sizes inside ``cw`` x ``ch`` without upscaling; the limiting side lands on it.

    Two roundings of the other side are offered: one pixel can change the unpadded feature count.
    """
    if width <= cw and height <= ch:
        return [(width, height)]
    if width * ch >= height * cw:  # width is the limiting side
        exact = height * cw / width
        return [(cw, max(1, min(ch, v))) for v in {math.floor(exact), math.ceil(exact)}]
    exact = width * ch / height
    return [(max(1, min(cw, v)), ch) for v in {math.floor(exact), math.ceil(exact)}]


def aspect_ratio(width: int, height: int) -> float:
    """Long side over short side (>= 1)."""
    return max(width, height) / min(width, height)


def check_aspect(width: int, height: int, profile: ModelProfile = MINIMAX_VL_01) -> None:
    """Raise AspectRatioError when ``width`` x ``height`` is more elongated than the canvases hold."""
    ratio = aspect_ratio(width, height)
    if ratio > profile.max_aspect_ratio:
        raise AspectRatioError(
            f"image {width}x{height} has aspect ratio {ratio:.1f}:1, beyond {profile.name}'s "
            f"{profile.max_aspect_ratio:g}:1 limit (the server would squeeze it into a degenerate grid): "
            "split it with split_strip()/fit_pieces(split=True) or crop it first"
        )


def plan_size(
    width: int,
    height: int,
    *,
    max_tokens: int | None = None,
    mode: SizingMode = "legibility",
    profile: ModelProfile = MINIMAX_VL_01,
    shrink_tolerance: float | None = None,
    pad_small: bool = True,
    allow_extreme_aspect: bool = False,
) -> SizePlan:
    """Plan the size to send a ``width`` x ``height`` image at; see the module docstring for the modes.

    ``pad_small`` pads a side shorter than one tile (336 px) with white up to the tile instead of letting the
    server stretch it; note that this can cost tokens (100x50 costs 876, padded 336x336 costs 1176), so under
    ``max_tokens`` the padding is dropped when it would break the budget.
    """
    base_tokens = profile.image_tokens(width, height)  # validates the size
    if mode not in DEFAULT_SHRINK_TOLERANCE:
        raise InvalidInputError(f"sizing mode {mode!r} is unknown: use 'legibility' or 'economy'")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens <= 0):
        raise InvalidInputError(f"max_tokens must be a positive integer or None, got {max_tokens!r}")
    tol = DEFAULT_SHRINK_TOLERANCE[mode] if shrink_tolerance is None else shrink_tolerance
    if not 0.0 <= tol < 1.0:
        raise InvalidInputError(f"shrink_tolerance must be in [0, 1), got {tol!r}")
    if not allow_extreme_aspect:
        check_aspect(width, height, profile)

    # One candidate per canvas: the largest no-upscale size that fits it. (tokens, scale, size)
    cands: dict[Size, tuple[int, float]] = {}
    for cw, ch in profile.canvases:
        scale = min(cw / width, ch / height, 1.0)
        for size in _fit_options(width, height, cw, ch):
            if size not in cands:
                tokens = base_tokens if size == (width, height) else profile.image_tokens(*size)
                cands[size] = (tokens, scale)
    s_max = max(s for _, s in cands.values())

    eligible = [(t, s, size) for size, (t, s) in cands.items() if s >= s_max * (1.0 - tol) - 1e-12]
    chosen = min(eligible, key=lambda c: (c[0], -c[1], -c[2][0] * c[2][1]))
    if max_tokens is not None and (mode == "economy" or chosen[0] > max_tokens):
        within = [(t, s, size) for size, (t, s) in cands.items() if t <= max_tokens]
        if not within:
            cheapest = min(t for t, _ in cands.values())
            raise InvalidInputError(
                f"max_tokens={max_tokens} is below the cheapest cost of a {width}x{height} image "
                f"({cheapest} tokens at any size, as the cost depends on the aspect ratio): raise max_tokens"
            )
        chosen = max(within, key=lambda c: (c[1], -c[0], c[2][0] * c[2][1]))

    tokens, _, (rw, rh) = chosen
    final, padded, offset = (rw, rh), False, (0, 0)
    if pad_small and (rw < profile.tile or rh < profile.tile):
        fw, fh = max(rw, profile.tile), max(rh, profile.tile)
        padded_tokens = profile.image_tokens(fw, fh)
        if max_tokens is None or padded_tokens <= max_tokens:
            final, padded, offset, tokens = (fw, fh), True, ((fw - rw) // 2, (fh - rh) // 2), padded_tokens
    scale = rw / width if width >= height else rh / height
    return SizePlan(
        source=(width, height),
        resized=(rw, rh),
        final=final,
        canvas=profile.best_canvas(*final),
        tokens=tokens,
        scale=scale,
        padded=padded,
        offset=offset,
    )


def apply_plan(image: Image.Image, plan: SizePlan, *, gray: bool | None = None) -> Image.Image:
    """Resize (bicubic) and pad ``image`` as ``plan`` says; it must have the plan's source size.

    RGB out, unless ``gray=True``: the caller knows every pixel is gray (:func:`.encode.is_grayscale`), and
    gets one channel (L) back, the same pixels for an encoder that sends gray pages as gray anyway.
    ``gray=False``: known to have colour (nothing checked); None: checked here when resizing.
    """
    if image.size != plan.source:
        raise InvalidInputError(
            f"image is {image.width}x{image.height} but the plan was made for "
            f"{plan.source[0]}x{plan.source[1]}: plan the size of this image with plan_size()"
        )
    img = image if image.mode in ("L", "RGB") else image.convert("RGB")
    if plan.resized != plan.source:
        # A gray page (most scans) is resized as one channel: the same pixels in a third of the time.
        if img.mode == "RGB" and (gray or (gray is None and is_grayscale(img))):
            img = img.convert("L")
        # bicubic: what the server itself uses to fit canvases; reducing_gap pre-shrinks large factors fast
        img = img.resize(plan.resized, Image.Resampling.BICUBIC, reducing_gap=3.0)
    out = "L" if gray else "RGB"
    if img.mode != out:
        img = img.convert(out)
    if plan.final != plan.resized:
        canvas = Image.new(out, plan.final, 255 if out == "L" else (255, 255, 255))
        canvas.paste(img, plan.offset)
        img = canvas
    return img


def fit_image(
    image: Image.Image,
    *,
    max_tokens: int | None = None,
    mode: SizingMode = "legibility",
    profile: ModelProfile = MINIMAX_VL_01,
    shrink_tolerance: float | None = None,
    pad_small: bool = True,
    gray: bool | None = None,
) -> tuple[Image.Image, SizePlan]:
    """Plan and apply the size of ``image`` in one step; returns the image to send and its plan
    (``gray``: as in :func:`apply_plan`)."""
    plan = plan_size(
        image.width,
        image.height,
        max_tokens=max_tokens,
        mode=mode,
        profile=profile,
        shrink_tolerance=shrink_tolerance,
        pad_small=pad_small,
    )
    return apply_plan(image, plan, gray=gray), plan


def split_boxes(
    width: int, height: int, profile: ModelProfile = MINIMAX_VL_01, *, overlap: int | None = None
) -> list[Box]:
    """Boxes (left, top, right, bottom) cutting a long strip into pieces each at most max_aspect_ratio:1."""
    profile.image_tokens(width, height)  # validates the size
    horizontal = width >= height
    long, short = (width, height) if horizontal else (height, width)
    piece = max(1, math.floor(short * profile.max_aspect_ratio))
    if long <= piece:
        return [(0, 0, width, height)]
    ov = max(1, short // 10) if overlap is None else overlap
    if ov < 0:
        raise InvalidInputError(f"overlap must be >= 0, got {overlap}")
    ov = min(ov, piece // 2)
    n = math.ceil((long - ov) / (piece - ov))
    starts = [round(i * (long - piece) / (n - 1)) for i in range(n)]
    if horizontal:
        return [(s, 0, s + piece, height) for s in starts]
    return [(0, s, width, s + piece) for s in starts]


def split_strip(
    image: Image.Image, profile: ModelProfile = MINIMAX_VL_01, *, overlap: int | None = None
) -> list[tuple[Image.Image, Box]]:
    """Cut a long strip into overlapping pieces each within the profile's aspect ratio, with their boxes."""
    boxes = split_boxes(image.width, image.height, profile, overlap=overlap)
    return [(image.crop(box), box) for box in boxes]


def fit_pieces(
    image: Image.Image,
    *,
    max_tokens: int | None = None,
    mode: SizingMode = "legibility",
    profile: ModelProfile = MINIMAX_VL_01,
    split: bool = True,
) -> list[tuple[Image.Image, SizePlan, Box]]:
    """Like :func:`fit_image`, but an over-elongated image is split (``split=True``) instead of refused."""
    if aspect_ratio(image.width, image.height) <= profile.max_aspect_ratio:
        img, plan = fit_image(image, max_tokens=max_tokens, mode=mode, profile=profile)
        return [(img, plan, (0, 0, image.width, image.height))]
    if not split:
        check_aspect(image.width, image.height, profile)
    out: list[tuple[Image.Image, SizePlan, Box]] = []
    for piece, box in split_strip(image, profile):
        img, plan = fit_image(piece, max_tokens=max_tokens, mode=mode, profile=profile)
        out.append((img, plan, box))
    return out


__all__ = [
    "Box",
    "SizePlan",
    "SizingMode",
    "apply_plan",
    "aspect_ratio",
    "check_aspect",
    "fit_image",
    "fit_pieces",
    "plan_size",
    "split_boxes",
    "split_strip",
]
