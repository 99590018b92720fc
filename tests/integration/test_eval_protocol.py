"""Benchmark-mode runs end to end through the test double (LocalVLLMServer), per benchmark and layout.

Replies are scripted per item (each image carries a colour naming its item); every expected score is computed
by the line-by-line reference ports in ``tests/unit/eval/_reference_ports.py`` on the same replies, so the
runner must give exactly the reference scorer's result. Also: the prompts sent, resume that never reuses
another split's or file's records, and ``eval rescore``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_eval_runner import _client, _image, _item_index

from minimaxvl_tools.eval import EvalConfig, EvalRunner, load_task, read_records
from minimaxvl_tools.eval.cli import build_parser, run
from minimaxvl_tools.eval.metrics import anls, ocrbench_score
from minimaxvl_tools.testing.server import LocalVLLMServer, Reply

_spec = importlib.util.spec_from_file_location(
    "_reference_ports", Path(__file__).parents[1] / "unit" / "eval" / "_reference_ports.py"
)
assert _spec is not None and _spec.loader is not None
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


# ----------------------------------------------------------------------------------------------- helpers
def _png_struct(tmp: Path, i: int) -> dict[str, Any]:
    path = tmp / f"_src{i}.png"
    _image(path, i)
    data = path.read_bytes()
    path.unlink()
    return {"bytes": data, "path": f"{i}.png"}


def _parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _text(body: dict[str, Any]) -> str:
    parts = body["messages"][-1]["content"]
    return (
        "".join(p.get("text", "") for p in parts if isinstance(p, dict)) if isinstance(parts, list) else parts
    )


def _final(reply: str) -> str:
    """Independent reading of the CoT protocol: what follows the last 'Answer:' on its line."""
    pieces = re.split(r"(?i)answer\s*:", reply)
    return (
        pieces[-1].strip().splitlines()[0].strip()
        if len(pieces) > 1 and pieces[-1].strip()
        else ("" if len(pieces) > 1 else reply.strip())
    )


def _script(server: LocalVLLMServer, replies: list[str], delay: float = 0.0) -> None:
    server.set_responder(lambda body: Reply(text=replies[_item_index(body)], delay=delay))


def _bench(task: str, data: Path, server: LocalVLLMServer, out: Path | None = None, **kw: Any) -> Any:
    loader = kw.pop("loader", {})
    items = load_task(task, data, **loader)
    cfg = EvalConfig(task=task, model=server.model, **kw)
    return EvalRunner(cfg, client=_client(server), out=out, concurrency=3).run(items)


# ----------------------------------------------------------------------------------------------- ChartQA
CHART_ROWS = [
    ("human_test", "12"),
    ("human_test", "Asia"),
    ("augmented_test", "45%"),
    ("augmented_test", "0"),
    ("human_test", "1234"),
    ("augmented_test", "3.5"),
]
CHART_REPLIES = [
    "The bar reaches 12.\nAnswer: 12",
    "Answer: asia",
    "It is 45 percent.\nAnswer: 45",
    "Answer: 0.0",
    "Answer: 1,234",
    "Reading the axis, about 3.6.\nAnswer: 3.6",
]


def make_chartqa_parquet(root: Path) -> Path:
    rows = [
        {"type": t, "question": f"Chart question {i}?", "answer": a, "image": _png_struct(root, i)}
        for i, (t, a) in enumerate(CHART_ROWS)
    ]
    return _parquet(root / "data" / "test-00000-of-00001.parquet", rows)


def test_chartqa_parquet_benchmark_mode_equals_pix2struct(
    tmp_path: Path, vllm_server: LocalVLLMServer
) -> None:
    data = make_chartqa_parquet(tmp_path / "ChartQA")
    _script(vllm_server, CHART_REPLIES)
    res = _bench("chartqa", data, vllm_server, tmp_path / "out.jsonl", chartqa_lenient=True)
    expected = ref.aggregate_relaxed([[a] for _, a in CHART_ROWS], [_final(r) for r in CHART_REPLIES])
    assert expected == pytest.approx(100 * 3 / 6)  # 12, asia, 3.6 (2.9% off); not 45 vs 45%, 0.0, 1,234
    assert res.summary.score == expected
    human = [i for i, (t, _) in enumerate(CHART_ROWS) if t == "human_test"]
    sub = res.summary.extra["subsets"]
    assert sub["human"]["n"] == 3 and sub["human"]["score"] == ref.aggregate_relaxed(
        [[CHART_ROWS[i][1]] for i in human], [_final(CHART_REPLIES[i]) for i in human]
    )
    assert res.summary.extra["lenient"] > res.summary.score  # the opt-in variant, reported apart
    table = res.report()
    assert "| ChartQA (test) | 6 | 50.0 |" in table and "| ChartQA lenient (not pix2struct) | 6 |" in table
    # the benchmark prompt: the bare question plus the CoT instruction, free text (no JSON schema)
    for body in vllm_server.requests:
        text = _text(body)
        assert text.startswith(f"Chart question {_item_index(body)}?\n") and "Answer: <a single" in text
        assert body.get("response_format") is None and body.get("temperature") == 0.0
    rec = next(r for r in read_records(tmp_path / "out.jsonl") if r.id == "human-0")
    assert rec.raw == CHART_REPLIES[0] and rec.prediction == "12" and rec.prompt_mode == "benchmark"
    assert rec.prompt is not None and rec.prompt.startswith("Chart question 0?") and rec.split == "test"
    assert rec.data_file == str(data.resolve()) and len(rec.data_sha256) == 64


# ----------------------------------------------------------------------------------------------- DocVQA
def test_docvqa_spdocvqa_benchmark_mode_anls(tmp_path: Path, vllm_server: LocalVLLMServer) -> None:
    root = tmp_path / "docvqa"
    gold = [["$1,250.00", "1,250.00"], ["John Smith"], ["March 3"]]
    recs = []
    for i, answers in enumerate(gold):
        _image(root / "spdocvqa_images" / f"d{i}.png", i)
        recs.append(
            {
                "questionId": 10 + i,
                "question": f"Doc question {i}?",
                "image": f"documents/d{i}.png",
                "answers": answers,
                "question_types": ["form"],
            }
        )
    (root / "spdocvqa_qas").mkdir(parents=True)
    (root / "spdocvqa_qas" / "val_v1.0_withQT.json").write_text(json.dumps({"data": recs}))
    replies = ["Answer: 1,250.00", "It is signed.\nAnswer:   john   SMITH ", "Answer: April 9"]
    _script(vllm_server, replies)
    res = _bench("docvqa", root, vllm_server, cot=True)
    assert (
        res.summary.score == pytest.approx(anls([_final(r) for r in replies], gold)) == pytest.approx(200 / 3)
    )
    assert "| DocVQA (val split; published: test server) | 3 |" in res.report()


# ----------------------------------------------------------------------------------------------- AI2D
AI2D_OPTS = ["sun", "grass", "rabbit", "fox"]
AI2D_ANS = [0, 1, 2, 3, 1, 2]
AI2D_REPLIES = [
    "The sun feeds the plants.\nAnswer: A",
    "Answer: B and C",
    "Answer: (C)",
    "Answer: fox",
    "Answer: b",
    "The correct answer is **C**. Rabbits eat grass.",
]


def test_ai2d_parquet_benchmark_mode_equals_vlmevalkit(tmp_path: Path, vllm_server: LocalVLLMServer) -> None:
    rows = [
        {
            "question": f"Diagram question {i}?",
            "options": AI2D_OPTS,
            "answer": str(a),
            "image": _png_struct(tmp_path, i),
        }
        for i, a in enumerate(AI2D_ANS)
    ]
    data = _parquet(tmp_path / "ai2d" / "test-00000-of-00001.parquet", rows)
    _script(vllm_server, AI2D_REPLIES)
    res = _bench("ai2d", data, vllm_server)
    hits = [
        ref.extract_answer_from_item(_final(r), AI2D_OPTS) == "ABCD"[a]
        for r, a in zip(AI2D_REPLIES, AI2D_ANS, strict=True)
    ]
    assert res.summary.score == 100.0 * sum(hits) / len(hits)
    assert [r.score for r in res.records] == [float(h) for h in hits]
    assert res.records[1].prediction == ""  # "B and C" is no answer
    body = vllm_server.requests[0]
    assert "A. sun\nB. grass\nC. rabbit\nD. fox\n" in _text(body)


# ----------------------------------------------------------------------------------------------- OCRBench
OCRB = [
    ("Regular Text Recognition", "IIIT5K", "what is written in the image?", ["CENTRAL"], "The text: central"),
    ("Digit String Recognition", "ORAND", "what is the number in the image?", ["4071"], "4O71"),
    ("Doc-oriented VQA", "docVQA", "What is the company name?", ["Acme Corp"], "ACME corp."),
    (
        "Handwritten Mathematical Expression Recognition",
        "HME100k",
        "Write the formula in LaTeX.",
        ["x ^ { 2 }"],
        "$x^{2}$",
    ),
]


def test_ocrbench_json_files_sends_each_items_question(tmp_path: Path, vllm_server: LocalVLLMServer) -> None:
    root = tmp_path / "OCRBench"
    data = []
    for i, (cat, ds, q, answers, _) in enumerate(OCRB):
        _image(root / "OCRBench_Images" / ds / f"o{i}.png", i)
        data.append(
            {
                "dataset_name": ds,
                "id": 3,
                "image_path": f"{ds}/o{i}.png",
                "question": q,
                "answers": answers,
                "type": cat,
            }
        )
    (root / "json_files").mkdir(parents=True)
    (root / "json_files" / "OCRBench.json").write_text(json.dumps(data))
    _script(vllm_server, [o[4] for o in OCRB])
    res = _bench("ocrbench", root, vllm_server)
    assert {_item_index(b): _text(b) for b in vllm_server.requests} == {i: o[2] for i, o in enumerate(OCRB)}
    expected = ocrbench_score(
        [o[4] for o in OCRB], [o[3] for o in OCRB], [o[0] for o in OCRB], [o[1] for o in OCRB]
    )
    assert expected.total == 3 and res.summary.score == expected.scaled == 750.0


# ----------------------------------------------------------------------------------------------- MathVista
def test_mathvista_parquet_equals_lmms_eval(tmp_path: Path, vllm_server: LocalVLLMServer) -> None:
    problems = [
        ("multi_choice", "text", ["3/11", "8/11", "6/11", "3/5"], "8/11", None, "Count.\nAnswer: (B)"),
        ("multi_choice", "text", ["Yes", "No"], "No", None, "Answer: yes"),
        ("free_form", "integer", None, "14", None, "Add them: 14.\nAnswer: 14"),
        ("free_form", "float", None, "1.45", 2.0, "Answer: 1.449"),
        ("free_form", "float", None, "0.6", 1.0, "0.6"),
        ("free_form", "integer", None, "3", None, "There are three."),
    ]
    rows = [
        {
            "pid": str(i + 1),
            "question": f"Math question {i}?",
            "decoded_image": _png_struct(tmp_path, i),
            "choices": c,
            "unit": None,
            "precision": p,
            "answer": a,
            "question_type": qt,
            "answer_type": at,
            "query": f"Hint: ...\nQuestion: Math question {i}?",
        }
        for i, (qt, at, c, a, p, _) in enumerate(problems)
    ]
    data = _parquet(tmp_path / "MathVista" / "data" / "testmini-00000-of-00001.parquet", rows)
    replies = [p[5] for p in problems]
    _script(vllm_server, replies)
    res = _bench("mathvista", tmp_path / "MathVista", vllm_server, tmp_path / "mv.jsonl")

    def stand_in(r: str) -> str:
        return _final(r)

    docs = [
        {"question_type": qt, "answer_type": at, "choices": c, "answer": a, "precision": int(p) if p else 0}
        for qt, at, c, a, p, _ in problems
    ]
    hits = [ref.mv_process(r, d, stand_in) for r, d in zip(replies, docs, strict=True)]
    assert hits == [True, False, True, True, True, False]
    assert [r.score for r in res.records] == [float(h) for h in hits]
    assert res.summary.score == pytest.approx(100 * 4 / 6)
    assert "| MathVista (testmini) | 6 | 66.7 |" in res.report() and "| 68.6 |" in res.report()
    assert all(_text(b).startswith("Hint: ...\nQuestion: Math question") for b in vllm_server.requests)
    # with the reference's GPT step unavailable (extraction ""), only the rule-based hits remain
    res = _bench("mathvista", data, vllm_server, tmp_path / "mv.jsonl", mathvista_fallback="none")
    assert vllm_server.requests and len(vllm_server.requests) == 6  # resumed: nothing re-sent
    none_hits = [ref.mv_process(r, d, lambda _r: "") for r, d in zip(replies, docs, strict=True)]
    # "0.6" (float rule) and "Answer: yes": extraction "" is nearest to "No", the shorter choice
    assert [r.score for r in res.records] == [float(h) for h in none_hits] and sum(none_hits) == 2


# ----------------------------------------------------------------------------------------------- resume
def _chartqa_release(root: Path, split: str, labels: list[str]) -> Path:
    recs = [
        {"imgname": f"c{i}.png", "query": f"{split} question {i}?", "label": g} for i, g in enumerate(labels)
    ]
    for i in range(len(recs)):
        _image(root / split / "png" / f"c{i}.png", i)
    (root / split / f"{split}_human.json").write_text(json.dumps(recs[:2]))
    (root / split / f"{split}_augmented.json").write_text(json.dumps(recs[2:]))
    return root


def test_resume_never_reuses_another_splits_or_files_records(
    tmp_path: Path, vllm_server: LocalVLLMServer
) -> None:
    root = tmp_path / "chartqa"
    _chartqa_release(root, "test", ["1", "2", "3", "4"])
    _chartqa_release(root, "val", ["5", "6", "7", "8"])
    out = tmp_path / "eval-chartqa.jsonl"
    _script(vllm_server, ["Answer: 1", "Answer: 2", "Answer: 3", "Answer: 4"])
    assert _bench("chartqa", root, vllm_server, out).summary.score == 100.0
    # same ids (human-0, ...), same --out, other split: every item is sent again and scored on its own replies
    vllm_server.reset()
    _script(vllm_server, ["Answer: 1", "Answer: 2", "Answer: 3", "Answer: 4"])
    res = _bench("chartqa", root, vllm_server, out, loader={"split": "val"})
    assert len(vllm_server.requests) == 4 and res.ran == 4 and res.summary.score == 0.0
    assert res.summary.split == "val"
    # another copy of the same file (other path), then an edited file: not reused either
    shutil.copytree(root, tmp_path / "copy")
    vllm_server.reset()
    _script(vllm_server, ["Answer: 1", "Answer: 2", "Answer: 3", "Answer: 4"])
    res = _bench("chartqa", tmp_path / "copy", vllm_server, out)
    assert len(vllm_server.requests) == 4 and res.ran == 4 and res.summary.score == 100.0
    labels = json.loads((root / "test" / "test_human.json").read_text())
    labels[0]["label"] = "9"
    (root / "test" / "test_human.json").write_text(json.dumps(labels))
    vllm_server.reset()
    _script(vllm_server, ["Answer: 1", "Answer: 2", "Answer: 3", "Answer: 4"])
    res = _bench("chartqa", root, vllm_server, out)
    assert res.ran == 4 and res.resumed == 0  # the release's two files are hashed together
    assert res.summary.score == 75.0  # human-0's gold is now 9
    vllm_server.reset()
    assert _bench("chartqa", root, vllm_server, out).resumed == 4 and vllm_server.requests == []


def test_killed_benchmark_run_resumes_without_resending(tmp_path: Path, vllm_server: LocalVLLMServer) -> None:
    root = _chartqa_release(tmp_path / "chartqa", "test", ["1", "2", "3", "4", "5"])
    out = tmp_path / "out.jsonl"
    replies = [f"Answer: {i + 1}" for i in range(5)]
    _script(vllm_server, replies, delay=0.15)
    items = load_task("chartqa", root)
    cfg = EvalConfig(task="chartqa", model=vllm_server.model)

    async def interrupted() -> None:
        runner = EvalRunner(cfg, client=_client(vllm_server), out=out, concurrency=1)
        task = asyncio.create_task(runner.arun(items))
        while not out.exists() or len(out.read_text().splitlines()) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    first = {r.id for r in read_records(out)}
    assert len(first) == 2
    vllm_server.reset()
    _script(vllm_server, replies)
    res = EvalRunner(cfg, client=_client(vllm_server), out=out, concurrency=2).run(items)
    assert len(vllm_server.requests) == 3 and res.resumed == 2 and res.summary.score == 100.0
    sent = {
        f"{'human' if i < 2 else 'augmented'}-{i if i < 2 else i - 2}"
        for i in map(_item_index, vllm_server.requests)
    }
    assert sent.isdisjoint(first)
    # tools mode is another configuration: nothing of the benchmark-mode records is reused
    vllm_server.reset()
    vllm_server.set_responder(lambda b: json.dumps({"chart_type": "bar", "series": [], "answer": "1"}))
    EvalRunner(
        EvalConfig(task="chartqa", model=vllm_server.model, prompt_mode="tools"),
        client=_client(vllm_server),
        out=out,
    ).run(items)
    assert len(vllm_server.requests) == 5


# ----------------------------------------------------------------------------------------------- rescore
def test_rescore_recomputes_saved_replies(
    tmp_path: Path, vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_chartqa_parquet(tmp_path / "ChartQA")
    out = tmp_path / "out.jsonl"
    _script(vllm_server, CHART_REPLIES)
    true_score = _bench("chartqa", data, vllm_server, out).summary.score
    # scores in the file are wrong (as if written by an older scorer): rescore reads the raw replies again
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    out.write_text("".join(json.dumps({**x, "score": 1.0}) + "\n" for x in lines))
    vllm_server.reset()
    rescored = tmp_path / "rescored.jsonl"
    argv = ["rescore", str(out), "--json", "--out", str(rescored), "--chartqa-lenient"]
    assert run(build_parser().parse_args(argv)) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["summaries"][0]["score"] == true_score == 50.0
    assert "ChartQA lenient" in payload["report"] and vllm_server.requests == []
    by_id = {json.loads(x)["id"]: json.loads(x)["score"] for x in rescored.read_text().splitlines()}
    assert by_id == {
        "human-0": 1.0,
        "human-1": 1.0,
        "augmented-0": 0.0,
        "augmented-1": 0.0,
        "human-2": 0.0,
        "augmented-2": 1.0,
    }
    assert run(build_parser().parse_args(["rescore", str(tmp_path / "none.jsonl")])) == 2


def test_cli_prompt_mode_is_part_of_the_configuration(
    tmp_path: Path, vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_chartqa_parquet(tmp_path / "ChartQA")
    _script(vllm_server, CHART_REPLIES)
    base = [
        "chartqa",
        str(data),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--base-url",
        vllm_server.base_url,
        "--model",
        vllm_server.model,
        "--json",
    ]
    assert run(build_parser().parse_args(base)) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["config"]["prompt_mode"] == "benchmark" and bench["config"]["cot"] is True
    assert run(build_parser().parse_args([*base, "--no-cot"])) == 0
    no_cot = json.loads(capsys.readouterr().out)
    assert no_cot["config_hash"] != bench["config_hash"]
    assert _text(vllm_server.requests[-1]).endswith("Answer the question using a single word or phrase.")


def test_cli_images_dir_and_split(
    tmp_path: Path, vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "OCRBench"
    (root / "json_files").mkdir(parents=True)
    data = [
        {
            "dataset_name": "IIIT5K",
            "id": 0,
            "image_path": "IIIT5K/a.png",
            "question": "what is written?",
            "answers": ["CENTRAL"],
            "type": "Regular Text Recognition",
        }
    ]
    (root / "json_files" / "OCRBench.json").write_text(json.dumps(data))
    _image(tmp_path / "elsewhere" / "IIIT5K" / "a.png", 0)
    _script(vllm_server, ["CENTRAL"])
    argv = [
        "ocrbench",
        str(root),
        "--images-dir",
        str(tmp_path / "elsewhere"),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--base-url",
        vllm_server.base_url,
        "--model",
        vllm_server.model,
        "--json",
    ]
    assert run(build_parser().parse_args(argv)) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["summaries"][0]["score"] == 1000.0 and len(vllm_server.requests) == 1
    # without --images-dir the reader names where it looked and the layouts it accepts
    assert run(build_parser().parse_args(argv[:2] + argv[4:])) == 2
    assert "OCRBench_Images" in capsys.readouterr().err
