"""A TEST DOUBLE of vLLM serving MiniMax-VL-01: real HTTP on loopback, no GPU, no model.

:class:`LocalVLLMServer` speaks the parts of vLLM's OpenAI-compatible API this package uses
(``/health``, ``/v1/models``, ``/v1/chat/completions`` with and without SSE streaming, ``/tokenize``,
``/metrics``) and reproduces what real vLLM 0.23.0 was seen to do (``tests/gpu/results``):
the exact anyres image token count, vLLM's error messages and status codes for bad images (400) and
unloadable URLs (500), context-overflow and too-many-images refusals, and ``json_schema`` outputs.
Answers are scripted (:meth:`LocalVLLMServer.queue`, :meth:`LocalVLLMServer.set_responder`) and faults
injected (:meth:`LocalVLLMServer.fail_next`), so client code can be tested over the wire, offline.
``reader="tesseract"`` answers requests that carry images with Tesseract's reading of each image as the
model would receive it (resized into its best canvas): a LEGIBILITY PROXY for what the pixels let a
reader see, not a model (it follows no prompt, reads no charts, answers no questions).
It is NOT a model server: never deploy it. It uses only the standard library (plus Pillow).

The pieces: :mod:`.handler` (HTTP routes, streaming, faults), :mod:`.replies` (scripted answers, error
bodies, schema instances), :mod:`.accounting` (prompt tokens and image checks), :mod:`.reader` (reader
mode); this module holds the server's state and lifecycle.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..profile import MINIMAX_VL_01, ModelProfile
from .accounting import IMAGE_CHECKS, count_prompt
from .handler import Handler, QuietHTTPServer
from .reader import READERS, canvas_view, reader_engine, request_images
from .replies import FAULT_KINDS, HTTPError, Reply, default_reply, estimate_tokens, schema_instance

Responder = Callable[[dict[str, Any]], "str | dict[str, Any] | Reply"]


class LocalVLLMServer:
    """TEST DOUBLE of ``vllm serve MiniMaxAI/MiniMax-VL-01`` on 127.0.0.1:<free port> (threads, HTTP/1.1).

    ``slots`` caps requests running at once (the rest wait and show as ``vllm:num_requests_waiting``);
    ``latency`` is the seconds each chat request takes; ``fault_delay`` is how long a "timeout" fault
    stalls. ``requests`` holds every chat request body received, ``max_running`` the peak concurrency.
    ``metrics=False`` / ``tokenize=False`` make ``/metrics`` / ``/tokenize`` answer 404 (a vLLM without
    them). ``kv_capacity`` is
    how many running requests fill the KV cache (``vllm:kv_cache_usage_perc`` = running / kv_capacity,
    capped at 1; default 1.25 x slots, i.e. 0.8 when every slot runs). :meth:`stop` drops open
    connections too, like a crashed server, so clients see connection errors, not late answers.

    ``image_check="decode"`` (default) decodes every image, refusing corrupt ones as vLLM does;
    ``"header"`` reads only each image's header for its size (see :mod:`.accounting`), so throughput
    benchmarks measure the client, not the double's decoding.

    ``reader="tesseract"`` (see :func:`canvas_view`) answers chat requests carrying images, when no
    queued reply or responder applies and no JSON output is asked for, with Tesseract's text of each image
    after the server-side resize into its best canvas (images joined by a blank line); ``reader_views``
    records (received size, canvas, size read) per image. A legibility proxy, not a model.
    """

    def __init__(
        self,
        model: str = "MiniMaxAI/MiniMax-VL-01",
        max_model_len: int = 32768,
        max_images: int = 4,
        latency: float = 0.0,
        slots: int | None = None,
        *,
        profile: ModelProfile = MINIMAX_VL_01,
        fault_delay: float = 5.0,
        host: str = "127.0.0.1",
        port: int = 0,
        metrics: bool = True,
        kv_capacity: float | None = None,
        tokenize: bool = True,
        reader: str | None = None,
        reader_lang: str = "eng",
        image_check: str = "decode",
    ) -> None:
        if image_check not in IMAGE_CHECKS:
            raise ValueError(f"image_check={image_check!r} is unknown: use one of {', '.join(IMAGE_CHECKS)}")
        self.reader = reader
        self._reader_engine: Any = reader_engine(reader, reader_lang)
        self.reader_views: list[tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = []
        self.model = model
        self.max_model_len = max_model_len
        self.max_images = max_images
        self.latency = latency
        self.slots = slots
        self.profile = profile
        self.fault_delay = fault_delay
        self.host = host
        self.port = port
        self.metrics_enabled = metrics
        self.tokenize_enabled = tokenize
        self.kv_capacity = kv_capacity
        self.image_check = image_check
        self._connections: set[Any] = set()
        self.requests: list[dict[str, Any]] = []
        self.tokenize_requests: list[dict[str, Any]] = []
        self.healthy = True
        self._lock = threading.Lock()
        self._slot_cond = threading.Condition(self._lock)
        self._replies: deque[Reply] = deque()
        self._faults: deque[str] = deque()
        self._responder: Responder | None = None
        self._stop = threading.Event()
        self._httpd: QuietHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.running = 0
        self.waiting = 0
        self.max_running = 0
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.request_success_total = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def root_url(self) -> str:
        """Server root (``/health``, ``/tokenize``, ``/metrics`` live here)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL (``.../v1``)."""
        return self.root_url + "/v1"

    def start(self) -> LocalVLLMServer:
        """Bind a free loopback port and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        handler = type("_Handler", (Handler,), {"owner": self})
        httpd = QuietHTTPServer((self.host, self.port), handler)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._stop.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; stalled "timeout" faults are released."""
        self._stop.set()
        with self._slot_cond:
            self._slot_cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._lock:
            conns = list(self._connections)
            self._connections.clear()
        for conn in conns:  # keep-alive and in-flight connections die with the server
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalVLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ scripting
    def queue(self, *replies: str | dict[str, Any] | Reply) -> None:
        """Answer the next chat requests with these replies, in order (then the responder / default)."""
        with self._lock:
            self._replies.extend(Reply.coerce(r) for r in replies)

    def set_responder(self, fn: Responder | None) -> None:
        """Answer chat requests with ``fn(request_body)`` when no queued reply is left."""
        self._responder = fn

    def fail_next(self, kind: str, count: int = 1) -> None:
        """Make the next ``count`` chat requests fail: 429, 500, 503, drop (no response), partial (body cut
        mid-response), malformed (a 200 whose JSON is invalid) or timeout."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} is unknown: use one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.extend([kind] * count)

    def reset(self) -> None:
        """Forget recorded requests, scripted replies, faults and counters (session fixture reuse)."""
        with self._lock:
            self.requests.clear()
            self.tokenize_requests.clear()
            self.reader_views.clear()
            self._replies.clear()
            self._faults.clear()
            self.max_running = 0
            self.prompt_tokens_total = self.generation_tokens_total = self.request_success_total = 0
        self._responder = None
        self.healthy = True

    # ------------------------------------------------------------------ prompt accounting
    def count_prompt(self, messages: Any) -> tuple[int, int, int]:
        """(prompt tokens, image tokens, images) of chat messages; raises HTTPError like vLLM would."""
        return count_prompt(
            messages, max_images=self.max_images, profile=self.profile, image_check=self.image_check
        )

    # ------------------------------------------------------------------ answers
    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        if self._responder is not None:
            return Reply.coerce(self._responder(body))
        if self._reader_engine is not None and not isinstance(body.get("response_format"), dict):
            images = request_images(body.get("messages"))
            if images:
                return Reply(text=self.read_images(images))
        return default_reply(body)

    def read_request(self, body: dict[str, Any]) -> str:
        """The reader's answer for a chat request body (for responders that read some requests and script
        others); needs ``reader`` set."""
        if self._reader_engine is None:
            from ..errors import InvalidInputError

            raise InvalidInputError("read_request() needs LocalVLLMServer(reader='tesseract')")
        return self.read_images(request_images(body.get("messages")))

    def read_images(self, images: list[Any]) -> str:
        """The reader's answer for ``images`` (PIL images as received): each resized into its best canvas
        (:func:`canvas_view`) and read by Tesseract; texts joined by a blank line."""
        texts = []
        for img in images:
            view = canvas_view(img, self.profile)
            with self._lock:
                self.reader_views.append((img.size, self.profile.best_canvas(*img.size), view.size))
            texts.append(self._reader_engine.ocr(view).text.strip())
        return "\n\n".join(t for t in texts if t)

    # ------------------------------------------------------------------ what the handler calls
    def connection_opened(self, conn: Any) -> None:
        """Track an accepted connection (:meth:`stop` shuts it down)."""
        with self._lock:
            self._connections.add(conn)

    def connection_closed(self, conn: Any) -> None:
        """Forget a connection that ended."""
        with self._lock:
            self._connections.discard(conn)

    def record(self, log: list[dict[str, Any]], body: dict[str, Any]) -> None:
        """Append a received body to one of the request logs (``requests``, ``tokenize_requests``)."""
        with self._lock:
            log.append(body)

    def take_fault(self) -> str | None:
        """The next injected fault, if any (consumed)."""
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def run(self, body: dict[str, Any]) -> Reply | None:
        """Run a chat request: wait for a slot, take ``latency`` (and the reply's delay) in it, pick the
        reply. None when the server stopped meanwhile (the handler then drops the connection)."""
        self._acquire_slot()
        try:
            if self.latency:
                self._stop.wait(self.latency)
            reply = self._next_reply(body)
            if reply.delay:
                self._stop.wait(reply.delay)
        finally:
            self._release_slot()
        return None if self._stop.is_set() else reply

    def stall(self, seconds: float) -> None:
        """Wait ``seconds`` or until the server stops (the "timeout" fault)."""
        self._stop.wait(seconds)

    def count_success(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Add an answered request to the /metrics counters."""
        with self._lock:
            self.prompt_tokens_total += prompt_tokens
            self.generation_tokens_total += completion_tokens
            self.request_success_total += 1

    def _acquire_slot(self) -> None:
        with self._slot_cond:
            self.waiting += 1
            try:
                while self.slots is not None and self.running >= self.slots and not self._stop.is_set():
                    self._slot_cond.wait(0.1)
            finally:
                self.waiting -= 1
            self.running += 1
            self.max_running = max(self.max_running, self.running)

    def _release_slot(self) -> None:
        with self._slot_cond:
            self.running -= 1
            self._slot_cond.notify()

    # ------------------------------------------------------------------ bodies
    def metrics_text(self) -> str:
        """Prometheus exposition text with vLLM's metric names."""
        label = f'{{model_name="{self.model}"}}'
        capacity = self.kv_capacity or (None if self.slots is None else 1.25 * self.slots)
        usage = 0.0 if not capacity else min(1.0, self.running / capacity)
        lines = [
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f"vllm:num_requests_running{label} {float(self.running)}",
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
            "# TYPE vllm:num_requests_waiting gauge",
            f"vllm:num_requests_waiting{label} {float(self.waiting)}",
            "# TYPE vllm:gpu_cache_usage_perc gauge",
            f"vllm:gpu_cache_usage_perc{label} {usage}",
            "# TYPE vllm:kv_cache_usage_perc gauge",
            f"vllm:kv_cache_usage_perc{label} {usage}",
            "# TYPE vllm:prompt_tokens_total counter",
            f"vllm:prompt_tokens_total{label} {float(self.prompt_tokens_total)}",
            "# TYPE vllm:generation_tokens_total counter",
            f"vllm:generation_tokens_total{label} {float(self.generation_tokens_total)}",
            "# TYPE vllm:request_success_total counter",
            f'vllm:request_success_total{{finished_reason="stop",model_name="{self.model}"}} '
            f"{float(self.request_success_total)}",
        ]
        return "\n".join(lines) + "\n"

    def models_body(self) -> dict[str, Any]:
        """``/v1/models`` as vLLM returns it (with ``max_model_len``)."""
        return {
            "object": "list",
            "data": [
                {
                    "id": self.model,
                    "object": "model",
                    "created": int(time.time()),
                    "owned_by": "vllm",
                    "root": self.model,
                    "parent": None,
                    "max_model_len": self.max_model_len,
                    "permission": [],
                }
            ],
        }


__all__ = [
    "FAULT_KINDS",
    "IMAGE_CHECKS",
    "READERS",
    "HTTPError",
    "LocalVLLMServer",
    "Reply",
    "canvas_view",
    "estimate_tokens",
    "schema_instance",
]
