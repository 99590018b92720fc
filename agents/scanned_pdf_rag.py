"""Scanned-PDF RAG: loader -> splitter -> BM25 -> DocumentVQA over the retrieved pages -> cited answer.

Runs fully offline by default: when no MiniMax-VL-01 endpoint answers (``MINIMAXVL_BASE_URL``), pages are
read by the local Tesseract engine and the answer is the best-matching sentence of the retrieved chunks,
with its page. With an endpoint, pages are OCR'd by MiniMax-VL-01 and the question is answered by
:class:`~minimaxvl_tools.DocumentVQATool` over the retrieved *page images*, so the model reads the page
itself rather than our OCR of it. Either way the answer says which engine produced it.

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

from minimaxvl_tools import MiniMaxVLClient, MiniMaxVLDocumentLoader
from minimaxvl_tools.tools.docvqa import keywords

DEFAULT_DOC = Path(__file__).resolve().parent.parent / "samples" / "scanned_report.pdf"


class BM25Retriever(BaseRetriever):
    """Offline lexical retriever over chunks (rank-bm25; no embedding model, no hub download)."""

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

    def render(self) -> str:
        """Human-readable answer with page citations."""
        cites = ", ".join(f"{Path(c['source']).name} p.{c['page']}" for c in self.citations) or "no citation"
        return f"Q: {self.question}\nA: {self.answer}\n   [{cites}] (engine: {self.engine})"


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


def best_sentence(question: str, chunks: Sequence[Document]) -> tuple[str, Document | None]:
    """Extractive answer: the line of the retrieved chunks sharing most content words with the question."""
    q = keywords(question)
    best, best_doc, best_score = "", None, 0.0
    for d in chunks:
        for line in d.page_content.splitlines():
            words = keywords(line)
            score = len(q & words) + 0.5 * sum(ch.isdigit() for ch in line) / max(1, len(line))
            if score > best_score:
                best, best_doc, best_score = line.strip(), d, score
    return best, best_doc


def run(
    question: str,
    paths: Sequence[str | Path] = (DEFAULT_DOC,),
    *,
    mode: str = "auto",
    client: MiniMaxVLClient | None = None,
    k: int = 3,
    cache_dir: str | Path = ".minimaxvl-cache",
    detect_rotation: bool = True,
) -> RAGAnswer:
    """Answer ``question`` over ``paths``; ``mode`` 'auto' uses the endpoint when it is up, else offline.

    ``detect_rotation=False`` skips the per-page orientation check (Tesseract only on suspect pages) for
    documents known to be scanned upright.
    """
    client = client or MiniMaxVLClient()
    online = mode == "vlm" or (mode == "auto" and endpoint_up(client))
    loader = MiniMaxVLDocumentLoader(
        [str(p) for p in paths],
        mode="vlm" if online else "local",
        client=client,
        cache_dir=Path(cache_dir) / "pages",
        detect_rotation=detect_rotation,
    )
    pages = list(loader.lazy_load())
    chunks = split_pages(pages)
    hits = BM25Retriever.from_documents(chunks, k=k).invoke(question)
    if not hits:
        return RAGAnswer(
            question,
            "No relevant passage found.",
            engine=str(pages[0].metadata.get("engine") if pages else ""),
            pages_indexed=len(pages),
        )
    if online:
        from minimaxvl_tools import DocumentVQATool

        src = hits[0].metadata["source"]
        cand = sorted({d.metadata["page_number"] for d in hits if d.metadata["source"] == src})
        tool = DocumentVQATool(client=client, allowed_roots=[Path(src).resolve().parent])
        msg = tool.invoke(
            {
                "type": "tool_call",
                "id": "rag",
                "name": tool.name,
                "args": {"question": question, "source": src, "pages": ",".join(map(str, cand))},
            }
        )
        ans = msg.artifact
        return RAGAnswer(
            question,
            ans.answer,
            [{"source": src, "page": p} for p in ans.pages],
            engine=f"MiniMax-VL-01 DocumentVQA ({client.settings.model})",
            evidence=ans.evidence,
            pages_indexed=len(pages),
        )
    line, doc = best_sentence(question, hits)
    cites = [{"source": doc.metadata["source"], "page": doc.metadata["page_number"]}] if doc else []
    engine = f"offline: {doc.metadata.get('engine') if doc else 'local OCR'} + BM25 extractive answer"
    return RAGAnswer(
        question, line or "No answer found.", cites, engine=engine, evidence=line, pages_indexed=len(pages)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: answer one question over PDFs/images and print it with citations."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=[str(DEFAULT_DOC)], help="PDFs/images/folders")
    ap.add_argument("-q", "--question", default="What is the total due on the invoice?")
    ap.add_argument("--mode", choices=["auto", "vlm", "local"], default="auto")
    ap.add_argument("-k", type=int, default=3, help="chunks retrieved")
    ap.add_argument("--json", action="store_true", help="print JSON")
    a = ap.parse_args(argv)
    res = run(a.question, a.paths, mode=a.mode, k=a.k)
    print(json.dumps(asdict(res), indent=1) if a.json else res.render())
    return 0 if res.citations else 1


if __name__ == "__main__":
    sys.exit(main())
