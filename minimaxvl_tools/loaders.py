"""MiniMaxVLDocumentLoader: PDFs and images in, one LangChain ``Document`` per page out.

Pages stream (a 500-page PDF never sits in memory: at most ``max_concurrency`` pages are held, in flight
together across file boundaries, and come out in order), each page's result is cached on disk
under a key made of the file's content hash, the page number and every setting that changes the output,
so an interrupted run resumes without recomputing finished pages. A failed page is recorded in its
``Document.metadata['error']`` and the rest go on; a caller can stop the job when the failure rate
passes a threshold.

Modes: ``vlm`` (MiniMax-VL-01 OCR through the same page pipeline the tools use), ``text-layer``
(born-digital pages, no model), ``auto`` (text layer where it is good, OCR otherwise), ``local`` (the
offline Tesseract engine: no GPU, no hub).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Literal

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from pydantic import BaseModel

from .errors import InvalidInputError, JobAbortedError, MiniMaxVLError
from .images.policy import InputPolicy
from .pages.window import FailureRule
from .pdf import text_layer_is_good
from .results import OCRPage, markdown_to_text

log = logging.getLogger(__name__)

LoaderMode = Literal["vlm", "text-layer", "auto", "local"]
FallbackEngine = Literal["text-layer", "local"]
CACHE_VERSION = "1"
_Entry = tuple[Path, Any, Any, bool]
"""A page on its way out of the loader: (file, page, its record or job, whether it came from the cache)."""
DOC_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"}


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


def file_digest(path: Path) -> str:
    """The sha256 (hex) of a file's bytes: the content part of every page's cache key."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_file_digest = file_digest


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


def _page_keys(path: Path, number: int, count: int) -> dict[str, Any]:
    """LangChain's PDF-loader page keys (``PyPDFLoader``): ``source``, 0-based ``page``, ``page_label``,
    ``total_pages``; plus ``page_number``, the 1-based number people, citations and ``pages=`` use."""
    return {
        "source": str(path),
        "page": number - 1,
        "page_label": str(number),
        "page_number": number,
        "total_pages": count,
    }


