"""The loader's page records: what one page produced (:class:`PageRecord`), its cache, its Document.

A record is what the page cache stores (one JSON file per page, written atomically) and what a
``Document`` is made from; :func:`record_of` turns the page pipeline's
:class:`~minimaxvl_tools.results.OCRPage` into one, so every mode and every path (in-process, worker
processes, Ray) yields the same keys.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Literal

from langchain_core.documents import Document
from pydantic import BaseModel, ConfigDict

from ..hashing import file_digest
from ..pages.fallback import fallback_kind
from ..results import OCRPage, markdown_to_text

CACHE_VERSION = "1"
Extraction = Literal["ocr", "text-layer", "none"]


class JobStats(BaseModel):
    """Counts for one loader run: what was done, cached, blank, fell back or failed, and what it cost."""

    documents: int = 0
    pages: int = 0
    ok: int = 0
    cached: int = 0
    blank: int = 0
    fallback: int = 0
    failed: int = 0
    image_tokens: int = 0
    requests: int = 0
    seconds: float = 0.0

    @property
    def failure_rate(self) -> float:
        """Failed pages over pages processed (0 when none)."""
        return self.failed / self.pages if self.pages else 0.0

    def add(self, other: JobStats) -> None:
        """Add another run's page counts and costs (documents and seconds are the caller's)."""
        for name in ("pages", "ok", "cached", "blank", "fallback", "failed", "image_tokens", "requests"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def count(self, rec: PageRecord, cached: bool) -> None:
        """Add one page handed out (its cost only when it was computed in this run)."""
        self.pages += 1
        self.cached += int(cached)
        self.ok += int(rec.status == "ok")
        self.blank += int(rec.status == "blank")
        self.fallback += int(rec.status == "fallback")
        self.failed += int(rec.status == "failed")
        if not cached:
            self.image_tokens += rec.image_tokens
            self.requests += rec.requests


class PageRecord(BaseModel):
    """One page's result as the loader keeps it (cache file, Document metadata)."""

    model_config = ConfigDict(extra="ignore")

    content: str = ""
    status: Literal["ok", "blank", "fallback", "failed"] = "ok"
    engine: str = "none"
    extraction: Extraction = "none"
    error: str | None = None
    image_tokens: int = 0
    requests: int = 0
    crops: int = 0
    rotation_corrected: int = 0
    fallback: str | None = None
    blocks: list[dict[str, Any]] = []

    @property
    def cacheable(self) -> bool:
        """Only trustworthy results are cached: ``failed`` and ``fallback`` pages are retried on a rerun
        (the endpoint may be back), ``ok`` and ``blank`` pages never are."""
        return self.status in ("ok", "blank")

    def cache_dict(self) -> dict[str, Any]:
        """The JSON the page cache stores."""
        return self.model_dump(exclude_none=True)

    @classmethod
    def text_layer(cls, text: str) -> PageRecord:
        """A page read from its PDF text layer."""
        return cls(content=text, status="ok", engine="text-layer", extraction="text-layer")

    @classmethod
    def failed(cls, error: str) -> PageRecord:
        """A page that produced nothing."""
        return cls(status="failed", error=error)


def record_of(ocr: OCRPage, *, plain: bool = False, page_rotation: int = 0) -> PageRecord:
    """The record of a page the pipeline read: ``plain`` strips markdown the model wrote anyway (once,
    here, so the cached record already holds what the Document shows)."""
    turned = (ocr.rotation - page_rotation) % 360
    spent = {"image_tokens": ocr.image_tokens, "requests": ocr.requests, "crops": len(ocr.crops)}
    if ocr.status == "failed":
        return PageRecord(status="failed", error=ocr.error, rotation_corrected=turned, **spent)
    if ocr.status == "blank" and ocr.requests == 0:  # judged blank before any request
        return PageRecord(status="blank", rotation_corrected=turned)
    kind = fallback_kind(ocr)
    content = markdown_to_text(ocr.markdown) if plain and kind is None else ocr.markdown
    return PageRecord(
        content=content,
        status=ocr.status,
        engine=ocr.engine,
        extraction="text-layer" if kind == "text-layer" else "ocr",
        error=ocr.error,
        rotation_corrected=turned,
        fallback=kind,
        blocks=block_meta(ocr, content),
        **spent,
    )


