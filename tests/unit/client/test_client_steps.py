"""client.steps: the retry ladder and the structured-output flow, driven here without any I/O."""

from __future__ import annotations

import httpx
import openai
import pytest
from pydantic import BaseModel

from minimaxvl_tools.client.pool import EndpointPool
from minimaxvl_tools.client.steps import (
    ChatRequest,
    Plan,
    Retrying,
    RetryPolicy,
    Send,
    chat_flow,
    request_kwargs,
    stream_args,
)
from minimaxvl_tools.client.types import ChatResult, RequestPlan
from minimaxvl_tools.errors import (
    BadRequestError,
    InvalidInputError,
    OutputValidationError,
    ServerUnavailableError,
    TruncatedOutputError,
)
from minimaxvl_tools.settings import Settings


def status_error(code: int, message: str = "boom") -> openai.APIStatusError:
    req = httpx.Request("POST", "http://x/v1/chat/completions")
    resp = httpx.Response(code, request=req, json={"error": {"message": message}})
    return openai.APIStatusError(message, response=resp, body={"error": {"message": message}})


def conn_error() -> openai.APIConnectionError:
    return openai.APIConnectionError(request=httpx.Request("POST", "http://x/v1/chat/completions"))


def ladder(urls: list[str], retries: int = 2) -> tuple[EndpointPool, Retrying]:
    pool = EndpointPool(urls, "k", 1.0, cooldown=30.0)
    return pool, Retrying(pool, RetryPolicy(retries, 0.01, 0.02))


def test_fault_on_one_replica_fails_over_without_delay() -> None:
    pool, r = ladder(["http://a/v1", "http://b/v1"])
    first = r.endpoint()
    assert r.failed(first, conn_error()) == 0.0  # another replica is healthy: go now
    second = r.endpoint()
    assert second is not first and first.failures == 1 and not first.healthy(0.0 + 1e12 * 0)
    r.succeeded(second)
    assert [e.in_flight for e in pool.endpoints] == [0, 0]


def test_single_endpoint_backs_off_then_raises_typed_error() -> None:
    pool, r = ladder(["http://a/v1"], retries=2)
    delays = []
    with pytest.raises(ServerUnavailableError, match="after 3 attempts"):
        while True:
            ep = r.endpoint()
            delays.append(r.failed(ep, status_error(503)))
    assert len(delays) == 2 and all(0 < d <= 0.02 for d in delays)
    assert pool.endpoints[0].in_flight == 0


def test_client_errors_are_not_retried() -> None:
    _, r = ladder(["http://a/v1"], retries=5)
    with pytest.raises(BadRequestError):
        r.failed(r.endpoint(), status_error(400, "bad field"))
    assert r.attempt == 1


def test_cancelled_attempt_gives_its_slot_back() -> None:
    pool, r = ladder(["http://a/v1"])
    r.cancelled(r.endpoint())
    assert pool.endpoints[0].in_flight == 0 and pool.endpoints[0].failures == 0


class Answer(BaseModel):
    answer: str


def plan_of(text: str) -> RequestPlan:
    return RequestPlan(
        [{"role": "user", "content": [{"type": "text", "text": text}]}], 64, 0, 5, 0, 4096, False
    )


def drive(flow, replies: list[ChatResult]) -> tuple[ChatResult, list[object]]:  # type: ignore[no-untyped-def]
    steps: list[object] = []
    answer = None
    while True:
        try:
            step = flow.send(answer)
        except StopIteration as done:
            return done.value, steps
        steps.append(step)
        answer = plan_of(step.text) if isinstance(step, Plan) else replies.pop(0)


def test_flow_without_schema_plans_then_sends_once() -> None:
    result, steps = drive(chat_flow(ChatRequest("hi", [], None, None, 64)), [ChatResult(text="hello")])
    assert result.text == "hello" and [type(s) for s in steps] == [Plan, Send]


def test_flow_repairs_invalid_json_once_with_the_errors() -> None:
    req = ChatRequest("q", [], None, None, 64, schema=Answer)
    replies = [ChatResult(text="not json"), ChatResult(text='```json\n{"answer": "42"}\n```')]
    result, steps = drive(chat_flow(req), replies)
    assert result.parsed == Answer(answer="42")
    assert [type(s) for s in steps] == [Plan, Send, Plan, Send]
    repair = steps[2]
    assert isinstance(repair, Plan) and "Validation errors" in repair.text and repair.system == ""
    assert repair.allow_downscale is False and repair.history[-1]["content"][0]["text"] == "not json"


def test_flow_gives_up_after_one_repair() -> None:
    req = ChatRequest("q", [], None, None, 64, schema=Answer)
    with pytest.raises(OutputValidationError) as e:
        drive(chat_flow(req), [ChatResult(text="nope"), ChatResult(text="still nope")])
    assert e.value.raw == "still nope"


def test_flow_does_not_repair_a_json_cut_at_max_tokens() -> None:
    req = ChatRequest("q", [], None, None, 64, schema=Answer)
    with pytest.raises(TruncatedOutputError):
        drive(chat_flow(req), [ChatResult(text='{"answer": "4', finish_reason="length", max_tokens=64)])


def test_request_kwargs_from_settings_and_call() -> None:
    s = Settings(model="m", temperature=0.3)
    kw = request_kwargs(plan_of("x"), s, {"schema": Answer, "stop": ["\n"]}, stream=True)
    assert kw["model"] == "m" and kw["temperature"] == 0.3 and kw["stop"] == ["\n"]
    assert kw["response_format"]["json_schema"]["name"] == "Answer" and kw["stream_options"]["include_usage"]
    assert request_kwargs(plan_of("x"), s, {"temperature": 0.0})["temperature"] == 0.0


def test_stream_args_refuse_unknown_options() -> None:
    with pytest.raises(InvalidInputError, match="colour"):
        stream_args({"colour": 1}, "stream")
    cb = print
    assert stream_args({"on_usage": cb, "stop": "x"}, "stream") == (cb, {"stop": "x"})
