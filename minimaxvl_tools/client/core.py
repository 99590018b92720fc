"""MiniMaxVLClient: one sync + async client for MiniMax-VL-01 on vLLM.

It builds messages the model's chat template understands (:mod:`.messages`), budgets every request against
the served ``max_model_len`` with the exact image token formula before sending (:mod:`.budget`), retries
transient failures over its replicas (:mod:`.pool`, :mod:`.steps`), maps vLLM's errors by status AND
message (:mod:`.error_map`), validates structured outputs with one repair attempt, streams, and accounts
usage. The request logic lives in :mod:`.steps`; the methods here only perform its I/O, sync or async.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, SecretStr
from typing_extensions import Unpack

from ..backpressure import AdaptiveConcurrencyLimiter, RequestLimiter
from ..errors import InvalidInputError, redact_url
from ..images.encode import EncodedImage
from ..images.prepare import prepare_images
from ..profile import MINIMAX_VL_01, ModelProfile
from ..settings import Settings
from . import health as _health
from .budget import Budget
from .error_map import map_error, root_of
from .limiter import ConcurrencyLimiter, sync_slot
from .messages import build_messages
from .pool import Endpoint, EndpointPool, secret_value
from .spec import ClientSpec, spec_of
from .steps import (
    ChatOptions,
    ChatRequest,
    Flow,
    Plan,
    Retrying,
    RetryPolicy,
    StreamUsage,
    advance,
    chat_flow,
    check_options,
    plan_step,
    request_content,
    request_kwargs,
    stream_args,
    to_result,
)
from .types import ChatResult, HealthStatus, ImageInput, RequestPlan, Usage

T = TypeVar("T", bound=BaseModel)
_UNSET: Any = object()
_SDK_TAKES_CONTENT = "content" in inspect.signature(openai.OpenAI.post).parameters


def merge_settings(settings: Settings | None, **overrides: Any) -> Settings:
    """Arguments (non-None) over ``settings``, else over the ``MINIMAXVL_*`` environment and defaults.

    With replicas, the first one is "the" ``base_url`` (root URL, error messages).
    """
    if isinstance(overrides.get("api_key"), str):
        overrides["api_key"] = SecretStr(overrides["api_key"])
    if settings is None:
        settings = Settings.from_env(**overrides)
    else:
        settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    if settings.base_urls:
        settings = settings.model_copy(update={"base_url": settings.endpoints[0]})
    return settings


def make_limiter(settings: Settings, pool: EndpointPool, headers: dict[str, str]) -> RequestLimiter:
    """The in-flight cap the settings ask for: adaptive (vLLM's /metrics) or fixed ``max_concurrency``."""
    if settings.adaptive:
        roots = [e.root_url for e in pool.endpoints]
        return AdaptiveConcurrencyLimiter(roots, fixed_limit=settings.max_concurrency, headers=headers)
    return ConcurrencyLimiter(settings.max_concurrency)


class MiniMaxVLClient:
    """Sync and async chat client for MiniMax-VL-01 behind vLLM.

    Arguments override ``settings`` (default :meth:`Settings.from_env`). ``system_prompt`` defaults to the
    profile's official prompt; ``None`` disables it. ``backoff_base``/``backoff_max`` shape the retry
    delays (tests pass tiny values); ``min_completion_tokens`` is the floor budgeting may cut max_tokens to.

    Replicas: ``base_urls`` (or ``Settings.base_urls`` / ``MINIMAXVL_BASE_URLS``) spreads requests over
    several vLLM servers, least-in-flight first (round-robin on ties). An endpoint failing with a
    connection error or 5xx sits out ``endpoint_cooldown`` seconds and the request is retried at once on
    another one; only when none is left does the usual backoff apply. ``max_model_len`` is the minimum
    over endpoints, :meth:`health` reports each one in ``endpoints``.

    Concurrency: :attr:`limiter` caps requests in flight on both paths (``max_concurrency``); with
    ``adaptive=True`` (or ``Settings.adaptive``) it is an
    :class:`~minimaxvl_tools.backpressure.AdaptiveConcurrencyLimiter` that follows vLLM's ``/metrics``.

    ``exact_budget=True`` counts text with vLLM's ``/tokenize`` (cached per text, fetched ahead of time on
    the async path so the event loop never blocks) instead of the conservative bytes/3 estimate; a 404
    falls back to the estimate.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_concurrency: int | None = None,
        max_images_per_request: int | None = None,
        max_model_len: int | None = None,
        system_prompt: str | None = _UNSET,
        profile: ModelProfile = MINIMAX_VL_01,
        policy: Any = None,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        min_completion_tokens: int = 256,
        limiter: RequestLimiter | None = None,
        base_urls: Sequence[str] | None = None,
        adaptive: bool | None = None,
        endpoint_cooldown: float = 10.0,
        exact_budget: bool = False,
    ) -> None:
        settings = merge_settings(
            settings,
            base_url=base_url,
            base_urls=list(base_urls) if base_urls is not None else None,
            api_key=api_key,
            model=model,
            timeout=timeout,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            max_images_per_request=max_images_per_request,
            max_model_len=max_model_len,
            adaptive=adaptive,
        )
        self.settings: Settings = settings
        self.profile: ModelProfile = profile
        self.system_prompt: str | None = profile.system_prompt if system_prompt is _UNSET else system_prompt
        self._policy = policy
        self.retry_policy = RetryPolicy(settings.max_retries, backoff_base, backoff_max)
        self.pool = EndpointPool(settings.endpoints, settings.api_key, settings.timeout, endpoint_cooldown)
        self.budget = Budget(
            self.pool,
            model=settings.model,
            headers=self._headers(),
            timeout=settings.timeout,
            profile=profile,
            max_images=settings.max_images_per_request,
            jpeg_quality=settings.jpeg_quality,
            max_model_len=settings.max_model_len,
            exact=exact_budget,
            min_completion_tokens=min_completion_tokens,
        )
        self.limiter: RequestLimiter = limiter or make_limiter(settings, self.pool, self._headers())
        # what rebuilds this client elsewhere (spec()); None: the caller's own limiter cannot go along
        self._options: dict[str, Any] | None = None if limiter is not None else dict(profile=profile)
        if self._options is not None:
            self._options |= dict(system_prompt=self.system_prompt, backoff_base=backoff_base)
            self._options |= dict(backoff_max=backoff_max, min_completion_tokens=min_completion_tokens)
            self._options |= dict(endpoint_cooldown=endpoint_cooldown, exact_budget=exact_budget)
        self._usage = Usage()
        self._usage_lock = threading.Lock()

    def __repr__(self) -> str:
        urls = redact_url(", ".join(e.base_url for e in self.endpoints))
        return f"MiniMaxVLClient(base_url={urls!r}, model={self.settings.model!r})"

    # ------------------------------------------------------------------ properties
    @property
    def endpoints(self) -> list[Endpoint]:
        """The replicas this client sends to (health and load state of each)."""
        return self.pool.endpoints

    @property
    def usage(self) -> Usage:
        """Cumulative usage of this client (a copy; thread-safe)."""
        with self._usage_lock:
            return self._usage.model_copy()

    @property
    def policy(self) -> Any:
        """InputPolicy for loading images (built from settings on first use)."""
        if self._policy is None:
            from ..images.policy import InputPolicy

            self._policy = InputPolicy.from_settings(self.settings)
        return self._policy

    @property
    def root_url(self) -> str:
        """Server root (base_url without a trailing ``/v1``), where vLLM serves ``/health``."""
        return root_of(self.settings.base_url)

    @property
    def exact_budget(self) -> bool:
        """Whether text is counted with vLLM's /tokenize."""
        return self.budget.exact

    @property
    def tokenize_supported(self) -> bool | None:
        """None until /tokenize was asked, then whether the server has it."""
        return self.budget.tokenize_supported

    @property
    def estimate_text_tokens(self) -> Callable[[str], int]:
        """The text token estimate used when counts are not exact."""
        return self.budget.estimate

    @estimate_text_tokens.setter
    def estimate_text_tokens(self, fn: Callable[[str], int]) -> None:
        self.budget.estimate = fn

    @property
    def min_completion_tokens(self) -> int:
        """The floor budgeting may cut max_tokens to."""
        return self.budget.min_completion_tokens

    def spec(self, **settings: Any) -> ClientSpec | None:
        """What rebuilds this client in another process, ``settings`` changed (:func:`.spec.spec_of`)."""
        return spec_of(self, self._options, **settings)

    def record_usage(self, usage: Usage) -> None:
        """Add ``usage`` spent on this client's behalf elsewhere (a sending worker process)."""
        self._record(usage)

    def _record(self, usage: Usage) -> None:
        with self._usage_lock:
            self._usage = self._usage + usage

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret_value(self.settings.api_key)}"}

    # ------------------------------------------------------------------ images, messages, budget
    def prepare_images(
        self, images: Iterable[ImageInput], *, max_tokens_per_image: int | None = None
    ) -> list[EncodedImage]:
        """Load, fit to the canvases (optionally to a token cap) and encode each image, keeping order."""
        return prepare_images(
            images,
            policy=self.policy,
            profile=self.profile,
            quality=self.settings.jpeg_quality,
            max_tokens_per_image=max_tokens_per_image,
        )

    def build_messages(
        self, text: str, images: Sequence[EncodedImage] = (), *, system: str | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        """Messages in MiniMax-VL-01's format (:func:`.messages.build_messages`: ``history``,
        ``images_first``); ``system=None`` uses :attr:`system_prompt`, ``""`` sends none."""
        sys_text = self.system_prompt if system is None else system
        return build_messages(text, images, system=sys_text, **kw)

    def max_model_len(self) -> int:
        """Served context length: settings override, else the smallest over the endpoints (cached)."""
        return self.budget.max_model_len()

    async def amax_model_len(self) -> int:
        """Async :meth:`max_model_len`; a batch's first requests share one fetch."""
        return await self.budget.amax_model_len()

    def text_tokens(self, text: str) -> int:
        """Tokens of ``text`` (exact with ``exact_budget``, else the estimate)."""
        return self.budget.text_tokens(text)

    def count_tokens(self, messages: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
        """(text tokens, exact image tokens, image count) of messages as they will be sent."""
        return self.budget.count(messages)

    def plan(
        self,
        text: str,
        images: Sequence[EncodedImage] = (),
        *,
        system: str | None = None,
        history: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int | None = None,
        allow_downscale: bool = True,
        max_model_len: int | None = None,
    ) -> RequestPlan:
        """Fit a request into the context before sending: shrink images, then cut max_tokens, else raise."""
        step = Plan(text, list(images), system, history, self._max_tokens(max_tokens), allow_downscale)
        mml = max_model_len if max_model_len is not None else self.max_model_len()
        return self._plan(step, mml)

    def _max_tokens(self, max_tokens: int | None) -> int:
        mt = self.settings.max_tokens if max_tokens is None else max_tokens
        if mt < 1:
            raise InvalidInputError(f"max_tokens must be >= 1, got {mt}")
        return mt

    def _plan(self, step: Plan, mml: int) -> RequestPlan:
        system = self.system_prompt if step.system is None else step.system
        return self.budget.plan(
            step.text,
            step.images,
            system=system,
            history=step.history,
            max_tokens=step.max_tokens,
            allow_downscale=step.allow_downscale,
            max_model_len=mml,
        )

    async def _aplan(self, step: Plan) -> RequestPlan:
        mml = await self.amax_model_len()
        if self.budget.exact:
            await self.budget.aprefetch(
                self.build_messages(step.text, step.images, system=step.system, history=step.history)
            )
        return self._plan(step, mml)

    def _request(self, text: str, images: list[EncodedImage], kw: Mapping[str, Any]) -> ChatRequest:
        return ChatRequest.of(text, images, kw, self._max_tokens(kw.get("max_tokens")))

    def _body(self, plan: RequestPlan, kw: Mapping[str, Any], stream: bool = False) -> dict[str, Any]:
        return request_kwargs(plan, self.settings, kw, stream=stream)

    # ------------------------------------------------------------------ transport drivers
    def _with_retries(self, fn: Callable[[openai.OpenAI], Any]) -> Any:
        """``fn(client)`` through the retry ladder (:class:`~.steps.Retrying`)."""
        ladder = Retrying(self.pool, self.retry_policy)
        while True:
            ep = ladder.endpoint()
            try:
                result = fn(ep.client)
            except Exception as e:
                time.sleep(ladder.failed(ep, e))
                continue
            except BaseException:
                ladder.cancelled(ep)
                raise
            ladder.succeeded(ep)
            return result

    async def _awith_retries(self, fn: Callable[[openai.AsyncOpenAI], Awaitable[Any]]) -> Any:
        """Async :meth:`_with_retries`."""
        ladder = Retrying(self.pool, self.retry_policy)
        while True:
            ep = ladder.endpoint()
            try:
                result = await fn(ep.aclient())
            except Exception as e:
                await asyncio.sleep(ladder.failed(ep, e))
                continue
            except BaseException:  # cancelled: give the slot back
                ladder.cancelled(ep)
                raise
            ladder.succeeded(ep)
            return result

    @staticmethod
    def _create(body: dict[str, Any]) -> Callable[[Any], Any]:
        """``client -> completion`` for a non-streamed body: its JSON encoded once, ASCII-only
        (:func:`.steps.request_content`), where the SDK takes raw content; else via ``create``."""
        if not _SDK_TAKES_CONTENT:
            return lambda c: c.chat.completions.create(**body)
        content = request_content(body)
        return lambda c: c.post("/chat/completions", content=content, cast_to=ChatCompletion)

    def _send(self, plan: RequestPlan, kw: Mapping[str, Any]) -> ChatResult:
        create = self._create(self._body(plan, kw))
        t0 = time.perf_counter()
        resp = self._with_retries(create)
        result = to_result(resp, plan, time.perf_counter() - t0, self.settings.model)
        self._record(result.usage)
        return result

    async def _asend(self, plan: RequestPlan, kw: Mapping[str, Any]) -> ChatResult:
        create = self._create(self._body(plan, kw))
        t0 = time.perf_counter()
        resp = await self._awith_retries(create)
        result = to_result(resp, plan, time.perf_counter() - t0, self.settings.model)
        self._record(result.usage)
        return result

    def _drive(self, flow: Flow, kw: Mapping[str, Any]) -> ChatResult:
        """Perform the steps of ``flow`` (:mod:`.steps`) until it gives its result, in one slot of the
        limiter: planning and the request body are built once a slot is free, so many calls started at
        once (``gather`` of thousands) neither plan and encode them all before the first is sent nor
        hold all their bodies in memory."""
        with sync_slot(self.limiter):
            step = advance(flow, None)
            while not isinstance(step, ChatResult):
                if isinstance(step, Plan):
                    step = advance(flow, self._plan(step, self.max_model_len()))
                else:
                    step = advance(flow, self._send(step.plan, kw))
        return step

    async def _adrive(self, flow: Flow, kw: Mapping[str, Any]) -> ChatResult:
        """Async :meth:`_drive`."""
        async with self.limiter:
            step = advance(flow, None)
            while not isinstance(step, ChatResult):
                if isinstance(step, Plan):
                    step = advance(flow, await self._aplan(step))
                else:
                    step = advance(flow, await self._asend(step.plan, kw))
        return step

    # ------------------------------------------------------------------ chat
    def chat(
        self, text: str, images: Sequence[ImageInput] = (), **options: Unpack[ChatOptions]
    ) -> ChatResult:
        """One chat completion; with ``schema`` the answer is validated into ``result.parsed``.

        Options (:class:`~.steps.ChatOptions`): ``system`` (None: the client's prompt, "": none),
        ``max_tokens``, ``temperature``, ``schema``, ``messages`` (history), ``extra_body``, ``stop``,
        ``allow_downscale`` (shrink images to fit the context), ``max_retry_tokens`` (a reply cut at
        max_tokens is asked again once with up to twice the budget, within this cap and the context:
        :func:`~.steps.retry_budget`).
        """
        kw = check_options(options, "chat")
        req = self._request(text, self.prepare_images(images), kw)
        return self._drive(chat_flow(req), kw)

    async def achat(
        self, text: str, images: Sequence[ImageInput] = (), **options: Unpack[ChatOptions]
    ) -> ChatResult:
        """Async :meth:`chat` (images encoded off the event loop)."""
        kw = check_options(options, "achat")
        encoded = await asyncio.to_thread(self.prepare_images, images) if images else []
        req = self._request(text, encoded, kw)
        return await self._adrive(chat_flow(req), kw)

    def structured(self, text: str, images: Sequence[ImageInput], schema: type[T], **kw: Any) -> T:
        """The answer validated as ``schema`` (json_schema guided decoding + one repair attempt; a JSON
        cut at max_tokens is asked again with more room only under ``max_retry_tokens``, and one still cut
        raises :class:`TruncatedOutputError`, for the caller to give room)."""
        return self.chat(text, images, schema=schema, **kw).parsed

    async def astructured(self, text: str, images: Sequence[ImageInput], schema: type[T], **kw: Any) -> T:
        """Async :meth:`structured`."""
        return (await self.achat(text, images, schema=schema, **kw)).parsed

    async def abatch(
        self, requests: Iterable[Mapping[str, Any]], *, return_exceptions: bool = True
    ) -> list[ChatResult | BaseException]:
        """Run many :meth:`achat` calls (each a dict of its arguments) concurrently under the limiter."""
        coros = [self.achat(**dict(r)) for r in requests]
        return list(await asyncio.gather(*coros, return_exceptions=return_exceptions))

    # ------------------------------------------------------------------ streaming
    def stream(self, text: str, images: Sequence[ImageInput] = (), **kw: Any) -> Iterator[str]:
        """Text deltas as they arrive; usage (from the final chunk) is added to :attr:`usage` at the end and,
        with ``on_usage=callback``, handed to the callback: this call's own usage, exact under concurrency."""
        on_usage, kw = stream_args(kw, "stream")
        req = self._request(text, self.prepare_images(images), kw)
        with sync_slot(self.limiter):  # planned within its slot, as in _drive
            plan = self._plan(plan_step(req), self.max_model_len())
            body = self._body(plan, kw, stream=True)
            t0 = time.perf_counter()
            chunks = self._with_retries(lambda c: c.chat.completions.create(**body))
            acc = StreamUsage(plan)
            try:
                for ch in chunks:
                    yield from acc.deltas(ch)
            except Exception as e:
                raise map_error(e, self.settings.base_url) from e
            finally:
                acc.finish(t0, self._record, on_usage)
                with contextlib.suppress(Exception):
                    chunks.close()

    async def astream(self, text: str, images: Sequence[ImageInput] = (), **kw: Any) -> AsyncIterator[str]:
        """Async :meth:`stream`: text deltas; usage recorded (and given to ``on_usage``) at the end."""
        on_usage, kw = stream_args(kw, "astream")
        encoded = await asyncio.to_thread(self.prepare_images, images) if images else []
        req = self._request(text, encoded, kw)
        async with self.limiter:  # planned within its slot, as in _adrive
            plan = await self._aplan(plan_step(req))
            body = self._body(plan, kw, stream=True)
            t0 = time.perf_counter()
            chunks = await self._awith_retries(lambda c: c.chat.completions.create(**body))
            acc = StreamUsage(plan)
            try:
                async for ch in chunks:
                    for delta in acc.deltas(ch):
                        yield delta
            except Exception as e:
                raise map_error(e, self.settings.base_url) from e
            finally:
                acc.finish(t0, self._record, on_usage)
                with contextlib.suppress(Exception):
                    await chunks.close()

    # ------------------------------------------------------------------ health
    def _combined(self, per: list[HealthStatus]) -> HealthStatus:
        lens = [h.max_model_len for h in per if h.max_model_len is not None]
        if lens and self.settings.max_model_len is None:
            self.budget.cached_max_model_len = min(lens)
        return _health.combine_health(per, self.settings.base_url)

    def health(self) -> HealthStatus:
        """GET /health (server root) and /v1/models of every endpoint: reachable, models, ours served,
        max_model_len; replicas are listed in ``endpoints`` and their health state updated."""
        return self._combined(_health.check(self.pool, self._probe()))

    async def ahealth(self) -> HealthStatus:
        """Async :meth:`health` (endpoints checked concurrently)."""
        return self._combined(await _health.acheck(self.pool, self._probe()))

    def _probe(self) -> _health.Probe:
        s = self.settings
        return _health.Probe(s.model, s.max_model_len, min(s.timeout, 10.0), self._headers())

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the sync HTTP clients (the async ones are closed by :meth:`aclose`)."""
        self.pool.close()

    async def aclose(self) -> None:
        """Close every HTTP client."""
        await self.pool.aclose()

    def __enter__(self) -> MiniMaxVLClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MiniMaxVLClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = ["MiniMaxVLClient"]
