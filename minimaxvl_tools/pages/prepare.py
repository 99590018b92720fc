"""A page made ready to send: blank check, rotation, plan, crops encoded once, block geometry.

:func:`prepare` is the one place these checks run, for every caller and in whichever process runs it
(in-process, or a worker process of :mod:`minimaxvl_tools.page_workers`). Its :class:`PreparedPage` holds
the encoded images as data URLs built once, their token costs, the plan's boxes and what block boxes need;
:mod:`.send` turns it into an :class:`~minimaxvl_tools.results.OCRPage`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image

from ..errors import InvalidInputError, MiniMaxVLError
from ..images.encode import EncodedImage, is_grayscale
from ..images.quality import correct_rotation, detect_rotation, is_blank
from ..pdf import text_layer_is_good
from ..profile import DEFAULT_PROFILE, ModelProfile
from ..prompts import ocr as ocr_prompts
from .blocks import BlockGeometry, block_geometry
from .plan import MIN_X_HEIGHT, _crop_requests, encode_page, plan_page_image
from .source import Box, PageImage, TileMode

if TYPE_CHECKING:  # pragma: no cover
    from ..images.cutting import Region
    from ..local_ocr import LocalOCREngine


@dataclass(frozen=True)
class PrepareOptions:
    """Every option that shapes a page's preparation (picklable: it travels to worker processes).

    ``blank_uses_text_layer``: a page whose text layer holds real text is never blank (the tools' rule);
    False checks the pixels only (the loader's, which reads text layers on its own).
    """

    plain: bool = False
    tile: TileMode = "auto"
    min_x_height: float = MIN_X_HEIGHT
    skip_blank: bool = True
    blank_uses_text_layer: bool = True
    fix_rotation: bool = False
    profile: ModelProfile = DEFAULT_PROFILE
    quality: int = 90


@dataclass(frozen=True)
class PreparedCrop:
    """One image to send: the encoded image (data URL built once), its prompt, its box on the page.

    ``pixels`` keeps the crop's image when it was prepared in this process (a retry splits it); a page
    from a worker process carries none and its retries decode the JPEG instead.
    """

    image: EncodedImage
    prompt: str
    box: Box
    pixels: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PreparedPage:
    """A page ready to send: what :func:`~.send.read_prepared` needs and nothing heavier (no page pixels)."""

    number: int
    page_count: int
    source: str
    size: tuple[int, int]
    text_layer: str = ""
    rotation: int = 0  # the page's own rotation plus any correction applied
    blank: bool = False
    mode: Literal["single", "tiles", "none"] = "single"
    crops: tuple[PreparedCrop, ...] = ()
    warnings: tuple[str, ...] = ()
    regions: tuple[Region, ...] = ()  # the plan's whitespace cuts (merge and block boxes)
    geometry: BlockGeometry | None = None  # what the block boxes need of the pixels

    @property
    def boxes(self) -> tuple[Box, ...]:
        """The plan's boxes, one per crop (the whole page for a single image)."""
        return tuple(c.box for c in self.crops)

    @property
    def image_tokens(self) -> int:
        """Exact image tokens of everything this page sends on its first try."""
        return sum(c.image.tokens for c in self.crops)

    @property
    def nbytes(self) -> int:
        """Encoded image bytes this page carries."""
        return sum(c.image.nbytes for c in self.crops)

    def page_image(self) -> PageImage:
        """A :class:`PageImage` without pixels (number, text layer, rotation) for the callers."""
        return PageImage(
            self.number,
            self.page_count,
            None,
            self.text_layer,
            self.source,
            self.rotation,
            list(self.warnings),
        )


def is_blank_page(page: PageImage, use_text_layer: bool = True) -> tuple[bool, str]:
    """(blank, reason) for a rendered page: checked on the client, so no request is spent on it.

    With ``use_text_layer`` a page whose text layer holds real text is not blank (its pixels are not
    looked at).
    """
    if use_text_layer and page.text_layer and text_layer_is_good(page.text_layer):
        return False, ""
    chk = is_blank(page.pixels())
    return bool(chk.blank), str(chk.reason) if chk.blank else ""


def upright(
    page: PageImage, engine: LocalOCREngine | None, *, precheck: bool = True
) -> tuple[PageImage, list[str]]:
    """``page`` turned upright by :func:`~minimaxvl_tools.images.quality.detect_rotation`.

    Its image-only pre-check answers pages it finds upright; only suspect pages cost a Tesseract OSD run
    (when installed); ``precheck=False`` asks Tesseract about every page. Why: a sideways or upside-down
    scan is read far worse by the model. The returned copy's ``rotation`` adds the clockwise correction to
    the page's own (PDF ``/Rotate``) rotation; the caller's page is left untouched. Detection errors never
    stop the page: it is sent as it is, with a warning.
    """
    try:
        chk = detect_rotation(page.pixels(), engine=engine, precheck=precheck)
    except InvalidInputError:
        raise
    except MiniMaxVLError as e:  # e.g. Tesseract crashed: send the page as it is
        return page, [f"rotation check failed ({e}); page sent as it is"]
    if not chk.angle:
        return page, []
    fixed = replace(
        page,
        image=correct_rotation(page.pixels(), chk),
        rotation=(page.rotation + chk.angle) % 360,
        pdf_size=None,  # pixel boxes of the turned image no longer map onto the PDF page
    )
    note = f"rotated {chk.angle} degrees clockwise to upright ({chk.method}, confidence {chk.confidence:.2f})"
    return fixed, [note]


def prepare(
    page: PageImage, options: PrepareOptions, rotation_engine: LocalOCREngine | None = None
) -> PreparedPage:
    """Do one rendered page's client-side work: blank check, rotation, plan, cut, encode, block geometry."""
    prepared, geometry = prepare_deferred(page, options, rotation_engine)
    return prepared if geometry is None else replace(prepared, geometry=geometry())


def prepare_deferred(
    page: PageImage, options: PrepareOptions, rotation_engine: LocalOCREngine | None = None
) -> tuple[PreparedPage, Callable[[], BlockGeometry] | None]:
    """:func:`prepare` less the block geometry, and the call that computes it (None for a blank page):
    what the answer's block boxes need can be worked out while the request is out, not before it goes."""
    common: dict[str, Any] = {
        "number": page.number,
        "page_count": page.page_count,
        "source": page.source,
        "text_layer": page.text_layer,
    }
    warnings = list(page.warnings)
    if options.skip_blank and is_blank_page(page, options.blank_uses_text_layer)[0]:
        blank = PreparedPage(
            size=page.size,
            rotation=page.rotation,
            blank=True,
            mode="none",
            warnings=tuple(warnings),
            **common,
        )
        return blank, None
    if options.fix_rotation:
        page, notes = upright(page, rotation_engine)
        warnings += notes
    image = page.pixels()
    # a gray page (most scans) goes on as one channel, converted once: the same pixels for the plan, the
    # encoder and the line boxes (and a third of the memory for the pixels kept for retries)
    gray = image.mode == "L" or (image.mode == "RGB" and is_grayscale(image))
    if gray and image.mode != "L":
        image = image.convert("L")
        page = replace(page, image=image)
    plan = plan_page_image(
        image, tile=options.tile, min_x_height=options.min_x_height, profile=options.profile
    )
    if plan.mode == "tiles":
        reqs = _crop_requests(page, plan, options.plain, options.profile, options.quality)
        crops = tuple(PreparedCrop(enc, prompt, plan.boxes[t.index], img) for prompt, enc, t, img in reqs)
    else:
        enc = encode_page(image, profile=options.profile, quality=options.quality, gray=gray)
        prompt = ocr_prompts.page_prompt(plain=options.plain)
        crops = (PreparedCrop(enc, prompt, (0, 0, *image.size), image),)
    prepared = PreparedPage(
        size=image.size,
        rotation=page.rotation,
        mode=plan.mode,
        crops=crops,
        warnings=tuple(warnings),
        regions=tuple(plan.regions),
        **common,
    )
    regions = plan.regions if plan.mode == "tiles" else ()
    # bound to these pixels (the upright ones), which stay even if the caller lets go of the page's
    return prepared, partial(block_geometry, replace(page, image=image), regions)


class _Pixels:
    """The pixels of an encoded image, decoded only if a retry splits the region (rare): stands in for the
    PIL image the retry ladder halves, for pages prepared in a worker process (they carry no pixels)."""

    def __init__(self, enc: EncodedImage) -> None:
        self._enc = enc
        self._image: Image.Image | None = None

    def _decoded(self) -> Image.Image:
        if self._image is None:
            raw = base64.b64decode(self._enc.data_url.split(",", 1)[1])
            self._image = Image.open(io.BytesIO(raw))
            self._image.load()
        return self._image

    @property
    def size(self) -> tuple[int, int]:
        return (self._enc.width, self._enc.height)

    @property
    def width(self) -> int:
        return self._enc.width

    @property
    def height(self) -> int:
        return self._enc.height

    def __getattr__(self, name: str) -> Any:
        return getattr(self._decoded(), name)


def portable(prepared: PreparedPage) -> PreparedPage:
    """``prepared`` without the crops' pixels: what a worker process hands back (encoded bytes only)."""
    return replace(prepared, crops=tuple(replace(c, pixels=None) for c in prepared.crops))


def crop_pixels(crop: PreparedCrop) -> Image.Image | Any:
    """The pixels a retry splits: the crop's own image, or a stand-in that decodes the JPEG on first use."""
    return crop.pixels if crop.pixels is not None else _Pixels(crop.image)


__all__ = [
    "PrepareOptions",
    "PreparedCrop",
    "PreparedPage",
    "crop_pixels",
    "is_blank_page",
    "portable",
    "prepare",
    "upright",
]
