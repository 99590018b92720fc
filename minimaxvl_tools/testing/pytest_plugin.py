"""Pytest fixtures: ``vllm_server`` (fresh per test), ``vllm_server_session`` (one per session, reset) and
``vllm_reader_server`` (the double in Tesseract reader mode: a legibility proxy, not a model).

Registered through the ``pytest11`` entry point, so installing minimaxvl-tools makes them available to any
test suite; the test double's module is imported only when a test asks for one of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import LocalVLLMServer


@pytest.fixture
def vllm_server() -> Iterator[LocalVLLMServer]:
    """A started :class:`LocalVLLMServer` for one test (short fault stall so timeouts stay fast)."""
    from .server import LocalVLLMServer

    with LocalVLLMServer(fault_delay=3.0) as server:
        yield server


@pytest.fixture(scope="session")
def vllm_server_session() -> Iterator[LocalVLLMServer]:
    """One :class:`LocalVLLMServer` shared by the session; reset it (``.reset()``) before relying on state."""
    from .server import LocalVLLMServer

    with LocalVLLMServer(fault_delay=3.0) as server:
        yield server


@pytest.fixture
def vllm_reader_server() -> Iterator[LocalVLLMServer]:
    """A :class:`LocalVLLMServer` with ``reader="tesseract"``: image requests are answered with Tesseract's
    reading of each image resized into its canvas. Skips the test when Tesseract is not installed."""
    from ..local_ocr import LocalOCREngine

    if not LocalOCREngine.available():
        pytest.skip("reader mode needs the tesseract binary (apt-get install tesseract-ocr)")
    from .server import LocalVLLMServer

    with LocalVLLMServer(fault_delay=3.0, reader="tesseract") as server:
        yield server
