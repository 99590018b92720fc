"""Content hashes of files: one streamed sha256 shared by the page cache, the ingest manifest, the index."""

from __future__ import annotations

import hashlib
import os

BLOCK = 1 << 20  # bytes read at a time, so a large PDF is hashed in constant memory


def file_digest(path: str | os.PathLike[str]) -> str:
    """The sha256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["file_digest"]
