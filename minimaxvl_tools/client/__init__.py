"""The client package: value types, messages, budget, error mapping, endpoint pool, request steps and
:class:`MiniMaxVLClient`, the thin sync/async driver over them."""

from ..backpressure import AdaptiveConcurrencyLimiter
from .budget import FALLBACK_MAX_MODEL_LEN
from .core import MiniMaxVLClient
from .limiter import ConcurrencyLimiter
from .types import ChatResult, HealthStatus, ImageInput, RequestPlan, Usage, estimate_text_tokens

__all__ = [
    "FALLBACK_MAX_MODEL_LEN",
    "AdaptiveConcurrencyLimiter",
    "ChatResult",
    "ConcurrencyLimiter",
    "HealthStatus",
    "ImageInput",
    "MiniMaxVLClient",
    "RequestPlan",
    "Usage",
    "estimate_text_tokens",
]
