"""Budgeting: exact image tokens, text tokens (estimate or vLLM's ``/tokenize``, cached), the served
context length (``/v1/models``), and the plan that fits a request into it before it is sent."""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from ..errors import ContextOverflowError, InvalidInputError, ServerUnavailableError, TooManyImagesError
from ..images.encode import EncodedImage, data_url_size, shrink_encoded
from ..profile import ModelProfile
from .messages import build_messages
from .pool import EndpointPool
from .types import RequestPlan, estimate_text_tokens

log = logging.getLogger("minimaxvl_tools.client")

IMAGE_TEMPLATE_OVERHEAD_TOKENS = 2
MESSAGE_OVERHEAD_TOKENS = 8
REQUEST_OVERHEAD_TOKENS = 16
FALLBACK_MAX_MODEL_LEN = 32768
TOKEN_CACHE_SIZE = 4096

Models = tuple[list[str], int | None]


def parse_models(data: Any, model: str) -> Models:
    """Served ids of a ``/v1/models`` body and ``model``'s ``max_model_len`` (None if not given)."""
    cards = data.get("data", []) if isinstance(data, dict) else []
    ids = [str(c.get("id")) for c in cards if isinstance(c, dict)]
    mml = None
    for c in cards:
        if isinstance(c, dict) and c.get("id") == model and c.get("max_model_len"):
            mml = int(c["max_model_len"])
    return ids, mml


def merge_models(answers: Sequence[Models | BaseException], urls: Sequence[str]) -> Models:
    """Union of served ids and the smallest max_model_len over the endpoints that answered."""
    ok = [a for a in answers if not isinstance(a, BaseException)]
    if not ok:
        errs = "; ".join(str(a) for a in answers)
        raise ServerUnavailableError(
            f"could not read served models from {', '.join(urls)} ({errs}): check that vLLM is running there "
            "or set max_model_len explicitly"
        )
    ids = list(dict.fromkeys(i for a in ok for i in a[0]))
    lens = [a[1] for a in ok if a[1] is not None]
    return ids, (min(lens) if lens else None)


