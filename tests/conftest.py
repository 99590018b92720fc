"""Shared test configuration: the LocalVLLMServer fixtures (``vllm_server``, ``vllm_server_session``)."""

pytest_plugins = ["minimaxvl_tools.testing.pytest_plugin"]
