"""Shared test configuration. The LocalVLLMServer fixtures (``vllm_server``, ``vllm_server_session``) come
from the package's pytest plugin, registered by the ``pytest11`` entry point when it is installed; ``drive``
runs a test once through a sync API and once through its async twin (tests/drive.py)."""

from __future__ import annotations

import pytest

from tests.drive import Drive


def pytest_configure(config: object) -> None:
    """``workers=None`` (the default) runs page work in-process in this suite: starting worker processes
    costs ~0.3 s a job on CI's 2 cores; the worker tests pass ``workers`` explicitly."""
    from minimaxvl_tools import page_workers

    page_workers.auto_min_pages = 10**9


@pytest.fixture(params=["sync", "async"])
def drive(request: pytest.FixtureRequest) -> Drive:
    """The side a test runs on: ``sync`` (``lazy_load``, ``run``) or ``async`` (``alazy_load``, ``arun``)."""
    return Drive(request.param)
