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

from typing import TYPE_CHECKING

from .._lazy import lazy_exports, lazy_names

if TYPE_CHECKING:  # pragma: no cover
    from .chunks import Chunk, page_id, split_page
    from .embeddings import OpenAICompatibleEmbeddings, WordLlamaEmbeddings, embeddings_from_env
    from .fusion import rrf
    from .retriever import MiniMaxVLIndexRetriever
    from .store import FORMAT, IndexReport, PageIndex

_WHERE = lazy_names(
    {
        "chunks": ["Chunk", "page_id", "split_page"],
        "embeddings": ["OpenAICompatibleEmbeddings", "WordLlamaEmbeddings", "embeddings_from_env"],
        "retriever": ["MiniMaxVLIndexRetriever"],
        "store": ["FORMAT", "IndexReport", "PageIndex"],
        "fusion": ["rrf"],
    }
)

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

# names load on first use, so ``minimaxvl --help`` (which registers the index commands) stays light
__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals(), __all__)
