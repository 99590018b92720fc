"""ClientSpec: a client rebuilt in another process has the same settings and options, or is refused."""

from __future__ import annotations

import pickle

from minimaxvl_tools.client import ConcurrencyLimiter, MiniMaxVLClient
from minimaxvl_tools.settings import Settings


def _client(**kw: object) -> MiniMaxVLClient:
    settings = Settings(
        base_urls=["http://a:1/v1", "http://b:2/v1"], api_key="sk-secret-123", max_concurrency=9
    )
    return MiniMaxVLClient(settings, backoff_base=0.01, exact_budget=True, system_prompt=None, **kw)  # type: ignore[arg-type]


def test_spec_round_trips_through_pickle_with_a_share_of_concurrency() -> None:
    client = _client()
    spec = client.spec(max_concurrency=3)
    assert spec is not None
    rebuilt = pickle.loads(pickle.dumps(spec)).build()
    assert rebuilt.settings.endpoints == client.settings.endpoints
    assert rebuilt.settings.api_key.get_secret_value() == "sk-secret-123"
    assert rebuilt.settings.max_concurrency == 3 and client.settings.max_concurrency == 9
    assert rebuilt.retry_policy == client.retry_policy
    assert rebuilt.exact_budget and rebuilt.system_prompt is None


def test_spec_repr_hides_the_key() -> None:
    spec = _client().spec()
    assert spec is not None and "sk-secret-123" not in repr(spec)


def test_spec_is_none_when_the_client_cannot_be_rebuilt() -> None:
    class Mine(MiniMaxVLClient):
        pass

    assert Mine(Settings()).spec() is None  # a subclass may change behaviour
    assert _client(limiter=ConcurrencyLimiter(2)).spec() is None  # the caller's own limiter
    estimated = _client()
    estimated.estimate_text_tokens = len
    assert estimated.spec() is None  # the caller's own text estimate


def test_record_usage_adds_to_the_client_totals() -> None:
    from minimaxvl_tools.client import Usage

    client = _client()
    client.record_usage(Usage(prompt_tokens=5, requests=1))
    client.record_usage(Usage(prompt_tokens=2, requests=1))
    assert client.usage.prompt_tokens == 7 and client.usage.requests == 2
