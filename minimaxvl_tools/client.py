"""MiniMaxVLClient: one sync + async client for MiniMax-VL-01 on vLLM, correct by construction.

It builds messages the model's chat template understands (content always a list of parts, official system
prompt, no ``tool`` role, no literal ``<image>``), budgets every request against the served
``max_model_len`` with the exact image token formula before sending (shrinking images or the completion
budget, or refusing with a typed error), retries transient failures itself (429/5xx/connection, with
backoff, jitter and Retry-After), maps vLLM's errors by status AND message, validates structured outputs
with one repair attempt, streams, and accounts usage.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import io
import json
import logging
import math
import random
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import openai
from pydantic import BaseModel, SecretStr, ValidationError, field_validator

from .backpressure import AdaptiveConcurrencyLimiter, RequestLimiter
from .errors import (
    BadRequestError,
    ContextOverflowError,
    InvalidInputError,
    MediaError,
    MiniMaxVLError,
    ModelMismatchError,
    OutputValidationError,
    RateLimitError,
    ServerError,
    ServerUnavailableError,
    TooManyImagesError,
    TruncatedOutputError,
    redact_url,
)
from .images.encode import EncodedImage, encode_image
from .profile import MINIMAX_VL_01, ModelProfile
from .settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)
ImageInput = Any  # ImageSource (path, URL, bytes, file, PIL image, ndarray) | EncodedImage

IMAGE_PLACEHOLDER = "<image>"
IMAGE_TEMPLATE_OVERHEAD_TOKENS = 2
MESSAGE_OVERHEAD_TOKENS = 8
REQUEST_OVERHEAD_TOKENS = 16
FALLBACK_MAX_MODEL_LEN = 32768
_UNSET: Any = object()

_MEDIA_PATTERNS = (
    "failed to load image",
    "non-base64",
    "image file is truncated",
    "cannot identify image",
    "cannot load local files",
    "allowed-local-media-path",
    "decompression bomb",
    "decompressionbomb",
    "failed to fetch",
    "image url",
    "could not load image",
    "cannot connect to host",  # vLLM 0.23.0: 500 for an image URL it cannot fetch
    "connect call failed",
)


def estimate_text_tokens(text: str) -> int:
    """Conservative token estimate without a tokenizer: ceil(utf-8 bytes / 3) (real BPE averages ~4)."""
    return math.ceil(len(text.encode("utf-8")) / 3)


# ---------------------------------------------------------------------------------------------- models
class Usage(BaseModel):
    """Token and request accounting for one call or accumulated over a client's life."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    image_tokens: int = 0
    requests: int = 0
    latency_s: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            image_tokens=self.image_tokens + other.image_tokens,
            requests=self.requests + other.requests,
            latency_s=self.latency_s + other.latency_s,
        )

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class ChatResult(BaseModel):
    """One answer: text, finish reason, usage, served model, parsed structured output and tool calls."""

    text: str
    finish_reason: str | None = None
    usage: Usage = Usage()
    model: str = ""
    parsed: Any = None
    tool_calls: list[Any] = []
    max_tokens: int | None = None
    downscaled: bool = False


class HealthStatus(BaseModel):
    """Endpoint health: reachable, models served, whether ours is one, its context length, error text."""

    ok: bool
    base_url: str
    models: list[str] = []
    model_served: bool = False
    max_model_len: int | None = None
    error: str | None = None
    endpoints: list[HealthStatus] = []

    @field_validator("base_url", "error")
    @classmethod
    def _redact(cls, v: str | None) -> str | None:
        return redact_url(v) if v else v  # a base URL's user:password never reaches output


@dataclass(frozen=True)
class RequestPlan:
    """What budgeting decided: final messages, max_tokens, token counts, whether images shrank."""

    messages: list[dict[str, Any]]
    max_tokens: int
    image_tokens: int
    text_tokens: int
    images: int
    max_model_len: int
    downscaled: bool


