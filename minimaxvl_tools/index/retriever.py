"""MiniMaxVLIndexRetriever: a LangChain ``BaseRetriever`` over a :class:`~minimaxvl_tools.index.PageIndex`."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from .store import Method, PageIndex


class MiniMaxVLIndexRetriever(BaseRetriever):
    """Hybrid (BM25 + dense, RRF) retrieval over a page index; ``k`` at construction or per ``invoke``.

    Each Document's metadata carries ``source``, ``page`` and ``box`` (the chunk's region in page pixels,
    or None), so answers can cite where they come from.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    store: str = Field(description="Index folder, or http://host:port of a Chroma server.")
    k: int = Field(4, ge=1, description="Chunks returned.")
    method: Method = Field("hybrid", description="'hybrid', 'lexical' or 'dense'.")
    index: PageIndex | None = Field(None, exclude=True, description="An open index (else opened lazily).")
    _index: PageIndex | None = PrivateAttr(None)

    def _open(self) -> PageIndex:
        if self.index is not None:
            return self.index
        if self._index is None:
            self._index = PageIndex(self.store, create=False)
        return self._index

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, **_: Any
    ) -> list[Document]:
        return self._open().search(query, k=k or self.k, method=self.method)


__all__ = ["MiniMaxVLIndexRetriever"]
