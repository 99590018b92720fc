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
    retry_budget,
    stream_args,
)
from minimaxvl_tools.client.types import ChatResult, RequestPlan, Usage
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


def test_stream_args_refuse_a_retry_of_cut_replies() -> None:
    with pytest.raises(InvalidInputError, match="max_retry_tokens"):
        stream_args({"max_retry_tokens": 512}, "astream")


def cut(text: str, max_tokens: int = 64) -> ChatResult:
    return ChatResult(
        text=text, finish_reason="length", max_tokens=max_tokens, usage=Usage(completion_tokens=max_tokens)
    )


def test_retry_budget_doubles_within_the_cap_and_the_room() -> None:
    def req(cap: int | None) -> ChatRequest:
        return ChatRequest("q", [], None, None, 64, max_retry_tokens=cap)

    roomy = plan_of("x")  # 4096 - 5 text tokens of room
    assert retry_budget(req(None), roomy) == 0  # not asked for: no retry
    assert retry_budget(req(1000), roomy) == 128 and retry_budget(req(100), roomy) == 100
    assert retry_budget(req(64), roomy) == 0  # a cap at max_tokens turns it off
    tight = RequestPlan(roomy.messages, 64, 0, 5, 0, 5 + 90, False)
    assert retry_budget(req(1000), tight) == 90  # the room the prompt leaves
    no_room = RequestPlan(roomy.messages, 64, 0, 5, 0, 5 + 64, False)
    assert retry_budget(req(1000), no_room) == 0


def test_flow_asks_a_cut_reply_again_once_with_more_room() -> None:
    req = ChatRequest("q", [], None, None, 64, max_retry_tokens=1000)
    replies = [cut("Step 1:"), cut("Step 1: still", 128)]
    result, steps = drive(chat_flow(req), replies)
    assert [type(s) for s in steps] == [Plan, Send, Send]
    first, retry = steps[1], steps[2]
    assert isinstance(first, Send) and isinstance(retry, Send)
    assert (first.plan.max_tokens, retry.plan.max_tokens) == (64, 128)
    assert retry.plan.messages == first.plan.messages  # the same ask, more room
    assert result.text == "Step 1: still" and result.usage.completion_tokens == 64 + 128


def test_flow_without_the_option_keeps_a_cut_reply() -> None:
    result, steps = drive(chat_flow(ChatRequest("q", [], None, None, 64)), [cut("Step 1:")])
    assert result.text == "Step 1:" and [type(s) for s in steps] == [Plan, Send]


def test_flow_retries_a_cut_json_and_validates_the_retry() -> None:
    req = ChatRequest("q", [], None, None, 64, schema=Answer, max_retry_tokens=1000)
    result, steps = drive(chat_flow(req), [cut('{"answer": "4'), ChatResult(text='{"answer": "42"}')])
    assert result.parsed == Answer(answer="42") and [type(s) for s in steps] == [Plan, Send, Send]


def test_flow_keeps_a_valid_json_that_ends_at_max_tokens() -> None:
    req = ChatRequest("q", [], None, None, 64, schema=Answer, max_retry_tokens=1000)
    result, steps = drive(chat_flow(req), [cut('{"answer": "42"}')])
    assert result.parsed == Answer(answer="42") and [type(s) for s in steps] == [Plan, Send]


def test_flow_reports_every_budget_of_a_json_cut_twice() -> None:
    req = ChatRequest("q", [], None, None, 64, schema=Answer, max_retry_tokens=1000)
    with pytest.raises(TruncatedOutputError) as e:
        drive(chat_flow(req), [cut('{"answer": "4'), cut('{"answer": "44', 128)])
    assert e.value.budgets == (64, 128) and "max_tokens 64, then 128" in str(e.value)
    assert e.value.raw == '{"answer": "44'


def test_flow_cut_json_without_room_reports_one_budget() -> None:
    req = ChatRequest("q", [], None, None, 64, schema=Answer, max_retry_tokens=64)
    with pytest.raises(TruncatedOutputError) as e:
        drive(chat_flow(req), [cut('{"answer": "4')])
    assert e.value.budgets == (64,) and "max_tokens 64 (finish_reason=length)" in str(e.value)


def test_flow_repairs_an_invalid_retry_with_the_retry_budget() -> None:
    req = ChatRequest("q", [], None, None, 64, schema=Answer, max_retry_tokens=1000)
    replies = [cut('{"answer": "4'), ChatResult(text="not json"), ChatResult(text='{"answer": "42"}')]
    result, steps = drive(chat_flow(req), replies)
    assert result.parsed == Answer(answer="42") and [type(s) for s in steps] == [Plan, Send, Send, Plan, Send]
    repair = steps[3]
    assert isinstance(repair, Plan) and repair.max_tokens == 128  # the room the retry had, not less
    assert repair.history[-1]["content"][0]["text"] == "not json"
