"""PageIndex: a persistent hybrid (BM25 + dense) index of document pages, embedded or on a Chroma server.

Layout (two Chroma collections): ``minimaxvl_chunks`` holds each chunk's text, vector and where it
sits (source, page, box, the page's hash); ``minimaxvl_pages`` is the manifest, one record per committed
page (its file digest, content hash, settings, chunk count) plus one ``__meta__`` record (format,
embedder, revision). A page counts as indexed only when its manifest record exists and carries the same
hash as its chunks, so:

- re-indexing skips files whose digest and settings match and whose pages are all committed, and
  re-embeds only pages whose text (or settings) changed; pages and files that are gone are removed;
- pages are committed in batches in the order manifest-delete, chunk-delete, chunk-add, manifest-add: a
  crash anywhere leaves the pages of the batch un-committed (search ignores their chunks; the next run
  redoes them), never a page whose chunks and manifest disagree;
- writers take a file lock (beside the store, or per server URL in the temp folder), so two writers run
  one after the other;
- a path that holds something else, or a store that does not open, raises
  :class:`~minimaxvl_tools.errors.IndexStoreError` naming it; nothing is rebuilt silently.

Lexical search is bm25s over the committed chunks, cached on disk beside an embedded store (keyed by the
store's revision) and in memory for a server store; dense search is Chroma's HNSW (cosine); hybrid fuses
the two top-40 rankings by weighted reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009:
score = sum w/(k + rank)), k = 10 and dense weight 0.5 (WordLlama's static embeddings rank worse than
BM25), chosen on a tuning question set disjoint from the benchmark's (docs/index.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from ..errors import InvalidInputError
from . import manifest as mf
from .backend import FORMAT, connect, is_url, open_collections, writer_lock
from .chunks import Chunk, page_id, page_number, split_page
from .embeddings import embedder_name, embeddings_from_env
from .fusion import CANDIDATES, hybrid, rrf
from .lexical import LexicalIndex
from .manifest import PageRecord

if TYPE_CHECKING:  # pragma: no cover
    from ..client import MiniMaxVLClient
    from ..loaders import LoaderMode

Method = Literal["hybrid", "lexical", "dense"]


@dataclass
class IndexReport:
    """What one :meth:`PageIndex.index` run did, page by page."""

    files: int = 0
    pages_indexed: int = 0
    pages_unchanged: int = 0
    pages_skipped: int = 0
    pages_failed: int = 0
    pages_removed: int = 0
    files_removed: int = 0
    chunks_added: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        return (
            f"{self.files} file(s): {self.pages_indexed} page(s) indexed, {self.pages_skipped} skipped "
            f"(unchanged file), {self.pages_unchanged} unchanged text, {self.pages_failed} failed, "
            f"{self.pages_removed} removed ({self.files_removed} file(s) gone); {self.chunks_added} chunks "
            f"in {self.seconds:.1f} s"
        )


class PageIndex:
    """A persistent hybrid index of pages: ``store`` is a folder (embedded Chroma) or ``http://host:port``
    (a ``chroma run`` server); the same code serves both.

    ``create=False`` (search/ask) refuses a store that does not exist yet instead of making an empty one.
    """

    def __init__(
        self,
        store: str | os.PathLike[str],
        *,
        embeddings: Embeddings | None = None,
        chunk_size: int = 800,
        chunk_overlap: int = 100,
        create: bool = True,
        lock_timeout: float = 600.0,
        batch_pages: int = 64,
    ) -> None:
        if chunk_size < 50 or not 0 <= chunk_overlap < chunk_size:
            raise InvalidInputError(
                f"chunk_size={chunk_size}, chunk_overlap={chunk_overlap}: need chunk_size >= 50 and "
                "0 <= chunk_overlap < chunk_size"
            )
        self.store = str(store)
        self.is_server = is_url(store)
        self.embeddings = embeddings or embeddings_from_env()
        self.embedder = embedder_name(self.embeddings)
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.lock_timeout = lock_timeout
        self.batch_pages = max(1, batch_pages)
        self._client = connect(self.store, create=create)
        self._collections = open_collections(self._client, self.store, self.embedder, create=create)
        self._chunks, self._pages = self._collections.chunks, self._collections.pages
        bm25_dir = None if self.is_server else Path(self.store) / "minimaxvl-bm25"
        self._bm25 = LexicalIndex(bm25_dir, self.revision, self._committed_chunks)
        self._committed: tuple[str, dict[str, str]] | None = None

    def __repr__(self) -> str:
        return f"PageIndex(store={self.store!r}, embedder={self.embedder!r})"

    # ------------------------------------------------------------------ state
    def revision(self) -> str:
        """The store's revision: changes whenever a writer starts or finishes a run."""
        return mf.revision(self._pages)

    def manifest(self) -> dict[str, PageRecord]:
        """Every committed page: page id -> its record (source, page, file digest, hash, settings, chunks)."""
        return mf.records(self._pages)

    def sources(self) -> dict[str, int]:
        """Indexed files and their committed page counts."""
        out: dict[str, int] = {}
        for m in self.manifest().values():
            out[m["source"]] = out.get(m["source"], 0) + 1
        return out

    def _committed_hashes(self) -> dict[str, str]:
        rev = self.revision()
        if self._committed is None or self._committed[0] != rev:
            self._committed = (rev, {i: m.get("page_hash", "") for i, m in self.manifest().items()})
        return self._committed[1]

    @property
    def settings_key(self) -> str:
        """What, besides a page's text, decides its chunks and vectors."""
        return f"{self.embedder}|{self.chunk_size}|{self.chunk_overlap}"

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """The writers' lock: one :meth:`index` at a time per store (a file lock)."""
        return writer_lock(self.store, self.lock_timeout)

    # ------------------------------------------------------------------ writing
    def _commit(self, batch: list[tuple[PageRecord, list[Chunk]]]) -> int:
        """Embed and write a batch of pages in the crash-safe order (see the module docstring)."""
        texts = [c.text for _, cs in batch for c in cs]
        return mf.commit(self._collections, batch, self.embeddings.embed_documents(texts) if texts else [])

    def remove(self, source: str | os.PathLike[str]) -> int:
        """Remove every page of ``source`` (a path as indexed); returns the pages removed."""
        src = str(Path(source).resolve()) if not self.is_server else str(source)
        with self.lock():
            pids = [i for i, m in self.manifest().items() if m.get("source") in (src, str(source))]
            mf.remove_pages(self._collections, pids)
            mf.new_revision(self._pages)
        return len(pids)

    @contextlib.contextmanager
    def _writing(self, report: IndexReport) -> Iterator[None]:
        """A write run: under the lock, a fresh revision before and after, timed into ``report``; the
        lexical index is rebuilt after it."""
        t0 = time.perf_counter()
        with self.lock():
            mf.new_revision(self._pages)
            yield
            mf.new_revision(self._pages)
        report.seconds += time.perf_counter() - t0
        self._bm25.refresh()

    def add_documents(
        self,
        docs: Iterable[Document],
        *,
        report: IndexReport | None = None,
        digests: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        on_page: Callable[[Document], None] | None = None,
    ) -> IndexReport:
        """Index page Documents (from the loader, or any loader giving ``source`` and ``page``).

        A page whose text, blocks and settings hash matches its committed record is not re-embedded.
        Failed pages (``metadata['status'] == 'failed'``) are reported and left un-committed.
        """
        report = report or IndexReport()
        with self._writing(report):
            report.pages_indexed += self._add_locked(docs, report, digests or {}, extra or {}, on_page)
        return report

    def _add_locked(
        self,
        docs: Iterable[Document],
        report: IndexReport,
        digests: Mapping[str, str],
        extra: Mapping[str, Any],
        on_page: Callable[[Document], None] | None,
    ) -> int:
        existing = self.manifest()
        batch: list[tuple[PageRecord, list[Chunk]]] = []
        done = 0
        seen_pages: dict[str, set[int]] = {}
        for doc in docs:
            m = doc.metadata
            src, page = str(m.get("source", "")), page_number(m)
            if m.get("status") == "failed" or page is None:
                report.pages_failed += 1
                report.errors.append(f"{src} p.{page}: {m.get('error')}")
                continue
            page = int(page)
            pid = page_id(src, page)
            seen_pages.setdefault(src, set()).add(page)
            h = mf.page_hash(doc, self.settings_key)
            rec = PageRecord(
                kind="page",
                page_id=pid,
                source=src,
                page=page,
                page_count=int(m.get("total_pages") or m.get("page_count") or 0),
                file_digest=digests.get(src, ""),
                page_hash=h,
                settings=self.settings_key,
                engine=str(m.get("engine") or ""),
            )
            rec.update(mf.scalars(extra))  # type: ignore[typeddict-item]
            old = existing.get(pid)
            if old is not None and old.get("page_hash") == h:
                report.pages_unchanged += 1
                if old.get("file_digest") != rec["file_digest"]:
                    self._pages.update(ids=[pid], metadatas=[{**old, "file_digest": rec["file_digest"]}])
                continue
            chunks = split_page(doc, chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap)
            for c in chunks:
                c.metadata.update(engine=rec["engine"], dpi=int(m.get("dpi") or extra.get("dpi") or 200))
            rec["chunks"] = len(chunks)
            batch.append((rec, chunks))
            done += 1
            if on_page is not None:
                on_page(doc)
            if len(batch) >= self.batch_pages:
                report.chunks_added += self._commit(batch)
                batch = []
        report.chunks_added += self._commit(batch)
        stale = mf.stale_pages(existing, seen_pages)  # pages past a file's new end (the file shrank)
        mf.remove_pages(self._collections, stale)
        report.pages_removed += len(stale)
        return done

    def index(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        mode: LoaderMode = "auto",
        client: MiniMaxVLClient | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        on_page: Callable[[Document], None] | None = None,
        **loader_kwargs: Any,
    ) -> IndexReport:
        """Index files and folders through :class:`~minimaxvl_tools.MiniMaxVLDocumentLoader` (any mode).

        Files whose digest and settings match, with every page committed, are not read at all; files
        gone from a given folder are removed from the index.
        """
        from ..loaders import MiniMaxVLDocumentLoader

        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        roots = [Path(p).resolve() for p in paths]
        kw: dict[str, Any] = {"mode": mode, "client": client, **loader_kwargs}
        if cache_dir is not None:
            kw["cache_dir"] = cache_dir
        files = [f.resolve() for f in MiniMaxVLDocumentLoader(roots, **kw).files()]
        report = IndexReport(files=len(files))
        settings = f"{self.settings_key}|{mode}|{loader_kwargs.get('dpi', 200)}"
        with self._writing(report):
            plan = mf.plan_files(files, self.manifest(), settings, roots)
            report.pages_skipped += plan.skipped_pages
            for recs in plan.gone.values():
                mf.remove_pages(self._collections, [r["page_id"] for r in recs])
                report.pages_removed += len(recs)
            report.files_removed = len(plan.gone)
            if plan.todo:
                report.pages_indexed += self._add_locked(
                    MiniMaxVLDocumentLoader(plan.todo, **kw).lazy_load(),
                    report,
                    plan.digests,
                    {"mode_settings": settings, "dpi": int(loader_kwargs.get("dpi", 200))},
                    on_page,
                )
        return report

    # ------------------------------------------------------------------ search
    def _committed_chunks(self) -> tuple[list[str], list[str]]:
        """Ids and texts of the chunks of committed pages (what lexical search indexes)."""
        committed = self._committed_hashes()
        got = self._chunks.get(include=["documents", "metadatas"])
        ids, texts = [], []
        for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
            if committed.get(str(meta.get("page_id"))) == meta.get("page_hash"):
                ids.append(cid)
                texts.append(text or "")
        return ids, texts

    def _lexical_ranking(self, query: str, n: int) -> list[str]:
        return self._bm25.ranking(query, n)

    def _dense_ranking(self, query: str, n: int) -> list[str]:
        total = self._chunks.count()
        if not total:
            return []
        vec = self.embeddings.embed_query(query)
        got = self._chunks.query(query_embeddings=[vec], n_results=min(n, total), include=["metadatas"])
        committed = self._committed_hashes()
        return [
            cid
            for cid, meta in zip(got["ids"][0], got["metadatas"][0], strict=True)
            if committed.get(str(meta.get("page_id"))) == meta.get("page_hash")
        ]

    def search(self, query: str, k: int = 5, method: Method = "hybrid") -> list[Document]:
        """The ``k`` best chunks for ``query`` as Documents (metadata: source, page, box, score, method)."""
        if not query or not query.strip():
            raise InvalidInputError("the query is empty: search for some words")
        if k < 1:
            raise InvalidInputError(f"k={k}: ask for at least one result")
        if method not in ("hybrid", "lexical", "dense"):
            raise InvalidInputError(f"method {method!r} is not one of 'hybrid', 'lexical', 'dense'")
        n = max(4 * k, CANDIDATES)
        lexical = self._lexical_ranking(query, n) if method != "dense" else []
        dense = self._dense_ranking(query, n) if method != "lexical" else []
        top = hybrid(lexical, dense)[:k]
        if not top:
            return []
        lex_rank = {cid: r for r, cid in enumerate(lexical, 1)}
        dense_rank = {cid: r for r, cid in enumerate(dense, 1)}
        got = self._chunks.get(ids=[i for i, _ in top], include=["documents", "metadatas"])
        by_id = dict(zip(got["ids"], zip(got["documents"], got["metadatas"], strict=True), strict=True))
        out = []
        for cid, score in top:
            if cid not in by_id:
                continue
            text, meta = by_id[cid]
            meta = dict(meta or {})
            box = meta.pop("box", "")
            meta.update(
                id=cid,
                box=json.loads(box) if box else None,
                score=round(score, 6),
                method=method,
                lexical_rank=lex_rank.get(cid),
                dense_rank=dense_rank.get(cid),
            )
            out.append(Document(page_content=text or "", metadata=meta, id=cid))
        return out


__all__ = ["FORMAT", "IndexReport", "PageIndex", "rrf"]
