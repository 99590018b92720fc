"""MiniMax-VL-01 token arithmetic: the shared worked values and property tests against independent code."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.profile import MINIMAX_VL_01, best_canvas, image_tokens

select_best_resolution = pytest.importorskip("transformers.image_processing_utils").select_best_resolution

WORKED = [
    (336, 336, 1176),
    (640, 480, 2340),
    (672, 672, 2928),
    (673, 673, 5832),
    (800, 600, 3696),
    (1024, 768, 7560),
    (1280, 720, 5814),
    (1920, 1080, 9864),
    (1080, 1920, 9920),
    (2048, 2048, 9888),
    (2480, 3508, 8022),
    (2016, 1008, 11016),
    (1008, 2016, 11088),
]

# The model's image_grid_pinpoints as published: [h, w] pairs of multiples of 336 with at most 18 tiles.
PINPOINTS_HW = [[h * 336, w * 336] for h in range(1, 7) for w in range(1, 7) if h * w <= 18]


def vllm_num_image_tokens(width: int, height: int) -> int:
    """Independent re-implementation of vLLM's LLaVA-NeXT count (float form of _get_num_unpadded_features)."""
    bh, bw = select_best_resolution((height, width), PINPOINTS_HW)
    npatches = 336 // 14
    grid_h, grid_w = bh // 336, bw // 336
    current_height, current_width = npatches * grid_h, npatches * grid_w
    aspect_ratio = width / height
    current_aspect_ratio = current_width / current_height
    if aspect_ratio > current_aspect_ratio:
        new_height = int(round(height * (current_width / width), 7))
        padding = (current_height - new_height) // 2
        current_height -= 2 * padding
    else:
        new_width = int(round(width * (current_height / height), 7))
        padding = (current_width - new_width) // 2
        current_width -= 2 * padding
    unpadded = current_height * current_width
    newlines = current_height
    base = npatches * npatches
    return unpadded + newlines + base


@pytest.mark.parametrize(("w", "h", "tokens"), WORKED)
def test_worked_values(w: int, h: int, tokens: int) -> None:
    assert image_tokens(w, h) == tokens
    assert vllm_num_image_tokens(w, h) == tokens


def test_small_images_cost_one_tile() -> None:
    assert image_tokens(1, 1) == image_tokens(336, 336) == 1176
    assert MINIMAX_VL_01.min_image_tokens == 1176
    assert MINIMAX_VL_01.max_image_tokens == 11088


def test_canvas_list_matches_model_card() -> None:
    assert len(MINIMAX_VL_01.canvases) == 28
    assert (2016, 2016) not in MINIMAX_VL_01.canvases
    assert sorted(MINIMAX_VL_01.canvases) == sorted((w, h) for h, w in PINPOINTS_HW)
    assert MINIMAX_VL_01.canvas_edges == (336, 672, 1008, 1344, 1680, 2016)


def test_step_function_one_pixel() -> None:
    assert best_canvas(672, 672) == (672, 672)
    assert best_canvas(673, 673) != (672, 672)
    assert image_tokens(673, 673) > 1.9 * image_tokens(672, 672)


@pytest.mark.parametrize("bad", [(0, 10), (10, 0), (-5, 5), (1.5, 3)])
def test_bad_sizes_raise(bad: tuple) -> None:
    with pytest.raises(InvalidInputError):
        image_tokens(*bad)


sizes = st.integers(min_value=1, max_value=6000)


@settings(max_examples=300, deadline=None)
@given(w=sizes, h=sizes)
def test_best_canvas_matches_transformers(w: int, h: int) -> None:
    bh, bw = select_best_resolution((h, w), PINPOINTS_HW)
    assert best_canvas(w, h) == (bw, bh)


@settings(max_examples=300, deadline=None)
@given(w=sizes, h=sizes)
def test_image_tokens_match_independent_vllm_count(w: int, h: int) -> None:
    assert image_tokens(w, h) == vllm_num_image_tokens(w, h)


@settings(max_examples=300, deadline=None)
@given(
    w=st.integers(min_value=1, max_value=400),
    h=st.integers(min_value=1, max_value=400),
)
def test_tokens_near_canvas_edges(w: int, h: int) -> None:
    # Sizes just around 336/672 are where integer vs float rounding would diverge.
    for dw, dh in ((w + 300, h + 300), (w + 600, h + 20), (w * 5, h)):
        assert image_tokens(dw, dh) == vllm_num_image_tokens(dw, dh)
