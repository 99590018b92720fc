"""merge_overlapping / join_overlap: crop transcriptions are merged without duplicating the overlap."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from minimaxvl_tools.pages import clean_transcription, join_overlap, merge_overlapping

LINES = [f"Line {i:02d}: the quick brown fox {i * 7} jumps over lazy dog number {i}" for i in range(40)]


def _text(a: int, b: int) -> str:
    return "\n".join(LINES[a:b])


def test_exact_overlap_is_kept_once() -> None:
    merged = join_overlap(_text(0, 12), _text(9, 20))
    assert merged == _text(0, 20)


def test_no_overlap_concatenates() -> None:
    assert join_overlap(_text(0, 5), _text(5, 10)) == _text(0, 10)


def test_fuzzy_overlap_with_ocr_noise() -> None:
    second = _text(9, 20).replace("quick", "qu1ck", 2).replace("lazy", "1azy", 1)
    merged = join_overlap(_text(0, 12), second)
    assert merged.count("Line 10:") == 1 and merged.count("Line 11:") == 1
    assert merged.splitlines()[:12] == LINES[:12]
    assert merged.splitlines()[-1] == LINES[19]


def test_garbled_edge_lines_are_skipped() -> None:
    # the last line of the top crop and the first of the bottom crop were cut through by the crop edge
    first = _text(0, 12) + "\nLi~e 12: tbe qu"
    second = "ne 09 wn fox 63\n" + _text(10, 20)
    merged = join_overlap(first, second)
    assert merged == _text(0, 20)


def test_blank_lines_do_not_break_matching() -> None:
    first = "# Title\n\n" + _text(0, 6) + "\n\n" + _text(6, 8)
    second = _text(6, 8) + "\n\n" + _text(8, 12)
    merged = join_overlap(first, second)
    assert merged.count("Line 06:") == 1 and merged.count("Line 07:") == 1
    assert "Line 11:" in merged


def test_weak_lines_alone_are_not_an_overlap() -> None:
    # a table rule line is common to both but is no evidence of overlap
    first = "| a | b |\n|---|---|"
    second = "|---|---|\n| c | d |"
    assert join_overlap(first, second).count("|---|---|") == 2


def test_empty_sides() -> None:
    assert join_overlap("", "abc") == "abc"
    assert join_overlap("abc\n", "  \n") == "abc"


def test_merge_grid_rows_then_columns() -> None:
    # 2 rows x 1 column of strips plus a third row; given out of order
    items = [
        (_text(18, 30), (0, 1800, 1000, 2800)),
        (_text(0, 12), (0, 0, 1000, 1000)),
        (_text(10, 20), (0, 900, 1000, 1900)),
    ]
    assert merge_overlapping(items) == _text(0, 30)


def test_merge_row_of_two_columns_left_then_right() -> None:
    items = [(_text(5, 10), (900, 0, 1900, 1000)), (_text(0, 5), (0, 10, 1000, 1010))]
    assert merge_overlapping(items) == _text(0, 10)


def test_clean_transcription_strips_fence_and_blank_marker() -> None:
    assert clean_transcription("```markdown\n# A\ntext\n```") == "# A\ntext"
    assert clean_transcription("[blank page]") == ""
    assert clean_transcription("  plain  ") == "plain"


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=3, max_value=6),
    overlap=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_property_strips_merge_to_the_original(n: int, overlap: int, seed: int) -> None:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "total", "invoice", "2024", "€ 13.50", "page", "report"]
    lines = [f"{i} " + " ".join(rng.choice(words) for _ in range(rng.randint(2, 6))) for i in range(60)]
    step = len(lines) // n
    items = []
    for k in range(n):
        a = max(0, k * step - overlap)
        b = len(lines) if k == n - 1 else (k + 1) * step
        items.append(("\n".join(lines[a:b]), (0, k * 500, 1000, k * 500 + 540)))
    assert merge_overlapping(items) == "\n".join(lines)
