"""Token-aware sizing: plans never upscale, snap onto canvas edges, respect budgets and state exact tokens."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from minimaxvl_tools.errors import AspectRatioError, InvalidInputError
from minimaxvl_tools.images.sizing import (
    apply_plan,
    fit_image,
    fit_pieces,
    plan_size,
    split_boxes,
    split_strip,
)
from minimaxvl_tools.profile import MINIMAX_VL_01, image_tokens


def test_one_pixel_past_edge_snaps_onto_it() -> None:
    plan = plan_size(673, 673)
    assert plan.resized == plan.final == (672, 672)
    assert plan.tokens == 2928 < image_tokens(673, 673) == 5832


def test_exact_canvas_untouched() -> None:
    plan = plan_size(672, 672)
    assert plan.resized == (672, 672) and plan.scale == 1.0 and not plan.padded


def test_tolerance_is_a_parameter() -> None:
    assert plan_size(700, 700).resized == (672, 672)  # 4 % loss
    assert plan_size(720, 720).resized == (720, 720)  # 6.7 % loss: keep pixels
    assert plan_size(720, 720, shrink_tolerance=0.10).resized == (672, 672)


def test_never_upscales_small_images() -> None:
    plan = plan_size(400, 300)
    assert plan.resized == (400, 300) and plan.scale == 1.0
    assert plan_size(400, 350).resized == (384, 336)  # 4 % loss lands on the 336 edge: one tile


def test_large_image_fits_best_canvas() -> None:
    plan = plan_size(4000, 3000)
    assert plan.resized == (1344, 1008) and plan.tokens == 7560


def test_economy_is_cheaper_but_bounded() -> None:
    leg, eco = plan_size(4000, 3000), plan_size(4000, 3000, mode="economy")
    assert eco.tokens < leg.tokens
    assert eco.scale >= leg.scale * 0.75 - 1e-9


@pytest.mark.parametrize("budget", [1176, 2000, 3000, 5000, 8000])
def test_budget_picks_largest_size_within(budget: int) -> None:
    plan = plan_size(2480, 3508, max_tokens=budget, mode="economy")
    assert plan.tokens <= budget
    # No canvas-fit size with a larger scale fits the budget.
    for cw, ch in MINIMAX_VL_01.canvases:
        s = min(cw / 2480, ch / 3508, 1.0)
        if s > plan.scale + 0.01:
            w, h = round(2480 * s), round(3508 * s)
            assert image_tokens(min(w, cw), min(h, ch)) > budget


def test_legibility_with_budget_keeps_legibility_plan_when_it_fits() -> None:
    assert plan_size(640, 480, max_tokens=5000) == plan_size(640, 480)
    assert plan_size(2480, 3508, max_tokens=3000).tokens <= 3000


def test_budget_below_minimum() -> None:
    with pytest.raises(InvalidInputError, match="max_tokens=100"):
        plan_size(500, 500, max_tokens=100)


def test_padding_small_images() -> None:
    plan = plan_size(100, 50)
    assert plan.resized == (100, 50) and plan.final == (336, 336) and plan.padded
    assert plan.offset == (118, 143)
    assert plan.tokens == image_tokens(336, 336) == 1176
    # Padding is not free for thin images (unpadded features shrink with the aspect ratio): the budget wins.
    assert image_tokens(100, 50) == 876
    tight = plan_size(100, 50, max_tokens=900)
    assert not tight.padded and tight.tokens == 876
    assert not plan_size(100, 50, pad_small=False).padded


def test_padding_only_the_short_side() -> None:
    plan = plan_size(1000, 200)
    assert plan.final == (1000, 336) and plan.tokens == image_tokens(1000, 336)


def test_apply_plan_pads_white_and_resizes() -> None:
    img = Image.new("RGB", (100, 50), (255, 0, 0))
    out, plan = fit_image(img)
    assert out.size == plan.final == (336, 336)
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((168, 168)) == (255, 0, 0)
    big = Image.new("RGB", (673, 673), (0, 128, 0))
    out, plan = fit_image(big)
    assert out.size == (672, 672)
    with pytest.raises(InvalidInputError, match="plan was made for"):
        apply_plan(Image.new("RGB", (10, 10)), plan)


def test_apply_plan_resizes_gray_pages_as_one_channel_with_the_same_pixels() -> None:
    rng = np.random.default_rng(0)
    gray = Image.fromarray(rng.integers(0, 256, (1650, 1275), dtype=np.uint8), "L")
    colour = Image.fromarray(rng.integers(0, 256, (1650, 1275, 3), dtype=np.uint8), "RGB")
    for img in (gray, gray.convert("RGB"), colour):
        plan = plan_size(*img.size)
        assert plan.resized != plan.source  # a real resize
        out = apply_plan(img, plan)
        rgb = img.convert("RGB").resize(plan.resized, Image.Resampling.BICUBIC, reducing_gap=3.0)
        assert out.mode == "RGB" and out.size == plan.final
        x, y = plan.offset
        crop = out.crop((x, y, x + plan.resized[0], y + plan.resized[1]))
        assert np.array_equal(np.asarray(crop), np.asarray(rgb))  # identical to resizing all three channels


@pytest.mark.parametrize("size", [(1275, 1650), (336, 336), (200, 90)])  # resized; as it is; padded
def test_apply_plan_known_gray_gives_one_channel_of_the_same_pixels(size: tuple[int, int]) -> None:
    """gray=True (the caller checked): L out, pixel for pixel the RGB result; gray=False checks nothing and
    gives RGB; the default stays RGB out."""
    rng = np.random.default_rng(1)
    gray = Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8), "L")
    plan = plan_size(*size)
    rgb = apply_plan(gray.convert("RGB"), plan)
    for img in (gray, gray.convert("RGB")):
        one = apply_plan(img, plan, gray=True)
        assert one.mode == "L" and one.size == rgb.size == plan.final
        assert np.array_equal(np.asarray(one), np.asarray(rgb.convert("L")))
        assert apply_plan(img, plan).mode == "RGB"
    assert apply_plan(gray.convert("RGB"), plan, gray=False).mode == "RGB"
    if plan.final != plan.resized:  # the padding is white in one channel too
        assert apply_plan(gray, plan, gray=True).getpixel((0, 0)) == 255


def test_aspect_ratio_refused_with_advice() -> None:
    with pytest.raises(AspectRatioError, match=r"50000x10.*split_strip"):
        plan_size(50000, 10)
    with pytest.raises(AspectRatioError):
        fit_pieces(Image.new("RGB", (700, 100)), split=False)
    assert plan_size(600, 100).tokens > 0  # exactly 6:1 is fine


def test_split_strip_50000x10() -> None:
    strip = Image.fromarray(np.tile(np.arange(50000, dtype=np.uint32) % 256, (10, 1)).astype(np.uint8))
    pieces = split_strip(strip)
    assert len(pieces) > 1
    covered = 0
    prev_right = 0
    for img, (left, top, right, bottom) in pieces:
        assert img.size == (right - left, bottom - top)
        assert max(img.size) / min(img.size) <= MINIMAX_VL_01.max_aspect_ratio
        assert left <= prev_right  # no gap
        if prev_right:
            assert prev_right - left >= 0
        prev_right = right
        covered = right
    assert pieces[0][1][0] == 0 and covered == 50000


def test_split_vertical_and_overlap() -> None:
    boxes = split_boxes(300, 5000)
    assert all(b[2] == 300 and (b[3] - b[1]) <= 1800 for b in boxes)
    assert boxes[-1][3] == 5000
    for a, b in itertools.pairwise(boxes):
        assert a[3] - b[1] >= 29  # default overlap 30 px (10 % of the short side), minus rounding


def test_fit_pieces_splits() -> None:
    out = fit_pieces(Image.new("RGB", (3000, 200), "white"))
    assert len(out) >= 3
    for img, plan, box in out:
        assert img.size == plan.final
        assert plan.tokens == image_tokens(*plan.final)
        assert box[2] - box[0] <= 1200


def test_bad_mode() -> None:
    with pytest.raises(InvalidInputError, match="mode"):
        plan_size(10, 10, mode="fast")  # type: ignore[arg-type]


dims = st.integers(min_value=1, max_value=5000)


@settings(max_examples=300, deadline=None)
@given(w=dims, h=dims, mode=st.sampled_from(["legibility", "economy"]))
def test_plan_invariants(w: int, h: int, mode: str) -> None:
    if max(w, h) / min(w, h) > 6:
        with pytest.raises(AspectRatioError):
            plan_size(w, h, mode=mode)  # type: ignore[arg-type]
        return
    plan = plan_size(w, h, mode=mode)  # type: ignore[arg-type]
    assert plan.tokens == image_tokens(*plan.final)
    assert plan.canvas == MINIMAX_VL_01.best_canvas(*plan.final)
    rw, rh = plan.resized
    assert rw <= w and rh <= h  # never upscale
    assert plan.final[0] >= rw and plan.final[1] >= rh
    # resized fits a canvas, so the server does not shrink it further
    assert any(rw <= cw and rh <= ch for cw, ch in MINIMAX_VL_01.canvases)
    # never more tokens than sending the source as is
    if not plan.padded:
        assert plan.tokens <= image_tokens(w, h)


@settings(max_examples=200, deadline=None)
@given(w=dims, h=dims, budget=st.integers(min_value=1176, max_value=12000))
def test_budget_invariant(w: int, h: int, budget: int) -> None:
    if max(w, h) / min(w, h) > 6:
        return
    plan = plan_size(w, h, max_tokens=budget, mode="economy")
    assert plan.tokens <= budget
    assert plan.tokens == image_tokens(*plan.final)
