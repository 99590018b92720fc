"""HTTP side of the test double: vLLM's routes over ``http.server`` (one thread per connection, HTTP/1.1
keep-alive), JSON and SSE answers, and the injected faults; the state they act on is the server's."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .replies import HTTPError, estimate_tokens, pieces, truncate

if TYPE_CHECKING:  # pragma: no cover
    from .server import LocalVLLMServer


class QuietHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with uvicorn's listen backlog (the default 5 drops SYNs under a burst of new
    connections, stalling clients ~1 s in TCP retransmits) and no tracebacks when a socket is dropped."""

    daemon_threads = True

    request_queue_size = 2048

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


class Handler(BaseHTTPRequestHandler):
    """One connection's requests, answered from the state of ``owner`` (the :class:`LocalVLLMServer`).

    TCP_NODELAY is set, as uvicorn does: with Nagle's algorithm the body, written after the headers,
    waits for the client's delayed ACK of them (~40 ms added to every answer).
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    owner: LocalVLLMServer

    def setup(self) -> None:
        super().setup()
        self.owner.connection_opened(self.connection)

    def finish(self) -> None:
        self.owner.connection_closed(self.connection)
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
        o.record(o.tokenize_requests, body)
        if "messages" in body:
            count, _, _ = o.count_prompt(body["messages"])
        else:
            count = estimate_tokens(str(body.get("prompt", "")))
        self._send_json(200, {"count": count, "max_model_len": o.max_model_len, "tokens": list(range(count))})

    def _chat(self, body: dict[str, Any]) -> None:
        o = self.owner
        o.record(o.requests, body)
        fault = o.take_fault()
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
        reply = o.run(body)
        if reply is None:  # the server "died" while this request ran: no answer, like a crash
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
        text, cut = truncate(reply.text, None if max_tokens is None else int(max_tokens))
        finish = "length" if cut else (reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop"))
        completion_tokens = estimate_tokens(text)
        o.count_success(prompt_tokens, completion_tokens)
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
        for piece in pieces(text):
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
            o.stall(o.fault_delay)
            self.close_connection = True
        else:  # drop: close the socket without a response
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


__all__ = ["Handler", "QuietHTTPServer"]
