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

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import aclosing, closing
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from ..errors import InvalidInputError, MiniMaxVLError
from ..images.policy import InputPolicy
from ..pages import PageImage, iter_pages
from ..pages.fallback import FallbackEngine, Fallbacks
from ..pages.pipeline import PageReader, cpu_gate, gated
from ..pages.read import setting_of
from ..pages.window import FailureRule, Ready, ain_order, in_order, window_for
from ..settings import check_dpi, current
from .recorder import LoaderMode, PageRecorder
from .records import (
    CACHE_VERSION,
    JobStats,
    PageCache,
    PageRecord,
    error_document,
    file_digest,
    page_document,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..client import MiniMaxVLClient
    from ..local_ocr import LocalOCREngine

log = logging.getLogger(__name__)

_Meta = tuple[Path, PageImage | None, bool]
"""A page on its way out of the loader: (file, page or None for a file that failed, from the cache)."""
DOC_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"}


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
        client: MiniMaxVLClient | None = None,
        pages: str | Sequence[int] | None = None,
        dpi: int | None = None,
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
        local_engine: LocalOCREngine | None = None,
        workers: int | None = None,
        page_threads: int | None = None,
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
        self.dpi = check_dpi(dpi) if dpi is not None else current(getattr(client, "settings", None)).dpi
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
        self.page_threads = page_threads
        self.digests: dict[Path, str] = dict(digests or {})
        """Content hashes the caller already computed (file -> sha256 hex): used instead of reading again."""
        self.stats = JobStats()

    @property
    def page_threads(self) -> int | None:
        """Threads of page work (rendering, checks, encoding) at once in this process, whatever the window
        (None: no bound): a job given N cores, such as a Ray task, keeps to N; requests go out meanwhile.
        Setting it builds the gate anew (InvalidInputError below 1)."""
        return self._page_threads

    @page_threads.setter
    def page_threads(self, threads: int | None) -> None:
        self._cpu = cpu_gate(threads)
        self._page_threads = threads

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
    def client(self) -> MiniMaxVLClient:
        """The MiniMaxVLClient used in ``vlm``/``auto`` modes (built from the environment when not given)."""
        if self._client is None:
            from ..client import MiniMaxVLClient

            self._client = MiniMaxVLClient()
        return self._client

    @property
    def local_engine(self) -> LocalOCREngine:
        """The offline engine used in ``local`` mode and as a fallback."""
        if self._local is None:
            from ..local_ocr import LocalOCREngine

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

    def process_page(self, page: PageImage) -> dict[str, Any]:
        """One page through the loader's pipeline (no cache): its record; errors become a failed record."""
        return self._recorder().read(page).cache_dict()

    def page_document(self, path: Path, page: PageImage, rec: dict[str, Any], cached: bool) -> Document:
        """The ``Document`` the loader yields for ``page`` of ``path`` with record ``rec``."""
        return page_document(path, page, PageRecord.model_validate(rec), cached)

    @staticmethod
    def cacheable(rec: dict[str, Any]) -> bool:
        """True when ``rec`` may be cached (``ok``, ``blank``); failed and fallback pages are redone."""
        return PageRecord.model_validate(rec).cacheable

    # ------------------------------------------------------------ per page
    def _recorder(self, workers: int = 0, path: Path | None = None) -> PageRecorder:
        """How this run records a page: pixel-only blank check (text layers are the loader's own business),
        rotation with Tesseract when installed, the loader's fallbacks, and with ``workers`` (model modes)
        the sender processes (:mod:`..page_senders`) or else the worker pool."""
        from ..page_senders import worker_pools

        fallbacks = Fallbacks(self.fallbacks, min_text_chars=1, local_engine=self._local)
        rotation = self._rotation_engine()
        reader = None
        if self.mode in ("vlm", "auto"):
            local_fallback = path is not None and "local" in self.fallbacks
            render = partial(self._render_one, path) if local_fallback else None
            pool, senders = worker_pools(self.client, workers)
            reader = PageReader.build(
                self.client,
                plain=self.plain,
                skip_blank=self.skip_blank,
                blank_uses_text_layer=False,
                fix_rotation=self.detect_rotation,
                rotation_engine=rotation,
                fallbacks=fallbacks,
                pool=pool,
                senders=senders,
                dpi=self.dpi,
                password=self.password,
                render=render,
                cpu=self._cpu,
                **self._plan_kwargs(),
            )
        return PageRecorder(
            mode=self.mode,
            reader=reader,
            fallbacks=fallbacks,
            local_engine=lambda: self.local_engine,
            rotation_engine=rotation,
            plain=self.plain,
            min_text_chars=self.min_text_chars,
            skip_blank=self.skip_blank,
            detect_rotation=self.detect_rotation,
        )

    def _rotation_engine(self) -> LocalOCREngine | None:
        if not self.detect_rotation or self.mode == "text-layer":
            return None
        try:
            return self.local_engine if self.local_engine.available() else None
        except MiniMaxVLError:
            return None

    def _render_one(self, path: Path, page: PageImage) -> PageImage | None:
        """``page`` of ``path`` rendered here (the local fallback of a page a worker prepared)."""
        return next(iter(iter_pages(path, pages=[page.number], dpi=self.dpi, password=self.password)), None)

    # ------------------------------------------------------------ jobs
    def _window(self) -> int:
        """Pages in flight: the client's ``max_concurrency`` (model modes; twice that when worker processes
        may read them, see :func:`~.pages.window.window_for`), the CPUs for Tesseract (at most 4), one for
        text layers (nothing to overlap)."""
        if self.mode == "text-layer":
            return 1
        if self.mode == "local":
            return max(1, min(4, os.cpu_count() or 1))
        from .. import page_workers as pw

        slots = max(1, int(setting_of(self.client, "max_concurrency")))
        return window_for(slots, workers=pw.resolve_workers(self._workers_setting()) > 0)

    def _workers_setting(self) -> int | None:
        """``workers`` as asked: this loader's, else its client's settings (None: from the cores)."""
        return self.workers if self.workers is not None else setting_of(self.client, "workers")

    def _store(self, key: str, rec: PageRecord) -> PageRecord:
        """Cache a finished page; a cache that cannot be written (disk full, read-only) costs only the
        resume of this page, never its result: warn and go on."""
        if self.cache is not None and rec.cacheable:
            try:
                self.cache.put(key, rec.cache_dict())
            except OSError as e:
                log.warning(
                    "page cache %s not written (%s): the page is returned but a rerun redoes it",
                    self.cache.root,
                    e,
                )
        return rec

    def _cached(self, key: str) -> PageRecord | None:
        return self.cache.record(key) if self.cache is not None else None

    def _job(self, rec: PageRecorder, path: Path, page: PageImage, key: str) -> Callable[[], PageRecord]:
        """The window's job for one page; it caches the page as soon as it is done (on the worker, not when
        it is handed out), so a stopped run keeps every finished page."""
        inner = rec.job(page, str(path))
        return lambda: self._store(key, inner())

    def _ajob(
        self, rec: PageRecorder, path: Path, page: PageImage, key: str
    ) -> Callable[[], Awaitable[PageRecord]]:
        """Async :meth:`_job`."""
        inner = rec.ajob(page, str(path))

        async def run() -> PageRecord:
            return await asyncio.to_thread(self._store, key, await inner())

        return run

    def _file_pages(self, path: Path) -> tuple[PageRecorder, Iterator[PageImage], str]:
        """A file's recorder (its worker pool, if any), its page stream and its content hash."""
        digest = self.digests.get(path) or file_digest(path)
        workers = self._page_workers(path)
        reader = self._recorder(workers, path)
        render = not workers and self.mode != "text-layer"
        pages = iter_pages(
            path,
            pages=self.pages,
            dpi=self.dpi,
            policy=self.policy,
            password=self.password,
            render=render,
            page_errors=True,  # a page that cannot be rendered fails alone (see PageRecorder.early)
        )
        return reader, self.gated(pages), digest

    def gated(self, pages: Iterator[PageImage]) -> Iterator[PageImage]:
        """``pages`` rendered within :attr:`page_threads` (as they are without a bound)."""
        return pages if self.page_threads is None else gated(pages, self._cpu)

    def _item(self, path: Path, page: PageImage, digest: str, make: Callable[..., Any]) -> tuple[_Meta, Any]:
        """One page's item: its cached record, or the job ``make(path, page, key)`` builds."""
        key = self._key(digest, page.number)
        rec = self._cached(key)
        if rec is not None:
            return (path, page, True), Ready(rec)
        return (path, page, False), make(path, page, key)

    def _items(self) -> Iterator[tuple[_Meta, Callable[[], PageRecord] | Ready[Any]]]:
        """Every page of every file with its job (or its cached record), in order; a file that cannot be
        opened is one item carrying its error, after the pages it gave."""
        for path in self.files():
            self.stats.documents += 1
            try:
                reader, pages, digest = self._file_pages(path)
                for page in pages:
                    yield self._item(path, page, digest, partial(self._job, reader))
            except MiniMaxVLError as e:  # the whole file is unreadable: record it after its pages
                yield (path, None, False), Ready(e)

    async def _aitems(self) -> AsyncIterator[tuple[_Meta, Callable[[], Awaitable[PageRecord]] | Ready[Any]]]:
        """Async :meth:`_items`: file hashing, page counts and rendering run in a thread, in order."""
        sentinel = object()
        for path in await asyncio.to_thread(self.files):
            self.stats.documents += 1
            try:
                reader, pages, digest = await asyncio.to_thread(self._file_pages, path)
                while (page := await asyncio.to_thread(next, pages, sentinel)) is not sentinel:
                    assert isinstance(page, PageImage)
                    yield self._item(path, page, digest, partial(self._ajob, reader))
            except MiniMaxVLError as e:
                yield (path, None, False), Ready(e)

    def _handed(self, meta: _Meta, result: PageRecord | MiniMaxVLError) -> Document:
        """Count a finished page (may raise JobAbortedError) and make its Document."""
        path, page, cached = meta
        if page is None or not isinstance(result, PageRecord):
            assert isinstance(result, Exception)
            self.stats.pages += 1
            self.stats.failed += 1
            return error_document(path, result)
        self.stats.count(result, cached)
        if self.stats.pages >= self.min_pages_before_abort:  # the rate over the pages done (total unknown)
            FailureRule(self.max_failure_rate, self.min_pages_before_abort).check(
                self.stats.failed,
                self.stats.pages,
                detail="check the endpoint, then rerun (finished pages are cached)",
            )
        return page_document(path, page, result, cached)

    def lazy_load(self) -> Iterator[Document]:
        """Yield one Document per page, in file and page order; cached pages are not recomputed.

        Up to :meth:`_window` pages (the client's ``max_concurrency``) are processed at once
        (:func:`~.pages.window.in_order`), across file boundaries, so a folder of one-page scans keeps the
        server as busy as one long PDF; rendering stays on the calling thread. A finished page is yielded
        once the pages before it are (at most ``window`` pages are held at once, cached ones included).
        Each page is cached as soon as it is done, so a consumer that stops (break, Ctrl-C, a killed
        process) loses at most the pages in flight.
        """
        t0 = time.perf_counter()
        self.stats = JobStats()
        try:
            with closing(in_order(self._items(), self._window())) as finished:
                for meta, result in finished:
                    yield self._handed(meta, result)
        finally:
            self.stats.seconds += time.perf_counter() - t0

    async def alazy_load(self) -> AsyncIterator[Document]:
        """Async pages: at most the client's ``max_concurrency`` pages in flight (across file boundaries),
        yielded in file and page order (:func:`~.pages.window.ain_order`).

        Closing the iterator early (or an abort) cancels the pages still in flight; finished ones are cached.
        """
        t0 = time.perf_counter()
        self.stats = JobStats()
        try:
            async with aclosing(ain_order(self._aitems(), self._window())) as finished:
                async for meta, result in finished:
                    yield self._handed(meta, result)
        finally:
            self.stats.seconds += time.perf_counter() - t0

    # ------------------------------------------------------------ page work in processes
    def _page_workers(self, path: Path) -> int:
        """Worker processes for ``path``'s pages, 0 for in-process (as without them): model modes only;
        with ``workers`` None (here and in the client's settings), from the cores once the job reaches
        :data:`~.page_workers.SMALL_JOB_PAGES` pages (this file's count included)."""
        from .. import page_workers as pw

        if self.mode not in ("vlm", "auto"):
            return 0
        workers = self._workers_setting()
        pages = None
        if workers is None:
            pages = self.stats.pages + self._count(path)
        return pw.resolve_workers(workers, pages)

    def _count(self, path: Path) -> int:
        """Pages of ``path`` (a PDF's count, 1 for an image), only to size the job; 1 when unreadable."""
        from ..pdf import is_pdf, pdf_page_count

        try:
            return pdf_page_count(path, password=self.password) if is_pdf(path) else 1
        except MiniMaxVLError:
            return 1


def _configured_policy(client: MiniMaxVLClient | None) -> InputPolicy | None:
    """The policy ``MINIMAXVL_*`` (or the client's settings) configure for a loader given none: None (paths
    as given, anywhere) unless roots, URLs, private hosts or the pixel cap are set there."""
    from ..settings import Settings

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


def load_documents(paths: Iterable[str | os.PathLike[str]], **kwargs: Any) -> list[Document]:
    """Convenience: ``MiniMaxVLDocumentLoader(list(paths), **kwargs).load()``."""
    return MiniMaxVLDocumentLoader(list(paths), **kwargs).load()


__all__ = ["DOC_SUFFIXES", "FallbackEngine", "LoaderMode", "MiniMaxVLDocumentLoader", "load_documents"]
