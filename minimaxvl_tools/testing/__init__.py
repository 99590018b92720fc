"""Test helpers: :class:`LocalVLLMServer`, a real-HTTP test double of vLLM serving MiniMax-VL-01."""

from .server import LocalVLLMServer, Reply

__all__ = ["LocalVLLMServer", "Reply"]
