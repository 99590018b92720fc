"""Tiling: native-resolution crops, minimal tokens, cost known before rendering."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.images.tiling import cut_tiles, fit_scale, needs_tiling, plan_tiles
from minimaxvl_tools.profile import MINIMAX_VL_01, image_tokens

A4_300 = (2480, 3508)


def test_a4_needs_tiling_small_photo_does_not() -> None:
    assert fit_scale(*A4_300) < 0.45
    assert needs_tiling(*A4_300)
    assert not needs_tiling(1000, 800)
    assert not needs_tiling(1400, 1400)  # 0.96 scale
    assert needs_tiling(1400, 1400, threshold=0.99)


def test_a4_plan_is_native_and_cheapest() -> None:
    plan = plan_tiles(*A4_300)
    assert plan.total_tokens == sum(t.tokens for t in plan.tiles)
    for t in plan.tiles:
        w, h = t.box[2] - t.box[0], t.box[3] - t.box[1]
        assert (w, h) == t.size
        assert w <= t.canvas[0] and h <= t.canvas[1]  # the server does not downscale the crop
        assert MINIMAX_VL_01.best_canvas(w, h) == t.canvas
        assert t.tokens == image_tokens(w, h)
    named = {
        c: plan_tiles(*A4_300, canvas=c).total_tokens for c in [(1344, 1344), (1008, 1680), (2016, 1008)]
    }
    assert plan.total_tokens <= min(named.values())
    assert named[(1344, 1344)] < named[(2016, 1008)]


def test_tiles_cover_page_with_overlap() -> None:
    plan = plan_tiles(*A4_300, canvas=(1344, 1344), overlap=64)
    cols, rows = plan.grid
    assert (cols, rows) == (2, 3) and len(plan.tiles) == 6
    covered = np.zeros(A4_300[::-1], bool)
    for t in plan.tiles:
        covered[t.box[1] : t.box[3], t.box[0] : t.box[2]] = True
    assert covered.all()
    xs = sorted({t.box[0] for t in plan.tiles})
    w = plan.tiles[0].size[0]
    assert xs[0] + w - xs[1] >= 64


def test_requests_before_any_image() -> None:
    plan = plan_tiles(*A4_300, canvas=(1344, 1344), include_overview=True)
    assert plan.images == 7
    assert plan.requests(4) == 2 and plan.requests(1) == 7 and plan.requests(10) == 1
    assert plan.overview is not None
    assert plan.total_tokens == sum(t.tokens for t in plan.tiles) + plan.overview.tokens
    with pytest.raises(InvalidInputError):
        plan.requests(0)


def test_small_page_single_tile() -> None:
    plan = plan_tiles(800, 600)
    assert len(plan.tiles) == 1 and plan.tiles[0].box == (0, 0, 800, 600)
    assert plan.total_tokens == image_tokens(800, 600)


def test_bad_canvas_and_overlap() -> None:
    with pytest.raises(InvalidInputError, match="not one of"):
        plan_tiles(3000, 3000, canvas=(1000, 1000))
    with pytest.raises(InvalidInputError, match="overlap"):
        plan_tiles(3000, 3000, canvas=(336, 336), overlap=200)
    with pytest.raises(InvalidInputError):
        plan_tiles(3000, 3000, overlap=-1)


def test_cut_tiles_pixels_match_boxes() -> None:
    rng = np.random.default_rng(1)
    page = Image.fromarray(rng.integers(0, 256, (1500, 1200, 3), dtype=np.uint8))
    plan = plan_tiles(1200, 1500, canvas=(672, 672))
    crops = cut_tiles(page, plan)
    assert len(crops) == len(plan.tiles)
    arr = np.asarray(page)
    for img, t in crops:
        left, top, right, bottom = t.box
        assert np.array_equal(np.asarray(img), arr[top:bottom, left:right])
    with pytest.raises(InvalidInputError, match="tile plan is for"):
        cut_tiles(Image.new("RGB", (10, 10)), plan)


@settings(max_examples=150, deadline=None)
@given(w=st.integers(1, 9000), h=st.integers(1, 9000), overlap=st.integers(0, 120))
def test_plan_properties(w: int, h: int, overlap: int) -> None:
    plan = plan_tiles(w, h, overlap=overlap)
    cols, rows = plan.grid
    assert len(plan.tiles) == cols * rows
    assert plan.total_tokens == sum(image_tokens(*t.size) for t in plan.tiles)
    for t in plan.tiles:
        assert 0 <= t.box[0] < t.box[2] <= w and 0 <= t.box[1] < t.box[3] <= h
        # native resolution: the crop fits its canvas
        assert t.size[0] <= t.canvas[0] and t.size[1] <= t.canvas[1]
    assert max(t.box[2] for t in plan.tiles) == w and max(t.box[3] for t in plan.tiles) == h
    xs = sorted({t.box[0] for t in plan.tiles})
    tw = plan.tiles[0].size[0]
    for a, b in itertools.pairwise(xs):
        assert a + tw - b >= overlap - 1
    assert math.ceil(len(plan.tiles) / 4) == plan.requests(4)
