"""Persistent hybrid index of document pages (BM25 + dense, fused), embedded or on a Chroma server.

Why Chroma: it is the one candidate whose embedded store (``PersistentClient``) and server
(``chroma run``, shipped in the same wheel) answer the same API, so one code path serves a laptop and a
shared deployment; measured on this project's 2-core CI machine with 20,000 vectors of 256 dimensions
(``python -m benchmarks.rag --stores``, figures in ``benchmarks/results/rag_stores.txt``), its HNSW query is a
few milliseconds. LanceDB adds and full-text-searches fast but has no open-source server; Qdrant's local
mode is a Python re-implementation without the server's index (brute force) and its server is a separate
binary not on PyPI. Lexical search is bm25s (a maintained BM25 library) because Chroma has no BM25.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .chunks import Chunk, page_id, split_page
    from .embeddings import OpenAICompatibleEmbeddings, WordLlamaEmbeddings, embeddings_from_env
    from .retriever import MiniMaxVLIndexRetriever
    from .store import FORMAT, IndexReport, PageIndex, rrf

_WHERE = {
    "Chunk": "chunks",
    "page_id": "chunks",
    "split_page": "chunks",
    "OpenAICompatibleEmbeddings": "embeddings",
    "WordLlamaEmbeddings": "embeddings",
    "embeddings_from_env": "embeddings",
    "MiniMaxVLIndexRetriever": "retriever",
    "FORMAT": "store",
    "IndexReport": "store",
    "PageIndex": "store",
    "rrf": "store",
}


def __getattr__(name: str) -> Any:
    """Names load on first use, so ``minimaxvl --help`` (which registers the index commands) stays light."""
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMAT",
    "Chunk",
    "IndexReport",
    "MiniMaxVLIndexRetriever",
    "OpenAICompatibleEmbeddings",
    "PageIndex",
    "WordLlamaEmbeddings",
    "embeddings_from_env",
    "page_id",
    "rrf",
    "split_page",
]
