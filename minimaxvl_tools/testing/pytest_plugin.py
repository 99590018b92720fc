"""Pytest fixtures: ``vllm_server`` (fresh per test) and ``vllm_server_session`` (one per session, reset)."""

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
