"""Whole pages in worker processes: each sender process renders, prepares, sends and falls back.

One event loop spends about 6-7.5 ms of CPU on each page request (encoding a ~660 KB body, sending it,
parsing the answer), so one sending process tops out near 130-160 pages/s whatever the page workers do
(``benchmarks/results/overhead_analysis.txt``). A :class:`SenderPool` spreads whole pages over N processes,
each with its own event loop and its own :class:`~.client.MiniMaxVLClient` rebuilt from the caller's
(:class:`~.client.spec.ClientSpec`: same endpoints, key, budgets and retries; a share of
``max_concurrency``, the shares adding up to it); each runs the same :class:`~.pages.PageReader` as in-
process (prepare -> send -> fallback). The caller's process only hands out page orders (a checked path and a
page number) and takes back :class:`~.results.OCRPage` results, adding the senders' token usage to its
client.

Pages go out in proportion to the senders' shares of the slots (:func:`pick`: the sender given the
fewest pages for its share, passing over one that holds three times its share); results are futures
the in-flight window awaits in page order. Cancelling a future cancels that page in its sender. A sender
that dies (a crash in a native library) is replaced and its pages in flight are tried once more on the
new one; pages in flight on it when it dies again come back ``failed`` (never an exception for the job).
Senders ignore Ctrl-C: the caller's process stops them.

Used by OCRTool and the loader when ``workers`` gives processes and ``Settings.worker_send`` is on
(``MINIMAXVL_WORKER_SEND``, default on) and the client can be rebuilt (no limiter or text estimate of the
caller's own); otherwise the page workers of :mod:`.page_workers` prepare and this process sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pickle
import queue
import signal
import threading
import time
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .client.types import Usage
from .errors import InvalidInputError, MiniMaxVLError
from .page_workers import PageJob, PagePool, _context, _portable, render_page, shared, shared_pool
from .pages.fallback import Fallbacks
from .pages.send import SendOptions, failed_page
from .pages.source import PageImage
from .results import OCRPage

if TYPE_CHECKING:  # pragma: no cover
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess
    from multiprocessing.queues import Queue

    from .client import MiniMaxVLClient
    from .client.spec import ClientSpec
    from .local_ocr import LocalOCREngine
    from .pages.pipeline import Deferred

__all__ = [
    "ReadOrder",
    "SenderPool",
    "client_blob",
    "pick",
    "senders_for",
    "share",
    "shared_senders",
    "worker_pools",
]

_POLL_S = 0.2
"""How often the collector checks that the senders are alive while no result arrives."""
_CLIENTS_KEPT = 8
"""Clients a sender keeps open (one per caller's client spec); the oldest is closed beyond that."""


# ---------------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class ReadOrder:
    """One page for a sender: the page job (file, page, render and preparation options), how to send it,
    the fallbacks, and the client to send with (a pickled :class:`~.client.spec.ClientSpec`, built once
    per sender and reused); ``text_layer``/``page_count``: the caller's, for a page that does not render;
    ``slots``: the client's ``max_concurrency``, shared out over the senders."""

    job: PageJob
    send: SendOptions
    fallbacks: Fallbacks
    client: bytes
    rotation_engine: LocalOCREngine | None = None
    text_layer: str = ""
    page_count: int = 0
    slots: int = 1

    def meta(self) -> PageImage:
        """The page as the caller knows it, without pixels (for a page that got none)."""
        job = self.job
        return PageImage(job.number, self.page_count, None, text_layer=self.text_layer, source=job.path)


def _spec(client: MiniMaxVLClient) -> ClientSpec | None:
    spec = getattr(client, "spec", None)
    return spec() if callable(spec) else None


def client_blob(client: MiniMaxVLClient) -> bytes | None:
    """``client`` as a sender rebuilds it (each sender with its share of ``max_concurrency``, see
    :func:`share`); None when the client cannot be rebuilt in another process."""
    built = _spec(client)
    return pickle.dumps(built) if built is not None else None


def share(slots: int, index: int, senders: int) -> int:
    """Sender ``index``'s part of ``slots`` requests at once, over ``min(senders, slots)`` senders: the
    parts add up to ``slots`` exactly, so N processes never send more at once than one client would."""
    active = min(senders, slots)
    if index >= active:
        return 0
    return slots // active + (1 if index < slots % active else 0)


# ---------------------------------------------------------------------------------------------- sender side
def _usage_delta(now: Usage, before: Usage) -> Usage:
    return Usage(**{name: getattr(now, name) - getattr(before, name) for name in Usage.model_fields})


class _Sender:
    """The loop of one sender process: take orders (and cancels) from ``inbox``, read each page as a task,
    put ``(seq, ocr, error, usage)`` on ``outbox``."""

    def __init__(self, inbox: Queue[Any], outbox: Queue[Any], index: int, senders: int) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.index = index
        self.senders = senders
        self.clients: dict[bytes, MiniMaxVLClient] = {}
        self.reported: dict[bytes, Usage] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.closing: set[asyncio.Task[None]] = set()
        self.getter = ThreadPoolExecutor(1, thread_name_prefix="minimaxvl-sender-inbox")
        # pages rendered and prepared one after another, in order (PDFium renders on one thread anyway)
        self.render = ThreadPoolExecutor(1, thread_name_prefix="minimaxvl-sender-render")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while (msg := await loop.run_in_executor(self.getter, self.inbox.get)) is not None:
                kind, seq, order = msg
                if kind == "cancel":
                    if (task := self.tasks.get(seq)) is not None:
                        task.cancel()
                    continue
                task = loop.create_task(self._one(seq, order))
                self.tasks[seq] = task
                task.add_done_callback(lambda _t, s=seq: self.tasks.pop(s, None))
        finally:
            for task in list(self.tasks.values()):
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            for client in self.clients.values():
                await client.aclose()
            self.render.shutdown(wait=False, cancel_futures=True)
            self.getter.shutdown(wait=False)

    def _client(self, blob: bytes) -> MiniMaxVLClient:
        """The client for ``blob``, built on first use; the least recently used beyond
        :data:`_CLIENTS_KEPT` are closed."""
        client = self.clients.pop(blob, None)
        if client is not None:
            self.clients[blob] = client  # most recently used last
        else:
            spec: ClientSpec = pickle.loads(blob)
            mine = max(1, share(spec.settings.max_concurrency, self.index, self.senders))
            spec = replace(spec, settings=spec.settings.model_copy(update={"max_concurrency": mine}))
            client = self.clients[blob] = spec.build()
            self.reported[blob] = Usage()
            while len(self.clients) > _CLIENTS_KEPT:  # a long-lived pool serving many callers' clients
                old = next(iter(self.clients))
                closing = asyncio.get_running_loop().create_task(self.clients.pop(old).aclose())
                self.closing.add(closing)  # the loop keeps only a weak reference to a task
                closing.add_done_callback(self.closing.discard)
                self.reported.pop(old, None)
        return client

    def _usage(self, blob: bytes) -> Usage:
        """The usage of ``blob``'s client since it was last reported."""
        now = self.clients[blob].usage
        delta, self.reported[blob] = _usage_delta(now, self.reported[blob]), now
        return delta

    async def _one(self, seq: int, order: ReadOrder) -> None:
        ocr: OCRPage | None = None
        error: BaseException | None = None
        try:
            ocr = await read_order(order, self._client(order.client), self.render)
        except asyncio.CancelledError:
            error = MiniMaxVLError(f"page {order.job.number} of {order.job.path}: cancelled")
        except MiniMaxVLError as e:
            error = _portable(e)
        except Exception as e:  # a library bug on one page must not lose the others
            error = MiniMaxVLError(f"page {order.job.number} of {order.job.path}: {e!r}")
        usage = self._usage(order.client) if order.client in self.reported else Usage()
        self.outbox.put((seq, ocr, error, usage))


async def read_order(order: ReadOrder, client: MiniMaxVLClient, render: ThreadPoolExecutor) -> OCRPage:
    """One page end to end in this process: render and prepare it (one job on the ``render`` thread),
    then the same :class:`~.pages.PageReader` read as in-process (send, fallback). A page that does not
    render fails alone (as with :mod:`.page_workers`), through the fallback chain like any failed page.

    Render and preparation share the one thread, page after page in order: a sender's first pages are
    ready for its free slots before the pages read ahead take any CPU (the first round of a job is bound
    by page work; the N senders of a machine already keep its cores busy)."""
    from .pages.pipeline import PageReader

    job = order.job
    reader = PageReader(
        client,
        job.options,
        order.send,
        order.fallbacks,
        order.rotation_engine,
        dpi=job.dpi,
        password=job.password,
        fit=job.fit,
    )

    def page_work() -> tuple[PageImage, Deferred] | MiniMaxVLError:
        try:
            page = render_page(job)
        except Exception as e:  # a page that does not render (damaged, over the pixel cap) fails alone
            return (
                e
                if isinstance(e, MiniMaxVLError)
                else MiniMaxVLError(f"page {job.number} of {job.path}: {e!r}")
            )
        return page, reader.prepare_deferred(page)  # its errors are raised, as in-process

    done = await asyncio.get_running_loop().run_in_executor(render, page_work)
    if isinstance(done, MiniMaxVLError):
        meta = order.meta()
        return await asyncio.to_thread(reader.finish, meta, failed_page(meta, done, None, []), rendered=False)
    page, deferred = done
    return await reader.aread(page, deferred)


def _serve(inbox: Queue[Any], outbox: Queue[Any], index: int, senders: int) -> None:
    """Sender ``index`` of ``senders``: Ctrl-C is the caller's to handle; run until the ``None`` order."""
    from .page_workers import _DOCUMENTS_KEPT
    from .pdf import keep_documents

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_documents(_DOCUMENTS_KEPT)  # one page an order: the document stays open for the next page
    asyncio.run(_Sender(inbox, outbox, index, senders).run())


# ---------------------------------------------------------------------------------------------- caller side
@dataclass
class _Slot:
    """One sender process and its inbox; ``load`` counts its pages in flight, ``given`` the pages it was
    given since the pool was last idle."""

    process: BaseProcess
    inbox: Queue[Any]
    index: int
    load: int = 0
    given: int = 0


_CAP = 3
"""A sender is passed over while it holds this many times its share of the slots in pages (a stalled
sender, or one with slow pages), unless every sender does."""


def pick(senders: list[_Slot], slots: int, size: int) -> _Slot:
    """The sender for the next page of a client with ``slots`` request slots, over a pool of ``size``:
    the one given the fewest pages for its share, so a job's pages split in proportion to the shares and
    a job of k x ``slots`` pages takes k rounds of requests in every sender. (A page is bound to its
    sender when it is handed out, long before a slot frees: handing it to the sender with the most room
    favours the senders whose requests started first, which then end the job a round after the others.)
    Ties: the most room."""

    def key(slot: _Slot) -> tuple[bool, float, int]:
        mine = max(1, share(slots, slot.index, size))
        return (slot.load >= _CAP * mine, slot.given / mine, slot.load - mine)

    return min(senders, key=key)


@dataclass
class _Pending:
    future: Future[OCRPage]
    order: ReadOrder
    slot: _Slot
    record: Any
    tries: int = 1


class SenderPool:
    """N sender processes, started on first use; :meth:`submit` gives a page's future result.

    Use as a context manager, or :func:`shared_senders` for one pool per process reused across calls.
    """

    def __init__(self, senders: int) -> None:
        if senders < 1:
            raise InvalidInputError(f"SenderPool needs senders >= 1, got {senders}")
        self.size = senders
        self._ctx: BaseContext | None = None
        self._slots: list[_Slot] = []
        self._outbox: Queue[Any] | None = None
        self._pending: dict[int, _Pending] = {}
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self._collector: threading.Thread | None = None
        self._stop = threading.Event()  # this generation's: set by shutdown, a later page starts a new one

    def __enter__(self) -> SenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def _start(self) -> None:
        """Start the processes and the collector thread (under the lock)."""
        if self._slots:
            return
        self._stop = threading.Event()
        self._ctx = _context()
        self._outbox = self._ctx.Queue()
        self._slots = [self._spawn(i) for i in range(self.size)]
        self._collector = threading.Thread(
            target=self._collect, args=(self._outbox, self._stop), name="minimaxvl-senders", daemon=True
        )
        self._collector.start()

    def _spawn(self, index: int) -> _Slot:
        assert self._ctx is not None and self._outbox is not None
        inbox = self._ctx.Queue()
        proc = self._ctx.Process(target=_serve, args=(inbox, self._outbox, index, self.size), daemon=True)
        proc.start()
        return _Slot(proc, inbox, index)

    def pids(self) -> list[int]:
        """Process ids of the running senders (empty before the first page)."""
        return [s.process.pid for s in self._slots if s.process.pid is not None]

    def given(self) -> list[int]:
        """Pages each sender was given since the pool was last idle (a job's split over the senders)."""
        return [s.given for s in self._slots]

    def submit(self, order: ReadOrder, record: Any = None) -> Future[OCRPage]:
        """Send ``order`` to the sender :func:`pick` gives; ``record`` (e.g. the caller's
        ``client.record_usage``) is called with the usage its sender spent. The future's result is the
        page (failed pages included); it raises what the in-process read would raise for the page."""
        fut: Future[OCRPage] = Future()
        with self._lock:
            self._start()
            seq = next(self._seq)
            if not any(s.load for s in self._slots):  # idle: a new job shares its pages out afresh
                for s in self._slots:
                    s.given = 0
            slot = pick(self._slots[: min(self.size, max(1, order.slots))], order.slots, self.size)
            self._pending[seq] = _Pending(fut, order, slot, record)
            slot.load += 1
            slot.given += 1
            slot.inbox.put(("read", seq, order))
        fut.add_done_callback(lambda f, s=seq: f.cancelled() and self._cancel(s))
        return fut

    def _cancel(self, seq: int) -> None:
        with self._lock:
            item = self._pending.pop(seq, None)
            if item is not None:
                item.slot.load -= 1
                if item.slot.process.is_alive():
                    item.slot.inbox.put(("cancel", seq, None))

    def _collect(self, outbox: Queue[Any], stop: threading.Event) -> None:
        """Resolve futures as results arrive on ``outbox`` until ``stop``; replace a sender that died and
        retry its pages once."""
        checked = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - checked > _POLL_S:
                self._check_alive()
                checked = time.monotonic()
            try:
                msg = outbox.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            except (EOFError, OSError, ValueError):  # the queue went away: the pool is shutting down
                return
            if msg is None:
                return
            seq, ocr, error, usage = msg
            with self._lock:
                item = self._pending.pop(seq, None)
                if item is not None:
                    item.slot.load -= 1
            if item is None:  # cancelled meanwhile
                continue
            if item.record is not None and usage is not None and usage.requests:
                item.record(usage)
            _settle(item.future, ocr, error)

    def _check_alive(self) -> None:
        with self._lock:
            for i, slot in enumerate(self._slots):
                if slot.process.is_alive() or self._stop.is_set():
                    continue
                fresh = self._slots[i] = self._spawn(i)
                fresh.given = slot.given
                for seq, item in list(self._pending.items()):
                    if item.slot is not slot:
                        continue
                    if item.tries >= 2:
                        del self._pending[seq]
                        _settle(item.future, _died_page(item.order), None)
                        continue
                    item.slot, item.tries = fresh, item.tries + 1
                    fresh.load += 1
                    fresh.inbox.put(("read", seq, item.order))

    def shutdown(self, wait: bool = True) -> None:
        """Stop the senders (pages in flight are cancelled); a later page starts new ones."""
        with self._lock:
            slots, self._slots = self._slots, []
            pending, self._pending = self._pending, {}
            self._stop.set()
            outbox, self._outbox = self._outbox, None
            collector, self._collector = self._collector, None
        for slot in slots:
            with contextlib.suppress(OSError, ValueError):
                slot.inbox.put(None)
        for item in pending.values():
            item.future.cancel()
        for slot in slots:
            slot.process.join(timeout=5 if wait else 0.5)
            if slot.process.is_alive():
                slot.process.terminate()
                slot.process.join(timeout=1)
        if collector is not None:
            collector.join(timeout=2 * _POLL_S + 1)
        for q in [outbox, *(s.inbox for s in slots)]:
            if q is not None:
                q.close()
                q.cancel_join_thread()


def _died_page(order: ReadOrder) -> OCRPage:
    """The failed result of a page whose sender died twice while holding it (through the fallbacks that
    need no pixels: its text layer)."""
    job, meta = order.job, order.meta()
    error = MiniMaxVLError(
        f"page {job.number} of {job.path}: the sender process died twice while reading it (a crash in the "
        "renderer?); the other pages are kept; try workers=0 to see the error in-process"
    )
    return order.fallbacks.apply(meta, failed_page(meta, error, None, []), lambda: None)


def _settle(fut: Future[OCRPage], ocr: OCRPage | None, error: BaseException | None) -> None:
    """Resolve ``fut`` unless the caller cancelled it meanwhile."""
    try:
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(ocr)  # type: ignore[arg-type]
    except InvalidStateError:
        pass


def shared_senders(senders: int) -> SenderPool:
    """The shared :class:`SenderPool` of ``senders`` processes (one per count for this process, reused
    across calls, stopped at exit: :func:`~.page_workers.shared`)."""
    return shared(SenderPool, senders)


def senders_for(client: MiniMaxVLClient, workers: int) -> SenderPool | None:
    """The shared senders for ``workers`` processes when the client's settings ask for sending in workers
    (``worker_send``) and the client can be rebuilt in them; None: prepare in workers, send here."""
    if workers < 1 or not getattr(client.settings, "worker_send", False):
        return None
    if _spec(client) is None:  # pickled once, by the job's reader
        return None
    return shared_senders(workers)


def worker_pools(client: MiniMaxVLClient, workers: int) -> tuple[PagePool | None, SenderPool | None]:
    """What a job of ``workers`` processes reads its pages through, as (page workers, senders): the senders
    when :func:`senders_for` gives them, else the page workers (this process sends); (None, None) for 0."""
    senders = senders_for(client, workers) if workers else None
    return (shared_pool(workers) if workers and senders is None else None), senders
