"""Batch ingest: folders and files of PDFs and images -> one JSONL or markdown file per document, resumable.

The engine behind ``minimaxvl ingest``, usable without the CLI::

    from minimaxvl_tools.ingest import IngestJob

    job = IngestJob(["scans/"], "out/", mode="vlm", client=client)
    summary = job.run()            # IngestSummary: pages ok/cached/failed, requests, tokens, written files

Resume works on two levels: a document whose output exists and is recorded complete in
``OUT/.minimaxvl-ingest.json`` (same input bytes, mode, format and settings, no failed page) is skipped
without a request; inside a document, the loader's page cache returns finished pages. Outputs are written
only when a document is done, through a temp file and a rename, so an interrupted run never leaves a
half-written output. Each file's content hash is computed once per run and shared with the loader.

Every file is checked against the input policy (allowed folders, symlinks resolved) before it is opened;
a refused or unreadable file becomes one failed record in its output and the rest of the job goes on.

File names that are not valid UTF-8 (bytes such as ``b'caf\\xe9.pdf'`` on POSIX) are written with each
undecodable byte escaped: as ``\\xNN`` in the records' text (``source``, error messages) and as ``%NN`` in
output file names (``caf%E9.pdf.jsonl``), so outputs and JSON stay valid UTF-8 for any name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from .errors import InvalidInputError, JobAbortedError, MiniMaxVLError
from .hashing import file_digest
from .images.policy import InputPolicy
from .loaders import FallbackEngine, JobStats, LoaderMode, MiniMaxVLDocumentLoader
from .settings import check_dpi, current

if TYPE_CHECKING:  # pragma: no cover
    from .client import MiniMaxVLClient

MANIFEST = ".minimaxvl-ingest.json"
"""Per output folder: which documents are complete, for which input bytes and settings."""

OutputFormat = Literal["jsonl", "markdown"]
RECORD_FIELDS = ("source", "page", "text", "metadata")
"""Every page record (JSONL line, Parquet row) has exactly these fields; see :func:`page_record`."""


# ---------------------------------------------------------------------------------------------- names
def _escape_undecodable(raw: bytes, escape: Callable[[int], str]) -> str:
    """``raw`` decoded as UTF-8 with each byte that does not decode written as ``escape(byte)``."""
    out: list[str] = []
    while raw:
        try:
            out.append(raw.decode("utf-8"))
            break
        except UnicodeDecodeError as e:
            out.append(raw[: e.start].decode("utf-8"))
            out.extend(escape(b) for b in raw[e.start : e.end])
            raw = raw[e.end :]
    return "".join(out)


def _raw(text: str) -> bytes:
    """The bytes behind ``text`` (surrogate escapes from ``os.fsdecode`` back to their bytes)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is no byte escape: keep its code as text
        return text.encode("utf-8", "backslashreplace")


def safe_text(text: str) -> str:
    """``text`` as valid UTF-8: undecodable file-name bytes (surrogate escapes) become ``\\xNN``."""
    return _escape_undecodable(_raw(text), lambda b: f"\\x{b:02x}") if _has_surrogates(text) else text


def safe_filename(text: str) -> str:
    """A file name that any UTF-8 writer accepts: undecodable bytes become ``%NN``."""
    return _escape_undecodable(_raw(text), lambda b: f"%{b:02X}") if _has_surrogates(text) else text


