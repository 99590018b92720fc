"""The index's manifest: one record per committed page in the ``pages`` collection, plus the store's
revision in its ``__meta__`` record.

A page counts as indexed only when its record exists and carries the same ``page_hash`` as its chunks;
the hash covers the page's text, its blocks and the settings that decide chunks and vectors.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from langchain_core.documents import Document

from ..hashing import file_digest
from .backend import META_ID, Collection, Collections, Scalar
from .chunks import Chunk, page_id


class PageRecord(TypedDict, total=False):
    """A committed page as the manifest stores it (``mode_settings``/``dpi`` come from :meth:`index`)."""

    kind: str
    page_id: str
    source: str
    page: int
    page_count: int
    file_digest: str
    page_hash: str
    settings: str
    engine: str
    chunks: int
    mode_settings: str
    dpi: int


def revision(pages: Collection) -> str:
    """The store's revision: a fresh id whenever a writer starts or finishes a run."""
    meta = pages.get(ids=[META_ID], include=["metadatas"])["metadatas"]
    return str((meta[0] or {}).get("revision", "")) if meta else ""


def new_revision(pages: Collection) -> None:
    """Give the store a fresh revision (readers' caches keyed by the old one go stale)."""
    meta = pages.get(ids=[META_ID], include=["metadatas"])["metadatas"][0]
    pages.update(ids=[META_ID], metadatas=[{**meta, "revision": uuid.uuid4().hex}])


def records(pages: Collection) -> dict[str, PageRecord]:
    """Every committed page: page id -> its record."""
    got = pages.get(where={"kind": "page"}, include=["metadatas"])
    return {i: PageRecord(**(m or {})) for i, m in zip(got["ids"], got["metadatas"], strict=True)}


def page_hash(doc: Document, settings_key: str) -> str:
    """What decides a page's chunks and vectors, hashed: its text, its blocks and ``settings_key``."""
    blocks = doc.metadata.get("blocks") or doc.metadata.get("regions") or []
    raw = json.dumps([doc.page_content, blocks, settings_key], default=str, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def scalars(values: Mapping[str, object]) -> dict[str, Scalar]:
    """The entries of ``values`` that Chroma metadata can hold (str, int, float, bool)."""
    return {k: v for k, v in values.items() if isinstance(v, (str, int, float, bool))}


def chunk_meta(c: Chunk, page_hash: str) -> dict[str, Scalar]:
    """A chunk's Chroma metadata: where it sits, its page's hash, and the chunk's scalar metadata."""
    meta: dict[str, Scalar] = {
        "source": c.source,
        "page": c.page,
        "chunk": c.index,
        "page_id": page_id(c.source, c.page),
        "page_hash": page_hash,
        "box": json.dumps(list(c.box)) if c.box else "",
    }
    for key, value in scalars(c.metadata).items():
        meta.setdefault(key, value)
    return meta


def commit(
    collections: Collections, batch: Sequence[tuple[PageRecord, list[Chunk]]], vectors: list[list[float]]
) -> int:
    """Write a batch of pages in the crash-safe order manifest-delete, chunk-delete, chunk-add,
    manifest-add (a crash leaves the batch's pages un-committed, never chunks and manifest disagreeing);
    ``vectors`` are the batch's chunks' embeddings, in order. Returns the chunks written."""
    if not batch:
        return 0
    pids = [m["page_id"] for m, _ in batch]
    chunks = [c for _, cs in batch for c in cs]
    collections.pages.delete(ids=pids)
    collections.chunks.delete(where={"page_id": {"$in": pids}})
    hashes = {m["page_id"]: m["page_hash"] for m, _ in batch}
    step = 2000
    for i in range(0, len(chunks), step):
        part = chunks[i : i + step]
        collections.chunks.add(
            ids=[c.id for c in part],
            embeddings=vectors[i : i + step],
            documents=[c.text for c in part],
            metadatas=[chunk_meta(c, hashes[page_id(c.source, c.page)]) for c in part],
        )
    collections.pages.upsert(ids=pids, embeddings=[[0.0]] * len(pids), metadatas=[m for m, _ in batch])
    return len(chunks)


def remove_pages(collections: Collections, pids: Sequence[str]) -> None:
    """Drop pages from the manifest and their chunks."""
    if pids:
        collections.pages.delete(ids=list(pids))
        collections.chunks.delete(where={"page_id": {"$in": list(pids)}})


def stale_pages(existing: Mapping[str, PageRecord], seen: Mapping[str, set[int]]) -> list[str]:
    """Pages of the files in ``seen`` (source -> pages just read) past each file's new last page."""
    return [
        i
        for i, r in existing.items()
        if r.get("source") in seen
        and r.get("page_count")
        and int(r["page"]) not in seen[r["source"]]
        and int(r["page"]) > max(seen[r["source"]])
    ]


@dataclass
class FilePlan:
    """Which files an :meth:`~minimaxvl_tools.index.PageIndex.index` run reads, keeps and removes."""

    todo: list[Path] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)
    skipped_pages: int = 0
    gone: dict[str, list[PageRecord]] = field(default_factory=dict)


def plan_files(
    files: Sequence[Path],
    manifest: Mapping[str, PageRecord],
    settings: str,
    roots: Sequence[Path],
) -> FilePlan:
    """Files to read (new, changed, incomplete, or read with other ``settings``) and indexed files gone
    from the folders in ``roots``."""
    by_source: dict[str, list[PageRecord]] = {}
    for r in manifest.values():
        by_source.setdefault(r["source"], []).append(r)
    plan = FilePlan()
    for f in files:
        d = plan.digests[str(f)] = file_digest(f)
        recs = by_source.get(str(f), [])
        complete = bool(recs) and len(recs) == int(recs[0].get("page_count") or -1)
        if complete and all(r.get("file_digest") == d and r.get("mode_settings") == settings for r in recs):
            plan.skipped_pages += len(recs)
        else:
            plan.todo.append(f)
    present = {str(f) for f in files}
    plan.gone = {
        s: recs
        for s, recs in by_source.items()
        if s not in present and any(Path(s).is_relative_to(r) for r in roots if r.is_dir())
    }
    return plan
