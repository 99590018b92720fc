"""MiniMaxVLImageBlobParser: LangChain's image-parser plug point read by MiniMax-VL-01.

langchain-community's PDF loaders take ``images_parser=`` (a ``BaseImageBlobParser``) for the images
embedded in a PDF; this parser sends each one through the package's page pipeline
(:func:`~minimaxvl_tools.pages.ocr_page`), so an embedded scan is resized onto the model's anyres canvas
(or cut into canvas-sized crops when dense) exactly as the tools and the loader do::

    from langchain_community.document_loaders import PyPDFium2Loader
    loader = PyPDFium2Loader("scan.pdf", extract_images=True, images_parser=MiniMaxVLImageBlobParser())

An image the model fails on gives empty text and a logged warning, so one bad image never loses the
document's other pages.
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_community.document_loaders.parsers.images import BaseImageBlobParser
from PIL import Image

log = logging.getLogger(__name__)


class MiniMaxVLImageBlobParser(BaseImageBlobParser):
    """Transcribe images (embedded scans, figures) with MiniMax-VL-01 at the right canvas size.

    Args:
        client: a :class:`~minimaxvl_tools.MiniMaxVLClient` (default: built from ``MINIMAXVL_*``).
        plain: plain text instead of markdown.
        min_side: images with a side shorter than this many pixels (icons, rules) are skipped.
    """

    def __init__(self, *, client: Any | None = None, plain: bool = False, min_side: int = 32) -> None:
        super().__init__()
        self._client = client
        self.plain = plain
        self.min_side = min_side
        self.last_status: str = ""

    @property
    def client(self) -> Any:
        """The MiniMaxVLClient used (built from the environment on first use when not given)."""
        if self._client is None:
            from .client import MiniMaxVLClient

            self._client = MiniMaxVLClient()
        return self._client

    def _analyze_image(self, img: Image.Image) -> str:
        from .pages import PageImage, ocr_page

        if min(img.size) < self.min_side:
            self.last_status = "skipped"
            return ""
        page = PageImage(number=1, page_count=1, image=img.convert("RGB"), source="embedded image")
        res = ocr_page(self.client, page, plain=self.plain)
        self.last_status = res.status
        if res.status == "failed":
            log.warning("embedded image %dx%d not read: %s", img.width, img.height, res.error)
            return ""
        return res.text if self.plain else res.markdown


__all__ = ["MiniMaxVLImageBlobParser"]
