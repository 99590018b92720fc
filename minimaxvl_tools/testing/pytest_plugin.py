"""Pytest fixtures: ``vllm_server`` (fresh per test), ``vllm_server_session`` (one per session, reset) and
``vllm_reader_server`` (the double in Tesseract reader mode: a legibility proxy, not a model)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import LocalVLLMServer


@pytest.fixture
def vllm_server() -> Iterator[LocalVLLMServer]:
    """A started :class:`LocalVLLMServer` for one test (short fault stall so timeouts stay fast)."""
    with LocalVLLMServer(fault_delay=3.0) as server:
        yield server


@pytest.fixture(scope="session")
def vllm_server_session() -> Iterator[LocalVLLMServer]:
    """One :class:`LocalVLLMServer` shared by the session; reset it (``.reset()``) before relying on state."""
    with LocalVLLMServer(fault_delay=3.0) as server:
        yield server


@pytest.fixture
def vllm_reader_server() -> Iterator[LocalVLLMServer]:
    """A :class:`LocalVLLMServer` with ``reader="tesseract"``: image requests are answered with Tesseract's
    reading of each image resized into its canvas. Skips the test when Tesseract is not installed."""
    from ..local_ocr import LocalOCREngine

    if not LocalOCREngine.available():
        pytest.skip("reader mode needs the tesseract binary (apt-get install tesseract-ocr)")
    with LocalVLLMServer(fault_delay=3.0, reader="tesseract") as server:
        yield server
