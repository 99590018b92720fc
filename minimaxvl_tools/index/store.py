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
import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from ..errors import IndexStoreError, InvalidInputError
from .chunks import Chunk, page_id, page_number, split_page
from .embeddings import embedder_name, embeddings_from_env

log = logging.getLogger(__name__)

FORMAT = "minimaxvl-index/1"
CHUNKS = "minimaxvl_chunks"
PAGES = "minimaxvl_pages"
META_ID = "__meta__"
RRF_K = 60
HYBRID_K = 10
DENSE_WEIGHT = 0.5
CANDIDATES = 40
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


def _is_url(store: str | os.PathLike[str]) -> bool:
    return str(store).startswith(("http://", "https://"))


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
        self.is_server = _is_url(store)
        self.embeddings = embeddings or embeddings_from_env()
        self.embedder = embedder_name(self.embeddings)
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.lock_timeout = lock_timeout
        self.batch_pages = max(1, batch_pages)
        self._client = self._connect(create)
        self._chunks, self._pages = self._open_collections(create)
        self._bm25: tuple[str, Any, list[str]] | None = None
        self._committed: tuple[str, dict[str, str]] | None = None

    def __repr__(self) -> str:
        return f"PageIndex(store={self.store!r}, embedder={self.embedder!r})"

    # ------------------------------------------------------------------ opening
    def _connect(self, create: bool) -> Any:
        try:
            import bm25s  # noqa: F401
            import chromadb
            import filelock  # noqa: F401
        except ImportError as e:
            raise InvalidInputError(
                f"the index needs chromadb, bm25s and filelock ({e}): pip install 'minimaxvl-tools[index]'"
            ) from e

        settings = chromadb.Settings(anonymized_telemetry=False)
        if self.is_server:
            u = urlparse(self.store)
            try:
                client = chromadb.HttpClient(
                    host=u.hostname or "localhost",
                    port=u.port or 8000,
                    ssl=u.scheme == "https",
                    settings=settings,
                )
                client.heartbeat()
            except Exception as e:
                raise IndexStoreError(
                    f"{self.store}: no Chroma server answers there ({type(e).__name__}: {e}); start one "
                    "with `chroma run --path DIR --port PORT`, or pass a folder for an embedded store"
                ) from e
            return client
        path = Path(self.store)
        if path.exists() and not path.is_dir():
            raise IndexStoreError(f"{path}: is a file, not an index store; pass a folder for --store")
        if path.is_dir() and any(path.iterdir()) and not (path / "chroma.sqlite3").exists():
            raise IndexStoreError(
                f"{path}: holds other files and no index store; pass an empty or new folder for --store"
            )
        if not (path / "chroma.sqlite3").exists() and not create:
            raise IndexStoreError(
                f"{path}: no index store there; build one with `minimaxvl index PATHS --store {path}`"
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(path), settings=settings)
        except Exception as e:
            raise IndexStoreError(
                f"{path}: the index store does not open and may be corrupt ({type(e).__name__}: {e}); "
                "restore it from a backup or index into a new folder (nothing was changed)"
            ) from e

    def _open_collections(self, create: bool) -> tuple[Any, Any]:
        try:
            names = {getattr(c, "name", c) for c in self._client.list_collections()}
        except Exception as e:
            raise IndexStoreError(
                f"{self.store}: the index store cannot be read and may be corrupt ({type(e).__name__}: {e}); "
                "restore it from a backup or index into a new folder (nothing was changed)"
            ) from e
        if not names:
            if not create:
                raise IndexStoreError(
                    f"{self.store}: the store holds no index yet; run `minimaxvl index` first"
                )
            return self._create()
        if PAGES not in names or CHUNKS not in names:
            raise IndexStoreError(
                f"{self.store}: holds Chroma collections {sorted(names)} but no minimaxvl index; pass "
                "another --store (this one is left as it is)"
            )
        try:
            chunks = self._client.get_collection(CHUNKS, embedding_function=None)
            pages = self._client.get_collection(PAGES, embedding_function=None)
            meta = pages.get(ids=[META_ID], include=["metadatas"])["metadatas"]
        except Exception as e:
            raise IndexStoreError(
                f"{self.store}: the index collections do not open and may be corrupt "
                f"({type(e).__name__}: {e}); restore a backup or index into a new folder"
            ) from e
        if not meta or (meta[0] or {}).get("format") != FORMAT:
            raise IndexStoreError(
                f"{self.store}: not a {FORMAT} store (format "
                f"{(meta[0] or {}).get('format') if meta else None!r}); pass another --store"
            )
        if meta[0].get("embedder") != self.embedder:
            raise IndexStoreError(
                f"{self.store}: built with embeddings {meta[0].get('embedder')!r}, opened with "
                f"{self.embedder!r}; vectors of two models do not compare: use the same embeddings "
                "or index into a new store"
            )
        return chunks, pages

    def _create(self) -> tuple[Any, Any]:
        cfg = {"hnsw": {"space": "cosine"}}
        chunks = self._client.get_or_create_collection(CHUNKS, embedding_function=None, configuration=cfg)
        pages = self._client.get_or_create_collection(PAGES, embedding_function=None)
        pages.upsert(
            ids=[META_ID],
            embeddings=[[0.0]],
            metadatas=[{"kind": "meta", "format": FORMAT, "embedder": self.embedder, "revision": "new"}],
        )
        return chunks, pages

    # ------------------------------------------------------------------ state
    def revision(self) -> str:
        """The store's revision: changes whenever a writer starts or finishes a run."""
        meta = self._pages.get(ids=[META_ID], include=["metadatas"])["metadatas"]
        return str((meta[0] or {}).get("revision", "")) if meta else ""

    def _set_revision(self) -> None:
        meta = self._pages.get(ids=[META_ID], include=["metadatas"])["metadatas"][0]
        meta = {**meta, "revision": uuid.uuid4().hex}
        self._pages.update(ids=[META_ID], metadatas=[meta])

    def manifest(self) -> dict[str, dict[str, Any]]:
        """Every committed page: page id -> its record (source, page, file digest, hash, settings, chunks)."""
        got = self._pages.get(where={"kind": "page"}, include=["metadatas"])
        return {i: dict(m or {}) for i, m in zip(got["ids"], got["metadatas"], strict=True)}

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

    @contextlib.contextmanager
    def lock(self) -> Any:
        """The writers' lock: one :meth:`index` at a time per store (a file lock)."""
        from filelock import FileLock, Timeout

        if self.is_server:
            name = hashlib.sha1(self.store.encode()).hexdigest()[:16]
            lock_path = Path(tempfile.gettempdir()) / f"minimaxvl-index-{name}.lock"
        else:
            lock_path = Path(self.store) / ".minimaxvl-index.lock"
        lk = FileLock(str(lock_path), timeout=self.lock_timeout)
        try:
            with lk:
                yield
        except Timeout as e:
            raise IndexStoreError(
                f"{self.store}: another writer has held the index lock {lock_path} for over "
                f"{self.lock_timeout:g} s; wait for it to finish, then rerun"
            ) from e

    # ------------------------------------------------------------------ writing
    def _page_hash(self, doc: Document) -> str:
        blocks = doc.metadata.get("blocks") or doc.metadata.get("regions") or []
        raw = json.dumps([doc.page_content, blocks, self.settings_key], default=str, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()

    def _commit(self, batch: list[tuple[dict[str, Any], list[Chunk]]]) -> int:
        """Write a batch of pages in the crash-safe order (see the module docstring)."""
        if not batch:
            return 0
        pids = [m["page_id"] for m, _ in batch]
        chunks = [c for _, cs in batch for c in cs]
        vectors = self.embeddings.embed_documents([c.text for c in chunks]) if chunks else []
        self._pages.delete(ids=pids)
        self._chunks.delete(where={"page_id": {"$in": pids}})
        hashes = {m["page_id"]: m["page_hash"] for m, _ in batch}
        step = 2000
        for i in range(0, len(chunks), step):
            part = chunks[i : i + step]
            self._chunks.add(
                ids=[c.id for c in part],
                embeddings=vectors[i : i + step],
                documents=[c.text for c in part],
                metadatas=[self._chunk_meta(c, hashes[page_id(c.source, c.page)]) for c in part],
            )
        self._pages.upsert(ids=pids, embeddings=[[0.0]] * len(pids), metadatas=[m for m, _ in batch])
        return len(chunks)

    @staticmethod
    def _chunk_meta(c: Chunk, page_hash: str) -> dict[str, Any]:
        meta = {
            "source": c.source,
            "page": c.page,
            "chunk": c.index,
            "page_id": page_id(c.source, c.page),
            "page_hash": page_hash,
            "box": json.dumps(list(c.box)) if c.box else "",
        }
        for key, value in c.metadata.items():
            if isinstance(value, (str, int, float, bool)):
                meta.setdefault(key, value)
        return meta

    def _remove_pages(self, pids: Sequence[str]) -> None:
        if pids:
            self._pages.delete(ids=list(pids))
            self._chunks.delete(where={"page_id": {"$in": list(pids)}})

    def remove(self, source: str | os.PathLike[str]) -> int:
        """Remove every page of ``source`` (a path as indexed); returns the pages removed."""
        src = str(Path(source).resolve()) if not self.is_server else str(source)
        with self.lock():
            pids = [i for i, m in self.manifest().items() if m.get("source") in (src, str(source))]
            self._remove_pages(pids)
            self._set_revision()
        return len(pids)

    def add_documents(
        self,
        docs: Iterable[Document],
        *,
        report: IndexReport | None = None,
        digests: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        on_page: Callable[[Document], None] | None = None,
    ) -> IndexReport:
        """Index page Documents (from the loader, or any loader giving ``source`` and ``page``).

        A page whose text, blocks and settings hash matches its committed record is not re-embedded.
        Failed pages (``metadata['status'] == 'failed'``) are reported and left un-committed.
        """
        report = report or IndexReport()
        t0 = time.perf_counter()
        with self.lock():
            self._set_revision()
            report.pages_indexed += self._add_locked(docs, report, digests or {}, extra or {}, on_page)
            self._set_revision()
        report.seconds += time.perf_counter() - t0
        self._refresh_lexical()
        return report

    def _add_locked(
        self,
        docs: Iterable[Document],
        report: IndexReport,
        digests: dict[str, str],
        extra: dict[str, Any],
        on_page: Callable[[Document], None] | None,
    ) -> int:
        existing = self.manifest()
        batch: list[tuple[dict[str, Any], list[Chunk]]] = []
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
            h = self._page_hash(doc)
            rec = {
                "kind": "page",
                "page_id": pid,
                "source": src,
                "page": page,
                "page_count": int(m.get("total_pages") or m.get("page_count") or 0),
                "file_digest": digests.get(src, ""),
                "page_hash": h,
                "settings": self.settings_key,
                "engine": str(m.get("engine") or ""),
                **{k: v for k, v in extra.items() if isinstance(v, (str, int, float, bool))},
            }
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
        # pages past a file's new end (the file shrank)
        stale = [
            i
            for i, r in existing.items()
            if r.get("source") in seen_pages
            and r.get("page_count")
            and int(r["page"]) not in seen_pages[r["source"]]
            and int(r["page"]) > max(seen_pages[r["source"]])
        ]
        self._remove_pages(stale)
        report.pages_removed += len(stale)
        return done

    def index(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        mode: str = "auto",
        client: Any | None = None,
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
        t0 = time.perf_counter()
        settings = f"{self.settings_key}|{mode}|{loader_kwargs.get('dpi', 200)}"
        with self.lock():
            self._set_revision()
            manifest = self.manifest()
            by_source: dict[str, list[dict[str, Any]]] = {}
            for r in manifest.values():
                by_source.setdefault(r["source"], []).append(r)
            todo: list[Path] = []
            digests: dict[str, str] = {}
            for f in files:
                d = _digest(f)
                digests[str(f)] = d
                recs = by_source.get(str(f), [])
                complete = bool(recs) and len(recs) == int(recs[0].get("page_count") or -1)
                if complete and all(
                    r.get("file_digest") == d and r.get("mode_settings") == settings for r in recs
                ):
                    report.pages_skipped += len(recs)
                else:
                    todo.append(f)
            # files gone from the folders given
            present = {str(f) for f in files}
            gone = [
                s
                for s in by_source
                if s not in present and any(Path(s).is_relative_to(r) for r in roots if r.is_dir())
            ]
            for s in gone:
                self._remove_pages([r["page_id"] for r in by_source[s]])
                report.pages_removed += len(by_source[s])
            report.files_removed = len(gone)
            if todo:
                loader = MiniMaxVLDocumentLoader(todo, **kw)
                report.pages_indexed += self._add_locked(
                    loader.lazy_load(),
                    report,
                    digests,
                    {"mode_settings": settings, "dpi": int(loader_kwargs.get("dpi", 200))},
                    on_page,
                )
            self._set_revision()
        report.seconds = time.perf_counter() - t0
        self._refresh_lexical()
        return report

    # ------------------------------------------------------------------ lexical
    def _bm25_dir(self) -> Path | None:
        return None if self.is_server else Path(self.store) / "minimaxvl-bm25"

    def _refresh_lexical(self) -> None:
        """Rebuild the BM25 index now (after a write), so the first query does not pay for it."""
        self._bm25 = None
        with contextlib.suppress(Exception):
            self._lexical()

    def _lexical(self) -> tuple[Any, list[str]]:
        import bm25s

        rev = self.revision()
        if self._bm25 is not None and self._bm25[0] == rev:
            return self._bm25[1], self._bm25[2]
        folder = self._bm25_dir()
        if folder is not None and (folder / "revision.txt").is_file():
            try:
                if (folder / "revision.txt").read_text() == rev:
                    model = bm25s.BM25.load(str(folder), mmap=False, show_progress=False)
                    ids = json.loads((folder / "ids.json").read_text())
                    self._bm25 = (rev, model, ids)
                    return model, ids
            except (OSError, ValueError) as e:
                log.warning("BM25 cache %s unreadable (%s): rebuilding it", folder, e)
        committed = self._committed_hashes()
        got = self._chunks.get(include=["documents", "metadatas"])
        ids, texts = [], []
        for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
            if committed.get(str(meta.get("page_id"))) == meta.get("page_hash"):
                ids.append(cid)
                texts.append(text or "")
        model = bm25s.BM25()
        if texts:
            model.index(
                bm25s.tokenize(texts, stopwords="en", show_progress=False, return_ids=False) or [[]],
                show_progress=False,
            )
        if folder is not None and texts:
            tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
            with contextlib.suppress(OSError):
                model.save(str(tmp), show_progress=False)
                (tmp / "ids.json").write_text(json.dumps(ids))
                (tmp / "revision.txt").write_text(rev)
                old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
                if folder.exists():
                    folder.rename(old)
                tmp.rename(folder)
                if old.exists():
                    import shutil

                    shutil.rmtree(old, ignore_errors=True)
        self._bm25 = (rev, model, ids)
        return model, ids

    def _lexical_ranking(self, query: str, n: int) -> list[str]:
        import bm25s

        model, ids = self._lexical()
        if not ids:
            return []
        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)
        if not tokens or not tokens[0]:
            return []
        docs, scores = model.retrieve(tokens, k=min(n, len(ids)), show_progress=False, n_threads=0)
        return [ids[int(d)] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

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

    # ------------------------------------------------------------------ search
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
        ranked = rrf([lexical, dense], k=HYBRID_K, weights=[1.0, DENSE_WEIGHT])
        lex_rank = {cid: r for r, cid in enumerate(lexical, 1)}
        dense_rank = {cid: r for r, cid in enumerate(dense, 1)}
        top = ranked[:k]
        if not top:
            return []
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
