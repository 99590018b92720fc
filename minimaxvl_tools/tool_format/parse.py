"""Parsing ``<function_call>`` blocks out of model text, one-shot or streamed, with light argument repair."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError
from .calls import (
    FUNCTION_CALL_TOKEN,
    NAME_RE,
    IdFactory,
    InvalidCall,
    ParsedCall,
    ParsedOutput,
    default_call_id,
)

_TRIGGER_RE = re.compile(r"<function_call>|```|^[ \t]*functions\.", re.MULTILINE)
_FENCE_OPEN_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*")
_PREFIX = "functions."


class _Wait(Exception):
    """Internal: the text ends before the scanner can decide (streaming only)."""


@dataclass
class _Attempt:
    """One call attempt found by the scanner (``args_text`` is None when the call is malformed)."""

    name: str | None
    raw: str
    args_text: str | None
    error: str | None = None


@dataclass
class _Seg:
    """A scanned segment: plain text (``attempts`` is None) or a call block with its attempts."""

    start: int
    end: int
    attempts: list[_Attempt] | None = None


def _find_close_paren(text: str, open_idx: int) -> int | None:
    """Index of the ``)`` closing the ``(`` at ``open_idx``, skipping JSON/Python strings; None at EOF."""
    depth = 0
    i = open_idx
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            i += 1
            while i < n and text[i] != ch:
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                return None
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i if ch == ")" else None
            if depth < 0:
                return None
        i += 1
    return None


class _Scanner:
    """Left-to-right segmentation of model text into plain text and call blocks.

    With ``final=False`` it stops (``_Wait``) wherever more text could change a decision, which is what lets
    the streaming parser produce exactly the same segmentation as the one-shot parser.
    """

    def __init__(self, text: str, final: bool) -> None:
        self.text = text
        self.final = final

    # -- helpers
    def _eof(self, i: int) -> bool:
        if i >= len(self.text):
            if not self.final:
                raise _Wait
            return True
        return False

    def _needs_more(self, i: int, literal: str) -> bool:
        """True if the text from ``i`` is a proper prefix of ``literal`` (raises _Wait if streaming)."""
        rest = self.text[i:]
        if len(rest) < len(literal) and literal.startswith(rest):
            if not self.final:
                raise _Wait
            return True
        return False

    def _skip_ws(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in " \t\r\n":
            i += 1
        return i

    def _head(self, i: int) -> tuple[str, int] | None:
        """Match ``functions.NAME`` + spaces + ``(`` at ``i``; return (name, index of ``(``) or None."""
        t = self.text
        if self._needs_more(i, _PREFIX) or not t.startswith(_PREFIX, i):
            return None
        m = NAME_RE.match(t, i + len(_PREFIX))
        if not m:
            self._eof(i + len(_PREFIX))
            return None
        j = m.end()
        self._eof(j)
        while j < len(t) and t[j] in " \t":
            j += 1
        if self._eof(j) or t[j] != "(":
            return None
        return m.group(), j

    def _call(self, i: int, block_end: int | None) -> tuple[_Attempt, int]:
        """Parse one call whose ``functions.`` starts at ``i``; returns the attempt and the index after it."""
        t = self.text
        head = self._head(i)
        if head is None:  # "functions." without a well-formed NAME(
            line_end = t.find("\n", i)
            line_end = len(t) if line_end < 0 else line_end
            raw = t[i:line_end]
            return _Attempt(None, raw, None, "expected functions.NAME(...)"), line_end
        name, open_idx = head
        close = _find_close_paren(t, open_idx)
        if close is not None and (block_end is None or close < block_end):
            return _Attempt(name, t[i : close + 1], t[open_idx + 1 : close]), close + 1
        if not self.final:
            raise _Wait
        # fallback: the last ")" before the end of the block (unbalanced quotes or brackets inside)
        if block_end is not None:
            limit = block_end
        else:  # a call outside a fence: do not look past its line
            nl = t.find("\n", open_idx)
            limit = len(t) if nl < 0 else nl
        last = t.rfind(")", open_idx, limit)
        if last > open_idx:
            return _Attempt(name, t[i : last + 1], t[open_idx + 1 : last]), last + 1
        return _Attempt(name, t[i:limit], None, "unterminated call: no closing ')'"), limit

    def _fence_body(self, j: int) -> tuple[list[_Attempt], int]:
        """Parse calls inside a fenced block whose body starts at ``j``; return attempts and end index."""
        t = self.text
        attempts: list[_Attempt] = []
        close_at = t.find("\n```", j)
        while True:
            j = self._skip_ws(j)
            while j < len(t) and t[j] in ";,":
                j = self._skip_ws(j + 1)
            if self._eof(j):
                return attempts, len(t)
            if self._needs_more(j, "```"):
                return attempts, len(t)
            if t.startswith("```", j):
                return attempts, j + 3
            if t.startswith("//", j):
                nl = t.find("\n", j)
                if nl < 0:
                    self._eof(len(t))
                    return attempts, len(t)
                j = nl
                continue
            if t.startswith(_PREFIX, j) or self._needs_more(j, _PREFIX):
                bound = close_at if close_at > j else None
                attempt, j = self._call(j, bound)
                attempts.append(attempt)
                if close_at >= 0 and j > close_at:  # a call swallowed the closing fence line
                    close_at = t.find("\n```", j)
                continue
            end = t.find("\n```", j)
            if end < 0:
                self._eof(len(t))
                end = len(t)
            attempts.append(_Attempt(None, t[j:end], None, "unexpected text in a function-call block"))
            j = end

    def _fence_is_call(self, i: int) -> int | None:
        """For a fence at ``i`` without the token: index of its body if it starts with a call, else None."""
        m = _FENCE_OPEN_RE.match(self.text, i)
        assert m is not None
        self._eof(m.end())
        j = self._skip_ws(m.end())
        self._eof(j)
        head = self._head(j)
        return m.end() if head is not None else None

    def _try(self, i: int) -> tuple[list[_Attempt], int] | None:
        """Try a call block at trigger index ``i``: (attempts, end) or None if it is plain text."""
        t = self.text
        if t.startswith(FUNCTION_CALL_TOKEN, i):
            j = self._skip_ws(i + len(FUNCTION_CALL_TOKEN))
            if self._eof(j):
                return [_Attempt(None, t[i:j], None, "no call after <function_call>")], j
            if t.startswith("```", j) or self._needs_more(j, "```"):
                m = _FENCE_OPEN_RE.match(t, j)
                if m is None:
                    return [_Attempt(None, t[i:j], None, "no call after <function_call>")], j
                self._eof(m.end())
                return self._fence_body(m.end())
            if t.startswith(_PREFIX, j) or self._needs_more(j, _PREFIX):
                attempt, end = self._call(j, None)
                return [attempt], end
            return [_Attempt(None, t[i:j], None, "no call after <function_call>")], j
        if t.startswith("```", i):
            body = self._fence_is_call(i)
            return None if body is None else self._fence_body(body)
        # bare line: [ \t]*functions.NAME( followed by "{" or ")"
        j = i
        while t[j] in " \t":
            j += 1
        head = self._head(j)
        if head is None:
            return None
        k = self._skip_ws(head[1] + 1)
        if self._eof(k) or t[k] not in "{)":
            return None
        attempt, end = self._call(j, None)
        return [attempt], end

    def _partial_hold(self, start: int) -> int:
        """Where a trigger might begin in the unfinished tail (streaming): hold text back from there."""
        t = self.text
        n = len(t)
        hold = n
        for k in range(max(start, n - len(FUNCTION_CALL_TOKEN) + 1), n):
            if FUNCTION_CALL_TOKEN.startswith(t[k:]) or "```".startswith(t[k:]):
                hold = k
                break
        line_start = t.rfind("\n", 0, n) + 1
        m = re.match(r"[ \t]*", t[line_start:])
        assert m is not None
        rest = t[line_start + m.end() :]
        if _PREFIX.startswith(rest) and line_start >= start:
            hold = min(hold, line_start)
        return hold

    def scan(self, start: int = 0) -> tuple[list[_Seg], int]:
        """Segments from ``start`` and the index up to which they are final."""
        t = self.text
        segs: list[_Seg] = []
        text_start = i = start
        while True:
            m = _TRIGGER_RE.search(t, i)
            if m is None:
                hold = len(t) if self.final else self._partial_hold(i)
                hold = max(hold, text_start)
                if hold > text_start:
                    segs.append(_Seg(text_start, hold))
                return segs, hold
            try:
                found = self._try(m.start())
            except _Wait:
                if m.start() > text_start:
                    segs.append(_Seg(text_start, m.start()))
                return segs, m.start()
            if found is None:
                i = m.start() + 1
                continue
            attempts, end = found
            if m.start() > text_start:
                segs.append(_Seg(text_start, m.start()))
            segs.append(_Seg(m.start(), end, attempts))
            text_start = i = end


# ---------------------------------------------------------------------------------------------- arguments
def _repair_json(s: str) -> str:
    """Light repair of near-JSON: single quotes, trailing commas, unquoted keys, Python True/False/None."""
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch == '"':
            j = i + 1
            while j < n and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            out.append(s[i : j + 1])
            i = j + 1
        elif ch == "'":
            j = i + 1
            buf: list[str] = []
            while j < n and s[j] != "'":
                if s[j] == "\\" and j + 1 < n:
                    buf.append("'" if s[j + 1] == "'" else s[j : j + 2])
                    j += 2
                    continue
                buf.append('\\"' if s[j] == '"' else s[j])
                j += 1
            out.append('"' + "".join(buf) + '"')
            i = j + 1
        elif ch.isalpha() or ch in "_$":
            j = i
            while j < n and (s[j].isalnum() or s[j] in "_$"):
                j += 1
            word = s[i:j]
            k = j
            while k < n and s[k] in " \t\r\n":
                k += 1
            if k < n and s[k] == ":":
                out.append(json.dumps(word))
            else:
                out.append({"True": "true", "False": "false", "None": "null"}.get(word, word))
            i = j
        elif ch == ",":
            k = i + 1
            while k < n and s[k] in " \t\r\n":
                k += 1
            if k < n and s[k] in "}]":
                i += 1
                continue
            out.append(ch)
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _decode_args(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """Arguments text -> (dict, None) or (None, error). Tries JSON, then the light repair, then a literal."""
    s = text.strip()
    if not s:
        return {}, None
    first_error: str | None = None
    value: Any = None
    try:
        value = json.loads(s)
    except json.JSONDecodeError as exc:
        first_error = f"arguments are not valid JSON: {exc}"
        repairs: list[Callable[[], Any]] = [lambda: json.loads(_repair_json(s), strict=False)]
        if len(s) <= 100_000:  # literal_eval is safe but slow on huge input
            repairs.append(lambda: ast.literal_eval(s))
        for attempt in repairs:
            try:
                value = attempt()
                json.dumps(value)  # literal_eval may give sets/tuples/bytes: keep JSON-able values only
                break
            except Exception:  # any failure means "try the next repair"
                value = None
    if value is None and first_error:
        return None, first_error
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {type(value).__name__}"
    return value, None


def _build(segs: list[_Seg], text: str, final: bool, id_factory: IdFactory) -> ParsedOutput:
    """Assemble content (calls removed, whitespace next to them trimmed) and the decoded calls."""
    pieces: list[str] = []
    calls: list[ParsedCall] = []
    invalid: list[InvalidCall] = []
    merged: list[_Seg] = []
    for seg in segs:
        if merged and seg.attempts is None and merged[-1].attempts is None:
            merged[-1] = _Seg(merged[-1].start, seg.end)
        else:
            merged.append(seg)
    for idx, seg in enumerate(merged):
        if seg.attempts is None:
            piece = text[seg.start : seg.end]
            if idx > 0:
                piece = piece.lstrip()
            if idx + 1 < len(merged) or not final:
                piece = piece.rstrip()
            if piece:
                pieces.append(piece)
            continue
        for att in seg.attempts:
            if att.args_text is None:
                invalid.append(InvalidCall(att.name, att.raw, att.error or "malformed call"))
                continue
            args, err = _decode_args(att.args_text)
            if args is None or att.name is None:
                invalid.append(InvalidCall(att.name, att.raw, err or "malformed call"))
            else:
                calls.append(ParsedCall(att.name, args, id_factory(len(calls), att.name, args), att.raw))
    return ParsedOutput("\n".join(pieces), calls, invalid)


def parse_tool_calls(text: str, *, id_factory: IdFactory | None = None) -> ParsedOutput:
    """Split a MiniMax-VL-01 answer into plain content and native function calls. Never raises on bad calls.

    Recognised: ``<function_call>```typescript\\nfunctions.NAME({json})\\n``` `` (any fence language), the
    same block without the token, ``<function_call>functions.NAME(...)``, and a bare ``functions.NAME({...})``
    / ``functions.NAME()`` line; several calls per block and several blocks per message; JSON strings holding
    ``)``, ``}``, backticks or newlines. Arguments that are not JSON get a light repair (single quotes,
    trailing commas, unquoted keys, Python ``True``/``False``/``None``); if that fails the call goes to
    ``invalid_calls`` with the error. Text around calls is kept as ``content`` (whitespace next to a call is
    trimmed, pieces are joined by a newline). Ids come from ``id_factory`` (default :func:`default_call_id`,
    deterministic).
    """
    segs, _ = _Scanner(text, final=True).scan(0)
    return _build(segs, text, True, id_factory or default_call_id)


class StreamingToolCallParser:
    """Incremental :func:`parse_tool_calls` for streamed output.

    ``feed(delta)`` returns the plain-text delta that is certainly not part of a call (possible call text and
    trailing whitespace are held back); ``flush()`` returns the last text delta; ``finish()`` returns the
    same :class:`ParsedOutput` that :func:`parse_tool_calls` gives for the whole text. The concatenated text
    deltas equal ``finish().content``. ``completed_calls`` lists the calls already closed, for early dispatch.
    """

    def __init__(self, *, id_factory: IdFactory | None = None) -> None:
        self._id_factory = id_factory or default_call_id
        self._text = ""
        self._segs: list[_Seg] = []
        self._stable = 0
        self._emitted = 0
        self._result: ParsedOutput | None = None
        self.completed_calls: list[ParsedCall] = []

    def feed(self, delta: str) -> str:
        """Add a text delta; return the plain text now safe to show (may be empty)."""
        if self._result is not None:
            raise InvalidInputError("StreamingToolCallParser.feed() called after finish()/flush()")
        if not delta:
            return ""
        self._text += delta
        new, self._stable = _Scanner(self._text, final=False).scan(self._stable)
        self._segs.extend(new)
        partial = _build(self._segs, self._text, False, self._id_factory)
        self.completed_calls = partial.tool_calls
        return self._delta(partial.content)

    def _delta(self, content: str) -> str:
        out = content[self._emitted :]
        self._emitted = max(self._emitted, len(content))
        return out

    def flush(self) -> str:
        """End of stream: parse what is left and return the final plain-text delta."""
        if self._result is None:
            tail, _ = _Scanner(self._text, final=True).scan(self._stable)
            self._segs.extend(tail)
            self._result = _build(self._segs, self._text, True, self._id_factory)
            self.completed_calls = self._result.tool_calls
            return self._delta(self._result.content)
        return ""

    def finish(self) -> ParsedOutput:
        """End of stream: the parsed content, calls and invalid calls (calls :meth:`flush` if needed)."""
        self.flush()
        assert self._result is not None
        return self._result

    @property
    def text(self) -> str:
        """All text fed so far."""
        return self._text


__all__ = ["StreamingToolCallParser", "parse_tool_calls"]