class Budget:
    """Token accounting of one client: counts, the /tokenize cache, the served context, request plans."""

    def __init__(
        self,
        pool: EndpointPool,
        *,
        model: str,
        headers: dict[str, str],
        timeout: float,
        profile: ModelProfile,
        max_images: int,
        jpeg_quality: int,
        max_model_len: int | None = None,
        exact: bool = False,
        min_completion_tokens: int = 256,
    ) -> None:
        self.pool = pool
        self.model = model
        self.headers = headers
        self.timeout = timeout
        self.profile = profile
        self.max_images = max_images
        self.jpeg_quality = jpeg_quality
        self.fixed_max_model_len = max_model_len
        self.exact = exact
        self.min_completion_tokens = min_completion_tokens
        self.estimate: Callable[[str], int] = estimate_text_tokens
        self.tokenize_supported: bool | None = None  # None: not asked yet; False: /tokenize is 404
        self.cached_max_model_len: int | None = max_model_len
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._mml_lock = threading.Lock()
        self._amml_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    # ------------------------------------------------------------------ served context
    def _models_urls(self) -> list[str]:
        return [e.base_url + "/models" for e in self.pool.endpoints]

    def fetch_models(self) -> Models:
        """``/v1/models`` of every endpoint, merged (sync)."""
        answers: list[Models | BaseException] = []
        for url in self._models_urls():
            try:
                r = httpx.get(url, headers=self.headers, timeout=min(self.timeout, 30.0))
                r.raise_for_status()
                answers.append(parse_models(r.json(), self.model))
            except (httpx.HTTPError, ValueError) as e:
                answers.append(e)
        return merge_models(answers, self._models_urls())

    async def afetch_models(self) -> Models:
        """``/v1/models`` of every endpoint, fetched concurrently and merged."""

        async def one(hc: httpx.AsyncClient, url: str) -> Models:
            r = await hc.get(url, headers=self.headers)
            r.raise_for_status()
            return parse_models(r.json(), self.model)

        async with httpx.AsyncClient(timeout=min(self.timeout, 30.0)) as hc:
            answers = await asyncio.gather(*(one(hc, u) for u in self._models_urls()), return_exceptions=True)
        for a in answers:
            if isinstance(a, BaseException) and not isinstance(a, (httpx.HTTPError, ValueError)):
                raise a
        return merge_models(answers, self._models_urls())

    def max_model_len(self) -> int:
        """Served context length: the settings value, else the smallest over the endpoints (cached)."""
        if self.cached_max_model_len is None:
            with self._mml_lock:
                if self.cached_max_model_len is None:
                    _, mml = self.fetch_models()
                    self.cached_max_model_len = mml or FALLBACK_MAX_MODEL_LEN
        return self.cached_max_model_len

    async def amax_model_len(self) -> int:
        """Async :meth:`max_model_len`; a batch's first requests share one fetch (no thundering herd)."""
        if self.cached_max_model_len is None:
            loop = asyncio.get_running_loop()
            with self._mml_lock:
                lock = self._amml_locks.get(loop)
                if lock is None:
                    lock = self._amml_locks[loop] = asyncio.Lock()
            async with lock:
                if self.cached_max_model_len is None:
                    _, mml = await self.afetch_models()
                    self.cached_max_model_len = mml or FALLBACK_MAX_MODEL_LEN
        return self.cached_max_model_len

    # ------------------------------------------------------------------ text tokens
    def _cache_get(self, text: str) -> int | None:
        with self._lock:
            n = self._cache.get(text)
            if n is not None:
                self._cache.move_to_end(text)
            return n

    def _cache_put(self, text: str, n: int) -> None:
        with self._lock:
            self._cache[text] = n
            while len(self._cache) > TOKEN_CACHE_SIZE:
                self._cache.popitem(last=False)

    def _tokenize_body(self, text: str) -> dict[str, Any]:
        return {"model": self.model, "prompt": text, "add_special_tokens": False}

    def _tokenize_answer(self, text: str, r: httpx.Response) -> int | None:
        """Cache and return ``count`` of a /tokenize answer; a 404 turns exact counting off for good."""
        if r.status_code == 404:
            if self.tokenize_supported is not False:
                log.info("%s/tokenize is missing: text tokens are estimated", r.request.url)
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

    def _exact_wanted(self) -> bool:
        return self.exact and self.tokenize_supported is not False

    def text_tokens(self, text: str) -> int:
        """Tokens of ``text``: vLLM's exact count when ``exact`` (cached), else the estimate.

        Inside a running event loop a cache miss is estimated rather than fetched (no blocking I/O
        there; the async path fetches counts beforehand with :meth:`aprefetch`).
        """
        if not text:
            return 0
        if not self._exact_wanted():
            return self.estimate(text)
        cached = self._cache_get(text)
        if cached is not None:
            return cached
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            timeout = min(self.timeout, 10.0)
            for root in self.pool.healthy_roots():
                try:
                    r = httpx.post(
                        root + "/tokenize",
                        json=self._tokenize_body(text),
                        headers=self.headers,
                        timeout=timeout,
                    )
                except httpx.HTTPError:
                    continue
                n = self._tokenize_answer(text, r)
                if n is not None:
                    return n
                if self.tokenize_supported is False:
                    break
        return self.estimate(text)

    @staticmethod
    def _texts(messages: Sequence[Mapping[str, Any]]) -> set[str]:
        return {
            str(p.get("text", ""))
            for m in messages
            for p in (m.get("content") or ())
            if isinstance(p, Mapping) and p.get("type") == "text"
        }

    async def aprefetch(self, messages: Sequence[Mapping[str, Any]]) -> None:
        """Fetch exact counts of the messages' uncached text parts concurrently (when ``exact``)."""
        if not self._exact_wanted():
            return
        missing = [t for t in self._texts(messages) if t and self._cache_get(t) is None]
        if not missing:
            return
        urls = [r + "/tokenize" for r in self.pool.healthy_roots()]

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

        async with httpx.AsyncClient(timeout=min(self.timeout, 10.0), headers=self.headers) as hc:
            await asyncio.gather(*(one(hc, t) for t in missing))

    def count(self, messages: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
        """(text tokens, exact image tokens, image count) of messages as they will be sent."""
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
                    size = data_url_size(str(url)) if str(url).startswith("data:") else None
                    image_tokens += (
                        self.profile.image_tokens(*size) if size else self.profile.max_image_tokens
                    )
        return text_tokens, image_tokens, images

    # ------------------------------------------------------------------ plans
    def shrink(self, image: EncodedImage, target: int) -> EncodedImage | None:
        """``image`` re-encoded to cost at most ``target`` tokens (None: it cannot get that small)."""
        return shrink_encoded(image, target, quality=self.jpeg_quality, profile=self.profile)

    def _shrunk(self, images: list[EncodedImage], available: int) -> tuple[list[EncodedImage], bool]:
        """Images shrunk to share ``available`` tokens: the largest first, spare budget to the big ones."""
        per_image = available // len(images) if available > 0 else 0
        new_images = list(images)
        downscaled = False
        order = sorted(range(len(images)), key=lambda i: images[i].tokens)
        remaining = available
        for k, i in enumerate(order):
            share = remaining // (len(order) - k) if remaining > 0 else 0
            im = images[i]
            if im.tokens > share:
                shrunk = self.shrink(im, max(share, per_image))
                if shrunk is None:  # cannot reach the share: take the smallest size it has
                    shrunk = self.shrink(im, self.profile.min_image_tokens)
                if shrunk is not None:
                    new_images[i] = shrunk
                    downscaled = True
            remaining -= new_images[i].tokens
        return new_images, downscaled

    def plan(
        self,
        text: str,
        images: list[EncodedImage],
        *,
        system: str | None,
        history: Sequence[Mapping[str, Any]] | None,
        max_tokens: int,
        allow_downscale: bool,
        max_model_len: int,
    ) -> RequestPlan:
        """Fit a request into ``max_model_len``: shrink images, then cut max_tokens, else raise."""
        if max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be >= 1, got {max_tokens}")
        mml = max_model_len
        messages = build_messages(text, images, system=system, history=history)
        text_tokens, image_tokens, n_images = self.count(messages)
        if n_images > self.max_images:
            raise TooManyImagesError(
                f"{n_images} images in one request but the server accepts at most {self.max_images} "
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
            images, downscaled = self._shrunk(images, mml - text_tokens - max_tokens - hist_images)
            messages = build_messages(text, images, system=system, history=history)
            text_tokens, image_tokens, n_images = self.count(messages)
        if text_tokens + image_tokens + max_tokens > mml:
            room = mml - text_tokens - image_tokens
            floor = min(self.min_completion_tokens, max_tokens)
            if room < floor:
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
            max_tokens = room
        return RequestPlan(messages, max_tokens, image_tokens, text_tokens, n_images, mml, downscaled)


__all__ = [
    "FALLBACK_MAX_MODEL_LEN",
    "IMAGE_TEMPLATE_OVERHEAD_TOKENS",
    "MESSAGE_OVERHEAD_TOKENS",
    "REQUEST_OVERHEAD_TOKENS",
    "Budget",
    "merge_models",
    "parse_models",
]