def _no_none(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` without None values: vector stores such as Chroma refuse them, so absent means unset."""
    return {k: v for k, v in meta.items() if v is not None}


class MiniMaxVLDocumentLoader(BaseLoader):
    """Load files or folders of PDFs and images as one ``Document`` per page (lazy, cached, resumable).

    ``file_path`` (as LangChain's PDF loaders name it) or ``paths``: one file or folder, or a list.

    Page metadata follows LangChain's PDF loaders (``PyPDFLoader``, ``PyMuPDFLoader``): ``source`` (the
    file), ``page`` (**0-based** index), ``page_label`` (the page number as text) and ``total_pages``,
    plus ``page_number`` (1-based, as the tools' ``pages=`` and citations count), ``status`` (``ok``,
    ``blank``, ``fallback``, ``failed``), ``engine``, ``extraction``, ``image_tokens``, ``requests``,
    ``crops``, ``rotation`` (the PDF's own), ``rotation_corrected``, ``cached``, and when they apply
    ``error`` and ``fallback``. A key that does not apply is left out, never None (vector stores such as
    Chroma refuse None values). A file that cannot be opened yields one ``failed`` Document with
    ``source`` and ``error`` but no page keys.
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        *,
        file_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        mode: LoaderMode = "auto",
        client: Any | None = None,
        pages: str | Sequence[int] | None = None,
        dpi: int = 200,
        password: str | None = None,
        plain: bool = False,
        recursive: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
        min_text_chars: int = 40,
        fallbacks: Sequence[FallbackEngine] = ("text-layer", "local"),
        skip_blank: bool = True,
        detect_rotation: bool = True,
        min_x_height: float | None = None,
        max_failure_rate: float | None = None,
        min_pages_before_abort: int = 5,
        policy: InputPolicy | None = None,
        local_engine: Any | None = None,
        workers: int | None = None,
        digests: dict[Path, str] | None = None,
    ) -> None:
        if mode not in ("vlm", "text-layer", "auto", "local"):
            raise InvalidInputError(f"mode {mode!r} is not one of 'vlm', 'text-layer', 'auto', 'local'")
        if (paths is None) == (file_path is None):
            raise InvalidInputError(
                "give the documents as file_path= (or paths=): one file or folder, or a list of them"
                if paths is None
                else "give either paths or file_path, not both"
            )
        paths = paths if paths is not None else file_path
        assert paths is not None
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        self.mode: LoaderMode = mode
        self._client = client
        self.pages = pages
        self.dpi = dpi
        self.password = password
        self.plain = plain
        self.recursive = recursive
        self.cache = PageCache(Path(cache_dir)) if (use_cache and cache_dir is not None) else None
        if use_cache and cache_dir is None:
            self.cache = PageCache(Path(".minimaxvl-cache") / "pages")
        self.min_text_chars = min_text_chars
        self.fallbacks = tuple(fallbacks)
        self.skip_blank = skip_blank
        self.detect_rotation = detect_rotation
        if min_x_height is not None and not min_x_height > 0:
            raise InvalidInputError(f"min_x_height={min_x_height} must be positive (pixels), or None")
        self.min_x_height = min_x_height
        self.max_failure_rate = max_failure_rate
        self.min_pages_before_abort = min_pages_before_abort
        self.policy = policy if policy is not None else _configured_policy(client)
        self._local = local_engine
        self.workers = workers  # page-work processes; None: the client's settings.workers (see page_workers)
        self.digests: dict[Path, str] = dict(digests or {})
        """Content hashes the caller already computed (file -> sha256 hex): used instead of reading again."""
        self.stats = JobStats()

    # ------------------------------------------------------------ discovery
    def files(self) -> list[Path]:
        """Every document file the given paths name, sorted, folders expanded by suffix."""
        out: list[Path] = []
        for p in self.paths:
            if self.policy is not None:
                p = self.policy.check_path(p)
            if p.is_dir():
                it = p.rglob("*") if self.recursive else p.glob("*")
                out.extend(sorted(f for f in it if f.is_file() and f.suffix.lower() in DOC_SUFFIXES))
            elif p.is_file():
                out.append(p)
            else:
                raise InvalidInputError(f"{p}: no such file or folder; pass PDFs, images or folders of them")
        return out

    # ------------------------------------------------------------ engines
    @property
    def client(self) -> Any:
        """The MiniMaxVLClient used in ``vlm``/``auto`` modes (built from the environment when not given)."""
        if self._client is None:
            from .client import MiniMaxVLClient

            self._client = MiniMaxVLClient()
        return self._client

    @property
    def local_engine(self) -> Any:
        """The offline engine used in ``local`` mode and as a fallback."""
        if self._local is None:
            from .local_ocr import LocalOCREngine

            self._local = LocalOCREngine()
        return self._local

    def _plan_kwargs(self) -> dict[str, Any]:
        """Page-plan options passed to ocr_page (the legibility target, when set)."""
        return {} if self.min_x_height is None else {"min_x_height": self.min_x_height}

    def _settings_key(self) -> str:
        # the model matters only where it reads pages; asking ``self.client`` here (not ``self._client``)
        # keeps the key the same whether the client was passed in or built lazily on the first page
        model = ""
        if self.mode in ("vlm", "auto"):
            model = str(getattr(getattr(self.client, "settings", None), "model", "") or "")
        parts = [
            CACHE_VERSION,
            self.mode,
            str(self.dpi),
            str(self.plain),
            str(self.min_text_chars),
            ",".join(self.fallbacks),
            str(self.skip_blank),
            str(self.detect_rotation),
            model,
        ]
        if self.min_x_height is not None:  # only when set, so existing caches keep their keys
            parts.append(f"x{self.min_x_height:g}")
        return "|".join(parts)

    def _key(self, digest: str, page: int) -> str:
        return hashlib.sha256(f"{digest}|{page}|{self._settings_key()}".encode()).hexdigest()

    def page_key(self, digest: str, page: int) -> str:
        """The cache key of page ``page`` of the file with content hash ``digest`` under these settings."""
        return self._key(digest, page)

    def process_page(self, page: Any) -> dict[str, Any]:
        """One page through the loader's pipeline (no cache): its record; errors become a failed record."""
        return self._process_sync(page)

    def page_document(self, path: Path, page: Any, rec: dict[str, Any], cached: bool) -> Document:
        """The ``Document`` the loader yields for ``page`` of ``path`` with record ``rec``."""
        return self._document(path, page, rec, cached)

    @staticmethod
    def cacheable(rec: dict[str, Any]) -> bool:
        """True when ``rec`` may be cached (``ok``, ``blank``); failed and fallback pages are redone."""
        return MiniMaxVLDocumentLoader._cacheable(rec)

    # ------------------------------------------------------------ per page
    def _prepare(self, page: Any) -> tuple[Any, dict[str, Any] | None]:
        """Blank check and rotation fix on the client: returns (image, early-record-or-None)."""
        from .images import quality

        image = page.image
        if image is None:
            return None, None
        if self.skip_blank:
            chk = quality.is_blank(image)
            if chk.blank:
                return image, {
                    "content": "",
                    "status": "blank",
                    "engine": "none",
                    "extraction": "none",
                    "error": None,
                    "note": chk.reason,
                }
        return image, None

    def _rotate(self, image: Any) -> tuple[Any, int]:
        if not self.detect_rotation or image is None:
            return image, 0
        from .images import quality

        try:
            engine = self.local_engine if self.local_engine.available() else None
        except MiniMaxVLError:
            engine = None
        chk = quality.detect_rotation(image, engine=engine)
        if chk.angle:
            return quality.correct_rotation(image, chk), chk.angle
        return image, 0

    def _text_record(self, text: str) -> dict[str, Any]:
        return {
            "content": text,
            "status": "ok",
            "engine": "text-layer",
            "extraction": "text-layer",
            "error": None,
        }

    def _local_record(self, image: Any) -> dict[str, Any]:
        res = self.local_engine.ocr(image)
        return {
            "content": res.text,
            "status": "ok",
            "engine": res.engine,
            "extraction": "ocr",
            "error": None,
            "confidence": res.mean_confidence,
        }

    def _vlm_record(self, ocr: OCRPage) -> dict[str, Any]:
        # plain: the model was asked for plain text, but strip any markdown it wrote anyway (once, here, so
        # the cached record already holds what the Document shows)
        content = markdown_to_text(ocr.markdown) if self.plain else ocr.markdown
        return {
            "content": content,
            "status": ocr.status,
            "engine": ocr.engine,
            "extraction": "ocr",
            "error": ocr.error,
            "image_tokens": ocr.image_tokens,
            "requests": ocr.requests,
            "crops": len(ocr.crops),
            "blocks": _block_meta(ocr, content),
        }

    def _fallback(self, page: Any, image: Any, error: str) -> dict[str, Any]:
        """After the model path failed: text layer or local engine if allowed, flagged; else failed."""
        for fb in self.fallbacks:
            try:
                if fb == "text-layer" and text_layer_is_good(page.text_layer or "", 1):
                    rec = self._text_record(page.text_layer)
                elif fb == "local" and image is not None and self.local_engine.available():
                    rec = self._local_record(image)
                else:
                    continue
            except Exception:  # a broken fallback must not turn one page's failure into the job's
                continue
            rec.update(status="fallback", fallback=fb, error=error)
            return rec
        return {"content": "", "status": "failed", "engine": "none", "extraction": "none", "error": error}

    @staticmethod
    def _spent(rec: dict[str, Any], model_rec: dict[str, Any]) -> dict[str, Any]:
        """``rec`` with the model path's cost kept: a failed or fallback page still says what it spent."""
        for key in ("image_tokens", "requests", "crops"):
            rec[key] = model_rec.get(key, 0)
        return rec

    def _needs_model(self, page: Any) -> bool:
        if self.mode == "vlm":
            return True
        if self.mode == "auto":
            return not text_layer_is_good(page.text_layer or "", self.min_text_chars)
        return False

    @staticmethod
    def _failed_record(error: str) -> dict[str, Any]:
        return {"content": "", "status": "failed", "engine": "none", "extraction": "none", "error": error}

    def _page_image(self, page: Any, image: Any, turned: int = 0) -> Any:
        from .pages import PageImage

        return PageImage(
            number=page.number,
            page_count=page.page_count,
            image=image,
            text_layer=page.text_layer,
            source=page.source,
            rotation=page.rotation,
            warnings=list(getattr(page, "warnings", [])),
            pdf_size=None
            if turned
            else getattr(page, "pdf_size", None),  # boxes of a turned image: no PDF map
        )

    def _early(self, page: Any) -> tuple[Any, int, dict[str, Any] | None]:
        """Everything before the model request, on the client: text-layer shortcut, blank check, rotation.

        Returns ``(image, rotation_corrected, record_or_None)``; a record means the page is done already.
        """
        if self.mode == "text-layer":
            return None, 0, self._text_record(page.text_layer or "")
        if self.mode == "auto" and not self._needs_model(page):
            return None, 0, self._text_record(page.text_layer)
        if getattr(page, "error", None) is not None:  # not rendered: text layer fallback, else failed
            return None, 0, self._fallback(page, None, f"{type(page.error).__name__}: {page.error}")
        image, early = self._prepare(page)
        if early is not None:
            return image, 0, early
        image, rotation = self._rotate(image)
        return image, rotation, None

    def _process_sync(self, page: Any) -> dict[str, Any]:
        """One page, isolated: any error becomes this page's failed (or fallback) record, never the job's."""
        try:
            image, rotation, rec = self._early(page)
            if rec is not None:
                return rec
        except Exception as e:  # a page we cannot even prepare fails alone
            return self._failed_record(f"{type(e).__name__}: {e}")
        try:
            if self.mode == "local":
                rec = self._local_record(image)
            else:
                from .pages import ocr_page

                ocr = ocr_page(
                    self.client,
                    self._page_image(page, image, rotation),
                    plain=self.plain,
                    skip_blank=False,  # the loader checked (see _early): once a page
                    **self._plan_kwargs(),
                )
                rec = self._vlm_record(ocr)
                if ocr.status == "failed":
                    rec = self._spent(self._fallback(page, image, ocr.error or "model output failed"), rec)
        except Exception as e:
            err = f"{type(e).__name__}: {e}"
            rec = self._failed_record(err) if self.mode == "local" else self._fallback(page, image, err)
        rec["rotation_corrected"] = rotation
        return rec

    async def _process_async(self, page: Any) -> dict[str, Any]:
        """Async :meth:`_process_sync`: client-side work (render checks, Tesseract) runs in a thread so the
        event loop keeps other pages' requests moving; only the model request is awaited on the loop."""
        import asyncio

        if self.mode in ("text-layer", "local") or not self._needs_model(page):
            return await asyncio.to_thread(self._process_sync, page)
        try:
            image, rotation, rec = await asyncio.to_thread(self._early, page)
            if rec is not None:
                return rec
        except Exception as e:
            return self._failed_record(f"{type(e).__name__}: {e}")
        from .pages import aocr_page

        try:
            ocr = await aocr_page(
                self.client,
                self._page_image(page, image, rotation),
                plain=self.plain,
                skip_blank=False,  # the loader checked (see _early): once a page
                **self._plan_kwargs(),
            )
            rec = self._vlm_record(ocr)
            if ocr.status == "failed":
                err = ocr.error or "model output failed validation"
                rec = self._spent(await asyncio.to_thread(self._fallback, page, image, err), rec)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            rec = await asyncio.to_thread(self._fallback, page, image, f"{type(e).__name__}: {e}")
        rec["rotation_corrected"] = rotation
        return rec

    @staticmethod
    def _cacheable(rec: dict[str, Any]) -> bool:
        """Only trustworthy results are cached: ``failed`` and ``fallback`` pages are retried on a rerun
        (the endpoint may be back), ``ok`` and ``blank`` pages never are."""
        return rec.get("status") in ("ok", "blank")

    # ------------------------------------------------------------ documents
    def _iter_source_pages(self, path: Path, render: bool = True) -> Iterator[Any]:
        from .pages import iter_pages

        render = render and self.mode != "text-layer"
        yield from iter_pages(
            path,
            pages=self.pages,
            dpi=self.dpi,
            policy=self.policy,
            password=self.password,
            render=render,
            page_errors=True,  # a page that cannot be rendered fails alone (see _early)
        )

    def _document(self, path: Path, page: Any, rec: dict[str, Any], cached: bool) -> Document:
        meta: dict[str, Any] = {
            **_page_keys(path, page.number, page.page_count),
            "engine": rec.get("engine"),
            "extraction": rec.get("extraction"),
            "status": rec.get("status"),
            "image_tokens": rec.get("image_tokens", 0),
            "requests": rec.get("requests", 0),
            "crops": rec.get("crops", 0),
            "rotation": page.rotation,
            "rotation_corrected": rec.get("rotation_corrected", 0),
            "error": rec.get("error"),
            "cached": cached,
        }
        if rec.get("fallback"):
            meta["fallback"] = rec["fallback"]
        if getattr(page, "warnings", None):  # e.g. rendered at a lower dpi to stay under max_pixels
            meta["render_note"] = "; ".join(page.warnings)
        if rec.get("blocks"):  # [{"box", "kind", "pdf_box"?, "span"?}]: where each block was read
            meta["blocks"] = rec["blocks"]
        return Document(page_content=rec.get("content", "") or "", metadata=_no_none(meta))

    def _account(self, rec: dict[str, Any], cached: bool) -> None:
        s = self.stats
        s.pages += 1
        s.cached += int(cached)
        status = rec.get("status")
        s.ok += int(status == "ok")
        s.blank += int(status == "blank")
        s.fallback += int(status == "fallback")
        s.failed += int(status == "failed")
        if not cached:
            s.image_tokens += int(rec.get("image_tokens", 0) or 0)
            s.requests += int(rec.get("requests", 0) or 0)
        if s.pages >= self.min_pages_before_abort:  # the rate over the pages done so far (total unknown)
            FailureRule(self.max_failure_rate, self.min_pages_before_abort).check(
                s.failed, s.pages, detail="check the endpoint, then rerun (finished pages are cached)"
            )

    def _error_doc(self, path: Path, error: Exception) -> Document:
        self.stats.pages += 1
        self.stats.failed += 1
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

    def _window(self) -> int:
        """Pages in flight: the client's ``max_concurrency`` (model modes), the CPUs for Tesseract (at most
        4), one for text layers (nothing to overlap)."""
        if self.mode == "text-layer":
            return 1
        if self.mode == "local":
            return max(1, min(4, os.cpu_count() or 1))
        from .pages.read import setting_of

        return max(1, int(setting_of(self.client, "max_concurrency")))

    def _job_sync(self, page: Any, key: str) -> dict[str, Any]:
        """Process one page and cache it as soon as it is done (on the worker, not when it is yielded)."""
        rec = self._process_sync(page)
        if self.cache and self._cacheable(rec):
            self._store(key, rec)
        return rec

    def _store(self, key: str, rec: dict[str, Any]) -> None:
        """Cache a finished page; a cache that cannot be written (disk full, read-only) costs only the
        resume of this page, never its result: warn and go on."""
        assert self.cache is not None
        try:
            self.cache.put(key, rec)
        except OSError as e:
            log.warning(
                "page cache %s not written (%s): the page is returned but a rerun redoes it",
                self.cache.root,
                e,
            )

    def _start_sync(self, pool: _DaemonPool | None, page: Any, key: str) -> Any:
        """A page's job: a Future on the pool, or (one page at a time) the finished record itself."""
        return self._job_sync(page, key) if pool is None else pool.submit(self._job_sync, page, key)

    def _settle(self, entry: _Entry, rec: dict[str, Any]) -> Document:
        """Count a finished page (may raise JobAbortedError) and make its Document."""
        path, page, _job, cached = entry
        self._account(rec, cached)
        return self._document(path, page, rec, cached)

    def _drain_sync(self, pending: deque[_Entry], keep: int) -> Iterator[Document]:
        """Yield pages oldest first: the finished ones at the head, then wait until <= ``keep`` remain."""
        while pending and (len(pending) > keep or _done(pending[0][2])):
            job = pending[0][2]
            rec = job if isinstance(job, dict) else job.result()
            yield self._settle(pending.popleft(), rec)

    def lazy_load(self) -> Iterator[Document]:
        """Yield one Document per page, in file and page order; cached pages are not recomputed.

        Up to :meth:`_window` pages (the client's ``max_concurrency``) are processed at once on worker
        threads, across file boundaries, so a folder of one-page scans keeps the server as busy as one long
        PDF; rendering stays on the calling thread. A finished page is yielded once the pages before it
        are (at most ``window`` pages are held at once, cached ones included). Each page is cached as
        soon as it is done, so a consumer that stops (break, Ctrl-C, a killed process) loses at most the
        pages in flight.
        """
        t0 = time.perf_counter()
        self.stats = JobStats()
        window = self._window()
        pool = _DaemonPool(window) if window > 1 else None
        pending: deque[_Entry] = deque()
        try:
            for path in self.files():
                self.stats.documents += 1
                try:
                    digest = self.digests.get(path) or _file_digest(path)
                    procs = self._page_pool(path)  # page work in processes (see page_workers) or None
                    for page in self._iter_source_pages(path, render=procs is None):
                        key = self._key(digest, page.number)
                        rec = self.cache.get(key) if self.cache else None
                        yield from self._drain_sync(pending, window - 1)  # room first: <= window pages
                        if rec is None and procs is not None and self._needs_model(page):
                            job = procs.submit(self._page_job(path, page))
                            run = (self._job_pooled, procs, job, path, page, key)
                            pending.append(
                                (path, page, run[0](*run[1:]) if pool is None else pool.submit(*run), False)
                            )
                        elif rec is None:
                            pending.append((path, page, self._start_sync(pool, page, key), False))
                        else:
                            pending.append((path, page, rec, True))
                except JobAbortedError:
                    raise
                except MiniMaxVLError as e:  # the whole file is unreadable: record it after its pages
                    yield from self._drain_sync(pending, 0)
                    yield self._error_doc(path, e)
            yield from self._drain_sync(pending, 0)
        finally:
            for _, _, job, _ in pending:
                if isinstance(job, Future):
                    job.cancel()
            if pool is not None:
                pool.shutdown()
            self.stats.seconds += time.perf_counter() - t0

    async def _job(self, page: Any, key: str) -> dict[str, Any]:
        """Process one page and cache it as soon as it is done (not when it is yielded): a run stopped
        while an earlier page is still in flight keeps the later pages that already finished."""
        import asyncio

        rec = await self._process_async(page)
        if self.cache and self._cacheable(rec):
            await asyncio.to_thread(self._store, key, rec)
        return rec

    async def _drain(self, pending: deque[_Entry], keep: int) -> AsyncIterator[Document]:
        """Yield pages oldest first: the finished ones at the head, then wait until <= ``keep`` remain."""
        while pending and (len(pending) > keep or _done(pending[0][2])):
            job = pending[0][2]
            rec = job if isinstance(job, dict) else await job
            yield self._settle(pending.popleft(), rec)

    async def alazy_load(self) -> AsyncIterator[Document]:
        """Async pages: at most the client's ``max_concurrency`` pages in flight (across file boundaries),
        yielded in file and page order.

        Closing the iterator early (or an abort) cancels the pages still in flight; finished ones are cached.
        """
        import asyncio

        t0 = time.perf_counter()
        self.stats = JobStats()
        window = self._window()
        sentinel = object()
        pending: deque[_Entry] = deque()
        try:
            for path in self.files():
                self.stats.documents += 1
                try:
                    digest = self.digests.get(path) or await asyncio.to_thread(_file_digest, path)
                    procs = await asyncio.to_thread(self._page_pool, path)
                    it = self._iter_source_pages(path, render=procs is None)
                    while (page := await asyncio.to_thread(next, it, sentinel)) is not sentinel:
                        key = self._key(digest, page.number)
                        rec = self.cache.get(key) if self.cache else None
                        # make room first, so no more than ``window`` pages are ever held
                        async for d in self._drain(pending, window - 1):
                            yield d
                        if rec is None and procs is not None and self._needs_model(page):
                            job = self._ajob_pooled(procs, path, page, key)
                            pending.append((path, page, asyncio.ensure_future(job), False))
                        elif rec is None:
                            pending.append((path, page, asyncio.ensure_future(self._job(page, key)), False))
                        else:
                            pending.append((path, page, rec, True))
                except JobAbortedError:
                    raise
                except MiniMaxVLError as e:
                    async for d in self._drain(pending, 0):
                        yield d
                    yield self._error_doc(path, e)
            async for d in self._drain(pending, 0):
                yield d
        finally:
            for _, _, job, _ in pending:
                if not isinstance(job, dict):
                    job.cancel()
            self.stats.seconds += time.perf_counter() - t0

    # ------------------------------------------------------------ page work in processes
    def _page_pool(self, path: Path) -> Any:
        """The :class:`~.page_workers.PagePool` for ``path``'s pages, or None (in-process, as without it):
        model modes only; with ``workers`` None (here and in the client's settings), from the cores once the
        job reaches :data:`~.page_workers.SMALL_JOB_PAGES` pages (this file's count included)."""
        from . import page_workers as pw

        if self.mode not in ("vlm", "auto"):
            return None
        workers = self.workers
        if workers is None:
            workers = getattr(getattr(self.client, "settings", None), "workers", None)
        pages = None
        if workers is None:
            pages = self.stats.pages + self._count(path)
        count = pw.resolve_workers(workers, pages)
        return pw.shared_pool(count) if count else None

    def _count(self, path: Path) -> int:
        """Pages of ``path`` (a PDF's count, 1 for an image), only to size the job; 1 when unreadable."""
        from .pdf import is_pdf, pdf_page_count

        try:
            return pdf_page_count(path, password=self.password) if is_pdf(path) else 1
        except MiniMaxVLError:
            return 1

    def _page_job(self, path: Path, page: Any) -> Any:
        """The worker's order: the same render (full dpi), blank check, rotation and plan as in-process."""
        from .page_workers import PageJob
        from .pages import MIN_X_HEIGHT, _profile_of, _quality_of

        return PageJob(
            path=str(path),
            number=page.number,
            dpi=self.dpi,
            password=self.password,
            fit=False,
            min_x_height=MIN_X_HEIGHT if self.min_x_height is None else self.min_x_height,
            skip_blank=self.skip_blank,
            blank_uses_text_layer=False,
            fix_rotation=self.detect_rotation,
            plain=self.plain,
            profile=_profile_of(self.client),
            quality=_quality_of(self.client),
        )

    def _pixels(self, path: Path, page: Any, turned: int) -> Any:
        """The page rendered here (for the local fallback only), turned as the model saw it."""
        from .images.quality import correct_rotation
        from .pages import iter_pages

        if "local" not in self.fallbacks:
            return None
        image = next(iter(iter_pages(path, pages=[page.number], dpi=self.dpi, password=self.password))).image
        return correct_rotation(image, turned) if turned and image is not None else image

    def _prepared_record(self, outcome: Any) -> tuple[dict[str, Any] | None, int]:
        """(record, 0) for a page the worker could not prepare or found blank, else (None, its rotation)."""
        if outcome.error is not None:  # a page we cannot even prepare fails alone
            return self._failed_record(f"{type(outcome.error).__name__}: {outcome.error}"), 0
        prepared = outcome.page
        if prepared.blank:
            note = prepared.blank_reason
            return {
                "content": "",
                "status": "blank",
                "engine": "none",
                "extraction": "none",
                "error": None,
                "note": note,
            }, 0
        return None, prepared.rotation_applied

    def _start_pooled(self, pool: _DaemonPool | None, procs: Any, path: Path, page: Any, key: str) -> Any:
        """:meth:`_start_sync` with the page work sent to a worker process now, in page order."""
        job = procs.submit(self._page_job(path, page))
        if pool is None:
            return self._job_pooled(procs, job, path, page, key)
        fut = pool.submit(self._job_pooled, procs, job, path, page, key)
        fut.add_done_callback(lambda f: job.cancel() if f.cancelled() else None)  # a stop drops the page work
        return fut

    def _job_pooled(self, procs: Any, job: Any, path: Path, page: Any, key: str) -> dict[str, Any]:
        """:meth:`_job_sync` for a page prepared by a worker process: this thread only sends the requests."""
        from .page_workers import ocr_prepared

        outcome = procs.settle(job, self._page_job(path, page))
        rec, rotation = self._prepared_record(outcome)
        if rec is None:
            try:
                ocr = ocr_prepared(self.client, outcome.page, plain=self.plain)
                rec = self._vlm_record(ocr)
                if ocr.status == "failed":
                    image = self._pixels(path, page, rotation)
                    err = ocr.error or "model output failed"
                    rec = self._spent(self._fallback(page, image, err), rec)
            except Exception as e:
                rec = self._fallback(page, self._pixels(path, page, rotation), f"{type(e).__name__}: {e}")
            rec["rotation_corrected"] = rotation
        if self.cache and self._cacheable(rec):
            self._store(key, rec)
        return rec

    async def _ajob_pooled(self, procs: Any, path: Path, page: Any, key: str) -> dict[str, Any]:
        """Async :meth:`_job_pooled`: the worker's result awaited, the requests sent on the loop."""
        import asyncio

        from .page_workers import aocr_prepared

        outcome = await procs.aprepare(self._page_job(path, page))
        rec, rotation = self._prepared_record(outcome)
        if rec is None:
            try:
                ocr = await aocr_prepared(self.client, outcome.page, plain=self.plain)
                rec = self._vlm_record(ocr)
                if ocr.status == "failed":
                    image = await asyncio.to_thread(self._pixels, path, page, rotation)
                    err = ocr.error or "model output failed validation"
                    rec = self._spent(await asyncio.to_thread(self._fallback, page, image, err), rec)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                image = await asyncio.to_thread(self._pixels, path, page, rotation)
                rec = await asyncio.to_thread(self._fallback, page, image, f"{type(e).__name__}: {e}")
            rec["rotation_corrected"] = rotation
        if self.cache and self._cacheable(rec):
            await asyncio.to_thread(self._store, key, rec)
        return rec


def _configured_policy(client: Any) -> InputPolicy | None:
    """The policy ``MINIMAXVL_*`` (or the client's settings) configure for a loader given none: None (paths
    as given, anywhere) unless roots, URLs, private hosts or the pixel cap are set there."""
    from .settings import Settings

    settings = getattr(client, "settings", None)
    if not isinstance(settings, Settings):
        settings = Settings.from_env()
    keys = {"allowed_roots", "allow_urls", "allow_private_hosts", "url_allowlist", "max_pixels"}
    if not keys & settings.model_fields_set:
        return None
    policy = InputPolicy.from_settings(settings)
    if "allowed_roots" not in settings.model_fields_set:
        policy = policy.model_copy(update={"allowed_roots": None})
    return policy


def _done(job: Any) -> bool:
    """True when a pending page's record is ready (a record, or a finished Future / asyncio task)."""
    return isinstance(job, dict) or job.done()


class _DaemonPool:
    """Worker threads for :meth:`MiniMaxVLDocumentLoader.lazy_load`. Daemon threads, unlike
    ``ThreadPoolExecutor``'s, do not hold the interpreter at exit until in-flight requests end (Ctrl-C
    in ``minimaxvl ingest`` stops at once; pages are cached atomically, so nothing half-written stays)."""

    def __init__(self, workers: int) -> None:
        self._queue: queue.SimpleQueue[tuple[Future[Any], Any, tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"minimaxvl-page-{i}", daemon=True)
            for i in range(workers)
        ]
        self._started = 0

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` on a worker; threads start on demand, up to the pool size."""
        if self._started < len(self._threads):
            self._threads[self._started].start()
            self._started += 1
        fut: Future[Any] = Future()
        self._queue.put((fut, fn, args))
        return fut

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            fut, fn, args = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as e:  # delivered to the consumer by Future.result()
                fut.set_exception(e)

    def shutdown(self) -> None:
        """Let the workers end once the queue (cancelled jobs included) is worked off; does not wait."""
        for _ in range(self._started):
            self._queue.put(None)


def load_documents(paths: Iterable[str | os.PathLike[str]], **kwargs: Any) -> list[Document]:
    """Convenience: ``MiniMaxVLDocumentLoader(list(paths), **kwargs).load()``."""
    return MiniMaxVLDocumentLoader(list(paths), **kwargs).load()


__all__ = ["JobStats", "LoaderMode", "MiniMaxVLDocumentLoader", "PageCache", "file_digest", "load_documents"]


def _block_meta(ocr: OCRPage, content: str) -> list[dict[str, Any]]:
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
