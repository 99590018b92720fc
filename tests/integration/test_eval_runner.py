"""The eval runner end to end over the wire: tiny datasets in each published layout, a scripted server.

Each item's image carries a large block of a unique colour; the responder decodes the image the tools sent
and finds which item it is from that colour, so answers are scripted per item even with concurrency.
Expected scores are computed by hand in each test. Tests that take the ``drive`` fixture run twice, through
``EvalRunner.run`` and through ``EvalRunner.arun``, with the same assertions (tests/drive.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.errors import InvalidInputError, JobAbortedError
from minimaxvl_tools.eval import (
    EvalConfig,
    EvalRunner,
    anls,
    load_task,
    ocrbench_score,
    read_records,
    relaxed_accuracy,
)
from minimaxvl_tools.eval.cli import build_parser, run
from minimaxvl_tools.testing.server import LocalVLLMServer, Reply
from tests.drive import Drive

COLOURS = [
    (220, 20, 20),
    (20, 160, 20),
    (20, 20, 220),
    (230, 160, 0),
    (150, 0, 150),
    (0, 160, 160),
    (110, 60, 0),
    (240, 0, 150),
]


# ----------------------------------------------------------------------------------------------- helpers
def _image(path: Path, index: int, text: str = "Sample text 123") -> None:
    """A 480x360 picture: a colour block naming the item, some text so it is not blank."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (480, 360), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 200, 150), fill=COLOURS[index])
    for i in range(5):
        d.text((220, 20 + i * 30), f"{text} line {i}", fill="black")
    img.save(path)


