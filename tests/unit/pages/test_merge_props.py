"""merge_crops: on pages of known lines, no line is lost or repeated, whatever the cut positions."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from minimaxvl_tools.images.cutting import Region
from minimaxvl_tools.pages import join_tables, merge_crops, merged_text

_SYLLABLES = ["ka", "lo", "mi", "ne", "tu", "ra", "so", "vi", "de", "pu", "gra", "stel", "mon", "tri"]


def _lines(rng: random.Random, n: int) -> list[str]:
    words = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(300)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 10))) for _ in range(n)]


def _partial(rng: random.Random, line: str) -> str:
    """What a reader makes of a line cut through by a crop edge: a garbled fragment, or nothing."""
    if rng.random() < 0.3:
        return ""
    frag = line[: max(3, int(len(line) * rng.uniform(0.2, 0.8)))]
    return "".join(c if rng.random() > 0.3 else rng.choice("il.,'") for c in frag)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    n=st.integers(6, 60),
    columns=st.integers(1, 3),
    data=st.data(),
)
def test_no_line_lost_or_repeated(seed: int, n: int, columns: int, data: st.DataObject) -> None:
    rng = random.Random(seed)
    truth: list[str] = []
    texts: list[str] = []
    regions: list[Region] = []
    for column in range(columns):
        lines = _lines(rng, n)
        truth += lines
        start, low = 0, 1  # first line fully inside the next crop; the least line count it must reach
        partial_top, after_overlap = "", False
        while start < n:
            end = data.draw(st.integers(max(start + 1, low), n), label="crop end")  # lines start..end-1
            straight = end < n and end - start >= 2 and data.draw(st.booleans(), label="straight cut")
            head = [partial_top] if partial_top else []
            regions.append(Region((0, 0, 1, 1), column=column, overlap=after_overlap))
            if straight:
                # a straight cut through line `end`: this crop shows its top part; the next crop starts
                # inside an earlier line (partial), repeats the full lines in between and ends lower
                back = data.draw(st.integers(1, min(3, end - start - 1)), label="shared lines")
                texts.append("\n".join(head + lines[start:end] + [_partial(rng, lines[end])]))
                partial_top = _partial(rng, lines[end - back - 1])
                start, low, after_overlap = end - back, end + 1, True
            else:
                texts.append("\n".join(head + lines[start:end]))
                partial_top, start, low, after_overlap = "", end, end + 1, False
    merged = [ln for ln in merged_text(merge_crops(texts, regions)).splitlines() if ln.strip()]
    assert merged == truth


def test_whitespace_cuts_are_joined_as_they_are() -> None:
    regions = [Region((0, 0, 10, 10)), Region((0, 10, 10, 20)), Region((10, 0, 20, 20), column=1)]
    parts = merge_crops(["a b c\nd e f", "g h i", "right column"], regions)
    assert merged_text(parts) == "a b c\nd e f\ng h i\n\nright column"
    assert [p[0] for p in parts] == ["a b c\nd e f", "g h i", "right column"]


def test_a_table_cut_between_crops_is_one_table() -> None:
    first = "Intro\n\n| name | value |\n|---|---|\n| alpha | 1 |\n| beta | 2 |"
    repeated = "| name | value |\n|---|---|\n| gamma | 3 |\n\nAfter"
    invented = "| gamma | 3 |\n|---|---|\n| delta | 4 |"
    one = "Intro\n\n| name | value |\n|---|---|\n| alpha | 1 |\n| beta | 2 |\n| gamma | 3 |"
    assert join_tables(first, repeated) == one + "\n\nAfter"
    assert join_tables(first, invented) == one + "\n| delta | 4 |"
    assert join_tables("text", "| a |") is None
    regions = [Region((0, 0, 1, 1)), Region((0, 1, 1, 2))]
    assert merged_text(merge_crops([first, repeated], regions)).count("|---|---|") == 1


def test_bad_input_keeps_typed_errors() -> None:
    import pytest
    from PIL import Image

    from minimaxvl_tools.errors import AspectRatioError, InvalidInputError
    from minimaxvl_tools.pages import plan_page, plan_page_image

    with pytest.raises(InvalidInputError, match="one text per region"):
        merge_crops(["a"], [])
    with pytest.raises(AspectRatioError):  # one image of a strip beyond 6:1 cannot be sent
        plan_page(200, 5000, tile=False)
    assert plan_page_image(Image.new("L", (200, 5000), 255)).requests > 1  # as pieces it can
