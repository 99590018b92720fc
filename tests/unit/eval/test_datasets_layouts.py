"""Every published dataset layout, as tiny fixtures written by the tests: HF parquet exports (images as
``{bytes, path}`` structs), DocVQA's ``spdocvqa_*`` release, OCRBench's ``json_files/`` layout, MathVista,
``images_dir``; errors that name the accepted layouts; split, data file and hash stamped on every item.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.eval.datasets import (
    DATASET_LAYOUTS,
    load_ai2d,
    load_benchmark,
    load_chartqa,
    load_docvqa,
    load_mathvista,
    load_ocrbench,
)


def png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, format="PNG")
    return buf.getvalue()


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def img(i: int) -> dict[str, Any]:
    return {"bytes": png((10 * i, 200, 30)), "path": f"img_{i}.png"}


# ----------------------------------------------------------------------------------------------- ChartQA
def test_chartqa_parquet_export(tmp_path: Path) -> None:
    rows = [
        {"type": "human_test", "question": "Q0?", "answer": "12", "image": img(0)},
        {"type": "augmented_test", "question": "Q1?", "answer": "Asia", "image": img(1)},
        {"type": "human_test", "question": "Q2?", "answer": "45%", "image": img(2)},
    ]
    f = write_parquet(tmp_path / "ChartQA" / "data" / "test-00000-of-00001.parquet", rows)
    items = load_chartqa(tmp_path / "ChartQA")
    assert [i.id for i in items] == ["human-0", "augmented-0", "human-1"]
    assert [i.answers for i in items] == [["12"], ["Asia"], ["45%"]]
    assert [i.meta["subset"] for i in items] == ["human", "augmented", "human"]
    assert all(i.image_path.is_file() and i.image_path.read_bytes()[:4] == b"\x89PNG" for i in items)
    assert items[0].image_path.parent == f.with_name(f.stem + ".images")
    assert (
        items[0].split == "test" and items[0].source == str(f.resolve()) and len(items[0].source_sha256) == 64
    )
    # images are written once, content-addressed: loading again gives the same files
    assert [i.image_path for i in load_chartqa(f)] == [i.image_path for i in items]
    only_human = load_chartqa(f, subsets=("human",))
    assert [i.id for i in only_human] == ["human-0", "human-1"]
    # images_dir redirects where parquet images are written
    moved = load_chartqa(f, images_dir=tmp_path / "cache")
    assert all(i.image_path.parent == tmp_path / "cache" for i in moved)


def test_parquet_folder_without_the_split_names_what_it_found(tmp_path: Path) -> None:
    write_parquet(
        tmp_path / "d" / "train-00000-of-00001.parquet",
        [{"type": "human_test", "question": "q", "answer": "1", "image": img(0)}],
    )
    with pytest.raises(InvalidInputError, match=r"none for split 'test'.*train-00000-of-00001.parquet"):
        load_chartqa(tmp_path / "d")


# ----------------------------------------------------------------------------------------------- DocVQA
def test_docvqa_parquet_validation_split(tmp_path: Path) -> None:
    rows = [
        {
            "questionId": 57349,
            "question": "What is the date?",
            "answers": ["March 3", "3 March"],
            "image": img(0),
            "docId": 14465,
            "question_types": ["form"],
            "data_split": "val",
        },
        {
            "questionId": 57350,
            "question": "Who signed?",
            "answers": ["J. Smith"],
            "image": img(1),
            "docId": 14466,
            "question_types": None,
            "data_split": "val",
        },
    ]
    write_parquet(tmp_path / "DocVQA" / "validation-00000-of-00001.parquet", rows)
    write_parquet(tmp_path / "DocVQA" / "test-00000-of-00001.parquet", [{**rows[0], "answers": None}])
    items = load_docvqa(tmp_path / "DocVQA")  # split "val" finds validation-*.parquet
    assert [i.id for i in items] == ["57349", "57350"]
    assert items[0].answers == ["March 3", "3 March"] and items[0].meta["docId"] == 14465
    assert "question_types" not in items[1].meta and items[0].split == "val"
    test = load_docvqa(tmp_path / "DocVQA", split="test")
    assert test[0].answers == [] and test[0].split == "test"


def test_docvqa_spdocvqa_layout_and_images_dir(tmp_path: Path) -> None:
    root = tmp_path / "spdocvqa"
    (root / "spdocvqa_qas").mkdir(parents=True)
    (root / "spdocvqa_images").mkdir()
    (root / "spdocvqa_images" / "xnbl0037_1.png").write_bytes(png())
    data = {
        "dataset_name": "SP-DocVQA",
        "data": [
            {
                "questionId": 1,
                "question": "Q?",
                "question_types": ["form"],
                "image": "documents/xnbl0037_1.png",
                "answers": ["A"],
            }
        ],
    }
    (root / "spdocvqa_qas" / "val_v1.0_withQT.json").write_text(json.dumps(data))
    (item,) = load_docvqa(root)
    assert item.image_path == root / "spdocvqa_images" / "xnbl0037_1.png" and item.image_path.is_file()
    assert item.meta["question_types"] == ["form"]
    (item2,) = load_docvqa(root / "spdocvqa_qas" / "val_v1.0_withQT.json")
    assert item2.image_path == item.image_path
    # images elsewhere: --images-dir
    other = tmp_path / "imgs"
    other.mkdir()
    (other / "xnbl0037_1.png").write_bytes(png())
    (item3,) = load_docvqa(root, images_dir=other)
    assert item3.image_path == other / "xnbl0037_1.png"
    with pytest.raises(InvalidInputError, match="image"):
        load_docvqa(root, images_dir=tmp_path / "nowhere")


def test_docvqa_missing_names_every_layout(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as exc:
        load_docvqa(tmp_path)
    msg = str(exc.value)
    assert "val_v1.0.json" in msg and "spdocvqa_qas/val_v1.0_withQT.json" in msg and "parquet" in msg


# ----------------------------------------------------------------------------------------------- AI2D
def test_ai2d_parquet_export(tmp_path: Path) -> None:
    rows = [
        {
            "question": "Which eats grass?",
            "options": ["sun", "grass", "rabbit", "fox"],
            "answer": "2",
            "image": img(0),
        },
        {"question": "Source of energy?", "options": ["sun", "fox"], "answer": "0", "image": img(1)},
    ]
    write_parquet(tmp_path / "ai2d" / "data" / "test-00000-of-00001.parquet", rows)
    items = load_benchmark("ai2d", tmp_path / "ai2d")
    assert [i.answers for i in items] == [["C"], ["A"]] and items[0].options == rows[0]["options"]
    assert [i.id for i in items] == ["ai2d-0", "ai2d-1"] and all(i.image_path.is_file() for i in items)
    with pytest.raises(InvalidInputError, match="lmms-lab/ai2d"):
        load_ai2d(tmp_path / "missing")


# ----------------------------------------------------------------------------------------------- OCRBench
def test_ocrbench_parquet_export(tmp_path: Path) -> None:
    rows = [
        {
            "dataset": "IIIT5K",
            "question": "what is written in the image?",
            "question_type": "Regular Text Recognition",
            "answer": ["CENTRAL"],
            "image": img(0),
        },
        {
            "dataset": "HME100k",
            "question": "Please write out the expression of the formula in the image using LaTeX format.",
            "question_type": "Handwritten Mathematical Expression Recognition",
            "answer": ["x ^ { 2 }"],
            "image": img(1),
        },
    ]
    write_parquet(tmp_path / "OCRBench" / "data" / "test-00000-of-00001.parquet", rows)
    items = load_ocrbench(tmp_path / "OCRBench")
    assert [i.meta["category"] for i in items] == [r["question_type"] for r in rows]
    assert [i.meta["dataset_name"] for i in items] == ["IIIT5K", "HME100k"]
    assert items[1].question.startswith("Please write out") and items[1].answers == ["x ^ { 2 }"]


def test_ocrbench_json_files_layout_and_images_dir(tmp_path: Path) -> None:
    root = tmp_path / "OCRBench"
    (root / "json_files").mkdir(parents=True)
    (root / "OCRBench_Images" / "IIIT5K").mkdir(parents=True)
    (root / "OCRBench_Images" / "IIIT5K" / "a.png").write_bytes(png())
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
    (item,) = load_ocrbench(root)
    assert item.image_path == root / "OCRBench_Images" / "IIIT5K" / "a.png"
    (item,) = load_ocrbench(root / "json_files" / "OCRBench.json")
    assert item.image_path.is_file()
    elsewhere = tmp_path / "imgs" / "IIIT5K"
    elsewhere.mkdir(parents=True)
    (elsewhere / "a.png").write_bytes(png())
    (item,) = load_ocrbench(root, images_dir=tmp_path / "imgs")
    assert item.image_path == elsewhere / "a.png"
    with pytest.raises(InvalidInputError, match=r"json_files/OCRBench\.json.*echo840/OCRBench"):
        load_ocrbench(tmp_path / "nothing")


# ----------------------------------------------------------------------------------------------- MathVista
MV_ROWS = [
    {
        "pid": "1",
        "question": "What fraction is blue?",
        "decoded_image": img(0),
        "image": "images/1.jpg",
        "choices": ["3/11", "8/11", "6/11", "3/5"],
        "unit": None,
        "precision": None,
        "answer": "8/11",
        "question_type": "multi_choice",
        "answer_type": "text",
        "query": "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, "
        "at the end.\nQuestion: What fraction is blue?\nChoices:\n(A) 3/11\n(B) 8/11\n(C) 6/11\n(D) 3/5",
    },
    {
        "pid": "2",
        "question": "How much money?",
        "decoded_image": img(1),
        "image": "images/2.jpg",
        "choices": None,
        "unit": "$",
        "precision": 2.0,
        "answer": "1.45",
        "question_type": "free_form",
        "answer_type": "float",
        "query": "Hint: ... two decimal places ...\nQuestion: How much money? (Unit: $)",
    },
]


def test_mathvista_parquet_testmini(tmp_path: Path) -> None:
    write_parquet(tmp_path / "MathVista" / "data" / "testmini-00000-of-00001.parquet", MV_ROWS)
    items = load_mathvista(tmp_path / "MathVista")
    assert [i.id for i in items] == ["1", "2"] and items[0].question == MV_ROWS[0]["query"]
    assert items[0].options == MV_ROWS[0]["choices"] and items[1].options is None
    assert items[1].meta["precision"] == 2 and items[1].meta["answer_type"] == "float"
    assert items[0].split == "testmini" and all(i.image_path.is_file() for i in items)


def test_mathvista_github_json(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1.jpg").write_bytes(png())
    data = {"1": {k: v for k, v in MV_ROWS[0].items() if k != "decoded_image"}}
    (tmp_path / "testmini.json").write_text(json.dumps(data))
    (item,) = load_mathvista(tmp_path)
    assert item.image_path == tmp_path / "images" / "1.jpg" and item.answers == ["8/11"]


def test_layout_texts_name_every_format() -> None:
    assert (
        "lmms-lab/ChartQA" in DATASET_LAYOUTS["chartqa"] and "test_human.json" in DATASET_LAYOUTS["chartqa"]
    )
    assert "AI4Math/MathVista" in DATASET_LAYOUTS["mathvista"]


def test_hash_changes_with_content_and_ids_must_be_unique(tmp_path: Path) -> None:
    f = write_parquet(
        tmp_path / "c" / "test-0.parquet",
        [{"type": "human_test", "question": "q", "answer": "1", "image": img(0)}],
    )
    h1 = load_chartqa(f)[0].source_sha256
    write_parquet(f, [{"type": "human_test", "question": "q", "answer": "2", "image": img(0)}])
    assert load_chartqa(f)[0].source_sha256 != h1
    dup = [{"questionId": 1, "question": "q", "answers": ["a"], "image": img(0)}] * 2
    write_parquet(tmp_path / "dv" / "validation-0.parquet", dup)
    with pytest.raises(InvalidInputError, match="occurs twice"):
        load_docvqa(tmp_path / "dv")


def test_unreadable_parquet_and_missing_mathvista_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "test-0.parquet"
    bad.write_bytes(b"not a parquet file")
    with pytest.raises(InvalidInputError, match=r"cannot read .*test-0\.parquet as parquet"):
        load_ocrbench(bad)
    with pytest.raises(InvalidInputError, match=r"testmini\.json does not exist.*AI4Math/MathVista"):
        load_mathvista(tmp_path / "nothing")