def _item_index(body: dict[str, Any]) -> int:
    """Which item a request is about: the colour at the top-left of its (first) image."""
    for msg in body["messages"]:
        if not isinstance(msg.get("content"), list):
            continue
        for part in msg["content"]:
            if part.get("type") == "image_url":
                data = part["image_url"]["url"].split(",", 1)[1]
                img = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
                px = img.getpixel((img.width // 10, img.height // 10))
                assert isinstance(px, tuple)
                dists = [sum((a - b) ** 2 for a, b in zip(px, c, strict=True)) for c in COLOURS]
                return dists.index(min(dists))
    raise AssertionError("request without an image")


def _is_structured(body: dict[str, Any]) -> bool:
    return body.get("response_format") is not None or "JSON" in json.dumps(body["messages"])[-600:]


def _client(server: LocalVLLMServer, **kw: Any) -> MiniMaxVLClient:
    return MiniMaxVLClient(base_url=server.base_url, max_retries=0, backoff_base=0.001, **kw)


def _chart(answer: str) -> str:
    return json.dumps({"chart_type": "bar", "series": [], "answer": answer})


def _doc(short: str) -> str:
    return json.dumps(
        {"answer": short, "short_answer": short, "pages": [1], "found": True, "confidence": 0.9}
    )


# ----------------------------------------------------------------------------------------------- datasets
CHART_GOLD = ["12", "Asia", "45%", "3.5", "North"]


def make_chartqa(root: Path) -> Path:
    """ChartQA release layout: test/test_human.json + test/test_augmented.json + test/png/."""
    recs = [
        {"imgname": f"c{i}.png", "query": f"Chart question {i}?", "label": g}
        for i, g in enumerate(CHART_GOLD)
    ]
    for i in range(len(recs)):
        _image(root / "test" / "png" / f"c{i}.png", i)
    (root / "test" / "test_human.json").write_text(json.dumps(recs[:3]))
    (root / "test" / "test_augmented.json").write_text(json.dumps(recs[3:]))
    return root


DOC_GOLD = [["$1,250.00", "1,250.00"], ["John Smith"], ["1,250"], ["March 3"]]


def make_docvqa(root: Path) -> Path:
    """DocVQA official layout: val_v1.0.json with images under documents/."""
    data = []
    for i, answers in enumerate(DOC_GOLD):
        _image(root / "documents" / f"d{i}.png", i)
        data.append(
            {
                "questionId": 100 + i,
                "question": f"Doc question {i}?",
                "image": f"documents/d{i}.png",
                "answers": answers,
            }
        )
    (root / "val_v1.0.json").write_text(json.dumps({"dataset_name": "docvqa", "data": data}))
    return root


AI2D_GOLD = [0, 1, 2, 3, 1]  # 0-based indexes, as lmms-eval exports them -> A, B, C, D, B


def make_ai2d(root: Path) -> Path:
    """AI2D JSONL export: question, options, 0-based answer, image path relative to the file."""
    lines = []
    for i, ans in enumerate(AI2D_GOLD):
        _image(root / "images" / f"a{i}.png", i)
        lines.append(
            json.dumps(
                {
                    "id": f"ai2d-{i}",
                    "question": f"Diagram question {i}?",
                    "options": ["sun", "grass", "rabbit", "fox"],
                    "answer": ans,
                    "image": f"images/a{i}.png",
                }
            )
        )
    path = root / "ai2d_test.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


OCRB = [
    ("Regular Text Recognition", "IIIT5K", ["CENTRAL"]),
    ("Digit String Recognition", "ORAND", ["4071"]),
    ("Doc-oriented VQA", "docVQA", ["Acme Corp"]),
    ("Key Information Extraction", "FUNSD", ["42.00"]),
]


def make_ocrbench(root: Path) -> Path:
    """OCRBench layout: OCRBench.json beside OCRBench_Images/."""
    data = []
    for i, (cat, ds, answers) in enumerate(OCRB):
        _image(root / "OCRBench_Images" / ds / f"o{i}.png", i)
        data.append(
            {
                "dataset_name": ds,
                "id": 7,
                "image_path": f"{ds}/o{i}.png",
                "question": f"OCRBench question {i}?",
                "answers": answers,
                "type": cat,
            }
        )
    (root / "OCRBench.json").write_text(json.dumps(data))
    return root


# ----------------------------------------------------------------------------------------------- runs
def _run(task: str, data: Path, server: LocalVLLMServer, out: Path | None, drive: Drive, **kw: Any) -> Any:
    items = load_task(task, data)
    cfg = EvalConfig(task=task, model=server.model, prompt_mode=kw.pop("prompt_mode", "tools"))
    concurrency = kw.pop("concurrency", 4)
    return drive.call(
        EvalRunner(cfg, client=_client(server), out=out, concurrency=concurrency, **kw), "run", items
    )


def _responder(answers: Callable[[int, dict[str, Any]], str | Reply]) -> Callable[[dict[str, Any]], Any]:
    return lambda body: answers(_item_index(body), body)


def test_chartqa_gold_answers_score_exactly_100(
    tmp_path: Path, vllm_server: LocalVLLMServer, drive: Drive
) -> None:
    data = make_chartqa(tmp_path / "chartqa")
    vllm_server.set_responder(_responder(lambda i, _: _chart(CHART_GOLD[i])))
    res = _run("chartqa", data, vllm_server, tmp_path / "out.jsonl", drive)
    s = res.summary
    assert (s.task, s.n, s.score, s.errors, s.unit) == ("chartqa", 5, 100.0, 0, "relaxed accuracy, %")
    assert len(vllm_server.requests) == 5
    # every request went through ChartReaderTool: the question is in the prompt, a JSON schema is asked for
    assert all(_is_structured(b) for b in vllm_server.requests)
    assert {r.id for r in res.records} == {"human-0", "human-1", "human-2", "augmented-0", "augmented-1"}
    for r in res.records:
        assert (
            r.tokens.prompt > 0 and r.tokens.completion > 0 and r.tokens.image > 0 and r.tokens.requests == 1
        )
        assert r.latency_s > 0 and r.error is None
    assert s.tokens.requests == 5 and s.tokens.prompt == sum(r.tokens.prompt for r in res.records)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 5 and {json.loads(ln)["prediction"] for ln in lines} == set(CHART_GOLD)


def test_chartqa_two_of_five_wrong_gives_60(
    tmp_path: Path, vllm_server: LocalVLLMServer, drive: Drive
) -> None:
    data = make_chartqa(tmp_path / "chartqa")
    # item 0: 12.5 vs 12 is 4.2% off, still correct (relaxed); 1: wrong text; 3: 3.9 vs 3.5 is 11% off
    preds = ["12.5", "Europe", "45%", "3.9", "north"]
    vllm_server.set_responder(_responder(lambda i, _: _chart(preds[i])))
    res = _run("chartqa", data, vllm_server, None, drive)
    assert res.summary.score == 60.0
    assert [r.score for r in res.records] == [1.0, 0.0, 1.0, 0.0, 1.0]
    # cross-check against the corpus metric
    assert relaxed_accuracy([r.prediction or "" for r in res.records], [r.gold for r in res.records]) == 60.0
    table = res.report()
    assert "| ChartQA (test) | 5 | 60.0 | 23.1–88.2 | 91.7 | -31.7 |" in table
    assert "| ChartQA human (test) | 3 | 66.7 |" in table
    assert "| ChartQA augmented (test) | 2 | 50.0 |" in table


def test_docvqa_short_answers_anls(tmp_path: Path, vllm_server: LocalVLLMServer, drive: Drive) -> None:
    data = make_docvqa(tmp_path / "docvqa")
    # exact; case/space differences (ANLS normalizes); "1,25" vs "1,250": 1 edit / 5 chars -> 0.8; wrong -> 0
    preds = ["1,250.00", "  john   SMITH ", "1,25", "April 9"]
    vllm_server.set_responder(_responder(lambda i, _: _doc(preds[i])))
    res = _run("docvqa", data, vllm_server, None, drive)
    assert [round(r.score, 6) for r in res.records] == [1.0, 1.0, 0.8, 0.0]
    assert res.summary.score == pytest.approx(70.0)
    assert res.summary.unit == "ANLS, %"
    assert anls([r.prediction or "" for r in res.records], DOC_GOLD) == pytest.approx(70.0)
    # short-answer mode of DocumentVQATool was used: its rules are in the prompt
    assert all("exact words" in json.dumps(b["messages"]) for b in vllm_server.requests)

    vllm_server.set_responder(_responder(lambda i, _: _doc(DOC_GOLD[i][0])))
    assert _run("docvqa", data, vllm_server, None, drive).summary.score == 100.0


def test_ai2d_option_letters(tmp_path: Path, vllm_server: LocalVLLMServer, drive: Drive) -> None:
    data = make_ai2d(tmp_path / "ai2d")
    letters = "ABCD"
    gold = [letters[a] for a in AI2D_GOLD]
    vllm_server.set_responder(_responder(lambda i, _: f"Energy flows up the web.\nAnswer: {gold[i]}"))
    res = _run("ai2d", data, vllm_server, None, drive)
    assert res.summary.score == 100.0 and [r.prediction for r in res.records] == gold
    # the options were sent (DiagramReasoningTool with options)
    assert all("rabbit" in json.dumps(b["messages"]) for b in vllm_server.requests)

    wrong = {1: "Answer: (A)", 4: "I cannot tell."}  # one wrong letter, one unparseable reply
    vllm_server.set_responder(_responder(lambda i, _: wrong.get(i, f"Answer: {gold[i]}")))
    res = _run("ai2d", data, vllm_server, None, drive)
    assert res.summary.score == 60.0
    assert [r.prediction for r in res.records][1] == "A" and res.records[4].score == 0.0


def test_ocrbench_full_marks_and_routing(tmp_path: Path, vllm_server: LocalVLLMServer, drive: Drive) -> None:
    data = make_ocrbench(tmp_path / "OCRBench")

    def answer(i: int, body: dict[str, Any]) -> str:
        gold = OCRB[i][2][0]
        # recognition items get OCRTool (a plain transcription); the rest DocumentVQATool's JSON
        return _doc(gold) if _is_structured(body) else f"some words {gold} more words"

    vllm_server.set_responder(_responder(answer))
    res = _run("ocrbench", data, vllm_server, None, drive)
    s = res.summary
    assert (s.score, s.n, s.unit) == (1000.0, 4, "points / 1000")
    assert s.extra["total"] == 4 and s.extra["per_category"]["Doc-oriented VQA"] == 1
    routed = {_item_index(b): _is_structured(b) for b in vllm_server.requests}
    assert routed == {0: False, 1: False, 2: True, 3: True}
    assert [r.detail.get("tool") for r in res.records] == ["ocr_transcribe"] * 2 + ["document_qa"] * 2

    vllm_server.set_responder(_responder(lambda i, b: "4O71" if i == 1 else answer(i, b)))  # letter O
    res = _run("ocrbench", data, vllm_server, None, drive)
    assert res.summary.score == 750.0
    cats = [r.meta["category"] for r in res.records]
    ref = ocrbench_score([r.prediction or "" for r in res.records], [r.gold for r in res.records], cats)
    assert ref.scaled == 750.0
    assert "| OCRBench (test) | 4 | 750 | 301–954 | 865 | -115 |" in res.report()


def test_resume_sends_only_remaining_items(
    tmp_path: Path, vllm_server: LocalVLLMServer, drive: Drive
) -> None:
    data = make_chartqa(tmp_path / "chartqa")
    out = tmp_path / "results.jsonl"
    vllm_server.set_responder(_responder(lambda i, _: Reply(text=_chart(CHART_GOLD[i]), delay=0.15)))
    items = load_task("chartqa", data)
    cfg = EvalConfig(task="chartqa", model=vllm_server.model, prompt_mode="tools")

    # the interruption is a cancelled task (Ctrl-C under asyncio); the reruns go through both sides
    async def interrupted() -> None:
        runner = EvalRunner(cfg, client=_client(vllm_server), out=out, concurrency=1)
        task = asyncio.create_task(runner.arun(items))
        while not out.exists() or len(out.read_text().splitlines()) < 2:
            await asyncio.sleep(0.01)
        task.cancel()  # like Ctrl-C after 2 items
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    done = [r.id for r in read_records(out)]
    assert len(done) == 2
    vllm_server.reset()
    vllm_server.set_responder(_responder(lambda i, _: _chart(CHART_GOLD[i])))
    res = drive.call(EvalRunner(cfg, client=_client(vllm_server), out=out, concurrency=2), "run", items)
    sent = sorted(_item_index(b) for b in vllm_server.requests)
    assert sent == [2, 3, 4]  # items 0 and 1 were recorded: never asked again
    assert res.ran == 3 and res.resumed == 2 and res.summary.resumed == 2
    assert res.summary.n == 5 and res.summary.score == 100.0
    assert len(list(read_records(out))) == 5

    # a third run has nothing left to send; a torn last line (crash mid-write) is ignored
    with out.open("a") as fh:
        fh.write('{"id": "human-0", "task": "cha')
    vllm_server.reset()
    res = drive.call(EvalRunner(cfg, client=_client(vllm_server), out=out), "run", items)
    assert vllm_server.requests == [] and res.ran == 0 and res.summary.score == 100.0

    # another configuration (dpi) does not reuse these records; resume=False neither
    other = EvalConfig(task="chartqa", model=vllm_server.model, dpi=150, prompt_mode="tools")
    res = drive.call(EvalRunner(other, client=_client(vllm_server), out=out), "run", items)
    assert len(vllm_server.requests) == 5 and res.ran == 5
    vllm_server.reset()
    drive.call(EvalRunner(cfg, client=_client(vllm_server), out=out, resume=False), "run", items)
    assert len(vllm_server.requests) == 5


def test_item_errors_are_recorded_and_the_run_goes_on(
    tmp_path: Path, vllm_server: LocalVLLMServer, drive: Drive
) -> None:
    data = make_chartqa(tmp_path / "chartqa")
    (data / "test" / "png" / "c4.png").write_bytes(b"not a png at all")  # fails before any request

    def answer(i: int, _: dict[str, Any]) -> str | Reply:
        if i == 1:
            return Reply(status=400, error="scripted: image could not be processed")
        return _chart(CHART_GOLD[i])

    vllm_server.set_responder(_responder(answer))
    out = tmp_path / "out.jsonl"
    res = _run("chartqa", data, vllm_server, out, drive)
    by_id = {r.id: r for r in res.records}
    assert res.summary.errors == 2 and res.summary.n == 5
    assert res.summary.score == 60.0  # 3 correct of 5; errors score 0
    assert by_id["human-1"].error and "image could not be processed" in by_id["human-1"].error
    assert by_id["human-1"].score == 0.0 and by_id["human-1"].prediction is None
    assert by_id["augmented-1"].error and "chart_reader" in by_id["augmented-1"].error
    assert len(vllm_server.requests) == 4  # the broken file never reached the server

    # on rerun (resume), only the two errored items are tried again
    vllm_server.reset()
    vllm_server.set_responder(_responder(lambda i, _: _chart(CHART_GOLD[i])))
    res = _run("chartqa", data, vllm_server, out, drive)
    assert [_item_index(b) for b in vllm_server.requests] == [1]
    assert res.summary.errors == 1 and res.summary.score == 80.0


def test_window_caps_items_in_flight_and_hands_records_out_in_item_order(
    tmp_path: Path, vllm_server: LocalVLLMServer, drive: Drive
) -> None:
    data = make_chartqa(tmp_path / "chartqa")
    lock = threading.Lock()
    flight = {"now": 0, "most": 0}

    def answer(i: int, _: dict[str, Any]) -> str:
        with lock:
            flight["now"] += 1
            flight["most"] = max(flight["most"], flight["now"])
        time.sleep(0.04 * (5 - i))  # later items finish first
        with lock:
            flight["now"] -= 1
        return _chart(CHART_GOLD[i])

    vllm_server.set_responder(_responder(answer))
    out = tmp_path / "out.jsonl"
    res = _run("chartqa", data, vllm_server, out, drive, concurrency=2)
    assert flight["most"] == 2  # the window holds two items, never more
    ids = [it.id for it in load_task("chartqa", data)]
    assert [r.id for r in read_records(out)] == ids  # written as handed out: in item order
    assert [r.id for r in res.records] == ids and res.summary.score == 100.0


def test_failure_rate_stops_the_run_and_a_rerun_resumes(
    tmp_path: Path, vllm_server: LocalVLLMServer, drive: Drive
) -> None:
    data = make_chartqa(tmp_path / "chartqa")
    items = load_task("chartqa", data)
    cfg = EvalConfig(task="chartqa", model=vllm_server.model, prompt_mode="tools")
    failing = _responder(
        lambda i, _: _chart(CHART_GOLD[i]) if i == 0 else Reply(status=400, error="scripted: bad image")
    )
    vllm_server.set_responder(failing)
    out = tmp_path / "out.jsonl"

    def runner(**kw: Any) -> EvalRunner:
        return EvalRunner(cfg, client=_client(vllm_server), out=out, concurrency=1, **kw)

    # 20% of 5 items may fail: the second failure makes the final rate certain to pass it
    with pytest.raises(JobAbortedError, match=r"stopped after 3 of 5 .*2 failed.*max_failure_rate 20%"):
        drive.call(runner(max_failure_rate=0.2), "run", items)
    kept = list(read_records(out))
    assert [(r.id, r.error is None) for r in kept] == [
        ("human-0", True),
        ("human-1", False),
        ("human-2", False),
    ]
    assert len(vllm_server.requests) == 3  # nothing was sent after the stop

    # a rate the run cannot pass never stops it
    vllm_server.reset()
    vllm_server.set_responder(failing)
    res = drive.call(runner(max_failure_rate=1.0), "run", items)
    assert res.summary.errors == 4 and res.ran == 4 and res.resumed == 1

    # rerun with a healthy server: the recorded success is kept, the errors run again
    vllm_server.reset()
    vllm_server.set_responder(_responder(lambda i, _: _chart(CHART_GOLD[i])))
    res = drive.call(runner(max_failure_rate=0.2), "run", items)
    assert sorted(_item_index(b) for b in vllm_server.requests) == [1, 2, 3, 4]
    assert res.resumed == 1 and res.summary.score == 100.0

    with pytest.raises(InvalidInputError, match="max_failure_rate"):
        runner(max_failure_rate=1.5)


def test_cli_max_failure_rate_exits_1_and_keeps_records(
    tmp_path: Path, vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_ai2d(tmp_path / "ai2d")
    vllm_server.set_responder(lambda body: Reply(status=400, error="scripted: bad image"))
    out = tmp_path / "ai2d.jsonl"
    argv = ["ai2d", str(data), "--out", str(out), "--base-url", vllm_server.base_url]
    argv += ["--model", vllm_server.model, "--concurrency", "1", "--max-failure-rate", "0.5"]
    assert run(build_parser().parse_args(argv)) == 1
    assert "max_failure_rate 50%" in capsys.readouterr().err
    assert len(list(read_records(out))) == 3  # 3 of 5 failed: over half, whatever the rest do


def test_cli_run_json_and_resume(
    tmp_path: Path, vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_ai2d(tmp_path / "ai2d")
    gold = ["A", "B", "C", "D", "B"]
    vllm_server.set_responder(_responder(lambda i, _: f"Answer: {gold[i]}" if i != 2 else "Answer: D"))
    out = tmp_path / "ai2d.jsonl"
    report = tmp_path / "report.md"
    argv = ["ai2d", str(data), "--out", str(out), "--base-url", vllm_server.base_url, "--json"]
    argv += ["--model", vllm_server.model, "--concurrency", "2", "--report", str(report)]
    assert run(build_parser().parse_args(argv)) == 0
    payload = json.loads(capsys.readouterr().out)
    (summary,) = payload["summaries"]
    assert summary["task"] == "ai2d" and summary["score"] == 80.0 and summary["n"] == 5
    assert "| AI2D (test) | 5 | 80.0 | 37.6–96.4 | 83.3 | -3.3 |" in report.read_text()
    assert len(vllm_server.requests) == 5

    vllm_server.reset()
    assert run(build_parser().parse_args([*argv[:-2], "--sample", "3"])) == 0
    payload = json.loads(capsys.readouterr().out)
    assert vllm_server.requests == [] and payload["summaries"][0]["resumed"] == 3


def test_cli_bad_data_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(
        ["docvqa", str(tmp_path / "missing"), "--out", str(tmp_path / "o.jsonl")]
    )
    assert run(args) == 2
    assert "val_v1.0.json" in capsys.readouterr().err