def _has_surrogates(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _safe(value: Any) -> Any:
    """``value`` with every string in it made valid UTF-8 (records go to JSON, Parquet, terminals)."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_text(str(k)): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def output_names(files: Sequence[Path], inputs: Sequence[Path], suffix: str) -> dict[Path, str]:
    """Output file name (relative to the output folder) for each input file: its path under the folder it
    was found in, plus the format suffix (``scans/a.pdf`` -> ``a.pdf.jsonl``); clashes get a short hash."""
    # absolute, not resolved: a symlink is named as found, never followed (nor checked) here
    folders = [d for p in inputs if p.is_dir() for d in (Path(os.path.abspath(p)), p.resolve())]
    names: dict[Path, str] = {}
    used: set[str] = set()
    for f in files:
        rf = Path(os.path.abspath(f))
        rel: str = f.name
        for d in folders:
            with contextlib.suppress(ValueError):
                rel = rf.relative_to(d).as_posix()
                break
        rel = safe_filename(rel)
        name = rel + suffix
        if name in used:
            name = f"{rel}.{hashlib.sha256(os.fsencode(f.resolve())).hexdigest()[:8]}{suffix}"
        used.add(name)
        names[f] = name
    return names


# ---------------------------------------------------------------------------------------------- records
def page_record(doc: Any) -> dict[str, Any]:
    """The record written for one loader ``Document``: ``source``, ``page``, ``text``, ``metadata``."""
    meta = dict(doc.metadata)
    meta.pop("page", None)  # the loader's 0-based index (LangChain's convention); records number pages from 1
    return _safe(
        {
            "source": meta.pop("source", None),
            "page": meta.pop("page_number", None),
            "text": doc.page_content,
            "metadata": meta,
        }
    )


def failed_file_record(path: str | os.PathLike[str], error: BaseException | str) -> dict[str, Any]:
    """The one record of a file that could not be read at all (refused by the policy, unreadable);
    ``error`` is the exception, or its text as ``"Type: message"``."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return _safe(
        {
            "source": os.fspath(path),
            "page": None,
            "text": "",
            "metadata": {
                "page_count": None,
                "status": "failed",
                "engine": None,
                "extraction": "none",
                "error": text,
                "cached": False,
            },
        }
    )


