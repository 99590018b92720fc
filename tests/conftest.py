"""Shared test configuration. The LocalVLLMServer fixtures (``vllm_server``, ``vllm_server_session``) come
from the package's pytest plugin, registered by the ``pytest11`` entry point when it is installed."""
