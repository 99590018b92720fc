"""Results: chart tables, OCR rendering, answer parsing."""

from __future__ import annotations

import csv
import io

import pytest
from pydantic import ValidationError

from minimaxvl_tools.results import (
    Axis,
    ChartData,
    CropInfo,
    DataPoint,
    DiagramAnswer,
    DocumentAnswer,
    OCRPage,
    OCRResult,
    Series,
    markdown_to_text,
    parse_choice,
)


def _chart() -> ChartData:
    return ChartData(
        chart_type="line",
        title="Revenue | by quarter",
        x_axis=Axis(label="Quarter"),
        y_axis=Axis(label="Revenue", unit="USD m"),
        series=[
            Series(name="2023", points=[DataPoint(x="Q1", y=1.5), DataPoint(x="Q2", y=2), DataPoint(x="Q3")]),
            Series(name="2024", points=[DataPoint(x="Q2", y=3.25), DataPoint(x="Q4", y=1234567)]),
        ],
    )


def test_chart_csv_one_row_per_x_one_column_per_series() -> None:
    rows = list(csv.reader(io.StringIO(_chart().to_csv())))
    assert rows == [
        ["Quarter", "2023", "2024"],
        ["Q1", "1.5", ""],
        ["Q2", "2", "3.25"],
        ["Q3", "", ""],
        ["Q4", "", "1234567"],
    ]


def test_chart_csv_numeric_x_and_quoting() -> None:
    data = ChartData(
        series=[Series(name='a, "b"', points=[DataPoint(x=2020.0, y=0.1), DataPoint(x=2021.5, y=-2)])]
    )
    rows = list(csv.reader(io.StringIO(data.to_csv())))
    assert rows == [["x", 'a, "b"'], ["2020", "0.1"], ["2021.5", "-2"]]


def test_chart_markdown_table() -> None:
    md = _chart().to_markdown()
    lines = md.splitlines()
    assert lines[0] == "**Revenue \\| by quarter**"
    assert "| Quarter | 2023 | 2024 |" in lines
    assert "| Q2 | 2 | 3.25 |" in lines
    assert md.rstrip().endswith("y: Revenue (USD m)")
    # every table row has the same number of cells
    table = [ln for ln in lines if ln.startswith("|")]
    assert len({ln.count(" | ") for ln in table if "---" not in ln}) == 1


def test_chart_without_series() -> None:
    assert "no data series" in ChartData().to_markdown()
    assert ChartData().to_csv() == "x\n"


def test_chart_validates_from_llm_json() -> None:
    raw = '{"chart_type": "bar", "series": [{"name": "s", "points": '
    raw += '[{"x": "A", "y": null}, {"x": 3, "y": 4}]}]}'
    data = ChartData.model_validate_json(raw)
    assert data.series[0].points[0].y is None and data.series[0].points[1].x == 3


def test_document_answer_bounds() -> None:
    assert DocumentAnswer(answer="x").found is True
    with pytest.raises(ValidationError):
        DocumentAnswer(answer="x", confidence=1.5)


def test_ocr_result_rendering() -> None:
    res = OCRResult(
        source="doc.pdf",
        pages=[
            OCRPage(page=1, markdown="# A\n", text="A", image_tokens=10, requests=1),
            OCRPage(page=2, status="failed", error="boom", requests=1),
            OCRPage(page=3, markdown="c", text="c", crops=[CropInfo(box=(0, 0, 5, 5), tokens=7)], requests=3),
        ],
    )
    md = res.to_markdown()
    assert md.startswith("<!-- page 1 -->\n# A") and "<!-- page 3 -->\nc" in md
    assert res.to_markdown(page_markers=False) == "# A\n\n\n\nc"
    assert res.to_text() == "A\n\f\n\fc" and res.text == res.to_text()
    assert res.requests == 5 and res.image_tokens == 10 and res.failed_pages == [2]
    single = OCRResult(source="x", pages=[OCRPage(page=1, markdown="hello")])
    assert single.to_markdown() == "hello"


def test_ocr_page_rejects_bad_status() -> None:
    with pytest.raises(ValidationError):
        OCRPage(page=1, status="weird")  # type: ignore[arg-type]


def test_markdown_to_text() -> None:
    md = "# Title\n\nSome **bold** and *it* and `code` [link](http://x).\n\n"
    md += "| a | b |\n|---|:-:|\n| 1 | 2 |\n- item"
    text = markdown_to_text(md)
    assert text.splitlines() == ["Title", "", "Some bold and it and code link.", "", "a\tb", "1\t2", "- item"]


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("The arrow goes from grass to rabbit.\nAnswer: B", "B"),
        ("reasoning\nAnswer: (C)", "C"),
        ("reasoning\n**Answer:** b.", "B"),
        ("reasoning\nFinal answer: D) Sun", "D"),
        ("reasoning\nThe answer is A.", "A"),
        ("reasoning\nAnswer: rabbit", "B"),  # the option's text
        ("Answer: A\nmore thinking\nAnswer: C", "C"),  # the last one wins
        ("reasoning \\boxed{D}", "D"),
        ("no final line but the last line says\nC", "C"),
    ],
)
def test_parse_choice_with_options(reply: str, letter: str) -> None:
    opts = ["grass", "rabbit", "fox", "sun"]
    _, answer, got = parse_choice(reply, opts)
    assert got == letter
    assert answer == opts[ord(letter) - ord("A")]


def test_parse_choice_unparseable_with_options() -> None:
    _, answer, letter = parse_choice("I cannot tell.", ["x", "y"])
    assert letter is None and answer == "I cannot tell"


def test_parse_choice_free_answer_and_reasoning() -> None:
    reasoning, answer, letter = parse_choice("Count the legs: 4 + 4.\nAnswer: 8 legs", None)
    assert reasoning == "Count the legs: 4 + 4." and answer == "8 legs" and letter is None
    assert parse_choice("step\nAnswer: B", None)[2] == "B"


def test_diagram_answer_from_text() -> None:
    ans = DiagramAnswer.from_text("Because plants make food.\nAnswer: A", ["producer", "consumer"])
    assert ans.option == "A" and ans.answer == "producer" and ans.reasoning == "Because plants make food."
