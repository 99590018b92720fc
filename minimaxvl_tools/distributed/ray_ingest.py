"""Ingest on Ray: files -> pages -> page records, spread over the CPUs of a Ray cluster with Ray Data.

``ray_ingest(inputs, out, ...)`` (and ``minimaxvl ingest PATHS --engine ray [--ray-address ADDR]``) runs
three Ray Data stages:

1. **list and read**: ``ray.data.read_binary_files`` reads the files. Local paths (and ``file://``) are
   listed on the driver and checked against the input policy before any worker opens them (the same
   rules as local ingest: a refused file is one failed record); object-store URLs (``s3://bucket/scans/``,
   ``gs://...``) are listed and read by Ray Data through pyarrow filesystems with the credentials of the
   environment (pass ``filesystem=`` for anything else, e.g. an fsspec filesystem wrapped in
   ``pyarrow.fs.PyFileSystem``). Each file is hashed once (sha256 of its bytes) and its pages counted.
2. **pages** (CPU tasks, at most ``workers`` at once, ``task_cpus`` CPUs each): pages are rendered,
   checked (blank, rotation), encoded and sent with :class:`~minimaxvl_tools.client.MiniMaxVLClient` (one
   or several base URLs, with its backpressure and failover; one client per worker process) through the
   loader's page pipeline; a task reads a batch of files (see :func:`_task_rows`) with up to
   ``max_concurrency`` pages in flight across them, but its page work on at most ``task_cpus`` threads
   at once (a task uses the cores Ray gave it); each finished page is
   cached at once in ``cache_dir`` (a folder every node can reach) under the loader's key (content hash,
   page, settings).
3. **write**: page records (the local ingest schema: ``source``, ``page``, ``text``, ``metadata``) go to
   JSONL or Parquet shards, ``OUT/records/part-*.jsonl|parquet``. A run writes its shards to a staging
   folder and swaps it in at the end, so readers see one run's complete set.

Resumable: a rerun finds the finished pages in the cache and sends (and renders) nothing for them, also
after a killed job (only pages in flight are lost); failed pages are written as ``status: failed``
records, never dropped, and are retried on the next run. The cluster needs this package installed on
every node (or a ``runtime_env``), and ``out``/``cache_dir`` on storage every node shares.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import InvalidInputError
from ..images.policy import InputPolicy
from ..ingest import IngestSummary, failed_file_record, list_files, page_record, safe_text
from ..loaders import DOC_SUFFIXES, FallbackEngine, LoaderMode, MiniMaxVLDocumentLoader, PageCache
from ..pages.window import Ready, in_order
from ..settings import Settings, check_dpi, current

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    import pyarrow.fs

log = logging.getLogger(__name__)

RecordFormat = Literal["jsonl", "parquet"]
RECORDS_DIR = "records"
"""Shards live in ``OUT/records``."""
METADATA_FIELDS: dict[str, str] = {
    "page_label": "string",
    "total_pages": "int64",
    "engine": "string",
    "extraction": "string",
    "status": "string",
    "image_tokens": "int64",
    "requests": "int64",
    "crops": "int64",
    "rotation": "int64",
    "rotation_corrected": "int64",
    "error": "string",
    "cached": "bool",
    "fallback": "string",
    "render_note": "string",
    "blocks": "string",
}
"""Parquet shards hold these metadata fields, with these types, for every row (missing ones null; ``blocks``
as a JSON string), so all shards share one schema; JSONL shards hold each record exactly as local ingest
writes it."""
METADATA_KEYS = tuple(METADATA_FIELDS)


def parquet_schema() -> pa.Schema:
    """The pyarrow schema of Parquet shards: ``source``, ``page``, ``text``, ``metadata`` (a struct)."""
    import pyarrow as pa

    meta = pa.struct([pa.field(k, pa.type_for_alias(t)) for k, t in METADATA_FIELDS.items()])
    return pa.schema(
        [("source", pa.string()), ("page", pa.int64()), ("text", pa.string()), ("metadata", meta)]
    )


_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class _Options:
    """What every Ray task needs to process pages exactly as the local loader would (picklable)."""

    mode: LoaderMode
    dpi: int
    plain: bool
    fallbacks: tuple[FallbackEngine, ...]
    detect_rotation: bool
    cache_dir: str
    settings: Settings | None
    policy: InputPolicy | None
    pages_per_task: int
    staging: str
    output: RecordFormat
    threads: int = 1
    task_cpus: int = 1
    sources: dict[str, str] = field(default_factory=dict)

    def loader(self) -> MiniMaxVLDocumentLoader:
        client = None
        if self.settings is not None and self.mode in ("vlm", "auto"):
            from ..client import MiniMaxVLClient

            client = MiniMaxVLClient(self.settings)
        same = {name: getattr(self, name) for name in _LOADER_OPTIONS}  # exactly the local loader's
        return MiniMaxVLDocumentLoader([], client=client, page_threads=self.task_cpus, **same)


_LOADER_OPTIONS = ("mode", "dpi", "plain", "cache_dir", "fallbacks", "detect_rotation")
"""The :class:`_Options` fields that are loader options of the same name."""


# ---------------------------------------------------------------------------------------------- stage 1
def _page_count(data: bytes) -> int:
    """Pages of a PDF, frames of a TIFF, else 1; a typed error for content that is neither."""
    from ..images import load

    if load.sniff(data) == "pdf":
        from ..pdf import pdf_page_count

        return pdf_page_count(data)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            frames = int(getattr(img, "n_frames", 1) or 1) if img.format == "TIFF" else 1
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        from ..errors import MediaError

        raise MediaError(f"not a readable PDF or image ({e}); check the file") from e
    return frames


def _split(row: dict[str, Any], opts: _Options) -> list[dict[str, Any]]:
    """One file -> its tasks: page ranges of at most ``pages_per_task`` pages, with the content hash."""
    data: bytes = row["bytes"]
    found = str(row["path"])
    path = opts.sources.get(found, found)
    raw = bytes(row.get("raw") or b"") or (b"" if _URL.match(found) else os.fsencode(found))
    digest = hashlib.sha256(data).hexdigest()
    try:
        count = _page_count(data)
    except Exception as e:  # the file's one failed record is written by the page stage
        error = f"{type(e).__name__}: {e}"
        return [
            {"path": path, "raw": raw, "digest": digest, "pages": [], "count": 0, "data": b"", "error": error}
        ]
    step = max(1, opts.pages_per_task)
    chunks = [list(range(i, min(i + step, count + 1))) for i in range(1, count + 1, step)]
    keep = data if len(chunks) == 1 else b""  # several tasks re-read the file instead of copying it
    row = {"path": path, "raw": raw, "digest": digest, "count": count, "data": keep, "error": ""}
    return [{**row, "pages": c} for c in chunks]


# ---------------------------------------------------------------------------------------------- stage 2
def _read(path: str, raw: bytes, policy: InputPolicy | None) -> bytes:
    """The bytes of a file: the local path ``raw`` (file-system bytes, checked against ``policy``), else
    the URI ``path`` through its pyarrow filesystem."""
    if not raw:
        import pyarrow.fs as pafs

        fs, inner = pafs.FileSystem.from_uri(path)
        with fs.open_input_file(inner) as fh:
            return bytes(fh.read())
    local = Path(os.fsdecode(raw))
    if policy is not None:
        local = policy.check_path(local)
    return local.read_bytes()


def _read_local(row: dict[str, Any]) -> dict[str, Any]:
    """Stage 1's read for local files whose names are not UTF-8 (pyarrow paths must be): by their bytes."""
    raw = bytes(row["raw"])
    return {"bytes": Path(os.fsdecode(raw)).read_bytes(), "path": safe_text(os.fsdecode(raw)), "raw": raw}


