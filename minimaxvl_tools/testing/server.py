"""A TEST DOUBLE of vLLM serving MiniMax-VL-01: real HTTP on loopback, no GPU, no model.

:class:`LocalVLLMServer` speaks the parts of vLLM's OpenAI-compatible API this package uses
(``/health``, ``/v1/models``, ``/v1/chat/completions`` with and without SSE streaming, ``/tokenize``,
``/metrics``) and reproduces what real vLLM 0.23.0 was seen to do (``/work/shared/gpu/README.md``):
the exact anyres image token count, vLLM's error messages and status codes for bad images (400) and
unloadable URLs (500), context-overflow and too-many-images refusals, and ``json_schema`` outputs.
Answers are scripted (:meth:`LocalVLLMServer.queue`, :meth:`LocalVLLMServer.set_responder`) and faults
injected (:meth:`LocalVLLMServer.fail_next`), so client code can be tested over the wire, offline.
``reader="tesseract"`` answers requests that carry images with Tesseract's reading of each image as the
model would receive it (resized into its best canvas): a LEGIBILITY PROXY for what the pixels let a
reader see, not a model (it follows no prompt, reads no charts, answers no questions).
It is NOT a model server: never deploy it. It uses only the standard library (plus Pillow).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import io
import json
import math
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..profile import MINIMAX_VL_01, ModelProfile

FAULT_KINDS = ("429", "500", "503", "drop", "partial", "malformed", "timeout")
READERS = ("tesseract",)
DEFAULT_TEXT = "This is a scripted answer from LocalVLLMServer."


def estimate_tokens(text: str) -> int:
    """The server's deterministic text token count: ceil(utf-8 bytes / 4) (no tokenizer offline)."""
    return math.ceil(len(text.encode("utf-8")) / 4)


MESSAGE_OVERHEAD = 4  # tokens per message for the role header and end-of-sentence marker
GENERATION_PROMPT = 3  # "<beginning_of_sentence>ai name=assistant\n"


@dataclass
class Reply:
    """One scripted answer: text (or tool calls), finish reason, optional HTTP status / raw body / delay."""

    text: str = ""
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    status: int = 200
    error: str | None = None
    raw_body: str | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: str | dict[str, Any] | Reply) -> Reply:
        """A Reply from a string (the text), a dict of Reply fields (``content`` = ``text``) or a Reply."""
        if isinstance(value, Reply):
            return value
        if isinstance(value, str):
            return cls(text=value)
        if isinstance(value, dict):
            data = dict(value)
            if "content" in data and "text" not in data:
                data["text"] = data.pop("content")
            if "text" in data and not isinstance(data["text"], str):
                data["text"] = json.dumps(data["text"])
            return cls(**data)
        raise TypeError(f"a reply must be str, dict or Reply, got {type(value).__name__}")


