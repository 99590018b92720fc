"""Pytest fixtures: ``vllm_server`` (fresh per test) and ``vllm_server_session`` (one per session, reset).

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
