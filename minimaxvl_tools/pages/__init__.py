"""The per-page pipeline shared by tools, loader, CLI and eval: source -> pages -> plan -> requests.

:func:`iter_pages` turns any input (image, multi-page TIFF, PDF) into :class:`PageImage` objects;
:func:`plan_page` decides, without a server, whether a page goes in one fitted image or in crops, and
:func:`plan_page_image` refines that from the pixels (print size measured, crops cut in whitespace);
:func:`ocr_page` / :func:`aocr_page` run the plan against a :class:`~minimaxvl_tools.client.MiniMaxVLClient`
and merge crop transcriptions (:func:`merge_crops` for whitespace cuts, :func:`merge_overlapping` for
overlapping strips) so no line is lost or repeated; each page keeps its text blocks' boxes.

Modules: :mod:`.source` (pages of any input), :mod:`.plan` (one image or crops), :mod:`.merge` (crop texts
joined), :mod:`.read` (one region through the retry ladder), :mod:`.blocks` (block boxes), :mod:`.ocr` (one
page end to end). The private helpers are re-exported for :mod:`minimaxvl_tools.page_workers`.
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
    _blank,
    _failed,
    _upright,
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
