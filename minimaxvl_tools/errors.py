"""One exception hierarchy for minimaxvl-tools.

Every error the package raises on purpose is a :class:`MiniMaxVLError`; each message names the input
that caused it and what to do about it, so an agent or a person can act on the text alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#@\s'\"]*@)")


def redact_url(text: str) -> str:
    """``text`` with the userinfo of every URL in it (``http://user:password@host``) replaced by ``***``.

    Why: credentials in a URL must never reach an error given to an agent, stderr or a log line.
    """
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text) if "@" in text else text


class _RedactFilter(logging.Filter):
    """Logging filter that redacts URL userinfo from the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_url(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_REDACT = _RedactFilter()
for _name in (
    "minimaxvl_tools",
    "minimaxvl_tools.client",
    "minimaxvl_tools.backpressure",
    "minimaxvl_tools.loaders",
    "minimaxvl_tools.cli",
):
    logging.getLogger(_name).addFilter(_REDACT)  # the package's loggers: no log line shows userinfo


class MiniMaxVLError(Exception):
    """Base class of every error raised on purpose by minimaxvl-tools; URL userinfo in the message is
    redacted (:func:`redact_url`), so no error shows credentials."""

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(redact_url(str(message)), *args)


# ---------------------------------------------------------------- inputs
class InvalidInputError(MiniMaxVLError, ValueError):
    """An argument or input cannot be used as given (wrong type, empty, out of range)."""


class UnsupportedImageError(InvalidInputError):
    """Bytes that are not a readable image, a truncated file, or a decompression bomb."""


class ImageTooLargeError(UnsupportedImageError):
    """An image over the pixel or byte cap (decompression-bomb guard)."""


class AspectRatioError(InvalidInputError):
    """An image more elongated than any canvas holds (beyond 6:1) and splitting was not allowed."""


class PDFError(InvalidInputError):
    """A PDF that cannot be opened or rendered (corrupt, truncated, no pages)."""


class PDFPasswordError(PDFError):
    """An encrypted PDF opened without (or with a wrong) password."""


class AccessDeniedError(InvalidInputError, PermissionError):
    """A path outside the allowed roots, a disallowed URL scheme/host, or URL loading disabled."""


class FetchError(InvalidInputError):
    """An allowed URL could not be fetched (timeout, HTTP error, over the size cap)."""


# ---------------------------------------------------------------- planning / budget
class ContextOverflowError(MiniMaxVLError):
    """A request that cannot fit the served context, refused before it is sent."""

    def __init__(
        self,
        message: str,
        *,
        image_tokens: int = 0,
        text_tokens: int = 0,
        max_tokens: int = 0,
        max_model_len: int = 0,
        images: int = 0,
    ) -> None:
        super().__init__(message)
        self.image_tokens = image_tokens
        self.text_tokens = text_tokens
        self.max_tokens = max_tokens
        self.max_model_len = max_model_len
        self.images = images


class TooManyImagesError(ContextOverflowError):
    """More images in one request than the server accepts (``--limit-mm-per-prompt``)."""


# ---------------------------------------------------------------- server / transport
class ServerError(MiniMaxVLError):
    """The server answered with an error; carries the HTTP status and the server's message."""

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class BadRequestError(ServerError):
    """HTTP 400 from the server that is not a known media or budget error."""


class MediaError(ServerError):
    """The server could not load an image of the request (vLLM answers some of these with HTTP 500)."""


class RateLimitError(ServerError):
    """HTTP 429 after all retries."""


class ServerUnavailableError(ServerError):
    """5xx, connection failures or timeouts after all retries; the endpoint may be down."""


class ModelMismatchError(ServerError):
    """The endpoint serves a different model than the one configured."""


# ---------------------------------------------------------------- outputs
class OutputValidationError(MiniMaxVLError):
    """Model output that failed validation even after the repair attempt; keeps the raw text."""

    def __init__(self, message: str, *, raw: str = "", errors: Any = None) -> None:
        super().__init__(message)
        self.raw = raw
        self.errors = errors


class TruncatedOutputError(OutputValidationError):
    """Output cut off by ``max_tokens`` (finish_reason ``length``) after every retry; ``budgets`` lists
    the max_tokens of each attempt that was cut (empty when the raiser does not say)."""

    def __init__(
        self, message: str, *, raw: str = "", errors: Any = None, budgets: Sequence[int] = ()
    ) -> None:
        super().__init__(message, raw=raw, errors=errors)
        self.budgets: tuple[int, ...] = tuple(budgets)


class RepetitionError(OutputValidationError):
    """Output that loops (n-gram repetition) after every retry."""


class EmptyOutputError(OutputValidationError):
    """An empty reply for a page the client judged non-blank, after every retry."""


class JobAbortedError(MiniMaxVLError):
    """A batch stopped because its failure rate passed the caller's threshold."""


class IndexStoreError(InvalidInputError):
    """A search-index store that cannot be used: missing, corrupt, foreign, or built with other settings."""


__all__ = [
    "AccessDeniedError",
    "AspectRatioError",
    "BadRequestError",
    "ContextOverflowError",
    "EmptyOutputError",
    "FetchError",
    "ImageTooLargeError",
    "IndexStoreError",
    "InvalidInputError",
    "JobAbortedError",
    "MediaError",
    "MiniMaxVLError",
    "ModelMismatchError",
    "OutputValidationError",
    "PDFError",
    "PDFPasswordError",
    "RateLimitError",
    "RepetitionError",
    "ServerError",
    "ServerUnavailableError",
    "TooManyImagesError",
    "TruncatedOutputError",
    "UnsupportedImageError",
    "redact_url",
]
