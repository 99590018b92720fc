"""Reciprocal rank fusion: order of the fused ranking, its scores, and weights per list."""

from __future__ import annotations

import pytest

from minimaxvl_tools.index import rrf


def test_rrf_fuses_rankings() -> None:
    fused = rrf([["a", "b", "c"], ["c", "a", "d"]])
    assert [k for k, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    weighted = rrf([["a", "b"], ["b", "a"]], k=10, weights=[1.0, 0.5])
    assert [k for k, _ in weighted] == ["a", "b"]  # the first list decides a tie of ranks
    assert weighted[0][1] == pytest.approx(1 / 11 + 0.5 / 12)
