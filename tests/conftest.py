"""Shared test configuration: the LocalVLLMServer fixtures (``vllm_server``, ``vllm_server_session``)."""

pytest_plugins = ["minimaxvl_tools.testing.pytest_plugin"]


def pytest_configure(config: object) -> None:
    """``workers=None`` (the default) runs page work in-process in this suite: starting worker processes
    costs ~0.3 s a job on CI's 2 cores; the worker tests pass ``workers`` explicitly."""
    from minimaxvl_tools import page_workers

    page_workers.auto_min_pages = 10**9
