"""Opening an index store, embedded Chroma (a folder) or a Chroma server (``http://host:port``), its two
collections, and the writers' file lock.

A path that holds something else, a store that does not open, a foreign or older store, or one built with
other embeddings raises :class:`~minimaxvl_tools.errors.IndexStoreError` naming it; nothing is rebuilt
silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from ..errors import IndexStoreError, InvalidInputError

FORMAT = "minimaxvl-index/1"
CHUNKS = "minimaxvl_chunks"
PAGES = "minimaxvl_pages"
META_ID = "__meta__"

Scalar = str | int | float | bool
Where = Mapping[str, Any]


class Collection(Protocol):
    """The part of a Chroma collection the index uses (an embedded and a server collection both fit)."""

    def get(
        self, ids: list[str] | None = None, where: Where | None = None, include: Sequence[str] = ...
    ) -> Mapping[str, Any]:
        """Records by id or filter: ``ids`` plus the fields named in ``include``."""
        ...

    def query(
        self, query_embeddings: list[list[float]], n_results: int, include: Sequence[str] = ...
    ) -> Mapping[str, Any]:
        """Nearest records to each query vector."""
        ...

    def add(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        documents: list[str],
        metadatas: list[Mapping[str, Scalar]],
    ) -> None:
        """Insert new records."""
        ...

    def upsert(
        self, ids: list[str], embeddings: list[list[float]], metadatas: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert or replace records."""
        ...

    def update(self, ids: list[str], metadatas: Sequence[Mapping[str, Any]]) -> None:
        """Replace the metadata of existing records."""
        ...

    def delete(self, ids: list[str] | None = None, where: Where | None = None) -> None:
        """Remove records by id or filter."""
        ...

    def count(self) -> int:
        """How many records the collection holds."""
        ...


class ChromaClient(Protocol):
    """The part of a Chroma client (``PersistentClient`` or ``HttpClient``) the index uses."""

    def list_collections(self) -> Sequence[Any]:
        """The store's collections (objects with a ``name``, or names)."""
        ...

    def get_collection(self, name: str, embedding_function: None = None) -> Collection:
        """An existing collection."""
        ...

    def get_or_create_collection(
        self, name: str, embedding_function: None = None, configuration: Mapping[str, Any] | None = None
    ) -> Collection:
        """A collection, made when missing."""
        ...


@dataclass(frozen=True)
class Collections:
    """An open index: ``chunks`` (text, vector, place of each chunk) and ``pages`` (the manifest)."""

    chunks: Collection
    pages: Collection


def is_url(store: str | os.PathLike[str]) -> bool:
    """Whether ``store`` names a Chroma server rather than a folder."""
    return str(store).startswith(("http://", "https://"))


def _corrupt(store: str, what: str, e: Exception) -> IndexStoreError:
    return IndexStoreError(
        f"{store}: {what} and may be corrupt ({type(e).__name__}: {e}); "
        "restore it from a backup or index into a new folder (nothing was changed)"
    )


def connect(store: str, *, create: bool) -> ChromaClient:
    """A Chroma client for ``store`` (``HttpClient`` for a URL, ``PersistentClient`` for a folder).

    ``create=False`` refuses a folder without a store instead of making one.
    """
    try:
        import bm25s  # noqa: F401
        import chromadb
        import filelock  # noqa: F401
    except ImportError as e:
        raise InvalidInputError(
            f"the index needs chromadb, bm25s and filelock ({e}): pip install 'minimaxvl-tools[index]'"
        ) from e

    settings = chromadb.Settings(anonymized_telemetry=False)
    if is_url(store):
        u = urlparse(store)
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
                f"{store}: no Chroma server answers there ({type(e).__name__}: {e}); start one "
                "with `chroma run --path DIR --port PORT`, or pass a folder for an embedded store"
            ) from e
        return client
    path = Path(store)
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
        raise _corrupt(str(path), "the index store does not open", e) from e


def open_collections(client: ChromaClient, store: str, embedder: str, *, create: bool) -> Collections:
    """The index's collections in ``client``, made when the store is empty and ``create`` is true.

    Refuses a store with other collections, another format, or vectors of another ``embedder``.
    """
    try:
        names = {getattr(c, "name", c) for c in client.list_collections()}
    except Exception as e:
        raise _corrupt(store, "the index store cannot be read", e) from e
    if not names:
        if not create:
            raise IndexStoreError(f"{store}: the store holds no index yet; run `minimaxvl index` first")
        return create_collections(client, embedder)
    if PAGES not in names or CHUNKS not in names:
        raise IndexStoreError(
            f"{store}: holds Chroma collections {sorted(names)} but no minimaxvl index; pass "
            "another --store (this one is left as it is)"
        )
    try:
        chunks = client.get_collection(CHUNKS, embedding_function=None)
        pages = client.get_collection(PAGES, embedding_function=None)
        meta = pages.get(ids=[META_ID], include=["metadatas"])["metadatas"]
    except Exception as e:
        raise IndexStoreError(
            f"{store}: the index collections do not open and may be corrupt "
            f"({type(e).__name__}: {e}); restore a backup or index into a new folder"
        ) from e
    if not meta or (meta[0] or {}).get("format") != FORMAT:
        raise IndexStoreError(
            f"{store}: not a {FORMAT} store (format "
            f"{(meta[0] or {}).get('format') if meta else None!r}); pass another --store"
        )
    if meta[0].get("embedder") != embedder:
        raise IndexStoreError(
            f"{store}: built with embeddings {meta[0].get('embedder')!r}, opened with "
            f"{embedder!r}; vectors of two models do not compare: use the same embeddings "
            "or index into a new store"
        )
    return Collections(chunks, pages)


def create_collections(client: ChromaClient, embedder: str) -> Collections:
    """Make both collections (cosine HNSW for the chunks) and the ``__meta__`` record naming ``embedder``."""
    cfg = {"hnsw": {"space": "cosine"}}
    chunks = client.get_or_create_collection(CHUNKS, embedding_function=None, configuration=cfg)
    pages = client.get_or_create_collection(PAGES, embedding_function=None)
    pages.upsert(
        ids=[META_ID],
        embeddings=[[0.0]],
        metadatas=[{"kind": "meta", "format": FORMAT, "embedder": embedder, "revision": "new"}],
    )
    return Collections(chunks, pages)


def lock_path(store: str) -> Path:
    """The writers' lock file: beside an embedded store, or per server URL in the temp folder."""
    if is_url(store):
        name = hashlib.sha1(store.encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"minimaxvl-index-{name}.lock"
    return Path(store) / ".minimaxvl-index.lock"


@contextlib.contextmanager
def writer_lock(store: str, timeout: float) -> Iterator[None]:
    """Hold ``store``'s writers' lock (two writers run one after the other); raises
    :class:`~minimaxvl_tools.errors.IndexStoreError` after ``timeout`` s of waiting."""
    from filelock import FileLock, Timeout

    path = lock_path(store)
    try:
        with FileLock(str(path), timeout=timeout):
            yield
    except Timeout as e:
        raise IndexStoreError(
            f"{store}: another writer has held the index lock {path} for over "
            f"{timeout:g} s; wait for it to finish, then rerun"
        ) from e


__all__ = [
    "CHUNKS",
    "FORMAT",
    "META_ID",
    "PAGES",
    "ChromaClient",
    "Collection",
    "Collections",
    "connect",
    "create_collections",
    "is_url",
    "lock_path",
    "open_collections",
    "writer_lock",
]
