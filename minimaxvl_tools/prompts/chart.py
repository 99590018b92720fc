"""Chart reading: extract a chart's data as JSON (the ChartData schema), optionally answering a question."""

from __future__ import annotations

TASK = """You read charts and plots precisely: you extract their data as JSON, never inventing values.
Rules:
- If values are printed on the chart (data labels), copy them exactly; otherwise estimate from the axis scale
  and say in "notes" that values are estimated.
- Numbers are plain JSON numbers: no units, no thousands separators, no percent signs
  (put units in the axis "unit").
- One series per legend entry, in legend order; a chart without a legend has one series named after
  the y axis.
- Points keep the order of the x axis (left to right, or top to bottom for horizontal bars); for a pie chart,
  x is the slice label and y its value.
- Use null for a value the chart does not show; do not interpolate."""

SCHEMA_HINT = (
    '{"chart_type": "bar|line|pie|scatter|area|other", "title": str|null, '
    '"x_axis": {"label": str|null, "unit": str|null}, "y_axis": {"label": str|null, "unit": str|null}, '
    '"series": [{"name": str, "points": [{"x": str|number, "y": number|null}]}], "legend": [str], '
    '"answer": str|null, "notes": str|null}'
)


def system_prompt() -> str:
    """System text for chart extraction."""
    from . import with_identity

    return with_identity(TASK)


def user_prompt(question: str | None = None, *, pages: int = 1) -> str:
    """User text that follows the chart image(s); with a question, the answer goes in ``answer``."""
    where = "the chart in the image" if pages <= 1 else f"the chart(s) in these {pages} images"
    text = f"Extract the data of {where} as one JSON object of this shape:\n{SCHEMA_HINT}\n"
    if question and question.strip():
        text += (
            f'\nAlso answer this question in "answer", as briefly as possible (a number or a few words, '
            f"computed from the extracted values when needed):\n{question.strip()}\n"
        )
    else:
        text += '\nSet "answer" to null.\n'
    return text + "Reply with the JSON object only."


__all__ = ["SCHEMA_HINT", "TASK", "system_prompt", "user_prompt"]
