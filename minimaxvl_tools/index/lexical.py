"""Lexical search for the index: bm25s over the committed chunks, rebuilt when the store's revision
changes, kept in memory and, for an embedded store, on disk beside it (keyed by the revision)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Corpus = Callable[[], tuple[list[str], list[str]]]  # () -> (chunk ids, chunk texts) of committed chunks


class LexicalIndex:
    """BM25 over a store's committed chunks: ``revision()`` names the store's state, ``corpus()`` gives
    its committed chunks; ``folder`` caches the model on disk (None: in memory only)."""

    def __init__(self, folder: Path | None, revision: Callable[[], str], corpus: Corpus) -> None:
        self.folder = folder
        self._revision = revision
        self._corpus = corpus
        self._cached: tuple[str, Any, list[str]] | None = None

    def refresh(self) -> None:
        """Rebuild now (after a write), so the first query does not pay for it; a failure waits for it."""
        self._cached = None
        with contextlib.suppress(Exception):
            self.model()

    def model(self) -> tuple[Any, list[str]]:
        """The BM25 model of the current revision and its chunk ids: from memory, the disk cache, or built."""
        import bm25s

        revision = self._revision()
        if self._cached is not None and self._cached[0] == revision:
            return self._cached[1], self._cached[2]
        loaded = self._load(revision)
        if loaded is not None:
            self._cached = (revision, *loaded)
            return loaded
        ids, texts = self._corpus()
        model = bm25s.BM25()
        if texts:
            model.index(
                bm25s.tokenize(texts, stopwords="en", show_progress=False, return_ids=False) or [[]],
                show_progress=False,
            )
            self._save(revision, model, ids)
        self._cached = (revision, model, ids)
        return model, ids

    def ranking(self, query: str, n: int) -> list[str]:
        """Up to ``n`` chunk ids by BM25 score for ``query`` (those scoring 0 left out)."""
        import bm25s

        model, ids = self.model()
        if not ids:
            return []
        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)
        if not tokens or not tokens[0]:
            return []
        docs, scores = model.retrieve(tokens, k=min(n, len(ids)), show_progress=False, n_threads=0)
        return [ids[int(d)] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def _load(self, revision: str) -> tuple[Any, list[str]] | None:
        import bm25s

        folder = self.folder
        if folder is None or not (folder / "revision.txt").is_file():
            return None
        try:
            if (folder / "revision.txt").read_text() == revision:
                model = bm25s.BM25.load(str(folder), mmap=False, show_progress=False)
                return model, json.loads((folder / "ids.json").read_text())
        except (OSError, ValueError) as e:
            log.warning("BM25 cache %s unreadable (%s): rebuilding it", folder, e)
        return None

    def _save(self, revision: str, model: Any, ids: list[str]) -> None:
        """Write the cache beside the store: to a temp folder first, then swapped in by rename."""
        folder = self.folder
        if folder is None:
            return
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        with contextlib.suppress(OSError):
            model.save(str(tmp), show_progress=False)
            (tmp / "ids.json").write_text(json.dumps(ids))
            (tmp / "revision.txt").write_text(revision)
            old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
            if folder.exists():
                folder.rename(old)
            tmp.rename(folder)
            if old.exists():
                shutil.rmtree(old, ignore_errors=True)


__all__ = ["Corpus", "LexicalIndex"]
