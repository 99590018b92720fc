"""The one fallback chain: what may stand in for a page the model failed on (its text layer, Tesseract).

Every caller (OCRTool, the loader, ingest, eval) applies :class:`Fallbacks` to a failed
:class:`~minimaxvl_tools.results.OCRPage`: the first allowed fallback that yields text replaces the page's
text, flagged ``status="fallback"`` with the model's reason kept in ``error``; a fallback that breaks is a
warning and the next one is tried, so a broken fallback never turns one page's failure into the job's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ..errors import InvalidInputError
from ..local_ocr import LocalOCREngine
from ..pdf import text_layer_is_good
from ..results import OCRPage

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from ..local_ocr import LocalOCREngine
    from .source import PageImage

FallbackEngine = Literal["text-layer", "local"]
FALLBACK_ENGINES: tuple[FallbackEngine, ...] = ("text-layer", "local")


@dataclass
class Fallbacks:
    """The fallbacks allowed, in order, and what they need.

    ``min_text_chars``: the least text a text layer must hold to stand in for a page (and pass
    :func:`~minimaxvl_tools.pdf.text_layer_is_good`); ``local_engine``: the Tesseract engine (built on
    first use).
    """

    order: tuple[FallbackEngine, ...] = ()
    min_text_chars: int = 20
    local_engine: LocalOCREngine | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        bad = [k for k in self.order if k not in FALLBACK_ENGINES]
        if bad:
            raise InvalidInputError(f"fallback {bad[0]!r} is not one of {', '.join(FALLBACK_ENGINES)}")
        self.order = tuple(self.order)

    def engine(self) -> LocalOCREngine:
        """The local engine (built on first use)."""
        if self.local_engine is None:
            self.local_engine = LocalOCREngine()
        return self.local_engine

    def local_available(self) -> bool:
        """True when the local engine can run here."""
        try:
            return bool(self.engine().available())
        except Exception:  # an engine that cannot even say is not available
            return False

    def apply(
        self, page: PageImage, ocr: OCRPage, pixels: Callable[[], Image.Image | None] | None = None
    ) -> OCRPage:
        """``ocr`` unchanged unless it failed; then the first allowed fallback's text, flagged ``fallback``.

        ``pixels`` gives the page's image turned as the model saw it (called only when the local engine
        runs); the text layer comes from ``page``.
        """
        if ocr.status != "failed" or not self.order:
            return ocr
        warnings = list(ocr.warnings)
        for kind in self.order:
            try:
                if kind == "text-layer":
                    layer = page.text_layer or ""
                    if not text_layer_is_good(layer, self.min_text_chars):
                        continue
                    text, engine = layer.strip(), "text-layer"
                else:
                    if not self.local_available():  # before rendering the page again for it
                        continue
                    image = pixels() if pixels is not None else page.image
                    if image is None:
                        continue
                    res = self.engine().ocr(image)
                    if not res.text.strip():
                        continue
                    text, engine = res.text.strip(), res.engine
            except Exception as e:  # the fallback itself failed: try the next one
                warnings.append(f"fallback {kind} failed: {type(e).__name__}: {e}")
                continue
            return ocr.model_copy(
                update={
                    "status": "fallback",
                    "engine": engine,
                    "markdown": text,
                    "text": text,
                    "blocks": [],
                    "warnings": [*warnings, f"model path failed; text from the {kind} fallback"],
                }
            )
        return ocr.model_copy(update={"warnings": warnings}) if warnings != ocr.warnings else ocr


def fallback_kind(ocr: OCRPage) -> FallbackEngine | None:
    """Which fallback produced a ``fallback`` page's text (None for any other status)."""
    if ocr.status != "fallback":
        return None
    return "text-layer" if ocr.engine == "text-layer" else "local"


__all__ = ["FALLBACK_ENGINES", "FallbackEngine", "Fallbacks", "fallback_kind"]
