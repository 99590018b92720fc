"""Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009) of the lexical and dense rankings.

score = sum over rankings of w/(k + rank); the hybrid search uses k = :data:`HYBRID_K` and dense weight
:data:`DENSE_WEIGHT` (WordLlama's static embeddings rank worse than BM25), chosen on a tuning question set
disjoint from the benchmark's (docs/index.md).
"""

from __future__ import annotations

from collections.abc import Sequence

RRF_K = 60  # the paper's constant, the default of :func:`rrf`
HYBRID_K = 10
DENSE_WEIGHT = 0.5
CANDIDATES = 40  # each ranking's depth before fusion (at least 4 x the results asked for)


def rrf(
    rankings: Sequence[Sequence[str]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of ranked id lists: ids by descending sum of weight/(k + rank), rank from 1."""
    scores: dict[str, float] = {}
    for n, ranking in enumerate(rankings):
        w = 1.0 if weights is None else weights[n]
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + w / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def hybrid(lexical: Sequence[str], dense: Sequence[str]) -> list[tuple[str, float]]:
    """The hybrid search's fusion: BM25 at weight 1, dense at :data:`DENSE_WEIGHT`, k = :data:`HYBRID_K`."""
    return rrf([lexical, dense], k=HYBRID_K, weights=[1.0, DENSE_WEIGHT])


__all__ = ["CANDIDATES", "DENSE_WEIGHT", "HYBRID_K", "RRF_K", "hybrid", "rrf"]
