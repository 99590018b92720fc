"""The vLLM and transformers versions that can serve MiniMax-VL-01, and version-string parsing."""

from __future__ import annotations

import re

VLLM_FIRST = (0, 9, 0)
"""First vLLM release with ``MiniMaxVL01ForConditionalGeneration``."""
VLLM_V1_FIXED = (0, 10, 2)
"""Before this, the model needs ``VLLM_USE_V1=0`` and was marked broken in vLLM's own tests (approximate)."""
VLLM_REMOVED = (0, 24, 0)
"""vLLM 0.24.0 removed the model class; later versions refuse the architecture by name."""
VLLM_STRUCTURED_OUTPUTS_FLAG = (0, 11, 0)
"""``--structured-outputs-config`` exists from vLLM 0.11.0 (older: ``--guided-decoding-backend``)."""
TRANSFORMERS_BROKEN = (5, 17)
"""transformers >= 5.17 removed names vLLM 0.23.0's LLaVA-family code imports (seen on vLLM 0.23.0)."""
VLLM_REQUIREMENT = "vllm>=0.10.2,<0.24"
TRANSFORMERS_REQUIREMENT = "transformers<5.17"
REMOVED_REASON = (
    "MiniMaxVL01ForConditionalGeneration was removed in vLLM 0.24.0; install 'vllm>=0.10.2,<0.24'"
)


def parse_version(version: str) -> tuple[tuple[int, int, int], bool]:
    """(major, minor, patch) and whether it is a pre-release or dev build.

    ``0.23.1.dev5+g1`` -> ((0, 23, 1), True); ``0.23.0+cu128`` -> ((0, 23, 0), False).
    """
    m = re.match(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)", version)
    if not m:
        raise ValueError(f"not a version: {version!r}")
    rest = m.group(4).split("+", 1)[0].lower()
    pre = bool(re.search(r"(dev|rc|a\d|b\d|alpha|beta)", rest))
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)), pre


def dotted(t: tuple[int, ...]) -> str:
    """A version tuple as text for messages: ``(0, 10, 2)`` -> ``0.10.2``."""
    return ".".join(map(str, t))
