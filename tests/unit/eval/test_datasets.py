"""Dataset readers on tiny folders in each benchmark's published layout, plus sampling and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.eval.datasets import (
    EvalItem,
    load_ai2d,
    load_benchmark,
    load_chartqa,
    load_docvqa,
    load_jsonl,
    load_ocrbench,
    sample,
)
from minimaxvl_tools.eval.report import PUBLISHED, format_report

PNG = b"\x89PNG\r\n\x1a\n"  # readers only check that images exist; they never decode them


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PNG)
    return path


def _write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ ChartQA
def _chartqa(root: Path) -> Path:
    test = root / "ChartQA Dataset" / "test"
    _write_json(
        test / "test_human.json",
        [
            {"imgname": "41699051005347.png", "query": "How many bars exceed 20?", "label": "3"},
            {"imgname": "multi_col_1.png", "query": "Which year peaked?", "label": "2019"},
        ],
    )
    _write_json(
        test / "test_augmented.json", [{"imgname": "two_col_9.png", "query": "Max value?", "label": 45.5}]
    )
    for name in ("41699051005347.png", "multi_col_1.png", "two_col_9.png"):
        _touch(test / "png" / name)
    return root / "ChartQA Dataset"


def test_chartqa_reads_both_subsets(tmp_path: Path) -> None:
    root = _chartqa(tmp_path)
    items = load_chartqa(root)
    assert [i.id for i in items] == ["human-0", "human-1", "augmented-0"]
    first = items[0]
    assert first.task == "chartqa" and first.question == "How many bars exceed 20?"
    assert first.answers == ["3"] and first.options is None
    assert first.image_path == root / "test" / "png" / "41699051005347.png"
    assert first.meta["subset"] == "human"
    assert items[2].answers == ["45.5"]  # numeric labels become strings
    # The split folder itself works as root too, and subsets can be picked.
    assert [i.id for i in load_chartqa(root / "test", subsets=("augmented",))] == ["augmented-0"]
    assert len(load_chartqa(root, limit=2)) == 2


def test_chartqa_missing_file_names_path_and_layout(tmp_path: Path) -> None:
    root = _chartqa(tmp_path)
    (root / "test" / "test_augmented.json").unlink()
    with pytest.raises(InvalidInputError, match=r"test_augmented\.json does not exist.*test_human\.json"):
        load_chartqa(root)


def test_chartqa_missing_image_is_reported_before_any_request(tmp_path: Path) -> None:
    root = _chartqa(tmp_path)
    (root / "test" / "png" / "multi_col_1.png").unlink()
    with pytest.raises(InvalidInputError, match=r"1 image\(s\) not found: .*multi_col_1\.png"):
        load_chartqa(root)
    assert len(load_chartqa(root, check_images=False)) == 3


# ------------------------------------------------------------------------------------------ DocVQA
def _docvqa(root: Path) -> Path:
    val = root / "val"
    _write_json(
        val / "val_v1.0.json",
        {
            "dataset_name": "docvqa",
            "dataset_split": "val",
            "data": [
                {
                    "questionId": 49153,
                    "question": "What is the ‘actual’ value per 1000, during the year 1975?",
                    "question_types": ["figure/diagram"],
                    "image": "documents/pybv0228_81.png",
                    "docId": 14465,
                    "ucsf_document_id": "pybv0228",
                    "ucsf_document_page_no": "81",
                    "answers": ["0.28"],
                    "data_split": "val",
                },
                {
                    "questionId": 24580,
                    "question": "What is the date?",
                    "image": "documents/nkbl0226_1.png",
                    "answers": ["12/15/88", "December 15, 1988"],
                },
            ],
        },
    )
    _touch(val / "documents" / "pybv0228_81.png")
    _touch(val / "documents" / "nkbl0226_1.png")
    return root


def test_docvqa_official_json(tmp_path: Path) -> None:
    root = _docvqa(tmp_path)
    items = load_docvqa(root)  # finds <root>/val/val_v1.0.json
    assert [i.id for i in items] == ["49153", "24580"]
    assert items[0].image_path == root / "val" / "documents" / "pybv0228_81.png"
    assert items[0].meta["ucsf_document_page_no"] == "81" and items[0].meta["question_types"] == [
        "figure/diagram"
    ]
    assert items[1].answers == ["12/15/88", "December 15, 1988"]
    # The split folder or the JSON file itself also work.
    assert load_docvqa(root / "val") == items
    assert load_docvqa(root / "val" / "val_v1.0.json", limit=1) == items[:1]


def test_docvqa_test_split_has_no_answers(tmp_path: Path) -> None:
    _write_json(
        tmp_path / "test_v1.0.json",
        {"data": [{"questionId": 1, "question": "q?", "image": "documents/a.png"}]},
    )
    _touch(tmp_path / "documents" / "a.png")
    (item,) = load_docvqa(tmp_path, split="test")
    assert item.answers == []


def test_docvqa_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"val_v1\.0\.json does not exist.*documents/xxx\.png"):
        load_docvqa(tmp_path)
    _write_json(tmp_path / "val_v1.0.json", [{"questionId": 1}])
    with pytest.raises(InvalidInputError, match=r'should be \{"data"'):
        load_docvqa(tmp_path)
    _write_json(tmp_path / "val_v1.0.json", {"data": [{"questionId": 1, "image": "documents/a.png"}]})
    with pytest.raises(InvalidInputError, match=r"data\[0\] has no 'question' field"):
        load_docvqa(tmp_path, check_images=False)
    (tmp_path / "val_v1.0.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"cannot read .* as JSON"):
        load_docvqa(tmp_path)


# ------------------------------------------------------------------------------------------ AI2D
def test_ai2d_jsonl_export(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "ai2d" / "test.jsonl",
        [
            {
                "id": "q1",
                "question": "Which is a producer?",
                "options": ["frog", "grass"],
                "answer": 1,
                "image": "images/1.png",
            },
            {
                "question": "What eats grass?",
                "options": ["rabbit", "hawk", "sun"],
                "answer": "A",
                "image": "images/2.png",
            },
            {"question": "Stage X?", "options": ["egg", "larva"], "answer": "0", "image": "images/3.png"},
        ],
    )
    for k in (1, 2, 3):
        _touch(tmp_path / "ai2d" / "images" / f"{k}.png")
    items = load_ai2d(path)
    assert [i.answers for i in items] == [["B"], ["A"], ["A"]]  # index 1, letter A, index string "0"
    assert items[0].id == "q1" and items[1].id == "ai2d-2"  # missing id -> line number
    assert items[0].options == ["frog", "grass"] and items[0].meta["answer_text"] == "grass"
    assert items[0].image_path == tmp_path / "ai2d" / "images" / "1.png"
    assert load_ai2d(tmp_path / "ai2d") == items  # a folder holding exactly one .jsonl


def test_ai2d_jsonl_bad_answer(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "a.jsonl", [{"question": "q", "options": ["x", "y"], "answer": 5, "image": "i.png"}]
    )
    with pytest.raises(InvalidInputError, match=r"a\.jsonl line 1: .*out of range"):
        load_ai2d(path, check_images=False)


def test_ai2d_original_release_layout(tmp_path: Path) -> None:
    root = tmp_path / "ai2d"
    _write_json(
        root / "questions" / "4.png.json",
        {
            "imageName": "4.png",
            "questions": {
                "Which stage comes after egg?": {
                    "abcLabel": False,
                    "answerTexts": ["adult", "larva", "pupa", "egg"],
                    "correctAnswer": 1,
                    "questionId": "4.png-0",
                },
                "Label B shows?": {
                    "abcLabel": True,
                    "answerTexts": ["root", "stem"],
                    "correctAnswer": 0,
                    "questionId": "4.png-1",
                },
            },
        },
    )
    _write_json(
        root / "questions" / "7.png.json",
        {
            "imageName": "7.png",
            "questions": {"q": {"answerTexts": ["a", "b"], "correctAnswer": 1, "questionId": "7.png-0"}},
        },
    )
    _touch(root / "images" / "4.png")
    _touch(root / "images" / "7.png")
    (root / "ai2d_test_ids.csv").write_text("4\n", encoding="utf-8")
    test_items = load_ai2d(root)  # split="test" keeps only image ids in ai2d_test_ids.csv
    assert [i.id for i in test_items] == ["4.png-0", "4.png-1"]
    assert test_items[0].answers == ["B"] and test_items[0].options == ["adult", "larva", "pupa", "egg"]
    assert test_items[1].meta["abc_label"] is True
    assert [i.id for i in load_ai2d(root, split="all")] == ["4.png-0", "4.png-1", "7.png-0"]
    (root / "ai2d_test_ids.csv").unlink()
    with pytest.raises(InvalidInputError, match=r"ai2d_test_ids\.csv"):
        load_ai2d(root)


def test_ai2d_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"nope does not exist.*questions/\*\.json"):
        load_ai2d(tmp_path / "nope")


# ------------------------------------------------------------------------------------------ OCRBench
def test_ocrbench_layout(tmp_path: Path) -> None:
    _write_json(
        tmp_path / "OCRBench" / "OCRBench.json",
        [
            {
                "dataset_name": "IIIT5K",
                "id": 2843,
                "image_path": "IIIT5K/test/918_1.png",
                "question": "what is written in the image?",
                "answers": "CENTRE",
                "type": "Regular Text Recognition",
            },
            {
                "dataset_name": "HME100k",
                "id": 2843,
                "image_path": "HME100k/test/1.jpg",
                "question": "Please write out the expression of the formula in the image using LaTeX format.",
                "answers": ["x ^ { 2 }"],
                "type": "Handwritten Mathematical Expression Recognition",
            },
        ],
    )
    _touch(tmp_path / "OCRBench_Images" / "IIIT5K" / "test" / "918_1.png")
    _touch(tmp_path / "OCRBench_Images" / "HME100k" / "test" / "1.jpg")
    items = load_ocrbench(tmp_path)  # <root>/OCRBench/OCRBench.json + <root>/OCRBench_Images (repo layout)
    assert [i.id for i in items] == ["ocrbench-0", "ocrbench-1"]  # source ids repeat (2843 twice)
    assert items[0].answers == ["CENTRE"]  # a bare string becomes a one-answer list
    assert items[1].meta == {
        "category": "Handwritten Mathematical Expression Recognition",
        "dataset_name": "HME100k",
        "source_id": 2843,
    }
    assert items[0].image_path == tmp_path / "OCRBench_Images" / "IIIT5K" / "test" / "918_1.png"


def test_ocrbench_missing_images_folder(tmp_path: Path) -> None:
    _write_json(tmp_path / "OCRBench.json", [])
    with pytest.raises(InvalidInputError, match=r"OCRBench_Images does not exist"):
        load_ocrbench(tmp_path)
    with pytest.raises(InvalidInputError, match=r"OCRBench\.json does not exist"):
        load_ocrbench(tmp_path / "elsewhere")


# ------------------------------------------------------------------------------------------ generic JSONL
def test_generic_jsonl(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "set.jsonl",
        [
            {"id": "a", "image": "img/a.png", "question": "Total?", "answers": "42", "source": "invoice"},
            {
                "id": "b",
                "image": "docs/b.pdf",
                "question": "Pick",
                "answers": ["B"],
                "options": ["x", "y"],
                "page": 3,
                "task": "mc",
            },
        ],
    )
    _touch(tmp_path / "img" / "a.png")
    _touch(tmp_path / "docs" / "b.pdf")
    a, b = load_jsonl(path, task="custom")
    assert (a.task, a.answers, a.meta) == ("custom", ["42"], {"source": "invoice"})
    assert (b.task, b.options, b.page) == ("mc", ["x", "y"], 3)
    assert b.image_path == tmp_path / "docs" / "b.pdf"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "a", "image": "a.png", "answers": "1"}, "has no 'question' field"),
        ({"id": "a", "image": "a.png", "question": "q", "answers": "1", "page": 0}, "1-based"),
        ({"id": "a", "image": "a.png", "question": "q", "answers": "1", "options": []}, "non-empty list"),
    ],
)
def test_generic_jsonl_validation(tmp_path: Path, row: dict[str, Any], message: str) -> None:
    path = _write_jsonl(tmp_path / "x.jsonl", [row])
    with pytest.raises(InvalidInputError, match=message):
        load_jsonl(path, check_images=False)


def test_generic_jsonl_bad_lines(tmp_path: Path) -> None:
    dup = {"id": "a", "image": "a.png", "question": "q", "answers": "1"}
    with pytest.raises(InvalidInputError, match="duplicate id 'a'"):
        load_jsonl(_write_jsonl(tmp_path / "d.jsonl", [dup, dup]), check_images=False)
    (tmp_path / "bad.jsonl").write_text(json.dumps(dup) + "\n\n{oops\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="line 3 is not JSON"):  # blank lines skipped but counted
        load_jsonl(tmp_path / "bad.jsonl", check_images=False)
    with pytest.raises(InvalidInputError, match=r"limit must be"):
        load_jsonl(tmp_path / "bad.jsonl", limit=-1)


# ------------------------------------------------------------------------------------------ sampling
def _items(n: int) -> list[EvalItem]:
    return [
        EvalItem(id=str(i), task="t", question="q", answers=["a"], image_path=Path(f"{i}.png"))
        for i in range(n)
    ]


def test_sample_is_deterministic_ordered_and_nested() -> None:
    items = _items(200)
    s1 = sample(items, 20, seed=7)
    assert s1 == sample(list(items), 20, seed=7)  # same seed, same subset
    assert len(s1) == 20 and len({i.id for i in s1}) == 20
    assert [int(i.id) for i in s1] == sorted(int(i.id) for i in s1)  # original order kept
    assert s1 != sample(items, 20, seed=8)
    assert set(map(id, s1)) <= set(map(id, sample(items, 50, seed=7)))  # larger n contains smaller
    # Each item's rank depends only on its own id: growing the dataset never brings in an old item that the
    # smaller dataset's sample had left out.
    old_ids = {i.id for i in s1}
    assert {i.id for i in sample(_items(400), 20, seed=7) if int(i.id) < 200} <= old_ids
    assert sample(items, 500, seed=1) == items
    with pytest.raises(InvalidInputError):
        sample(items, -1)


def test_sample_values_are_pinned() -> None:
    # sha256-based ranking: independent of Python's random module, so these ids never change.
    assert [i.id for i in sample(_items(10), 3, seed=0)] == PINNED_SAMPLE


PINNED_SAMPLE = ["1", "3", "9"]


def test_load_benchmark_dispatch(tmp_path: Path) -> None:
    root = _chartqa(tmp_path)
    assert [i.id for i in load_benchmark("ChartQA", root, limit=2)] == ["human-0", "human-1"]
    picked = load_benchmark("chartqa", root, sample_n=2, seed=3)
    assert len(picked) == 2 and picked == load_benchmark("chartqa", root, sample_n=2, seed=3)
    assert len(load_benchmark("chartqa", root, subsets=("human",))) == 2
    with pytest.raises(InvalidInputError, match="unknown benchmark 'vqav2'"):
        load_benchmark("vqav2", root)
    with pytest.raises(TypeError, match="'imges_dir'"):  # a misspelt reader option is not ignored
        load_benchmark("chartqa", root, imges_dir=tmp_path)
    pdf = Path(__file__).resolve().parents[3] / "samples" / "born_digital.pdf"
    pages = load_benchmark("ocr-cer", pdf, limit=1)  # the PDF reader is one more layout
    assert [p.id for p in pages] == ["born_digital.pdf#p1"] and pages[0].answers[0].strip()


# ------------------------------------------------------------------------------------------ report
def test_published_numbers_match_the_shared_table() -> None:
    assert dict(PUBLISHED) == {
        "ChartQA": 91.7,
        "DocVQA": 96.4,
        "OCRBench": 865.0,
        "AI2D": 83.3,
        "MathVista": 68.6,
        "MMMU": 68.5,
    }


def test_format_report_table() -> None:
    text = format_report(
        {"ocrbench": 871.0, "chartqa": 90.3, "MyDocs": 55.0},
        counts={"ChartQA": 2500, "OCRBench": 1000},
    )
    assert text.splitlines() == [
        "| benchmark | ours | published | delta | n |",
        "|---|---:|---:|---:|---:|",
        "| ChartQA | 90.3 | 91.7 | -1.4 | 2500 |",  # published order first
        "| OCRBench | 871 | 865 | +6 | 1000 |",
        "| MyDocs | 55.0 | — | — | — |",  # unknown benchmark: no published number, no count
    ]


def test_format_report_rejects_bad_values() -> None:
    with pytest.raises(InvalidInputError, match="finite number"):
        format_report({"ChartQA": float("nan")})
    with pytest.raises(InvalidInputError, match="twice"):
        format_report({"ChartQA": 1.0, "chartqa": 2.0})
    assert format_report({}, published={}).count("\n") == 2  # header only