class HTTPError(Exception):
    """An error answer with vLLM's JSON body shape."""

    def __init__(self, status: int, message: str, *, type_: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.type = type_ or {400: "BadRequestError", 404: "NotFoundError", 429: "RateLimitError"}.get(
            status, "InternalServerError"
        )

    def body(self) -> dict[str, Any]:
        """vLLM >= 0.10's ErrorResponse: ``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {"message": self.message, "type": self.type, "param": self.param, "code": self.status}
        }


# ---------------------------------------------------------------------------------------------- schema
def schema_instance(schema: dict[str, Any], root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A minimal instance valid for a JSON schema (objects, arrays, enums, anyOf, $ref/$defs, bounds)."""
    root = schema if root is None else root
    if depth > 32:
        return None
    if "$ref" in schema:
        ref = schema["$ref"]
        node: Any = root
        for part in ref.lstrip("#/").split("/"):
            if part:
                node = node[part]
        return schema_instance(node, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return copy.deepcopy(schema["default"])
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = schema[key]
            non_null = [o for o in options if o.get("type") != "null"]
            return schema_instance((non_null or options)[0], root, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for sub in schema["allOf"]:
            merged.update(sub)
        return schema_instance(merged, root, depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if typ is None:
        typ = "object" if "properties" in schema else "string"
    if typ == "object":
        props = schema.get("properties", {})
        return {k: schema_instance(v, root, depth + 1) for k, v in props.items()}
    if typ == "array":
        n = int(schema.get("minItems", 0))
        items = schema.get("items", {})
        if isinstance(items, list):
            return [schema_instance(s, root, depth + 1) for s in items]
        return [schema_instance(items, root, depth + 1) for _ in range(n)]
    if typ in ("integer", "number"):
        lo = schema.get("minimum", schema.get("exclusiveMinimum"))
        val: float = 0 if lo is None else lo
        if "exclusiveMinimum" in schema and "minimum" not in schema:
            val = lo + 1
        hi = schema.get("maximum")
        if hi is not None and val > hi:
            val = hi
        return int(val) if typ == "integer" else float(val)
    if typ == "boolean":
        return False
    if typ == "null":
        return None
    n = int(schema.get("minLength", 0))
    return "x" * n


# ---------------------------------------------------------------------------------------------- server
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
    ) -> None:
        if reader is not None and reader not in READERS:
            from ..errors import InvalidInputError

            raise InvalidInputError(f"reader={reader!r} is unknown: use None or one of {', '.join(READERS)}")
        self.reader = reader
        self._reader_engine: Any = None
        if reader == "tesseract":
            from ..local_ocr import LocalOCREngine

            engine = LocalOCREngine(lang=reader_lang, psm=3)
            engine._require_binary()  # TesseractNotFoundError now, not on the first request
            self._reader_engine = engine
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
        self._connections: set[Any] = set()
        self.requests: list[dict[str, Any]] = []
        self.tokenize_requests: list[dict[str, Any]] = []
        self.healthy = True
        self._lock = threading.Lock()
        self._slot_cond = threading.Condition(self._lock)
        self._replies: deque[Reply] = deque()
        self._faults: deque[str] = deque()
        self._responder: Callable[[dict[str, Any]], str | dict[str, Any] | Reply] | None = None
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
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
        handler = type("_Handler", (_Handler,), {"owner": self})
        httpd = _QuietHTTPServer((self.host, self.port), handler)
        httpd.daemon_threads = True
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

    def set_responder(self, fn: Callable[[dict[str, Any]], str | dict[str, Any] | Reply] | None) -> None:
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
        if not isinstance(messages, list) or not messages:
            raise HTTPError(400, "'messages' must be a non-empty list")
        urls: list[str] = []
        text_tokens = GENERATION_PROMPT
        for msg in messages:
            if not isinstance(msg, dict) or "role" not in msg:
                raise HTTPError(400, "each message must be an object with a 'role'")
            text_tokens += MESSAGE_OVERHEAD + estimate_tokens(str(msg["role"]))
            content = msg.get("content")
            if isinstance(content, str):
                text_tokens += estimate_tokens(content)
            elif isinstance(content, list):
                for part in content:
                    ptype = part.get("type") if isinstance(part, dict) else None
                    if ptype == "text":
                        text_tokens += estimate_tokens(str(part.get("text", "")))
                    elif ptype == "image_url":
                        url = part.get("image_url")
                        url = url.get("url") if isinstance(url, dict) else url
                        urls.append(str(url))
                    else:
                        raise HTTPError(400, f"Unknown part type: {ptype}")
            elif content is not None:
                raise HTTPError(400, "message content must be a string or a list of parts")
        if len(urls) > self.max_images:
            raise HTTPError(
                400,
                f"At most {self.max_images} image(s) may be provided in one prompt. (parameter=image)",
                param="image",
            )
        image_tokens = 0
        for url in urls:
            w, h = self._load_image_size(url)
            image_tokens += self.profile.image_tokens(w, h)
        return text_tokens + image_tokens, image_tokens, len(urls)

    def _load_image_size(self, url: str) -> tuple[int, int]:
        from PIL import Image

        if url.startswith("file:"):
            raise HTTPError(500, "Cannot load local files without `--allowed-local-media-path`.")
        if url.startswith(("http://", "https://")):
            # an offline vLLM cannot fetch: vLLM 0.23.0 answers 500 with aiohttp's connect error
            from urllib.parse import urlsplit

            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            raise HTTPError(
                500,
                f"Cannot connect to host {host}:{port} ssl:default [Connect call failed ('{host}', {port})]",
            )
        if not url.startswith("data:"):
            raise HTTPError(400, f"Invalid image URL: {url[:60]!r}: expected a data:, http(s): or file: URL")
        header, _, data = url.partition(",")
        if ";base64" not in header:
            raise HTTPError(400, "Only base64-encoded data URLs are supported")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as e:
            raise HTTPError(400, f"Non-base64 digit found: {e}") from e
        try:
            img = Image.open(io.BytesIO(raw))
            img.load()
        except Image.DecompressionBombError as e:
            raise HTTPError(500, str(e)) from e
        except Exception as e:
            raise HTTPError(400, f"Failed to load image: {e}") from e
        return img.size

    # ------------------------------------------------------------------ answers
    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        if self._responder is not None:
            return Reply.coerce(self._responder(body))
        rf = body.get("response_format")
        if self._reader_engine is not None and not isinstance(rf, dict):
            images = _request_images(body.get("messages"))
            if images:
                return Reply(text=self.read_images(images))
        if isinstance(rf, dict) and rf.get("type") == "json_schema":
            schema = (rf.get("json_schema") or {}).get("schema") or {}
            return Reply(text=json.dumps(schema_instance(schema)))
        if isinstance(rf, dict) and rf.get("type") == "json_object":
            return Reply(text="{}")
        return Reply(text=DEFAULT_TEXT)

    def read_request(self, body: dict[str, Any]) -> str:
        """The reader's answer for a chat request body (for responders that read some requests and script
        others); needs ``reader`` set."""
        if self._reader_engine is None:
            from ..errors import InvalidInputError

            raise InvalidInputError("read_request() needs LocalVLLMServer(reader='tesseract')")
        return self.read_images(_request_images(body.get("messages")))

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

    def _take_fault(self) -> str | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

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


def canvas_view(image: Any, profile: ModelProfile = MINIMAX_VL_01) -> Any:
    """``image`` as MiniMax-VL-01's server resizes it before its vision tower: aspect-preserving bicubic
    into the best canvas (scale = min(cw/W, ch/H), size (int(W*scale), int(H*scale)), LLaVA-NeXT's rule),
    without the black padding (padding adds no text). Small images are upscaled, like on the server."""
    from PIL import Image

    w, h = image.size
    cw, ch = profile.best_canvas(w, h)
    scale = min(cw / w, ch / h)
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return image if size == (w, h) else image.resize(size, Image.Resampling.BICUBIC)


def _request_images(messages: Any) -> list[Any]:
    """Decoded images (data URLs) of a chat request, in order; the prompt was validated before."""
    from PIL import Image

    out = []
    for msg in messages if isinstance(messages, list) else []:
        content = msg.get("content") if isinstance(msg, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                data = str(url).partition(",")[2]
                img = Image.open(io.BytesIO(base64.b64decode(data)))
                img.load()
                out.append(img.convert("L") if img.mode not in ("L", "RGB") else img)
    return out


def _truncate(text: str, max_tokens: int | None) -> tuple[str, bool]:
    if max_tokens is None or estimate_tokens(text) <= max_tokens:
        return text, False
    raw = text.encode("utf-8")[: max_tokens * 4]
    return raw.decode("utf-8", errors="ignore"), True


def _pieces(text: str) -> Iterator[str]:
    yield from re.findall(r"\S+\s*|\s+", text)


class _QuietHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with uvicorn's listen backlog (the default 5 drops SYNs under a burst of new
    connections, stalling clients ~1 s in TCP retransmits) and no tracebacks when a socket is dropped."""

    request_queue_size = 2048

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: LocalVLLMServer

    def setup(self) -> None:
        super().setup()
        with self.owner._lock:
            self.owner._connections.add(self.connection)

    def finish(self) -> None:
        with self.owner._lock:
            self.owner._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    # ------------------------------------------------------------------ plumbing
    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        self._send_raw(status, data, "application/json", headers)

    def _send_raw(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw or b"{}")
        except json.JSONDecodeError as e:
            raise HTTPError(400, f"Invalid JSON body: {e}") from e

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:
        o = self.owner
        path = self.path.split("?")[0]
        if path == "/health":
            if o.healthy:
                self._send_raw(200, b"", "application/json")
            else:
                self._send_json(503, HTTPError(503, "engine is not healthy").body())
        elif path == "/v1/models":
            self._send_json(200, o.models_body())
        elif path == "/metrics" and o.metrics_enabled:
            self._send_raw(200, o.metrics_text().encode(), "text/plain; version=0.0.4")
        else:
            self._send_json(404, HTTPError(404, f"Not Found: {path}").body())

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        try:
            body = self._read_body()
            if path == "/v1/chat/completions":
                self._chat(body)
            elif path == "/tokenize" and self.owner.tokenize_enabled:
                self._tokenize(body)
            else:
                raise HTTPError(404, f"Not Found: {path}")
        except HTTPError as e:
            self._send_json(e.status, e.body())
            self.close_connection = True  # vLLM may drop keep-alive after an error

    def _tokenize(self, body: dict[str, Any]) -> None:
        o = self.owner
        with o._lock:
            o.tokenize_requests.append(body)
        if "messages" in body:
            count, _, _ = o.count_prompt(body["messages"])
        else:
            count = estimate_tokens(str(body.get("prompt", "")))
        self._send_json(200, {"count": count, "max_model_len": o.max_model_len, "tokens": list(range(count))})

    def _chat(self, body: dict[str, Any]) -> None:
        o = self.owner
        with o._lock:
            o.requests.append(body)
        fault = o._take_fault()
        if fault is not None:
            self._fault(fault)
            return
        if body.get("model") != o.model:
            raise HTTPError(404, f"The model `{body.get('model')}` does not exist.")
        prompt_tokens, _, _ = o.count_prompt(body.get("messages"))
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        requested = int(max_tokens) if max_tokens is not None else 0
        if prompt_tokens > o.max_model_len or prompt_tokens + requested > o.max_model_len:
            # vLLM 0.23.0's wording, status and param, as recorded on the GPU machine (tests/gpu/results)
            raise HTTPError(
                400,
                f"This model's maximum context length is {o.max_model_len} tokens. However, you requested "
                f"{requested} output tokens and your prompt contains at least {prompt_tokens} input tokens, "
                f"for a total of at least {prompt_tokens + requested} tokens. Please reduce the length of "
                "the input prompt or the number of requested output tokens. "
                f"(parameter=input_tokens, value={prompt_tokens})",
                param="input_tokens",
            )
        o._acquire_slot()
        try:
            if o.latency:
                o._stop.wait(o.latency)
            reply = o._next_reply(body)
            if reply.delay:
                o._stop.wait(reply.delay)
        finally:
            o._release_slot()
        if o._stop.is_set():  # the server "died" while this request ran: no answer, like a crash
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.raw_body is not None:
            self._send_raw(reply.status, reply.raw_body.encode(), "application/json", reply.headers)
            return
        if reply.status != 200:
            err = HTTPError(reply.status, reply.error or f"scripted error {reply.status}")
            self._send_json(reply.status, err.body(), reply.headers)
            return
        text, cut = _truncate(reply.text, None if max_tokens is None else int(max_tokens))
        finish = "length" if cut else (reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop"))
        completion_tokens = estimate_tokens(text)
        with o._lock:
            o.prompt_tokens_total += prompt_tokens
            o.generation_tokens_total += completion_tokens
            o.request_success_total += 1
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        cid = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        if body.get("stream"):
            self._stream(cid, created, text, finish, reply.tool_calls, usage, body)
            return
        message: dict[str, Any] = {"role": "assistant", "content": text, "tool_calls": reply.tool_calls or []}
        self._send_json(
            200,
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": o.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": usage,
            },
        )

    def _stream(
        self,
        cid: str,
        created: int,
        text: str,
        finish: str,
        tool_calls: list[dict[str, Any]] | None,
        usage: dict[str, int],
        body: dict[str, Any],
    ) -> None:
        model = self.owner.model
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def emit(obj: Any) -> None:
            payload = obj if isinstance(obj, str) else json.dumps(obj)
            data = f"data: {payload}\n\n".encode()
            self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }

        emit(chunk({"role": "assistant", "content": ""}))
        for piece in _pieces(text):
            emit(chunk({"content": piece}))
        if tool_calls:
            emit(chunk({"tool_calls": [dict(tc, index=i) for i, tc in enumerate(tool_calls)]}))
        emit(chunk({}, finish))
        opts = body.get("stream_options") or {}
        if opts.get("include_usage"):
            emit(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        emit("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _fault(self, kind: str) -> None:
        o = self.owner
        if kind == "429":
            self._send_json(429, HTTPError(429, "Too many requests").body(), {"Retry-After": "0"})
        elif kind in ("500", "503"):
            status = int(kind)
            self._send_json(status, HTTPError(status, f"injected fault {kind}").body())
        elif kind == "malformed":
            self._send_raw(200, b'{"id": "chatcmpl-broken", "choices": [', "application/json")
        elif kind == "partial":  # body dropped mid-response: headers promise more bytes than are sent
            body = json.dumps({"id": "chatcmpl-cut", "object": "chat.completion", "choices": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) * 2))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        elif kind == "timeout":
            o._stop.wait(o.fault_delay)
            self.close_connection = True
        else:  # drop: close the socket without a response
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


__all__ = [
    "FAULT_KINDS",
    "READERS",
    "HTTPError",
    "LocalVLLMServer",
    "Reply",
    "canvas_view",
    "estimate_tokens",
    "schema_instance",
]
