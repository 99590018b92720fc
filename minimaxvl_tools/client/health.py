"""Endpoint health: verdicts from what ``/health`` and ``/v1/models`` answered (pure functions), and the
thin sync and async probes that ask every endpoint and update the pool's health state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from .budget import parse_models
from .pool import Endpoint, EndpointPool
from .types import HealthStatus


def endpoint_health(
    ep: Endpoint,
    status_code: int | None,
    models_data: Any,
    error: str | None,
    *,
    model: str,
    max_model_len: int | None,
) -> tuple[HealthStatus, bool | None]:
    """One endpoint's status and what it means for the pool: True up, False down, None leave as is.

    ``status_code`` is /health's (None: unreachable); ``error`` a transport error's text;
    ``max_model_len`` a configured override of what /v1/models says.
    """
    models: list[str] = []
    mml = None
    if models_data is not None:
        models, mml = parse_models(models_data, model)
    served = model in models
    if error is None and status_code is not None and status_code != 200:
        error = f"{ep.root_url}/health answered {status_code}"
    if error is None and not served:
        error = (
            f"model {model!r} is not served at {ep.base_url} (served: {models}): set model / MINIMAXVL_MODEL"
        )
    verdict: bool | None = None
    if error is None:
        verdict = True
    elif status_code is None or status_code != 200:  # unreachable or unhealthy engine
        verdict = False
    status = HealthStatus(
        ok=error is None,
        base_url=ep.base_url,
        models=models,
        model_served=served,
        max_model_len=mml if max_model_len is None else max_model_len,
        error=error,
    )
    return status, verdict


def combine_health(per: list[HealthStatus], base_url: str) -> HealthStatus:
    """A single endpoint's status as is; for replicas, ok when any serves (each one in ``endpoints``).

    ``max_model_len`` is the minimum over the endpoints that answered; ``error`` is set only when no
    endpoint is usable.
    """
    if len(per) == 1:
        return per[0]
    lens = [h.max_model_len for h in per if h.max_model_len is not None]
    ok = any(h.ok for h in per)
    return HealthStatus(
        ok=ok,
        base_url=base_url,
        models=list(dict.fromkeys(m for h in per for m in h.models)),
        model_served=any(h.model_served for h in per),
        max_model_len=min(lens) if lens else None,
        error=None if ok else "no endpoint is usable: " + "; ".join(f"{h.error}" for h in per),
        endpoints=per,
    )


def unreachable(ep: Endpoint, e: Exception) -> str:
    """The error text of an endpoint that did not answer like vLLM."""
    return f"{ep.base_url} is not reachable or not vLLM: {type(e).__name__}: {e}"


@dataclass(frozen=True)
class Probe:
    """What a health probe needs: the model to look for, a configured context override, timeout, headers."""

    model: str
    max_model_len: int | None
    timeout: float
    headers: dict[str, str]


def _apply(
    pool: EndpointPool, ep: Endpoint, probe: Probe, code: int | None, data: Any, error: str | None
) -> HealthStatus:
    status, up = endpoint_health(ep, code, data, error, model=probe.model, max_model_len=probe.max_model_len)
    if up is True:
        ep.mark_up()
    elif up is False:
        ep.mark_down(pool.cooldown, status.error or "unhealthy")
    return status


def check(pool: EndpointPool, probe: Probe) -> list[HealthStatus]:
    """Probe every endpoint in turn (sync)."""
    per: list[HealthStatus] = []
    with httpx.Client(timeout=probe.timeout, headers=probe.headers) as hc:
        for ep in pool.endpoints:
            code = data = error = None
            try:
                code = hc.get(ep.root_url + "/health").status_code
                m = hc.get(ep.base_url + "/models")
                m.raise_for_status()
                data = m.json()
            except (httpx.HTTPError, ValueError) as e:
                error = unreachable(ep, e)
            per.append(_apply(pool, ep, probe, code, data, error))
    return per


async def acheck(pool: EndpointPool, probe: Probe) -> list[HealthStatus]:
    """Probe every endpoint concurrently."""

    async def one(hc: httpx.AsyncClient, ep: Endpoint) -> HealthStatus:
        code = data = error = None
        try:
            code = (await hc.get(ep.root_url + "/health")).status_code
            m = await hc.get(ep.base_url + "/models")
            m.raise_for_status()
            data = m.json()
        except (httpx.HTTPError, ValueError) as e:
            error = unreachable(ep, e)
        return _apply(pool, ep, probe, code, data, error)

    async with httpx.AsyncClient(timeout=probe.timeout, headers=probe.headers) as hc:
        return list(await asyncio.gather(*(one(hc, ep) for ep in pool.endpoints)))


__all__ = ["Probe", "acheck", "check", "combine_health", "endpoint_health", "unreachable"]
