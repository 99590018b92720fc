"""The page pipeline shared by tools, loader, ingest, CLI and eval: source -> prepared page -> requests.

:func:`iter_pages` turns any input (image, multi-page TIFF, PDF) into :class:`PageImage` objects;
:func:`plan_page` decides, without a server, whether a page goes in one fitted image or in crops, and
:func:`plan_page_image` refines that from the pixels (print size measured, crops cut in whitespace);
:func:`prepare` does a page's client-side work once (checks, plan, encoded crops, block geometry),
:func:`read_prepared` / :func:`aread_prepared` send it and merge crop transcriptions so no line is lost or
repeated; :class:`~.pipeline.PageReader` chains them with the fallbacks for every caller, and
:func:`ocr_page` / :func:`aocr_page` run one page through it.

Modules: :mod:`.source` (pages of any input), :mod:`.plan` (one image or crops), :mod:`.prepare` (a page
ready to send), :mod:`.read` (one region through the retry ladder), :mod:`.send` (a prepared page sent),
:mod:`.merge` (crop texts joined), :mod:`.blocks` (block boxes), :mod:`.fallback` (the fallback chain),
:mod:`.pipeline` (PageReader), :mod:`.window` (in-flight window, failure rule), :mod:`.ocr` (one page end
to end). Private helpers are re-exported for :mod:`minimaxvl_tools.page_workers` and the tests.
"""

from __future__ import annotations

from .blocks import (
    BlockGeometry,
    _text_blocks,
    _union,
    block_geometry,
)
from .merge import (
    _DIGITS,
    _FENCE,
    _NOISE,
    _TABLE_SEP,
    _WS,
    _drop_tail,
    _is_row,
    _norm_line,
    _overlap_at,
    _similar,
    _strong,
    clean_transcription,
    join_overlap,
    join_tables,
    merge_crops,
    merge_overlapping,
    merged_text,
)
from .ocr import (
    PageOptions,
    aocr_page,
    ocr_page,
)
from .plan import (
    MIN_X_HEIGHT,
    PagePlan,
    _crop_requests,
    _fit_scale,
    _padded,
    _region_tokens,
    _tile_plan,
    _tile_scales,
    _unscale,
    _whitespace_plan,
    cut_page,
    encode_page,
    plan_page,
    plan_page_image,
    single_fit,
)
from .prepare import (
    PreparedCrop,
    PreparedPage,
    PrepareOptions,
    is_blank_page,
    portable,
    prepare,
    upright,
)
from .read import (
    _FAILURE_TYPES,
    _MAX_HALF_ASPECT,
    _MIN_SPLIT,
    _aread_region,
    _combine,
    _default_max_tokens,
    _half_prompt,
    _halves,
    _Job,
    _join_parts,
    _profile_of,
    _quality_of,
    _Read,
    _read_region,
    _temperature_of,
    _verdict,
)
from .send import SendOptions, aread_prepared, failed_page, read_prepared
from .source import (
    Box,
    PageImage,
    PageSpec,
    TileMode,
    _describe,
    _is_pathlike,
    _pdf_pages,
    iter_pages,
)
from .window import FailureRule, Ready, ain_order, in_order

__all__ = [
    "MIN_X_HEIGHT",
    "BlockGeometry",
    "Box",
    "FailureRule",
    "PageImage",
    "PagePlan",
    "PageSpec",
    "Ready",
    "TileMode",
    "ain_order",
    "aocr_page",
    "block_geometry",
    "clean_transcription",
    "cut_page",
    "encode_page",
    "in_order",
    "iter_pages",
    "join_overlap",
    "join_tables",
    "merge_crops",
    "merge_overlapping",
    "merged_text",
    "ocr_page",
    "plan_page",
    "plan_page_image",
    "single_fit",
]