# ---------------------------------------------------------------------------------------------- limiter
class ConcurrencyLimiter:
    """Caps in-flight async requests (``async with limiter:``); one semaphore per event loop, made lazily.

    Kept behind this small class so an adaptive limiter (AIMD on 429s / vLLM queue depth) can replace it.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise InvalidInputError(f"max_concurrency must be >= 1, got {limit}")
        self.limit = limit
        self.in_flight = 0
        self.max_in_flight = 0
        self._sems: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def _sem(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._lock:
            sem = self._sems.get(loop)
            if sem is None:
                sem = self._sems[loop] = asyncio.Semaphore(self.limit)
            return sem

    async def __aenter__(self) -> ConcurrencyLimiter:
        await self._sem().acquire()
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with self._lock:
            self.in_flight -= 1
        self._sem().release()


# ---------------------------------------------------------------------------------------------- helpers
def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
        if body.get("message"):
            return str(body["message"])
    try:
        return exc.response.text or str(exc)
    except Exception:  # pragma: no cover - response already closed
        return str(exc)


def _is_media_message(msg: str) -> bool:
    low = msg.lower()
    return any(p in low for p in _MEDIA_PATTERNS)


def _retry_after(exc: BaseException) -> float | None:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value:
        with contextlib.suppress(ValueError):
            return float(value) / 1000.0
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def _strip_fences(text: str) -> str:
    s = text.strip()
    m = re.match(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```\s*$", s, re.S)
    if m:
        return m.group(1).strip()
    m = re.search(r"```(?:json)?\s*\n(.*?)\n```", s, re.S)
    return m.group(1).strip() if m else s


def _decode_data_url(url: str) -> Image.Image:
    from PIL import Image

    _, _, data = url.partition(",")
    img = Image.open(io.BytesIO(base64.b64decode(data)))
    img.load()
    return img


def _data_url_size(url: str) -> tuple[int, int] | None:
    """Pixel size of a base64 data URL from its header: decodes the first 48 KiB, the whole only if needed."""
    from PIL import Image

    _, _, data = url.partition(",")
    head = data[:65536]  # a multiple of 4 base64 chars = 48 KiB of image, where headers live
    for chunk in (head, data) if len(data) > len(head) else (data,):
        try:
            return Image.open(io.BytesIO(base64.b64decode(chunk))).size
        except Exception:
            continue
    return None


class _Unretryable(Exception):
    """Wraps an error that must surface at once."""


def _root_of(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


class _Endpoint:
    """One vLLM replica: its OpenAI clients (sync, and async per event loop), load and health state.

    ``in_flight`` drives least-loaded choice; ``down_until`` (monotonic seconds) is the end of the
    cool-down after a connection error or 5xx, during which other replicas are preferred.
    """

    def __init__(self, base_url: str, settings: Settings) -> None:
        self.base_url = base_url.rstrip("/")
        self.root_url = _root_of(self.base_url)
        self._settings = settings
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=settings.api_key.get_secret_value(),
            timeout=settings.timeout,
            max_retries=0,
        )
        self._aclient: openai.AsyncOpenAI | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        self.in_flight = 0
        self.requests = 0
        self.failures = 0
        self.down_until = 0.0
        self.last_error: str | None = None

    def aclient(self) -> openai.AsyncOpenAI:
        """The AsyncOpenAI client bound to the running event loop (a new one per loop)."""
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient_loop is not loop:
            self._aclient = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self._settings.api_key.get_secret_value(),
                timeout=self._settings.timeout,
                max_retries=0,
            )
            self._aclient_loop = loop
        return self._aclient

    def healthy(self, now: float) -> bool:
        """True unless a recent failure put the endpoint in its cool-down."""
        return self.down_until <= now

    def mark_down(self, cooldown: float, error: str) -> None:
        """Start (or extend) a cool-down after a connection error / 5xx."""
        if self.down_until <= time.monotonic():
            log.warning("endpoint %s unhealthy for %.1fs: %s", self.base_url, cooldown, error)
        self.failures += 1
        self.last_error = error
        self.down_until = time.monotonic() + cooldown

    def mark_up(self) -> None:
        """A success: the endpoint serves again."""
        self.down_until = 0.0
        self.last_error = None


# ---------------------------------------------------------------------------------------------- client
class MiniMaxVLClient:
    """Sync and async chat client for MiniMax-VL-01 behind vLLM (one OpenAI + one lazy AsyncOpenAI).

    Arguments override ``settings`` (default :meth:`Settings.from_env`). ``system_prompt`` defaults to the
    profile's official prompt; ``None`` disables it. ``backoff_base``/``backoff_max`` shape the retry
    delays (tests pass tiny values); ``min_completion_tokens`` is the floor budgeting may cut max_tokens to.

    Replicas: ``base_urls`` (or ``Settings.base_urls`` / ``MINIMAXVL_BASE_URLS``) spreads requests over
    several vLLM servers, least-in-flight first (round-robin on ties). An endpoint failing with a
    connection error or 5xx sits out ``endpoint_cooldown`` seconds and the request is retried at once on
    another one; only when none is left does the usual backoff apply. ``max_model_len`` is the minimum
    over endpoints, :meth:`health` reports each one in ``endpoints``.

    Backpressure: ``adaptive=True`` (or a truthy ``Settings.adaptive``) replaces the fixed
    :class:`ConcurrencyLimiter` by :class:`~minimaxvl_tools.backpressure.AdaptiveConcurrencyLimiter`, which
    follows vLLM's ``/metrics`` and falls back to ``max_concurrency`` when they are missing.

    ``exact_budget=True`` counts text with vLLM's ``/tokenize`` (server root; cached per text, fetched
    ahead of time on the async path so the event loop never blocks) instead of the conservative
    bytes/3 estimate, so budgeting leaves the completion more room; a 404 falls back to the estimate.
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
        overrides = {
            "base_url": base_url,
            "base_urls": list(base_urls) if base_urls is not None else None,
            "api_key": SecretStr(api_key) if isinstance(api_key, str) else api_key,
            "model": model,
            "timeout": timeout,
            "max_retries": max_retries,
            "max_concurrency": max_concurrency,
            "max_images_per_request": max_images_per_request,
            "max_model_len": max_model_len,
        }
        if settings is None:
            settings = Settings.from_env(**overrides)
        else:
            settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
        if settings.base_urls:  # replicas given: the first one is "the" base_url (root_url, messages)
            settings = settings.model_copy(update={"base_url": settings.endpoints[0]})
        self.settings: Settings = settings
        self.profile: ModelProfile = profile
        self.system_prompt: str | None = profile.system_prompt if system_prompt is _UNSET else system_prompt
        self._policy = policy
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.min_completion_tokens = min_completion_tokens
        self.estimate_text_tokens: Callable[[str], int] = estimate_text_tokens
        self.exact_budget = exact_budget
        self.tokenize_supported: bool | None = None  # None: not asked yet; False: /tokenize is 404
        self._token_cache: OrderedDict[str, int] = OrderedDict()
        self._token_lock = threading.Lock()
        self.endpoint_cooldown = endpoint_cooldown
        self.endpoints: list[_Endpoint] = [_Endpoint(u, settings) for u in dict.fromkeys(settings.endpoints)]
        self._rr = 0
        self._ep_lock = threading.Lock()
        self._client = self.endpoints[0].client
        if adaptive is None:
            adaptive = bool(getattr(settings, "adaptive", False))
        self.limiter: RequestLimiter
        if limiter is not None:
            self.limiter = limiter
        elif adaptive:
            self.limiter = AdaptiveConcurrencyLimiter(
                [e.root_url for e in self.endpoints],
                fixed_limit=settings.max_concurrency,
                headers=self._headers(),
            )
        else:
            self.limiter = ConcurrencyLimiter(settings.max_concurrency)
        self._usage = Usage()
        self._usage_lock = threading.Lock()
        self._max_model_len: int | None = settings.max_model_len
        self._mml_lock = threading.Lock()
        self._amml_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    # ------------------------------------------------------------------ properties
    @property
    def usage(self) -> Usage:
        """Cumulative usage of this client (a copy; thread-safe)."""
        with self._usage_lock:
            return self._usage.model_copy()

    @property
    def policy(self) -> Any:
        """InputPolicy for loading images (built from settings on first use)."""
        if self._policy is None:
            from .images.policy import InputPolicy

            self._policy = InputPolicy.from_settings(self.settings)
        return self._policy

    @property
    def root_url(self) -> str:
        """Server root (base_url without a trailing ``/v1``), where vLLM serves ``/health``."""
        return _root_of(self.settings.base_url)

    def _record(self, usage: Usage) -> None:
        with self._usage_lock:
            self._usage = self._usage + usage

    # ------------------------------------------------------------------ endpoints
    def _pick(self, avoid: _Endpoint | None = None) -> _Endpoint:
        """Healthy endpoint with the fewest requests in flight (not ``avoid`` if another is healthy).

        With every endpoint cooling down, the one whose cool-down ends first is tried (a single-endpoint
        client therefore always uses its endpoint, as before replicas existed).
        """
        now = time.monotonic()
        with self._ep_lock:
            eps = self.endpoints
            healthy = [e for e in eps if e.healthy(now)]
            if avoid is not None and len(healthy) > 1:
                healthy = [e for e in healthy if e is not avoid]
            if not healthy:
                healthy = [min(eps, key=lambda e: e.down_until)]
            self._rr += 1
            n = len(healthy)
            order = healthy[self._rr % n :] + healthy[: self._rr % n]
            ep = min(order, key=lambda e: e.in_flight)
            ep.in_flight += 1
            ep.requests += 1
            return ep

    def _release(self, ep: _Endpoint) -> None:
        with self._ep_lock:
            ep.in_flight -= 1

    def _other_healthy(self, ep: _Endpoint) -> bool:
        now = time.monotonic()
        return any(e is not ep and e.healthy(now) for e in self.endpoints)

    def _endpoint_fault(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the endpoint itself is broken (connection error, 5xx not about media)."""
        if isinstance(exc, openai.APIConnectionError):
            return True
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code >= 500 and not _is_media_message(_error_message(exc))
        return False

    # ------------------------------------------------------------------ images and messages
    def prepare_images(
        self, images: Iterable[ImageInput], *, max_tokens_per_image: int | None = None
    ) -> list[EncodedImage]:
        """Load, fit to the canvases (optionally to a token cap) and encode each image, keeping order."""
        from PIL import Image

        out: list[EncodedImage] = []
        for item in images:
            if isinstance(item, EncodedImage):
                if max_tokens_per_image is not None and item.tokens > max_tokens_per_image:
                    shrunk = self._shrink(item, max_tokens_per_image)
                    if shrunk is None:
                        raise ContextOverflowError(
                            f"an image of {item.width}x{item.height} costs {item.tokens} tokens and cannot "
                            f"be shrunk under {max_tokens_per_image}: raise max_tokens_per_image",
                            image_tokens=item.tokens,
                        )
                    item = shrunk
                out.append(item)
                continue
            if isinstance(item, Image.Image):
                img = item
            else:
                try:
                    from .images.load import load_image
                except ImportError as e:  # pragma: no cover - inputs module not installed yet
                    raise InvalidInputError(
                        f"cannot load image {item!r:.60}: pass a PIL image or EncodedImage"
                    ) from e
                img = load_image(item, policy=self.policy)
            img = img if img.mode == "RGB" else img.convert("RGB")
            try:
                from .images.sizing import fit_image
            except ImportError:
                fit_image = None  # type: ignore[assignment]
            if fit_image is not None:
                img, _ = fit_image(img, max_tokens=max_tokens_per_image, profile=self.profile)
            enc = encode_image(img, quality=self.settings.jpeg_quality, profile=self.profile)
            if max_tokens_per_image is not None and enc.tokens > max_tokens_per_image:
                enc = self._shrink(enc, max_tokens_per_image) or enc
            out.append(enc)
        return out

    def _check_text(self, text: str, where: str) -> None:
        if IMAGE_PLACEHOLDER in text:
            raise InvalidInputError(
                f"{where} contains the literal {IMAGE_PLACEHOLDER!r}, MiniMax-VL-01's image token: remove it "
                "and pass images as image parts (images=...)"
            )

    def _normalize_message(self, msg: Mapping[str, Any], index: int) -> dict[str, Any]:
        if not isinstance(msg, Mapping) or "role" not in msg:
            raise InvalidInputError(f"history message #{index} must be a dict with 'role' and 'content'")
        role = msg["role"]
        out: dict[str, Any] = {}
        content = msg.get("content")
        parts: list[dict[str, Any]] = []
        if content is None:
            pass
        elif isinstance(content, str):
            parts.append({"type": "text", "text": content})
        elif isinstance(content, list):
            for p in content:
                if isinstance(p, str):
                    parts.append({"type": "text", "text": p})
                elif isinstance(p, dict) and p.get("type") in ("text", "image_url"):
                    parts.append(dict(p))
                else:
                    raise InvalidInputError(
                        f"history message #{index} has a content part {p!r:.80}: use text or image_url parts"
                    )
        else:
            raise InvalidInputError(f"history message #{index} content must be a string or list of parts")
        for p in parts:
            if p["type"] == "text":
                self._check_text(str(p.get("text", "")), f"history message #{index}")
        if role == "tool":
            role = "function"
            out["name"] = str(msg.get("name") or msg.get("tool_call_id") or "tool")
        elif role == "function":
            out["name"] = str(msg.get("name") or "function")
        elif role not in ("system", "user", "assistant"):
            raise InvalidInputError(
                f"history message #{index} has role {role!r}: use system, user, assistant, tool or function"
            )
        if role == "assistant" and msg.get("tool_calls"):
            calls = []
            for tc in msg["tool_calls"]:
                fn = tc.get("function", tc) if isinstance(tc, dict) else {}
                args = fn.get("arguments", "{}")
                args = args if isinstance(args, str) else json.dumps(args)
                calls.append(f"<function_call>```typescript\nfunctions.{fn.get('name', 'tool')}({args})\n```")
            parts.append({"type": "text", "text": "\n".join(calls)})
        out["role"] = role
        out["content"] = parts
        return out

    def build_messages(
        self,
        text: str,
        images: Sequence[EncodedImage] = (),
        *,
        system: str | None = None,
        history: Sequence[Mapping[str, Any]] | None = None,
        images_first: bool = True,
    ) -> list[dict[str, Any]]:
        """Messages in MiniMax-VL-01's format: list-of-parts content, system prompt, user turn last.

        ``system=None`` uses the client's system prompt (``system_prompt``), ``system=""`` sends none.
        """
        if not isinstance(text, str):
            raise InvalidInputError(f"text must be a string, got {type(text).__name__}")
        self._check_text(text, "the prompt text")
        msgs: list[dict[str, Any]] = []
        sys_text = self.system_prompt if system is None else system
        hist = [self._normalize_message(m, i) for i, m in enumerate(history or ())]
        if sys_text and not any(m["role"] == "system" for m in hist):
            self._check_text(sys_text, "the system prompt")
            msgs.append({"role": "system", "content": [{"type": "text", "text": sys_text}]})
        msgs.extend(hist)
        img_parts = [im.to_part() for im in images]
        parts: list[dict[str, Any]] = []
        text_parts = [{"type": "text", "text": text}] if text else []
        parts = img_parts + text_parts if images_first else text_parts + img_parts
        if parts:
            msgs.append({"role": "user", "content": parts})
        if not msgs or msgs[-1]["role"] == "system":
            raise InvalidInputError("nothing to send: give text, images or a history ending in a user turn")
        return msgs

    # ------------------------------------------------------------------ budgeting
    def _parse_models(self, data: Any) -> tuple[list[str], int | None]:
        cards = data.get("data", []) if isinstance(data, dict) else []
        ids = [str(c.get("id")) for c in cards if isinstance(c, dict)]
        mml = None
        for c in cards:
            if isinstance(c, dict) and c.get("id") == self.settings.model and c.get("max_model_len"):
                mml = int(c["max_model_len"])
        return ids, mml

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key.get_secret_value()}"}

    def _merge_models(
        self, answers: Sequence[tuple[list[str], int | None] | BaseException]
    ) -> tuple[list[str], int | None]:
        """Union of served ids and the smallest max_model_len over the endpoints that answered."""
        ok = [a for a in answers if not isinstance(a, BaseException)]
        if not ok:
            urls = ", ".join(e.base_url + "/models" for e in self.endpoints)
            errs = "; ".join(str(a) for a in answers)
            raise ServerUnavailableError(
                f"could not read served models from {urls} ({errs}): check that vLLM is running there or set "
                "max_model_len explicitly"
            )
        ids = list(dict.fromkeys(i for a in ok for i in a[0]))
        lens = [a[1] for a in ok if a[1] is not None]
        return ids, (min(lens) if lens else None)

    def _fetch_models(self) -> tuple[list[str], int | None]:
        answers: list[tuple[list[str], int | None] | BaseException] = []
        for ep in self.endpoints:
            try:
                r = httpx.get(
                    ep.base_url + "/models", headers=self._headers(), timeout=min(self.settings.timeout, 30.0)
                )
                r.raise_for_status()
                answers.append(self._parse_models(r.json()))
            except (httpx.HTTPError, ValueError) as e:
                answers.append(e)
        return self._merge_models(answers)

    async def _afetch_models(self) -> tuple[list[str], int | None]:
        async def one(hc: httpx.AsyncClient, ep: _Endpoint) -> tuple[list[str], int | None]:
            r = await hc.get(ep.base_url + "/models", headers=self._headers())
            r.raise_for_status()
            return self._parse_models(r.json())

        async with httpx.AsyncClient(timeout=min(self.settings.timeout, 30.0)) as hc:
            answers = await asyncio.gather(*(one(hc, ep) for ep in self.endpoints), return_exceptions=True)
        for a in answers:
            if isinstance(a, BaseException) and not isinstance(a, (httpx.HTTPError, ValueError)):
                raise a
        return self._merge_models(answers)

    def max_model_len(self) -> int:
        """Served context length: settings override, else the smallest ``max_model_len`` of the
        endpoints' /v1/models (cached; fetched once even when many threads ask at once)."""
        if self._max_model_len is None:
            with self._mml_lock:
                if self._max_model_len is None:
                    _, mml = self._fetch_models()
                    self._max_model_len = mml or FALLBACK_MAX_MODEL_LEN
        return self._max_model_len

    async def amax_model_len(self) -> int:
        """Async :meth:`max_model_len`; a batch's first requests share one fetch (no thundering herd)."""
        if self._max_model_len is None:
            loop = asyncio.get_running_loop()
            with self._mml_lock:
                lock = self._amml_locks.get(loop)
                if lock is None:
                    lock = self._amml_locks[loop] = asyncio.Lock()
            async with lock:
                if self._max_model_len is None:
                    _, mml = await self._afetch_models()
                    self._max_model_len = mml or FALLBACK_MAX_MODEL_LEN
        return self._max_model_len

    # ------------------------------------------------------------------ exact text tokens
    _TOKEN_CACHE_SIZE = 4096

    def _cache_get(self, text: str) -> int | None:
        with self._token_lock:
            n = self._token_cache.get(text)
            if n is not None:
                self._token_cache.move_to_end(text)
            return n

    def _cache_put(self, text: str, n: int) -> None:
        with self._token_lock:
            self._token_cache[text] = n
            while len(self._token_cache) > self._TOKEN_CACHE_SIZE:
                self._token_cache.popitem(last=False)

    def _tokenize_body(self, text: str) -> dict[str, Any]:
        return {"model": self.settings.model, "prompt": text, "add_special_tokens": False}

    def _tokenize_answer(self, text: str, r: httpx.Response) -> int | None:
        """Cache and return ``count`` of a /tokenize answer; a 404 turns exact counting off for good."""
        if r.status_code == 404:
            if self.tokenize_supported is not False:
                log.info("%s/tokenize is missing: text tokens are estimated", self.root_url)
            self.tokenize_supported = False
            return None
        if r.status_code != 200:
            return None
        try:
            n = int(r.json()["count"])
        except (ValueError, KeyError, TypeError):
            return None
        self.tokenize_supported = True
        self._cache_put(text, n)
        return n

    def _tokenize_urls(self) -> list[str]:
        now = time.monotonic()
        eps = [e for e in self.endpoints if e.healthy(now)] or self.endpoints
        return [e.root_url + "/tokenize" for e in eps]

    def text_tokens(self, text: str) -> int:
        """Tokens of ``text``: vLLM's exact count when ``exact_budget`` (cached), else the estimate.

        Inside a running event loop a cache miss is estimated rather than fetched (no blocking I/O
        there; the async methods fetch counts beforehand).
        """
        if not text:
            return 0
        if not self.exact_budget or self.tokenize_supported is False:
            return self.estimate_text_tokens(text)
        cached = self._cache_get(text)
        if cached is not None:
            return cached
        try:
            asyncio.get_running_loop()
            in_loop = True
        except RuntimeError:
            in_loop = False
        n: int | None = None
        if not in_loop:
            timeout = min(self.settings.timeout, 10.0)
            for url in self._tokenize_urls():
                try:
                    r = httpx.post(
                        url, json=self._tokenize_body(text), headers=self._headers(), timeout=timeout
                    )
                except httpx.HTTPError:
                    continue
                n = self._tokenize_answer(text, r)
                if n is not None or self.tokenize_supported is False:
                    break
            if n is not None:
                return n
        return self.estimate_text_tokens(text)

    async def _aprefetch_tokens(self, messages: Sequence[Mapping[str, Any]]) -> None:
        """Fetch exact counts of the messages' uncached text parts concurrently (``exact_budget``)."""
        if not self.exact_budget or self.tokenize_supported is False:
            return
        texts = {
            str(p.get("text", ""))
            for m in messages
            for p in (m.get("content") or ())
            if isinstance(p, Mapping) and p.get("type") == "text"
        }
        missing = [t for t in texts if t and self._cache_get(t) is None]
        if not missing:
            return
        urls = self._tokenize_urls()

        async def one(hc: httpx.AsyncClient, text: str) -> None:
            for url in urls:
                if self.tokenize_supported is False:
                    return
                try:
                    r = await hc.post(url, json=self._tokenize_body(text))
                except httpx.HTTPError:
                    continue
                if self._tokenize_answer(text, r) is not None:
                    return

        timeout = min(self.settings.timeout, 10.0)
        async with httpx.AsyncClient(timeout=timeout, headers=self._headers()) as hc:
            await asyncio.gather(*(one(hc, t) for t in missing))

    def count_tokens(self, messages: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
        """(text tokens, exact image tokens, image count) of messages as they will be sent.

        Text is estimated unless ``exact_budget`` (see :meth:`text_tokens`); per-message and per-request
        overheads are added either way.
        """
        text_tokens = REQUEST_OVERHEAD_TOKENS
        image_tokens = 0
        images = 0
        for m in messages:
            text_tokens += MESSAGE_OVERHEAD_TOKENS
            for p in m.get("content") or ():
                if p.get("type") == "text":
                    text_tokens += self.text_tokens(str(p.get("text", "")))
                elif p.get("type") == "image_url":
                    images += 1
                    # the chat template's own tokens around each image (1 on real vLLM 0.23.0, see
                    # tests/gpu/results): budgeted as text so image_tokens stays the exact formula
                    text_tokens += IMAGE_TEMPLATE_OVERHEAD_TOKENS
                    url = (
                        p["image_url"]["url"] if isinstance(p.get("image_url"), dict) else p.get("image_url")
                    )
                    size = _data_url_size(str(url)) if str(url).startswith("data:") else None
                    image_tokens += (
                        self.profile.image_tokens(*size) if size else self.profile.max_image_tokens
                    )
        return text_tokens, image_tokens, images

    def _shrink(self, image: EncodedImage, target: int) -> EncodedImage | None:
        """Re-encode ``image`` at the largest aspect-preserving size whose exact cost is <= ``target``."""
        w, h = image.width, image.height
        long_side = max(w, h)
        candidates = sorted({e for e in self.profile.canvas_edges if e < long_side}, reverse=True)
        for edge in candidates:
            s = edge / long_side
            nw, nh = max(1, round(w * s)), max(1, round(h * s))
            if self.profile.image_tokens(nw, nh) <= target:
                from PIL import Image

                img = (
                    _decode_data_url(image.data_url).convert("RGB").resize((nw, nh), Image.Resampling.BICUBIC)
                )
                fmt = "png" if image.mime == "image/png" else "jpeg"
                return encode_image(img, format=fmt, quality=self.settings.jpeg_quality, profile=self.profile)
        return None

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
        max_tokens = self.settings.max_tokens if max_tokens is None else max_tokens
        if max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be >= 1, got {max_tokens}")
        mml = max_model_len if max_model_len is not None else self.max_model_len()
        return self._plan(text, list(images), system, history, max_tokens, allow_downscale, mml)

    def _plan(
        self,
        text: str,
        images: list[EncodedImage],
        system: str | None,
        history: Sequence[Mapping[str, Any]] | None,
        max_tokens: int,
        allow_downscale: bool,
        mml: int,
    ) -> RequestPlan:
        messages = self.build_messages(text, images, system=system, history=history)
        text_tokens, image_tokens, n_images = self.count_tokens(messages)
        limit = self.settings.max_images_per_request
        if n_images > limit:
            raise TooManyImagesError(
                f"{n_images} images in one request but the server accepts at most {limit} "
                "(--limit-mm-per-prompt): split the images over several requests or raise "
                "max_images_per_request to match the server",
                images=n_images,
                image_tokens=image_tokens,
                text_tokens=text_tokens,
                max_tokens=max_tokens,
                max_model_len=mml,
            )
        downscaled = False
        if text_tokens + image_tokens + max_tokens > mml and allow_downscale and images:
            hist_images = image_tokens - sum(im.tokens for im in images)
            available = mml - text_tokens - max_tokens - hist_images
            per_image = available // len(images) if available > 0 else 0
            new_images = list(images)
            # shrink the largest first; spare budget from small images goes to the big ones
            order = sorted(range(len(images)), key=lambda i: images[i].tokens)
            remaining = available
            for k, i in enumerate(order):
                share = remaining // (len(order) - k) if remaining > 0 else 0
                im = images[i]
                if im.tokens > share:
                    shrunk = self._shrink(im, max(share, per_image))
                    if shrunk is not None:
                        new_images[i] = shrunk
                        downscaled = True
                    else:  # cannot reach the share: take the smallest size it has
                        smallest = self._shrink(im, self.profile.min_image_tokens)
                        if smallest is not None:
                            new_images[i] = smallest
                            downscaled = True
                remaining -= new_images[i].tokens
            images = new_images
            messages = self.build_messages(text, images, system=system, history=history)
            text_tokens, image_tokens, n_images = self.count_tokens(messages)
        if text_tokens + image_tokens + max_tokens > mml:
            room = mml - text_tokens - image_tokens
            floor = min(self.min_completion_tokens, max_tokens)
            if room >= floor:
                max_tokens = room
            else:
                hint = "" if allow_downscale else " or allow_downscale=True"
                raise ContextOverflowError(
                    f"request does not fit the served context: {image_tokens} image tokens "
                    f"({n_images} images) "
                    f"+ ~{text_tokens} text tokens + max_tokens {max_tokens} > max_model_len {mml} "
                    f"(completion floor {floor}): send fewer or smaller images, shorter text{hint}, "
                    "or serve a longer --max-model-len",
                    image_tokens=image_tokens,
                    text_tokens=text_tokens,
                    max_tokens=max_tokens,
                    max_model_len=mml,
                    images=n_images,
                )
        return RequestPlan(messages, max_tokens, image_tokens, text_tokens, n_images, mml, downscaled)

    # ------------------------------------------------------------------ errors and retries
    def _map_error(self, exc: BaseException, attempts: int = 1, where: str | None = None) -> MiniMaxVLError:
        where = where or self.settings.base_url
        root = _root_of(where)
        if isinstance(exc, MiniMaxVLError):
            return exc
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            msg = _error_message(exc)
            kw: dict[str, Any] = {"status_code": status, "body": exc.body}
            if _is_media_message(msg):
                return MediaError(
                    f"the server could not load an image of the request ({status}: {msg}): "
                    "send images as base64 (prepare_images) and check the file",
                    **kw,
                )
            low = msg.lower()
            if "maximum context length" in low:
                m = re.search(r"maximum context length (?:is )?\(?(\d+)", msg)
                return ContextOverflowError(
                    f"server refused: {msg} Send fewer/smaller images or shorter text, or lower max_tokens",
                    max_model_len=int(m.group(1)) if m else 0,
                )
            if "at most" in low and "image" in low:
                nums = [int(n) for n in re.findall(r"\d+", msg)]
                return TooManyImagesError(
                    f"server refused: {msg} Set max_images_per_request to {nums[0] if nums else 'its limit'}",
                )
            if status == 404 and "model" in low:
                return ModelMismatchError(
                    f"{where}: {msg} Set model (MINIMAXVL_MODEL) to a served id (see health().models)", **kw
                )
            if status == 429:
                return RateLimitError(
                    f"{where} still rate-limited after {attempts} attempts: {msg}; "
                    "lower max_concurrency or retry later",
                    **kw,
                )
            if status >= 500:
                return ServerUnavailableError(
                    f"{where} failed with {status} after {attempts} attempts: {msg}; check the vLLM logs",
                    **kw,
                )
            return BadRequestError(f"{where} rejected the request ({status}): {msg}", **kw)
        if isinstance(exc, openai.APIConnectionError):
            kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "could not be reached"
            return ServerUnavailableError(
                f"{where} {kind} after {attempts} attempts ({exc}): check that vLLM is running "
                f"({root}/health) or raise timeout/max_retries"
            )
        if isinstance(exc, (ValueError, openai.APIResponseValidationError)):
            return ServerUnavailableError(
                f"{where} returned a malformed response after {attempts} attempts ({exc!r:.200}): "
                "is this an OpenAI-compatible vLLM endpoint?"
            )
        return ServerError(f"{where}: unexpected error {exc!r:.300}")

    def _retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, openai.APIStatusError):
            if _is_media_message(_error_message(exc)):
                return False
            return exc.status_code in (408, 429) or exc.status_code >= 500
        if isinstance(exc, openai.APIConnectionError):
            return True
        return isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError))

    def _delay(self, attempt: int, exc: BaseException) -> float:
        ra = _retry_after(exc)
        base = min(self.backoff_max, self.backoff_base * (2**attempt))
        jittered = base * (0.5 + random.random() / 2)
        return min(self.backoff_max, max(ra, jittered)) if ra is not None else jittered

    def _after_failure(self, ep: _Endpoint, exc: BaseException, attempt: int, attempts: int) -> bool:
        """Book a failed attempt on ``ep``; True when the next attempt should go elsewhere without delay."""
        if self._endpoint_fault(exc):
            ep.mark_down(self.endpoint_cooldown, f"{type(exc).__name__}: {exc}"[:300])
        if not self._retryable(exc) or attempt == attempts - 1:
            raise self._map_error(exc, attempt + 1, ep.base_url) from exc
        return self._endpoint_fault(exc) and self._other_healthy(ep)

    def _with_retries(self, fn: Callable[[openai.OpenAI], Any]) -> Any:
        """``fn(client)`` with retries; each attempt goes to the least-loaded healthy endpoint.

        One extra attempt per additional replica, so failing over never eats the retry budget.
        """
        attempts = self.settings.max_retries + len(self.endpoints)
        backoffs = 0
        last: _Endpoint | None = None
        for attempt in range(attempts):
            ep = self._pick(avoid=last)
            try:
                result = fn(ep.client)
            except Exception as e:
                self._release(ep)
                last = ep
                if not self._after_failure(ep, e, attempt, attempts):
                    time.sleep(self._delay(backoffs, e))
                    backoffs += 1
                continue
            self._release(ep)
            ep.mark_up()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _awith_retries(self, fn: Callable[[openai.AsyncOpenAI], Awaitable[Any]]) -> Any:
        """Async :meth:`_with_retries`."""
        attempts = self.settings.max_retries + len(self.endpoints)
        backoffs = 0
        last: _Endpoint | None = None
        for attempt in range(attempts):
            ep = self._pick(avoid=last)
            try:
                result = await fn(ep.aclient())
            except Exception as e:
                self._release(ep)
                last = ep
                if not self._after_failure(ep, e, attempt, attempts):
                    await asyncio.sleep(self._delay(backoffs, e))
                    backoffs += 1
                continue
            except BaseException:  # cancelled: give the slot back
                self._release(ep)
                raise
            self._release(ep)
            ep.mark_up()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ request assembly
    def _kwargs(
        self,
        plan: RequestPlan,
        *,
        temperature: float | None,
        schema: type[BaseModel] | None,
        extra_body: Mapping[str, Any] | None,
        stop: str | list[str] | None,
        stream: bool = False,
    ) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "model": self.settings.model,
            "messages": plan.messages,
            "max_tokens": plan.max_tokens,
            "temperature": self.settings.temperature if temperature is None else temperature,
        }
        if stop is not None:
            kw["stop"] = stop
        if schema is not None:
            kw["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema.__name__,
                    "schema": schema.model_json_schema(),
                    "strict": True,
                },
            }
        if extra_body:
            kw["extra_body"] = dict(extra_body)
        if stream:
            kw["stream"] = True
            kw["stream_options"] = {"include_usage": True}
        return kw

    def _result(self, resp: Any, plan: RequestPlan, latency: float) -> ChatResult:
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
        self._record(usage)
        tool_calls = [tc.model_dump() for tc in (getattr(msg, "tool_calls", None) or [])]
        return ChatResult(
            text=(getattr(msg, "content", None) or ""),
            finish_reason=getattr(choice, "finish_reason", None),
            usage=usage,
            model=getattr(resp, "model", "") or self.settings.model,
            tool_calls=tool_calls,
            max_tokens=plan.max_tokens,
            downscaled=plan.downscaled,
        )

    def _validate(self, schema: type[T], text: str) -> tuple[T | None, str | None]:
        try:
            return schema.model_validate_json(_strip_fences(text)), None
        except ValidationError as e:
            return None, str(e)

    def _repair_history(self, plan: RequestPlan, raw: str, errors: str) -> tuple[list[dict[str, Any]], str]:
        return [
            *plan.messages,
            {"role": "assistant", "content": [{"type": "text", "text": raw}]},
        ], (
            "Your previous answer is not valid JSON for the required schema. Validation errors:\n"
            f"{errors[:2000]}\nReply with only the corrected JSON object, no prose and no code fences."
        )

    def _cut(self, schema: type[BaseModel], result: ChatResult, errors: str) -> TruncatedOutputError:
        """A JSON answer cut at max_tokens: not repaired (the whole object would need the same room again)."""
        return TruncatedOutputError(
            f"the model's {schema.__name__} JSON was cut at max_tokens {result.max_tokens} "
            "(finish_reason=length); raw text kept in .raw: raise max_tokens or ask for less output",
            raw=result.text,
            errors=errors,
        )

    # ------------------------------------------------------------------ chat (sync)
    def chat(
        self,
        text: str,
        images: Sequence[ImageInput] = (),
        *,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        schema: type[BaseModel] | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        stop: str | list[str] | None = None,
        allow_downscale: bool = True,
    ) -> ChatResult:
        """One chat completion; with ``schema`` the answer is validated into ``result.parsed``."""
        encoded = self.prepare_images(images)
        mt = self.settings.max_tokens if max_tokens is None else max_tokens
        plan = self._plan(text, encoded, system, messages, mt, allow_downscale, self.max_model_len())
        result = self._send(plan, temperature, schema, extra_body, stop)
        if schema is None:
            return result
        parsed, errors = self._validate(schema, result.text)
        if parsed is None:
            assert errors is not None
            if result.finish_reason == "length":
                raise self._cut(schema, result, errors)
            hist, fix = self._repair_history(plan, result.text, errors)
            plan2 = self._plan(fix, [], "", hist, mt, False, self.max_model_len())
            second = self._send(plan2, temperature, schema, extra_body, stop)
            parsed, errors2 = self._validate(schema, second.text)
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

    def _send(
        self,
        plan: RequestPlan,
        temperature: float | None,
        schema: type[BaseModel] | None,
        extra_body: Mapping[str, Any] | None,
        stop: str | list[str] | None,
    ) -> ChatResult:
        kw = self._kwargs(plan, temperature=temperature, schema=schema, extra_body=extra_body, stop=stop)
        t0 = time.perf_counter()
        resp = self._with_retries(lambda c: c.chat.completions.create(**kw))
        return self._result(resp, plan, time.perf_counter() - t0)

    def structured(self, text: str, images: Sequence[ImageInput], schema: type[T], **kw: Any) -> T:
        """The answer validated as ``schema`` (json_schema guided decoding + one repair attempt; a JSON
        cut at max_tokens raises :class:`TruncatedOutputError` at once, for the caller to give room)."""
        return self.chat(text, images, schema=schema, **kw).parsed

    def stream(self, text: str, images: Sequence[ImageInput] = (), **kw: Any) -> Iterator[str]:
        """Text deltas as they arrive; usage (from the final chunk) is added to :attr:`usage` at the end and,
        with ``on_usage=callback``, handed to the callback: this call's own usage, exact under concurrency."""
        on_usage: Callable[[Usage], Any] | None = kw.pop("on_usage", None)
        encoded = self.prepare_images(images)
        mt = kw.pop("max_tokens", None)
        mt = self.settings.max_tokens if mt is None else mt
        plan = self._plan(
            text,
            encoded,
            kw.pop("system", None),
            kw.pop("messages", None),
            mt,
            kw.pop("allow_downscale", True),
            self.max_model_len(),
        )
        req = self._kwargs(
            plan,
            temperature=kw.pop("temperature", None),
            schema=kw.pop("schema", None),
            extra_body=kw.pop("extra_body", None),
            stop=kw.pop("stop", None),
            stream=True,
        )
        if kw:
            raise InvalidInputError(f"unknown stream() arguments: {sorted(kw)}")
        t0 = time.perf_counter()
        chunks = self._with_retries(lambda c: c.chat.completions.create(**req))
        usage = Usage(image_tokens=plan.image_tokens, requests=1)
        try:
            for ch in chunks:
                if ch.usage is not None:
                    usage.prompt_tokens = ch.usage.prompt_tokens
                    usage.completion_tokens = ch.usage.completion_tokens
                for c in ch.choices:
                    if c.delta and c.delta.content:
                        yield c.delta.content
        except Exception as e:
            raise self._map_error(e) from e
        finally:
            usage.latency_s = time.perf_counter() - t0
            self._record(usage)
            if on_usage is not None:
                on_usage(usage)
            with contextlib.suppress(Exception):
                chunks.close()

    # ------------------------------------------------------------------ chat (async)
    async def achat(
        self,
        text: str,
        images: Sequence[ImageInput] = (),
        *,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        schema: type[BaseModel] | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        stop: str | list[str] | None = None,
        allow_downscale: bool = True,
    ) -> ChatResult:
        """Async :meth:`chat`; in-flight requests are capped by :attr:`limiter`."""
        encoded = await asyncio.to_thread(self.prepare_images, images) if images else []
        mt = self.settings.max_tokens if max_tokens is None else max_tokens
        mml = await self.amax_model_len()
        if self.exact_budget:
            await self._aprefetch_tokens(self.build_messages(text, encoded, system=system, history=messages))
        plan = self._plan(text, encoded, system, messages, mt, allow_downscale, mml)
        result = await self._asend(plan, temperature, schema, extra_body, stop)
        if schema is None:
            return result
        parsed, errors = self._validate(schema, result.text)
        if parsed is None:
            assert errors is not None
            if result.finish_reason == "length":
                raise self._cut(schema, result, errors)
            hist, fix = self._repair_history(plan, result.text, errors)
            if self.exact_budget:
                await self._aprefetch_tokens(self.build_messages(fix, [], system="", history=hist))
            plan2 = self._plan(fix, [], "", hist, mt, False, mml)
            second = await self._asend(plan2, temperature, schema, extra_body, stop)
            parsed, errors2 = self._validate(schema, second.text)
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

    async def _asend(
        self,
        plan: RequestPlan,
        temperature: float | None,
        schema: type[BaseModel] | None,
        extra_body: Mapping[str, Any] | None,
        stop: str | list[str] | None,
    ) -> ChatResult:
        kw = self._kwargs(plan, temperature=temperature, schema=schema, extra_body=extra_body, stop=stop)
        async with self.limiter:
            t0 = time.perf_counter()
            resp = await self._awith_retries(lambda c: c.chat.completions.create(**kw))
            return self._result(resp, plan, time.perf_counter() - t0)

    async def astructured(self, text: str, images: Sequence[ImageInput], schema: type[T], **kw: Any) -> T:
        """Async :meth:`structured`."""
        return (await self.achat(text, images, schema=schema, **kw)).parsed

    async def astream(self, text: str, images: Sequence[ImageInput] = (), **kw: Any) -> AsyncIterator[str]:
        """Async :meth:`stream`: text deltas; usage recorded (and given to ``on_usage``) at the end."""
        on_usage: Callable[[Usage], Any] | None = kw.pop("on_usage", None)
        encoded = await asyncio.to_thread(self.prepare_images, images) if images else []
        mt = kw.pop("max_tokens", None)
        mt = self.settings.max_tokens if mt is None else mt
        system, history = kw.pop("system", None), kw.pop("messages", None)
        mml = await self.amax_model_len()
        if self.exact_budget:
            await self._aprefetch_tokens(self.build_messages(text, encoded, system=system, history=history))
        plan = self._plan(text, encoded, system, history, mt, kw.pop("allow_downscale", True), mml)
        req = self._kwargs(
            plan,
            temperature=kw.pop("temperature", None),
            schema=kw.pop("schema", None),
            extra_body=kw.pop("extra_body", None),
            stop=kw.pop("stop", None),
            stream=True,
        )
        if kw:
            raise InvalidInputError(f"unknown astream() arguments: {sorted(kw)}")
        async with self.limiter:
            t0 = time.perf_counter()
            chunks = await self._awith_retries(lambda c: c.chat.completions.create(**req))
            usage = Usage(image_tokens=plan.image_tokens, requests=1)
            try:
                async for ch in chunks:
                    if ch.usage is not None:
                        usage.prompt_tokens = ch.usage.prompt_tokens
                        usage.completion_tokens = ch.usage.completion_tokens
                    for c in ch.choices:
                        if c.delta and c.delta.content:
                            yield c.delta.content
            except Exception as e:
                raise self._map_error(e) from e
            finally:
                usage.latency_s = time.perf_counter() - t0
                self._record(usage)
                if on_usage is not None:
                    on_usage(usage)
                with contextlib.suppress(Exception):
                    await chunks.close()

    async def abatch(
        self, requests: Iterable[Mapping[str, Any]], *, return_exceptions: bool = True
    ) -> list[ChatResult | BaseException]:
        """Run many :meth:`achat` calls (each a dict of its arguments) concurrently under the limiter."""
        coros = [self.achat(**dict(r)) for r in requests]
        return list(await asyncio.gather(*coros, return_exceptions=return_exceptions))

    # ------------------------------------------------------------------ health
    def _health_from(
        self, ep: _Endpoint, health_resp: Any, models_data: Any, error: str | None
    ) -> HealthStatus:
        """One endpoint's HealthStatus from its /health answer, /v1/models body and transport error."""
        models: list[str] = []
        mml = None
        if models_data is not None:
            models, mml = self._parse_models(models_data)
        served = self.settings.model in models
        if error is None and health_resp is not None and health_resp.status_code != 200:
            error = f"{ep.root_url}/health answered {health_resp.status_code}"
        if error is None and not served:
            error = (
                f"model {self.settings.model!r} is not served at {ep.base_url} "
                f"(served: {models}): set model / MINIMAXVL_MODEL"
            )
        if error is None:
            ep.mark_up()
        elif health_resp is None or health_resp.status_code != 200:  # unreachable or unhealthy engine
            ep.mark_down(self.endpoint_cooldown, error)
        return HealthStatus(
            ok=error is None,
            base_url=ep.base_url,
            models=models,
            model_served=served,
            max_model_len=mml if self.settings.max_model_len is None else self.settings.max_model_len,
            error=error,
        )

    def _combine_health(self, per: list[HealthStatus]) -> HealthStatus:
        """A single endpoint's status as is; for replicas, ok when any serves (each one in ``endpoints``).

        ``max_model_len`` is the minimum over the endpoints that answered /v1/models (also cached for
        budgeting); ``error`` is set only when no endpoint is usable.
        """
        lens = [h.max_model_len for h in per if h.max_model_len is not None]
        if lens and self.settings.max_model_len is None:
            self._max_model_len = min(lens)
        if len(per) == 1:
            return per[0]
        ok = any(h.ok for h in per)
        return HealthStatus(
            ok=ok,
            base_url=self.settings.base_url,
            models=list(dict.fromkeys(m for h in per for m in h.models)),
            model_served=any(h.model_served for h in per),
            max_model_len=min(lens) if lens else None,
            error=None if ok else "no endpoint is usable: " + "; ".join(f"{h.error}" for h in per),
            endpoints=per,
        )

    def _health_error(self, ep: _Endpoint, e: Exception) -> str:
        return f"{ep.base_url} is not reachable or not vLLM: {type(e).__name__}: {e}"

    def health(self) -> HealthStatus:
        """GET /health (server root) and /v1/models of every endpoint: reachable, models, ours served,
        max_model_len; replicas are listed in ``endpoints`` and their health state updated."""
        timeout = min(self.settings.timeout, 10.0)
        per: list[HealthStatus] = []
        with httpx.Client(timeout=timeout, headers=self._headers()) as hc:
            for ep in self.endpoints:
                h = data = None
                error = None
                try:
                    h = hc.get(ep.root_url + "/health")
                    m = hc.get(ep.base_url + "/models")
                    m.raise_for_status()
                    data = m.json()
                except (httpx.HTTPError, ValueError) as e:
                    error = self._health_error(ep, e)
                per.append(self._health_from(ep, h, data, error))
        return self._combine_health(per)

    async def ahealth(self) -> HealthStatus:
        """Async :meth:`health` (endpoints checked concurrently)."""
        timeout = min(self.settings.timeout, 10.0)

        async def one(hc: httpx.AsyncClient, ep: _Endpoint) -> HealthStatus:
            h = data = None
            error = None
            try:
                h = await hc.get(ep.root_url + "/health")
                m = await hc.get(ep.base_url + "/models")
                m.raise_for_status()
                data = m.json()
            except (httpx.HTTPError, ValueError) as e:
                error = self._health_error(ep, e)
            return self._health_from(ep, h, data, error)

        async with httpx.AsyncClient(timeout=timeout, headers=self._headers()) as hc:
            per = list(await asyncio.gather(*(one(hc, ep) for ep in self.endpoints)))
        return self._combine_health(per)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the sync HTTP clients (the async ones are closed by :meth:`aclose`)."""
        for ep in self.endpoints:
            ep.client.close()

    async def aclose(self) -> None:
        """Close every HTTP client."""
        for ep in self.endpoints:
            if ep._aclient is not None:
                with contextlib.suppress(Exception):
                    await ep._aclient.close()
                ep._aclient = None
        self.close()

    def __enter__(self) -> MiniMaxVLClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MiniMaxVLClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = [
    "AdaptiveConcurrencyLimiter",
    "ChatResult",
    "ConcurrencyLimiter",
    "HealthStatus",
    "ImageInput",
    "MiniMaxVLClient",
    "RequestPlan",
    "Usage",
    "estimate_text_tokens",
]
