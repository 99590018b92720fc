"""Diagram reasoning: 0-shot chain of thought over science diagrams, flowcharts and multiple choice."""

from __future__ import annotations

from collections.abc import Sequence

TASK = """You reason about diagrams: science figures, food webs, life cycles, circuits, flowcharts, maps,
geometry and labelled illustrations. Look at every label, arrow and part of the diagram before answering."""


def option_letters(n: int) -> list[str]:
    """Letters A, B, C, ... for ``n`` options."""
    if not 0 <= n <= 26:
        raise ValueError(f"between 0 and 26 options are supported, got {n}")
    return [chr(ord("A") + i) for i in range(n)]


def format_options(options: Sequence[str]) -> str:
    """Options as ``A. text`` lines."""
    return "\n".join(
        f"{letter}. {opt.strip()}" for letter, opt in zip(option_letters(len(options)), options, strict=True)
    )


def system_prompt() -> str:
    """System text for diagram reasoning."""
    from . import with_identity

    return with_identity(TASK)


def user_prompt(question: str, options: Sequence[str] | None = None) -> str:
    """User text after the diagram: think step by step, then a final ``Answer: X`` line the parser reads."""
    text = f"Question: {question.strip()}\n"
    if options:
        letters = option_letters(len(options))
        text += (
            f"Options:\n{format_options(options)}\n\n"
            "Think step by step about what the diagram shows, then choose one option. "
            f"End with a final line of exactly the form 'Answer: X' where X is one of {', '.join(letters)}."
        )
    else:
        text += (
            "\nThink step by step about what the diagram shows. "
            "End with a final line of the form 'Answer: <short answer>' (a word, number or short phrase)."
        )
    return text


__all__ = ["TASK", "format_options", "option_letters", "system_prompt", "user_prompt"]
