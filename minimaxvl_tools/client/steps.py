"""The request logic written once, as steps that do no I/O: the retry ladder over the endpoint pool,
request bodies, answers into :class:`ChatResult`, and the flow of bad answers (a reply cut at max_tokens
asked again once with more room when the caller allows it; structured output validated, one repair).

The client's sync and async methods are thin drivers: they perform what a step asks for (send a plan,
prefetch token counts, sleep) and feed the outcome back, so both paths take the same decisions.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from pydantic import BaseModel, ValidationError

from ..errors import InvalidInputError, OutputValidationError, TruncatedOutputError
from ..images.encode import EncodedImage
from ..settings import Settings
from .error_map import is_endpoint_fault, is_retryable, map_error, retry_after
from .pool import Endpoint, EndpointPool
from .types import ChatResult, RequestPlan, Usage


# ---------------------------------------------------------------------------------------------- retries
@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts and how long to wait between them (exponential backoff with jitter)."""

    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 20.0

    def delay(self, backoffs: int, exc: BaseException) -> float:
        """Seconds before the next attempt: Retry-After when the server sent one, else jittered backoff."""
        ra = retry_after(exc)
        base = min(self.backoff_max, self.backoff_base * (2**backoffs))
        jittered = base * (0.5 + random.random() / 2)
        return min(self.backoff_max, max(ra, jittered)) if ra is not None else jittered


class Retrying:
    """One request's way through the retry ladder (no I/O: the driver sends and sleeps).

    Each attempt goes to the least-loaded healthy endpoint; a broken endpoint sits out its cool-down and
    the next attempt goes elsewhere without delay; one extra attempt per additional replica, so failing
    over never eats the retry budget. :meth:`failed` raises the typed error when the ladder is done.
    """

    def __init__(self, pool: EndpointPool, policy: RetryPolicy) -> None:
        self.pool = pool
        self.policy = policy
        self.attempts = policy.max_retries + len(pool.endpoints)
        self.attempt = 0
        self.backoffs = 0
        self.last: Endpoint | None = None

    def endpoint(self) -> Endpoint:
        """The endpoint for the next attempt (booked: give it back through one of the methods below)."""
        return self.pool.pick(avoid=self.last)

    def succeeded(self, ep: Endpoint) -> None:
        """The attempt on ``ep`` worked."""
        self.pool.release(ep)
        ep.mark_up()

    def cancelled(self, ep: Endpoint) -> None:
        """The attempt on ``ep`` was abandoned (cancellation): only give the slot back."""
        self.pool.release(ep)

    def failed(self, ep: Endpoint, exc: BaseException) -> float:
        """Book a failed attempt: the delay before the next one (0: fail over now), or the typed error."""
        self.pool.release(ep)
        self.last = ep
        fault = is_endpoint_fault(exc)
        if fault:
            ep.mark_down(self.pool.cooldown, f"{type(exc).__name__}: {exc}"[:300])
        attempt = self.attempt
        self.attempt += 1
        if not is_retryable(exc) or attempt >= self.attempts - 1:
            raise map_error(exc, ep.base_url, attempt + 1) from exc
        if fault and self.pool.other_healthy(ep):
            return 0.0
        delay = self.policy.delay(self.backoffs, exc)
        self.backoffs += 1
        return delay


# ---------------------------------------------------------------------------------------------- bodies
class ChatOptions(TypedDict, total=False):
    """The options of one chat call (all optional; see :meth:`MiniMaxVLClient.chat`)."""

    system: str | None
    max_tokens: int | None
    temperature: float | None
    schema: type[BaseModel] | None
    messages: Sequence[Mapping[str, Any]] | None
    extra_body: Mapping[str, Any] | None
    stop: str | list[str] | None
    allow_downscale: bool
    max_retry_tokens: int | None


STREAM_ARGS = frozenset(ChatOptions.__annotations__)