class _PageWorker:
    """Renders, checks, encodes and sends the pages of a batch of task rows; one per Ray worker process and
    run (see :func:`_pages`), so its client, connection pool and endpoint health carry over between tasks.

    The batch's pages go through one in-order window of ``threads`` pages (the loader's, across file
    boundaries), so a folder of one-page scans keeps as many requests in flight as one long PDF."""

    def __init__(self, opts: _Options) -> None:
        self.opts = opts
        self.loader = opts.loader()
        self.cache = PageCache(Path(opts.cache_dir))

    def _job(self, page: Any, key: str) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            rec = self.loader.process_page(page)
            rec["page_rotation"] = page.rotation  # so a cached page's record is complete without rendering
            if self.loader.cacheable(rec):
                try:
                    self.cache.put(key, rec)
                except OSError as e:
                    log.warning("page cache %s not written (%s): a rerun redoes it", self.cache.root, e)
            return rec

        return run

    def _items(self, row: dict[str, Any]) -> Iterator[tuple[tuple[str, Any, bool], Any]]:
        """One task row's pages in order: (path, page or None, cached) with a job or a ready record; a
        file that cannot be read (or part of it) is one failed record after the pages it gave."""
        from ..pages import PageImage, iter_pages

        path = str(row["path"])
        if row["error"]:
            yield (path, None, False), Ready(failed_file_record(path, str(row["error"])))
            return
        digest, pages, count = str(row["digest"]), [int(n) for n in row["pages"]], int(row["count"])
        keys = {n: self.loader.page_key(digest, n) for n in pages}
        cached = {n: rec for n in pages if (rec := self.cache.get(keys[n])) is not None}
        todo = [n for n in pages if n not in cached]
        rendered: Iterator[Any] = iter(())
        try:
            if todo:
                data = bytes(row["data"]) or _read(path, bytes(row["raw"]), self.opts.policy)
                render = self.opts.mode != "text-layer"
                rendered = self.loader.gated(iter_pages(data, pages=todo, dpi=self.opts.dpi, render=render))
            for n in pages:
                if n in cached:
                    rec = cached[n]
                    page = PageImage(n, count, None, "", path, int(rec.get("page_rotation", 0) or 0))
                    yield (path, page, True), Ready(rec)
                    continue
                page = next(rendered, None)
                if page is None:  # fewer pages than counted: the rest are the file's failure below
                    raise InvalidInputError(f"page {n} of {count} could not be read")
                page.source = path
                yield (path, page, False), self._job(page, keys[page.number])
        except Exception as e:  # unreadable (part of the) file: its finished pages are kept
            yield (path, None, False), Ready(failed_file_record(path, e))

    def __call__(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items = (item for row in rows for item in self._items(row))
        out: list[dict[str, Any]] = []
        for (path, page, cached), rec in in_order(items, max(1, self.opts.threads)):
            if page is None:
                out.append(_row(rec))
            else:
                out.append(_row(page_record(self.loader.page_document(Path(path), page, rec, cached))))
        return out


_WORKER: dict[str, _PageWorker] = {}
"""This process's page worker, by run (its staging folder); a new run replaces it."""


def _pages(batch: pa.Table, opts: _Options) -> dict[str, list[Any]]:
    """Stage 2 as a Ray task: the page records of a batch of task rows. Tasks rather than actors, so
    that Ray's pooled worker processes (imports done) are reused from run to run."""
    worker = _WORKER.get(opts.staging)
    if worker is None:
        _WORKER.clear()
        worker = _WORKER[opts.staging] = _PageWorker(opts)
    return {"record": [r["record"] for r in worker(batch.to_pylist())]}


def _task_rows(files: int | None, workers: int, threads: int) -> int:
    """Task rows (files, or parts of large ones) per page task: a window of requests across files four
    times ``threads`` long, so the requests still in flight when a batch ends (each batch drains) are a
    small part of it; fewer where that would leave a page task fewer than two batches (``files`` unknown,
    as for object-store URLs: the full length)."""
    full = max(1, 4 * threads)
    return full if files is None else max(1, min(full, files // (2 * workers)))


def _read_blocks(files: int, workers: int) -> int:
    """Read tasks for ``files`` local files: one per file up to eight per page task, then up to eight
    files to a task (Ray's per-task cost spread over them, the page tasks still fed from many)."""
    return max(1, min(files, max(8 * workers, -(-files // 8))))


def _row(record: dict[str, Any]) -> dict[str, Any]:
    return {"record": json.dumps(record, ensure_ascii=False)}


# ---------------------------------------------------------------------------------------------- stage 3
def _flat_metadata(rec: dict[str, Any]) -> dict[str, Any]:
    meta = rec.get("metadata") or {}
    flat = {k: meta.get(k) for k in METADATA_KEYS}
    if flat["blocks"] is not None:  # boxes per block: one JSON string a row (Parquet needs one schema)
        flat["blocks"] = json.dumps(flat["blocks"], ensure_ascii=False)
    return {**rec, "metadata": flat}


def write_shard(records: list[dict[str, Any]], folder: Path, output: RecordFormat) -> str:
    """Write ``records`` as one shard file in ``folder`` (temp file, then rename); returns its name."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"part-{uuid.uuid4().hex[:16]}.{output}"
    tmp = folder / f".{name}.tmp"
    if output == "jsonl":
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = [_flat_metadata(r) for r in records]
        pq.write_table(pa.Table.from_pylist(rows, schema=parquet_schema()), tmp)
    os.replace(tmp, folder / name)
    return name


def _count(records: list[dict[str, Any]]) -> dict[str, Any]:
    c = {"pages": len(records), "ok": 0, "cached": 0, "blank": 0, "fallback": 0, "failed": 0}
    c |= {"image_tokens": 0, "requests": 0}
    for r in records:
        m = r.get("metadata") or {}
        status = m.get("status")
        if status in ("ok", "blank", "fallback", "failed"):
            c[status] += 1
        if m.get("cached"):
            c["cached"] += 1
        else:
            c["image_tokens"] += int(m.get("image_tokens") or 0)
            c["requests"] += int(m.get("requests") or 0)
    return c


def _write_batch(batch: dict[str, Any], opts: _Options) -> dict[str, list[Any]]:
    """A batch of page rows -> one shard; returns its name, counts and sources (one row)."""
    records = [json.loads(r) for r in batch["record"]]
    name = write_shard(records, Path(opts.staging), opts.output)
    counts = _count(records)
    sources = sorted({str(r.get("source")) for r in records})
    return {"shard": [name], "sources": [json.dumps(sources)], **{k: [v] for k, v in counts.items()}}


# ---------------------------------------------------------------------------------------------- driver
def _swap_in(staging: Path, out: Path) -> None:
    """Make ``staging`` the new ``OUT/records`` (the previous run's shards are removed)."""
    target = out / RECORDS_DIR
    old = out / f".{RECORDS_DIR}-old-{uuid.uuid4().hex[:8]}"
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _init_ray(address: str | None) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)


def ray_ingest(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    settings: Settings | None = None,
    mode: LoaderMode = "auto",
    policy: InputPolicy | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    dpi: int | None = None,
    plain: bool = False,
    fallbacks: Sequence[FallbackEngine] = ("text-layer", "local"),
    detect_rotation: bool = True,
    output: RecordFormat = "jsonl",
    ray_address: str | None = None,
    workers: int | None = None,
    task_cpus: int = 1,
    pages_per_task: int = 8,
    shard_pages: int = 256,
    filesystem: pyarrow.fs.FileSystem | None = None,
) -> IngestSummary:
    """Ingest ``inputs`` (files, folders, object-store URLs) into page-record shards in ``OUT/records``.

    ``settings`` configures the client of every worker (``base_urls`` for several replicas; default:
    ``Settings.from_env()``); ``ray_address`` joins a running cluster (default: the Ray already initialised
    in this process, else a new local one); ``workers`` page tasks run at once (default: the cluster's
    CPUs over ``task_cpus``), ``task_cpus`` CPUs each (and page work on as many threads), each with up to
    ``settings.max_concurrency`` requests in flight. The other options are local ingest's. Returns the
    run's counts; ``written`` names the shards (relative to ``out``).
    """
    import ray

    if output not in ("jsonl", "parquet"):
        raise InvalidInputError(f"output {output!r} is not 'jsonl' or 'parquet'")
    if task_cpus < 1:
        raise InvalidInputError(f"task_cpus={task_cpus} must be at least 1 (the CPUs of each page task)")
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInputError(f"{safe_text(str(out_dir))}: the output must be a folder")
    texts = [os.fspath(p) for p in inputs]
    remote = [p for p in texts if _URL.match(p) and not p.startswith("file://")]
    local = [Path(p.removeprefix("file://")) for p in texts if p not in remote]
    for p in local:
        if not p.exists() and not p.is_symlink():
            raise InvalidInputError(f"{safe_text(str(p))}: no such file or folder")
    files, refused = list_files(local, policy) if local else ([], {})
    readable = [f for f in files if f not in refused]
    if settings is None and mode in ("vlm", "auto"):
        settings = Settings.from_env()
    _init_ray(ray_address)
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // task_cpus)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / f".{RECORDS_DIR}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    # how each local file is found in Ray's rows -> its source as local ingest names it (escaped)
    abs_local = {
        safe_text(os.path.abspath(f)): safe_text(str(policy.check_path(f) if policy is not None else f))
        for f in readable
    }
    utf8 = [os.path.abspath(f) for f in readable if safe_text(str(f)) == str(f)]
    odd = [os.fsencode(os.path.abspath(f)) for f in readable if safe_text(str(f)) != str(f)]
    opts = _Options(
        mode=mode,
        dpi=check_dpi(dpi) if dpi is not None else current(settings).dpi,
        plain=plain,
        fallbacks=tuple(fallbacks),
        detect_rotation=detect_rotation,
        cache_dir=os.path.abspath(cache_dir if cache_dir is not None else out_dir / ".cache"),
        settings=settings,
        policy=policy,
        pages_per_task=pages_per_task,
        staging=str(staging.resolve()),
        output=output,
        threads=settings.max_concurrency if settings is not None else 1,
        task_cpus=task_cpus,
        sources=abs_local,
    )
    summary = IngestSummary(out=safe_text(str(out_dir)))
    sources: set[str] = set()
    try:
        if refused:  # refused by the policy on the driver: never handed to a worker
            recs = [failed_file_record(f, e) for f, e in refused.items()]
            name = write_shard(recs, staging, output)
            _add(summary, {"shard": name, **_count(recs)})
            sources.update(safe_text(str(f)) for f in refused)
        parts = []
        # reading, splitting and writing take no CPU of their own in Ray's accounting (the page tasks
        # hold the cores), so they are capped in number (unbounded, they start a process per file), but
        # no lower than the page tasks; a read task costs ~0.17 s of Ray's scheduling on a 16-core
        # machine, so small files are read a few to a task (:func:`_read_blocks`)
        light = max(2, min(16, workers))
        if utf8:
            blocks = _read_blocks(len(utf8), workers)
            parts.append(
                ray.data.read_binary_files(
                    utf8, include_paths=True, override_num_blocks=blocks, num_cpus=0, concurrency=light
                )
            )
        if odd:
            blocks = _read_blocks(len(odd), workers)
            items = ray.data.from_items([{"raw": r} for r in odd], override_num_blocks=blocks)
            parts.append(items.map(_read_local, num_cpus=0, compute=ray.data.TaskPoolStrategy(size=light)))
        if remote:
            parts.append(
                ray.data.read_binary_files(
                    remote,
                    include_paths=True,
                    filesystem=filesystem,
                    file_extensions=sorted(s.lstrip(".") for s in DOC_SUFFIXES),
                    num_cpus=0,
                    concurrency=light,
                )
            )
        if parts:
            ds = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
            light_tasks = ray.data.TaskPoolStrategy(size=light)  # `concurrency=` is deprecated for maps
            ds = ds.flat_map(_split, fn_kwargs={"opts": opts}, num_cpus=0, compute=light_tasks)
            ds = ds.map_batches(
                _pages,
                fn_kwargs={"opts": opts},
                batch_size=_task_rows(len(utf8) + len(odd) if not remote else None, workers, opts.threads),
                batch_format="pyarrow",
                compute=ray.data.TaskPoolStrategy(size=workers),
                num_cpus=task_cpus,
            )
            ds = ds.map_batches(
                _write_batch,
                fn_kwargs={"opts": opts},
                batch_size=shard_pages,
                batch_format="pandas",
                num_cpus=0,
                compute=light_tasks,
            )
            for row in ds.iter_rows():
                _add(summary, row)
                sources.update(json.loads(row["sources"]))
        _swap_in(staging, out_dir)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
    summary.documents = len(sources)
    return summary


def _add(summary: IngestSummary, row: dict[str, Any]) -> None:
    summary.written.append(f"{RECORDS_DIR}/{row['shard']}")
    for k in ("pages", "ok", "cached", "blank", "fallback", "failed", "image_tokens", "requests"):
        setattr(summary, k, getattr(summary, k) + int(row[k]))


def read_records(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every page record of the last complete run in ``OUT/records`` (JSONL or Parquet shards)."""
    folder = Path(out) / RECORDS_DIR
    recs: list[dict[str, Any]] = []
    for shard in sorted(folder.glob("part-*")):
        if shard.suffix == ".jsonl":
            recs.extend(json.loads(line) for line in shard.read_text("utf-8").splitlines() if line)
        elif shard.suffix == ".parquet":
            import pyarrow.parquet as pq

            recs.extend(pq.read_table(shard).to_pylist())
    return recs


__all__ = [
    "METADATA_FIELDS",
    "METADATA_KEYS",
    "RECORDS_DIR",
    "parquet_schema",
    "ray_ingest",
    "read_records",
    "write_shard",
]