def block_meta(ocr: OCRPage, content: str) -> list[dict[str, Any]]:
    """Compact, JSON-ready boxes of the page's text blocks; ``span`` is [start, end) of the block's text
    in the Document's ``page_content`` when it is found there verbatim (no None values)."""
    out = []
    cursor = 0
    for block in ocr.blocks:
        item = block.compact()
        needle = block.text.strip()
        at = content.find(needle, cursor) if needle else -1
        if at >= 0:
            item["span"] = [at, at + len(needle)]
            cursor = at + len(needle)
        out.append(item)
    return out


class PageCache:
    """One JSON file per finished page, written atomically: a killed run loses only the pages in flight."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record for ``key``, or None (a corrupt file counts as missing)."""
        p = self._path(key)
        try:
            return json.loads(p.read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Store ``record`` under ``key`` (write to a temp file, then rename)."""
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")  # one per writer thread
        tmp.write_text(json.dumps(record, ensure_ascii=False), "utf-8")
        os.replace(tmp, p)

    def record(self, key: str) -> PageRecord | None:
        """The stored :class:`PageRecord` for ``key``, or None (missing, corrupt or of another shape)."""
        raw = self.get(key)
        if not isinstance(raw, dict):
            return None
        try:
            return PageRecord.model_validate(raw)
        except ValueError:
            return None


def page_keys(path: Path, number: int, count: int) -> dict[str, Any]:
    """LangChain's PDF-loader page keys (``PyPDFLoader``): ``source``, 0-based ``page``, ``page_label``,
    ``total_pages``; plus ``page_number``, the 1-based number people, citations and ``pages=`` use."""
    return {
        "source": str(path),
        "page": number - 1,
        "page_label": str(number),
        "page_number": number,
        "total_pages": count,
    }


def no_none(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` without None values: vector stores such as Chroma refuse them, so absent means unset."""
    return {k: v for k, v in meta.items() if v is not None}


def page_document(path: Path, page: Any, rec: PageRecord, cached: bool) -> Document:
    """The ``Document`` of ``page`` of ``path`` with record ``rec`` (LangChain's page keys, no None)."""
    meta: dict[str, Any] = {
        **page_keys(path, page.number, page.page_count),
        "engine": rec.engine,
        "extraction": rec.extraction,
        "status": rec.status,
        "image_tokens": rec.image_tokens,
        "requests": rec.requests,
        "crops": rec.crops,
        "rotation": page.rotation,
        "rotation_corrected": rec.rotation_corrected,
        "error": rec.error,
        "cached": cached,
        "fallback": rec.fallback,
    }
    if getattr(page, "warnings", None):  # e.g. rendered at a lower dpi to stay under max_pixels
        meta["render_note"] = "; ".join(page.warnings)
    if rec.blocks:  # [{"box", "kind", "pdf_box"?, "span"?}]: where each block was read
        meta["blocks"] = rec.blocks
    return Document(page_content=rec.content or "", metadata=no_none(meta))


def error_document(path: Path, error: Exception) -> Document:
    """A file that cannot be opened: one ``failed`` Document with ``source`` and ``error``, no page keys."""
    return Document(
        page_content="",
        metadata={
            "source": str(path),
            "status": "failed",
            "extraction": "none",
            "error": f"{type(error).__name__}: {error}",
            "cached": False,
        },
    )


__all__ = [
    "CACHE_VERSION",
    "JobStats",
    "PageCache",
    "PageRecord",
    "block_meta",
    "error_document",
    "file_digest",
    "no_none",
    "page_document",
    "page_keys",
    "record_of",
]
