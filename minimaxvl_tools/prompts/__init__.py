"""The words we send, one module per task; nothing here builds messages, sizes images or parses replies.

MiniMax-VL-01's chat template renders each image part as ``<image>`` where the part stands, so prompt text
never contains that literal: callers put image parts and these texts side by side in a list of parts.
"""

from __future__ import annotations

from ..profile import MINIMAX_SYSTEM_PROMPT
from . import chart, diagram, docvqa, ocr

IMAGE_PLACEHOLDER = "<image>"


def with_identity(task: str) -> str:
    """MiniMax's own system line (used in the official examples) followed by the task's instructions."""
    return f"{MINIMAX_SYSTEM_PROMPT}\n\n{task.strip()}"


def check_no_placeholder(text: str) -> str:
    """Return ``text`` unchanged, or raise ValueError if it contains the literal image placeholder."""
    if IMAGE_PLACEHOLDER in text:
        raise ValueError("prompt text must not contain the literal '<image>': send an image part instead")
    return text


__all__ = ["IMAGE_PLACEHOLDER", "chart", "check_no_placeholder", "diagram", "docvqa", "ocr", "with_identity"]