def check_options(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The call's options as a dict; unknown names are refused with the list of known ones."""
    unknown = sorted(set(options) - STREAM_ARGS)
    if unknown:
        raise InvalidInputError(f"unknown {where}() arguments: {unknown}; known: {sorted(STREAM_ARGS)}")
    return dict(options)


def stream_args(kw: dict[str, Any], where: str) -> tuple[Callable[[Usage], Any] | None, dict[str, Any]]:
    """``on_usage`` and the chat arguments of a stream call; unknown arguments are refused, and so is
    ``max_retry_tokens`` (deltas already shown cannot be asked again)."""
    on_usage = kw.pop("on_usage", None)
    if kw.get("max_retry_tokens") is not None:
        raise InvalidInputError(f"{where}() does not retry a cut reply: max_retry_tokens is for chat()")
    return on_usage, check_options(kw, where)


def request_kwargs(
    plan: RequestPlan, settings: Settings, call: Mapping[str, Any], *, stream: bool = False
) -> dict[str, Any]:
    """The ``chat.completions.create`` arguments for a plan and a call's options (``temperature``,
    ``schema`` for json_schema guided decoding, ``extra_body``, ``stop``); settings fill the rest."""
    temperature = call.get("temperature")
    schema: type[BaseModel] | None = call.get("schema")
    extra_body, stop = call.get("extra_body"), call.get("stop")
    kw: dict[str, Any] = {
        "model": settings.model,
        "messages": plan.messages,
        "max_tokens": plan.max_tokens,
        "temperature": settings.temperature if temperature is None else temperature,
    }
    if stop is not None:
        kw["stop"] = stop
    if schema is not None:
        kw["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(), "strict": True},
        }
    if extra_body:
        kw["extra_body"] = dict(extra_body)
    if stream:
        kw["stream"] = True
        kw["stream_options"] = {"include_usage": True}
    return kw


_SPLICE_MIN = 16_384
"""Strings at least this long (image data URLs) go into the body verbatim instead of through ``json``."""
_VERBATIM = bytes(c for c in range(32, 128) if c not in b'"\\')
"""The ASCII bytes ``json`` writes as they are (no control characters, quote or backslash)."""
_MARK = "\x00minimaxvl-literal\x00"


def _literal(value: object) -> bytes | None:
    """``value`` as its own JSON string body when it is a long string that needs no escaping (ASCII, no
    quote, backslash or control character: a base64 data URL), else None."""
    if not isinstance(value, str) or len(value) < _SPLICE_MIN or not value.isascii():
        return None
    raw = value.encode("ascii")
    return None if raw.translate(None, _VERBATIM) else raw  # what is left needs escaping


def _marked(messages: Any, literals: list[bytes]) -> Any:
    """``messages`` with each long image URL replaced by :data:`_MARK` (its bytes kept in ``literals``, in
    order); the parts on that path are copied, the caller's messages are left as they are."""
    if not isinstance(messages, list):
        return messages
    out = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            out.append(message)
            continue
        parts = []
        for part in content:
            image = part.get("image_url") if isinstance(part, dict) else None
            raw = _literal(image.get("url")) if isinstance(image, dict) else None
            if raw is None:
                parts.append(part)
                continue
            literals.append(raw)
            parts.append({**part, "image_url": {**image, "url": _MARK}})
        out.append({**message, "content": parts})
    return out


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def request_content(kw: Mapping[str, Any]) -> bytes:
    """The JSON body ``chat.completions.create(**kw)`` would send (``extra_body`` merged at the top),
    encoded ASCII-only: on Python 3.12 ``json.dumps`` with ``ensure_ascii=False`` (the SDK's choice) takes
    ~8 ms for a page's base64 data URL, ASCII output ~1 ms, for the same JSON value. Image data URLs skip
    ``json`` altogether: they need no escaping, so their bytes are spliced into the encoded rest (a page's
    body in 1.1-1.3 ms instead of 2.7-2.9 ms on the 2-core CI machine)."""
    body = {k: v for k, v in kw.items() if k != "extra_body"}
    body.update(kw.get("extra_body") or {})
    literals: list[bytes] = []
    marked = {**body, "messages": _marked(body["messages"], literals)} if "messages" in body else body
    if not literals:
        return _dumps(body)
    pieces = _dumps(marked).split(_dumps(_MARK))
    if len(pieces) != len(literals) + 1:  # the mark also stood in the caller's own text: no splicing
        return _dumps(body)
    out = [pieces[0]]
    for raw, rest in zip(literals, pieces[1:], strict=True):
        out += [b'"', raw, b'"', rest]
    return b"".join(out)


def to_result(resp: Any, plan: RequestPlan, latency: float, model: str) -> ChatResult:
    """An OpenAI chat completion as a :class:`ChatResult` (usage carries the plan's exact image tokens)."""
    choice = resp.choices[0] if resp.choices else None
    msg = choice.message if choice else None
    u = resp.usage
    usage = Usage(
        prompt_tokens=getattr(u, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(u, "completion_tokens", 0) or 0,
        image_tokens=plan.image_tokens,
        requests=1,
        latency_s=latency,
    )
    tool_calls = [tc.model_dump() for tc in (getattr(msg, "tool_calls", None) or [])]
    return ChatResult(
        text=(getattr(msg, "content", None) or ""),
        finish_reason=getattr(choice, "finish_reason", None),
        usage=usage,
        model=getattr(resp, "model", "") or model,
        tool_calls=tool_calls,
        max_tokens=plan.max_tokens,
        downscaled=plan.downscaled,
    )


class StreamUsage:
    """Usage of one streamed answer, filled from the final chunk; deltas picked out of each chunk."""

    def __init__(self, plan: RequestPlan) -> None:
        self.usage = Usage(image_tokens=plan.image_tokens, requests=1)

    def deltas(self, chunk: Any) -> list[str]:
        """Text deltas of ``chunk``; its usage (the last chunk has it) is kept."""
        if chunk.usage is not None:
            self.usage.prompt_tokens = chunk.usage.prompt_tokens
            self.usage.completion_tokens = chunk.usage.completion_tokens
        return [c.delta.content for c in chunk.choices if c.delta and c.delta.content]

    def finish(
        self, t0: float, record: Callable[[Usage], Any], on_usage: Callable[[Usage], Any] | None
    ) -> None:
        """The stream is over (done, failed or closed): book its usage and latency since ``t0``."""
        self.usage.latency_s = time.perf_counter() - t0
        record(self.usage)
        if on_usage is not None:
            on_usage(self.usage)


# ---------------------------------------------------------------------------------------------- flows
@dataclass(frozen=True)
class ChatRequest:
    """Everything one chat call asks for, after its images are encoded."""

    text: str
    images: list[EncodedImage]
    system: str | None
    history: Sequence[Mapping[str, Any]] | None
    max_tokens: int
    allow_downscale: bool = True
    schema: type[BaseModel] | None = None
    max_retry_tokens: int | None = None

    @classmethod
    def of(
        cls, text: str, images: list[EncodedImage], call: Mapping[str, Any], max_tokens: int
    ) -> ChatRequest:
        """The request of a chat call's options (system, messages, allow_downscale, schema,
        max_retry_tokens)."""
        return cls(
            text,
            images,
            call.get("system"),
            call.get("messages"),
            max_tokens,
            call.get("allow_downscale", True),
            call.get("schema"),
            call.get("max_retry_tokens"),
        )


@dataclass(frozen=True)
class Plan:
    """Step: plan this request (the driver reads the served context length, on the async path fetches
    exact token counts first when the budget is exact, and calls :meth:`Budget.plan`)."""

    text: str
    images: list[EncodedImage]
    system: str | None
    history: Sequence[Mapping[str, Any]] | None
    max_tokens: int
    allow_downscale: bool


@dataclass(frozen=True)
class Send:
    """Step: send this plan and give back the :class:`ChatResult`."""

    plan: RequestPlan


Step = Plan | Send
Flow = Generator[Step, Any, ChatResult]


def strip_fences(text: str) -> str:
    """A JSON answer without the Markdown code fence models like to put around it."""
    s = text.strip()
    m = re.match(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```\s*$", s, re.S)
    if m:
        return m.group(1).strip()
    m = re.search(r"```(?:json)?\s*\n(.*?)\n```", s, re.S)
    return m.group(1).strip() if m else s


def validate(schema: type[BaseModel], text: str) -> tuple[BaseModel | None, str | None]:
    """``text`` parsed as ``schema``, or the validation errors."""
    try:
        return schema.model_validate_json(strip_fences(text)), None
    except ValidationError as e:
        return None, str(e)


def repair_turns(plan: RequestPlan, raw: str, errors: str) -> tuple[list[dict[str, Any]], str]:
    """History and prompt of the one repair attempt: the bad answer, then the validation errors."""
    return [
        *plan.messages,
        {"role": "assistant", "content": [{"type": "text", "text": raw}]},
    ], (
        "Your previous answer is not valid JSON for the required schema. Validation errors:\n"
        f"{errors[:2000]}\nReply with only the corrected JSON object, no prose and no code fences."
    )


def plan_step(req: ChatRequest) -> Plan:
    """The planning step of a request."""
    return Plan(req.text, req.images, req.system, req.history, req.max_tokens, req.allow_downscale)


def retry_budget(req: ChatRequest, plan: RequestPlan) -> int:
    """max_tokens of the one retry of a reply cut at max_tokens: twice the request's, within
    ``max_retry_tokens`` and the room the prompt leaves in the context (the same messages are sent
    again); 0 (no retry) when that is no more than the request's max_tokens or no cap was given."""
    if req.max_retry_tokens is None:
        return 0
    want = min(2 * req.max_tokens, req.max_retry_tokens)
    room = plan.max_model_len - plan.text_tokens - plan.image_tokens
    budget = min(want, room)
    return budget if budget > req.max_tokens else 0


def chat_flow(req: ChatRequest) -> Flow:
    """One chat call as steps: plan, send, then the bad-answer ladder.

    A reply cut at max_tokens (with a schema: one whose JSON does not validate) is sent again once with
    :func:`retry_budget` when the request gives ``max_retry_tokens``. A JSON still cut is not repaired
    (the whole object would need the same room again): it raises :class:`TruncatedOutputError` listing
    the budgets tried, for the caller to give room. Any other invalid JSON gets one repair attempt, with
    the budget of the answer it repairs.
    """
    plan: RequestPlan = yield plan_step(req)
    result: ChatResult = yield Send(plan)
    schema = req.schema
    parsed, errors = validate(schema, result.text) if schema is not None else (None, None)
    budgets = [plan.max_tokens]
    retry = retry_budget(req, plan) if result.finish_reason == "length" and parsed is None else 0
    if retry:
        budgets.append(retry)
        first = result
        result = yield Send(replace(plan, max_tokens=retry))
        result.usage = first.usage + result.usage
        if schema is not None:
            parsed, errors = validate(schema, result.text)
    if schema is None:
        return result
    if parsed is None:
        errors = errors or ""
        if result.finish_reason == "length":
            tried = ", then ".join(str(b) for b in budgets)
            raise TruncatedOutputError(
                f"the model's {schema.__name__} JSON was cut at max_tokens {tried} "
                "(finish_reason=length); raw text kept in .raw: raise max_tokens or ask for less output",
                raw=result.text,
                errors=errors,
                budgets=budgets,
            )
        hist, fix = repair_turns(plan, result.text, errors)
        fix_req = ChatRequest(fix, [], "", hist, retry or req.max_tokens, allow_downscale=False)
        plan2: RequestPlan = yield plan_step(fix_req)
        second: ChatResult = yield Send(plan2)
        parsed, errors2 = validate(schema, second.text)
        if parsed is None:
            raise OutputValidationError(
                f"the model's answer is not valid {schema.__name__} even after one repair attempt "
                f"({errors2}); raw text kept in .raw: simplify the schema or raise max_tokens",
                raw=second.text,
                errors=errors2,
            )
        second.usage = result.usage + second.usage
        result = second
    result.parsed = parsed
    return result


def advance(flow: Flow, answer: Any) -> Step | ChatResult:
    """Feed the outcome of the last step to ``flow``: its next step, or the call's result once it is done
    (the one step both drivers share)."""
    try:
        return flow.send(answer)
    except StopIteration as done:
        return done.value


__all__ = [
    "ChatOptions",
    "ChatRequest",
    "Flow",
    "Plan",
    "RetryPolicy",
    "Retrying",
    "Send",
    "Step",
    "StreamUsage",
    "advance",
    "chat_flow",
    "check_options",
    "plan_step",
    "repair_turns",
    "request_kwargs",
    "retry_budget",
    "stream_args",
    "strip_fences",
    "to_result",
    "validate",
]
