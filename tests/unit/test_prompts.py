"""Prompts: the words we send follow MiniMax-VL-01's format and each task's contract."""

from __future__ import annotations

import pytest

from minimaxvl_tools.profile import MINIMAX_SYSTEM_PROMPT
from minimaxvl_tools.prompts import chart, check_no_placeholder, diagram, docvqa, ocr, with_identity
from minimaxvl_tools.results import parse_choice


def _all_prompts() -> list[str]:
    return [
        chart.system_prompt(),
        chart.user_prompt(None),
        chart.user_prompt("Which bar is highest?", pages=2),
        docvqa.system_prompt(),
        docvqa.user_prompt("What is the total?", [1, 2], short_answer=True),
        docvqa.user_prompt("What is the total?", [3]),
        docvqa.plain_short_prompt("What is the date?"),
        docvqa.page_label(2, 5),
        ocr.system_prompt(),
        ocr.system_prompt(plain=True),
        ocr.page_prompt(),
        ocr.crop_prompt(2, 3, row=2, column=1),
        diagram.system_prompt(),
        diagram.user_prompt("Which eats grass?", ["fox", "rabbit"]),
        diagram.user_prompt("How many legs?"),
    ]


@pytest.mark.parametrize("text", _all_prompts())
def test_no_image_placeholder_and_not_empty(text: str) -> None:
    assert text.strip()
    assert "<image>" not in text
    assert check_no_placeholder(text) == text


def test_placeholder_is_refused() -> None:
    with pytest.raises(ValueError, match="image"):
        check_no_placeholder("look at <image> please")


def test_system_prompts_carry_minimax_identity() -> None:
    for s in (chart.system_prompt(), docvqa.system_prompt(), ocr.system_prompt(), diagram.system_prompt()):
        assert s.startswith(MINIMAX_SYSTEM_PROMPT)
    assert with_identity("  task ") == f"{MINIMAX_SYSTEM_PROMPT}\n\ntask"


def test_chart_prompt_question_and_json() -> None:
    with_q = chart.user_prompt("Which year peaked?")
    assert "Which year peaked?" in with_q and '"answer"' in with_q and "JSON" in with_q
    assert 'Set "answer" to null' in chart.user_prompt(None)


def test_docvqa_short_answer_mode_asks_for_exact_words() -> None:
    short = docvqa.user_prompt("Who signed?", [4], short_answer=True)
    assert "exact words" in short and "not a sentence" in short
    assert "page(s) 4" in short
    assert "exact words" in docvqa.plain_short_prompt("Who signed?")
    assert docvqa.page_label(3) == "Page 3:"


def test_ocr_prompts() -> None:
    md = ocr.system_prompt()
    assert "Markdown" in md and "table" in md.lower() and "reading order" in md
    assert "plain text" in ocr.system_prompt(plain=True) and "plain text" in ocr.page_prompt(plain=True)
    crop = ocr.crop_prompt(2, 6, row=1, column=2)
    assert "crop 2 of 6" in crop and "row 1, column 2" in crop
    assert "Do not complete words" in crop
    assert ocr.BLANK_MARKER in ocr.page_prompt()


def test_diagram_prompt_options_and_final_line() -> None:
    text = diagram.user_prompt("Which one?", ["fox", "rabbit", "grass"])
    assert "A. fox\nB. rabbit\nC. grass" in text
    assert "Answer: X" in text and "A, B, C" in text
    assert "step by step" in text
    # a reply that follows the requested format parses
    assert parse_choice("...\nAnswer: C", ["fox", "rabbit", "grass"])[2] == "C"
    assert diagram.option_letters(3) == ["A", "B", "C"]
    with pytest.raises(ValueError):
        diagram.option_letters(27)