def render_markdown(source: str, records: list[dict[str, Any]]) -> str:
    """One document's records as markdown with ``<!-- page N -->`` markers (non-ok status noted)."""
    parts = [f"<!-- source: {safe_text(source)} -->"]
    for r in records:
        status = r["metadata"].get("status")
        note = f" status: {status}" if status not in ("ok", None) else ""
        parts.append(f"<!-- page {r['page']}{note} -->\n{(r['text'] or '').strip()}")
    return "\n\n".join(parts) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, "utf-8")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _count_pages(path: Path) -> int:
    """Pages of a PDF or frames of an image, cheaply (no rendering); 1 when it cannot tell."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
        if head.startswith(b"%PDF"):
            from .pdf import pdf_page_count

            return pdf_page_count(path)
        from PIL import Image

        with Image.open(path) as img:
            return int(getattr(img, "n_frames", 1) or 1) if img.format == "TIFF" else 1
    except Exception:  # the loader reports unreadable files itself
        return 1


class Manifest:
    """``OUT/.minimaxvl-ingest.json``: complete documents by output name (rewritten atomically)."""

    def __init__(self, out: Path) -> None:
        self.path = out / MANIFEST
        try:
            self.data: dict[str, Any] = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            self.data = {}

    def complete(self, name: str, out: Path, key: dict[str, Any]) -> bool:
        """True when ``name`` exists, was written for these input bytes and settings, with no failed page."""
        rec = self.data.get(name)
        return bool(rec and (out / name).is_file() and rec.get("key") == key and rec.get("failed", 1) == 0)

    def record(self, name: str, key: dict[str, Any], info: dict[str, Any]) -> None:
        """Note ``name`` as written for ``key`` with ``info`` (pages, failed) and save the manifest."""
        self.data[name] = {"key": key, **info}
        write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True))


# ---------------------------------------------------------------------------------------------- job
def list_files(
    inputs: Sequence[Path], policy: InputPolicy | None
) -> tuple[list[Path], dict[Path, MiniMaxVLError]]:
    """Every document file under ``inputs`` (folders expanded by suffix, sorted) and those the policy
    refuses, checked before anything opens them: an input or a file found in a folder (a symlink may point
    outside) that is refused stays in the list and is mapped to its error, so it gets a failed record.
    InvalidInputError when nothing is found."""
    found: list[Path] = []
    refused: dict[Path, MiniMaxVLError] = {}
    for p in inputs:
        if policy is None:
            found.extend(MiniMaxVLDocumentLoader([p], policy=None).files())
            continue
        try:
            root = policy.check_path(p)
        except MiniMaxVLError as e:
            refused[p] = e
            found.append(p)
            continue
        for f in MiniMaxVLDocumentLoader([root], policy=None).files():
            try:
                policy.check_path(f)
            except MiniMaxVLError as e:
                refused[f] = e
            found.append(f)
    if not found:
        shown = ", ".join(safe_text(str(p)) for p in inputs)
        raise InvalidInputError(f"{shown}: no PDFs or images found")
    return found, refused


@dataclass
class DocumentWritten:
    """One output file written: its name under the output folder, its source, pages and failed pages."""

    name: str
    source: str
    pages: int
    failed: int


class IngestSummary(JobStats):
    """What one ingest run did (the CLI's ``--json`` document, less ``exit_code``): the loader's page counts
    over every document, plus what was skipped and written."""

    skipped_documents: int = 0
    written: list[str] = Field(default_factory=list)
    interrupted: bool = False
    aborted: bool = False
    out: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return self.model_dump()


class IngestJob:
    """One ingest of ``inputs`` (files or folders) into the folder ``out``.

    :meth:`prepare` lists the files (checking each against ``policy`` before anything opens it), hashes
    them once and decides what is already complete; :attr:`total_pages` is then known for a progress bar.
    :meth:`run` does the rest and returns an :class:`IngestSummary`; :attr:`summary` holds it even when
    the run is stopped (KeyboardInterrupt and :class:`~minimaxvl_tools.errors.JobAbortedError` propagate,
    after the finished documents are written).
    """

    def __init__(
        self,
        inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        out: str | os.PathLike[str],
        *,
        format: OutputFormat = "jsonl",
        mode: LoaderMode = "auto",
        client: MiniMaxVLClient | None = None,
        policy: InputPolicy | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        dpi: int | None = None,
        plain: bool = False,
        fallbacks: Sequence[FallbackEngine] = ("text-layer", "local"),
        detect_rotation: bool = True,
        max_failure_rate: float | None = None,
    ) -> None:
        if isinstance(inputs, str | os.PathLike):
            inputs = [inputs]
        self.inputs = [Path(p) for p in inputs]
        self.out = Path(out)
        if format not in ("jsonl", "markdown"):
            raise InvalidInputError(f"format {format!r} is not 'jsonl' or 'markdown'")
        if self.out.exists() and not self.out.is_dir():
            raise InvalidInputError(f"{safe_text(str(self.out))}: the output must be a folder")
        for p in self.inputs:
            if not p.exists() and not p.is_symlink():
                raise InvalidInputError(f"{safe_text(str(p))}: no such file or folder")
        if mode in ("vlm", "auto") and client is None:
            from .client import MiniMaxVLClient

            client = MiniMaxVLClient()
        self.format: OutputFormat = format
        self.mode: LoaderMode = mode
        self.client = client if mode in ("vlm", "auto") else None
        self.policy = policy
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.out / ".cache"
        self.dpi = check_dpi(dpi) if dpi is not None else current(getattr(client, "settings", None)).dpi
        self.plain = plain
        self.fallbacks = tuple(fallbacks)
        self.detect_rotation = detect_rotation
        self.max_failure_rate = max_failure_rate
        self.suffix = ".jsonl" if format == "jsonl" else ".md"
        self.summary = IngestSummary(out=safe_text(str(self.out)))
        self.files: list[Path] = []
        self.refused: dict[Path, MiniMaxVLError] = {}
        self.names: dict[Path, str] = {}
        self.keys: dict[Path, dict[str, Any]] = {}
        self.todo: list[Path] = []
        self.total_pages = 0
        self._prepared = False
        self._manifest = Manifest(self.out)

    def _loader(self, paths: Sequence[Path], **kw: Any) -> MiniMaxVLDocumentLoader:
        return MiniMaxVLDocumentLoader(
            list(paths),
            mode=self.mode,
            dpi=self.dpi,
            plain=self.plain,
            cache_dir=self.cache_dir,
            fallbacks=self.fallbacks,
            detect_rotation=self.detect_rotation,
            policy=self.policy,
            max_failure_rate=self.max_failure_rate,
            **kw,
        )

    def prepare(self) -> IngestJob:
        """List, check and hash the files; decide which documents are complete already. Idempotent."""
        if self._prepared:
            return self
        files, self.refused = list_files(self.inputs, self.policy)
        model = getattr(getattr(self.client, "settings", None), "model", None)
        for f in files:
            digest = None
            if f not in self.refused:
                try:
                    digest = file_digest(f)
                except OSError as e:
                    self.refused[f] = InvalidInputError(f"{safe_text(str(f))}: cannot read ({e})")
            self.keys[f] = {
                "sha256": digest,
                "mode": self.mode,
                "format": self.format,
                "plain": self.plain,
                "dpi": self.dpi,
                "model": model,
            }
        self.files = files
        self.names = output_names(files, self.inputs, self.suffix)
        self.todo = [
            f
            for f in files
            if f not in self.refused and not self._manifest.complete(self.names[f], self.out, self.keys[f])
        ]
        self.total_pages = sum(_count_pages(f) for f in self.todo) + len(self.refused)
        self.summary.documents = len(files)
        self.summary.skipped_documents = len(files) - len(self.todo) - len(self.refused)
        self._prepared = True
        return self

    def _finish(
        self, path: Path, recs: list[dict[str, Any]], on_document: Callable[[DocumentWritten], None] | None
    ) -> None:
        name = self.names[path]
        if self.format == "jsonl":
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
        else:
            text = render_markdown(os.fspath(path), recs)
        write_atomic(self.out / name, text)
        failed = sum(1 for r in recs if r["metadata"].get("status") == "failed")
        source = safe_text(os.fspath(path))
        self._manifest.record(name, self.keys[path], {"source": source, "pages": len(recs), "failed": failed})
        self.summary.written.append(name)
        if on_document is not None:
            on_document(DocumentWritten(name=name, source=source, pages=len(recs), failed=failed))

    def run(
        self,
        *,
        on_page: Callable[[int], None] | None = None,
        on_document: Callable[[DocumentWritten], None] | None = None,
    ) -> IngestSummary:
        """Ingest what :meth:`prepare` left to do; ``on_page(1)`` per finished page, ``on_document`` per
        output written. Returns (and keeps in :attr:`summary`) the counts of this run."""
        self.prepare()
        s = self.summary
        t0 = time.perf_counter()
        for path in self.files:  # refused files: one failed record each, written before any page work
            if path in self.refused:
                self._finish(path, [failed_file_record(path, self.refused[path])], on_document)
                s.pages += 1
                s.failed += 1
                if on_page is not None:
                    on_page(1)
        loader = self._loader(
            self.todo, client=self.client, digests={f: self.keys[f]["sha256"] for f in self.todo}
        )
        # the loader names each page's source as it resolved the path: map those names back to our files
        by_source = {str(r): f for r, f in zip(loader.files(), self.todo, strict=True)}
        current: Path | None = None
        records: list[dict[str, Any]] = []
        try:
            for doc in loader.lazy_load():
                src = str(doc.metadata.get("source"))
                path = by_source.get(src, Path(src))
                if current is not None and path != current:
                    self._finish(current, records, on_document)
                    records = []
                current = path
                records.append(page_record(doc))
                if on_page is not None:
                    on_page(1)
            if current is not None:
                self._finish(current, records, on_document)
        except KeyboardInterrupt:
            s.interrupted = True
            raise
        except JobAbortedError:  # the failure-rate stop
            s.aborted = True
            raise
        finally:
            s.add(loader.stats)
            s.seconds = round(time.perf_counter() - t0, 3)
        return s


def ingest(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    **options: Any,
) -> IngestSummary:
    """Ingest ``inputs`` into ``out`` in one call (see :class:`IngestJob` for the options)."""
    return IngestJob(inputs, out, **options).run()


__all__ = [
    "MANIFEST",
    "RECORD_FIELDS",
    "DocumentWritten",
    "IngestJob",
    "IngestSummary",
    "Manifest",
    "failed_file_record",
    "ingest",
    "list_files",
    "output_names",
    "page_record",
    "render_markdown",
    "safe_filename",
    "safe_text",
]
