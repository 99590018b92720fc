"""Scanned-PDF RAG on the persistent index: loader -> PageIndex (BM25 + dense) -> DocumentVQA -> cited answer.

Pages are read once: the first run indexes them into a store (default ``.minimaxvl-cache/index``); a later
run over the same folder finds every file unchanged and answers without re-reading or re-indexing a page.
Runs fully offline by default: when no MiniMax-VL-01 endpoint answers (``MINIMAXVL_BASE_URL``), pages are
read by the local Tesseract engine and the answer is the best-matching line of the retrieved chunks, with
its page. With an endpoint, pages are OCR'd by MiniMax-VL-01 and the question is answered by
:class:`~minimaxvl_tools.DocumentVQATool` over the retrieved *page images* (cropped to the retrieved
region when the page carries block boxes and the crop costs fewer tokens). Either way the answer says which
engine produced it.

    python -m agents.scanned_pdf_rag samples/scanned_report.pdf -q "What is the total due on the invoice?"
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from minimaxvl_tools import MiniMaxVLClient
from minimaxvl_tools.tools.docvqa import keywords

DEFAULT_DOC = Path(__file__).resolve().parent.parent / "samples" / "scanned_report.pdf"


class BM25Retriever(BaseRetriever):
    """In-memory lexical retriever over chunks (rank-bm25), for Documents that are not worth an index;
    :func:`run` uses the persistent :class:`~minimaxvl_tools.index.PageIndex`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    docs: list[Document]
    k: int = 3
    index: Any = None

    @classmethod
    def from_documents(cls, docs: Sequence[Document], k: int = 3) -> BM25Retriever:
        """Index ``docs`` (tokenised as lower-case content words)."""
        from rank_bm25 import BM25Okapi

        docs = [d for d in docs if d.page_content.strip()]
        corpus = [sorted(keywords(d.page_content)) or ["_"] for d in docs]
        return cls(docs=list(docs), k=k, index=BM25Okapi(corpus) if docs else None)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.index is None:
            return []
        q = keywords(query)
        scores = self.index.get_scores(sorted(q))
        # Okapi IDF is 0 (or negative) for a word found in half the chunks or more, so on a small corpus
        # (two pages) a matching chunk can score 0: keep every chunk sharing a content word, BM25 first
        overlap = [len(q & keywords(d.page_content)) for d in self.docs]
        ranked = sorted(range(len(self.docs)), key=lambda i: (-scores[i], -overlap[i], i))
        return [self.docs[i] for i in ranked if overlap[i] > 0][: self.k]


@dataclass
class RAGAnswer:
    """What the pipeline answers: the answer, where it came from, and which engine produced it."""

    question: str
    answer: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    engine: str = ""
    evidence: str = ""
    pages_indexed: int = 0
    pages_read: int = 0

    def render(self) -> str:
        """Human-readable answer with page (and region) citations."""
        cites = []
        for c in self.citations:
            box = f" box {[round(v) for v in c['box']]}" if c.get("box") else ""
            cites.append(f"{Path(c['source']).name} p.{c['page']}{box}")
        shown = ", ".join(cites) or "no citation"
        return f"Q: {self.question}\nA: {self.answer}\n   [{shown}] (engine: {self.engine})"


def endpoint_up(client: MiniMaxVLClient) -> bool:
    """True when a MiniMax-VL-01 endpoint answers /health and serves the configured model."""
    try:
        h = client.health()
    except Exception:  # any failure means: run offline
        return False
    return bool(h.ok and h.model_served)


def split_pages(docs: Sequence[Document], chunk_size: int = 600, overlap: int = 80) -> list[Document]:
    """Split page Documents into chunks that keep their page metadata."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=overlap)
    return splitter.split_documents([d for d in docs if d.page_content.strip()])


def _cites(citations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Citations as {source, page} plus ``box`` only where a region is known."""
    return [
        {"source": c["source"], "page": c["page"], **({"box": c["box"]} if c.get("box") else {})}
        for c in citations
    ]


def run(
    question: str,
    paths: Sequence[str | Path] = (DEFAULT_DOC,),
    *,
    mode: str = "auto",
    client: MiniMaxVLClient | None = None,
    k: int = 3,
    cache_dir: str | Path = ".minimaxvl-cache",
    detect_rotation: bool = True,
    store: str | Path | None = None,
) -> RAGAnswer:
    """Answer ``question`` over ``paths``; ``mode`` 'auto' uses the endpoint when it is up, else offline.

    The index lives in ``store`` (default ``cache_dir/index``; a folder or ``http://host:port`` of a
    Chroma server) and the loader's page cache in ``cache_dir/pages``. ``detect_rotation=False`` skips
    the per-page orientation check (Tesseract, about a second a page) for documents known to be upright.
    """
    from minimaxvl_tools.index import PageIndex
    from minimaxvl_tools.index.answer import ask

    client = client or MiniMaxVLClient()
    online = mode == "vlm" or (mode == "auto" and endpoint_up(client))
    index = PageIndex(store or Path(cache_dir) / "index")
    report = index.index(
        [str(p) for p in paths],
        mode="vlm" if online else "local",
        client=client,
        cache_dir=Path(cache_dir) / "pages",
        detect_rotation=detect_rotation,
    )
    wanted = {str(Path(p).resolve()) for p in paths}
    counts = index.sources()
    indexed = sum(
        n for src, n in counts.items() if src in wanted or any(src.startswith(w + "/") for w in wanted)
    )
    res = ask(index, question, client=client, k=k, online=online)
    engine = res.engine
    if not online:
        engine = f"offline: {_page_engine(index, res.citations)} + hybrid index extractive answer"
    return RAGAnswer(
        question,
        res.answer,
        _cites(res.citations),
        engine=engine,
        evidence=res.evidence,
        pages_indexed=indexed,
        pages_read=report.pages_indexed + report.pages_unchanged,
    )


def _page_engine(index: Any, citations: Sequence[dict[str, Any]]) -> str:
    """The engine that read the cited page (from the index manifest), e.g. ``tesseract 5.3.0``."""
    from minimaxvl_tools.index import page_id

    manifest = index.manifest()
    for c in citations:
        rec = manifest.get(page_id(c["source"], int(c["page"])))
        if rec and rec.get("engine"):
            return str(rec["engine"])
    return "local OCR"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: answer one question over PDFs/images and print it with citations."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=[str(DEFAULT_DOC)], help="PDFs/images/folders")
    ap.add_argument("-q", "--question", default="What is the total due on the invoice?")
    ap.add_argument("--mode", choices=["auto", "vlm", "local"], default="auto")
    ap.add_argument("-k", type=int, default=3, help="chunks retrieved")
    ap.add_argument("--store", help="index folder or http://host:port (default: .minimaxvl-cache/index)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    a = ap.parse_args(argv)
    res = run(a.question, a.paths, mode=a.mode, k=a.k, store=a.store)
    print(json.dumps(asdict(res), indent=1) if a.json else res.render())
    return 0 if res.citations else 1


if __name__ == "__main__":
    sys.exit(main())
