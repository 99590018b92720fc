"""Shared test configuration. The LocalVLLMServer fixtures (``vllm_server``, ``vllm_server_session``) come
from the package's pytest plugin, registered by the ``pytest11`` entry point when it is installed."""


def pytest_configure(config: object) -> None:
    """``workers=None`` (the default) runs page work in-process in this suite: starting worker processes
    costs ~0.3 s a job on CI's 2 cores; the worker tests pass ``workers`` explicitly."""
    from minimaxvl_tools import page_workers

    page_workers.auto_min_pages = 10**9
