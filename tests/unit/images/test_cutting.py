"""The whitespace cutter: no crop cuts a known text line (one/two columns, skew, figures, noise, borders)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.images.cutting import Region, cut_regions, find_layout, region_image
from minimaxvl_tools.pages import cut_page, plan_page_image
from tests.synthpages import Page, make_page


def _line_owners(page: Page, regions: list[Region]) -> list[list[tuple[int, bool]]]:
    """Per known line: the regions holding some of its ink, and whether they hold all of it."""
    n = len(page.lines)
    total = np.bincount(np.asarray(page.labels).ravel(), minlength=n + 2)
    owners: list[list[tuple[int, bool]]] = [[] for _ in range(n)]
    for i, r in enumerate(regions):
        counts = np.bincount(np.asarray(region_image(page.labels, r, fill=0)).ravel(), minlength=n + 2)
        for k in np.flatnonzero(counts[1 : n + 1]):
            owners[k].append((i, bool(counts[k + 1] == total[k + 1])))
    return owners


def _assert_no_line_cut(page: Page, regions: list[Region]) -> None:
    for k, own in enumerate(_line_owners(page, regions)):
        assert own, f"line {k} ({page.lines[k][:30]!r}) is in no crop"
        whole = [i for i, w in own if w]
        assert whole, f"line {k} ({page.lines[k][:30]!r}) is cut: parts in crops {own}"
        if len(own) > 1:  # only an overlapping straight cut may show a line twice
            assert all(regions[i].overlap or regions[min(i + 1, len(regions) - 1)].overlap for i, _ in own)


CASES = {
    "one column": {},
    "two columns": {"columns": 2},
    "skewed +0.5": {"skew": 0.5},
    "skewed two columns -0.4": {"skew": -0.4, "columns": 2},
    "with a figure": {"figure": True},
    "noise and scan border": {"noise": 0.002, "border": True, "skew": 0.3},
    "title over two columns": {"columns": 2, "title": "Cutting in whitespace"},
    "three columns": {"columns": 3, "width": 1500, "font_px": 18},
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("limit", [260, 410])
def test_cutter_never_cuts_a_known_line(name: str, limit: int) -> None:
    page = make_page(seed=len(name) + limit, **CASES[name])
    layout = find_layout(page.image, x_height=12)
    regions = cut_regions(layout, limit, line=33)
    assert all(r.height <= limit for r in regions)
    _assert_no_line_cut(page, regions)
    columns = CASES[name].get("columns", 1)
    assert layout.columns == columns
    if not CASES[name].get("figure"):
        assert not any(r.overlap for r in regions)  # whitespace everywhere: no overlap needed
    # reading order: within a band, every crop of column c comes before any of column c + 1
    for a, b in itertools.pairwise(regions):
        assert (a.band, a.column) <= (b.band, b.column)


def test_figure_taller_than_a_crop_falls_back_to_overlap() -> None:
    page = make_page(figure=True, height=2000, seed=3)
    regions = cut_regions(find_layout(page.image, x_height=12), 300, line=33)
    assert any(r.overlap for r in regions)
    _assert_no_line_cut(page, regions)


def test_blank_and_degenerate_pages_lay_out() -> None:
    blank = find_layout(Image.new("L", (300, 200), 255))
    assert blank.content is None and len(blank.bands) == 1
    with pytest.raises(InvalidInputError, match="PIL"):
        find_layout("page.png")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="max_height"):
        cut_regions(blank, 4)


@pytest.mark.parametrize("size", [(300, 200), (200, 5000), (5000, 200), (2550, 3300)])
def test_pages_without_text_or_of_extreme_aspect_still_plan(size: tuple[int, int]) -> None:
    plan = plan_page_image(Image.new("RGB", size, "white"))
    assert plan.tokens > 0 and plan.requests >= 1
    figure = Image.effect_noise(size, 60).convert("RGB")  # only a "photo"
    plan = plan_page_image(figure)
    assert plan.tokens > 0 and plan.requests >= 1
    if plan.mode == "tiles":
        assert len(cut_page(figure, plan)) == plan.requests


def test_fine_print_is_planned_in_whitespace_and_cut_crops_match_tiles() -> None:
    page = make_page(2550, 3300, font_px=30, columns=2, skew=0.4, seed=5)
    plan = plan_page_image(page.image, min_x_height=12.0)
    assert plan.mode == "tiles" and plan.cut == "whitespace" and plan.regions
    assert plan.legibility_gain is not None and plan.legibility_gain > 1.2
    crops = cut_page(page.image, plan)
    assert [img.size for img, _ in crops] == [t.size for t in plan.tiles.tiles]  # type: ignore[union-attr]
    assert sum(t.tokens for _, t in crops) == plan.tokens
    _assert_no_line_cut(page, list(plan.regions))
    big = plan_page_image(page.image, min_x_height=4.0)  # legible as one image: no crops
    assert big.mode == "single" and big.legibility_gain == 1.0
