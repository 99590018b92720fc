"""One region read through the retry ladder: temperature steps, then halves; same decisions sync and async."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..images.encode import EncodedImage
from ..output_checks import check_output
from ..profile import DEFAULT_PROFILE, ModelProfile
from ..prompts import ocr as ocr_prompts
from ..settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from ...client import ChatResult, MiniMaxVLClient
    from ...images.cutting import Region
from .blocks import BlockGeometry
from .merge import clean_transcription, join_overlap, merge_overlapping
from .plan import encode_page


def setting_of(client: Any, name: str) -> Any:
    """``client.settings.<name>``, else the :class:`~minimaxvl_tools.settings.Settings` default: a default is
    written once, in Settings, even for client doubles without settings."""
    value = getattr(getattr(client, "settings", None), name, None)
    return Settings.model_fields[name].default if value is None else value


def _default_max_tokens(client: MiniMaxVLClient, max_tokens: int | None) -> int:
    return max_tokens if max_tokens is not None else int(setting_of(client, "max_tokens"))


# ---------------------------------------------------------------------------------------------- retries
# Why: at temperature 0 the model sometimes loops ("the the the ...") or runs into max_tokens on a dense
# region. Such a reply must never be merged as if it were the transcription. Each region (the whole page
# or one crop) is checked with :func:`~.output_checks.check_output`; a bad reply is retried one step
# hotter on the :func:`~.output_checks.temperature_schedule` and on two overlapping halves of the region
# (less text per reply, so it fits max_tokens, and a different view breaks the loop). Only the halves
# that fail again are split again; after ``max_attempts`` the page is marked failed with the reason.
_MIN_SPLIT = 64  # pixels: a region smaller than twice this is retried whole, not split
_MAX_HALF_ASPECT = 5.0  # halves stay within the model's 6:1 aspect limit


@dataclass
class _Job:
    """What every request of one page shares, and the running cost (kept even when a request raises)."""

    client: Any
    system: str
    budget: int
    temperatures: list[float]
    plain: bool
    profile: ModelProfile
    quality: int
    requests: int = 0
    tokens: int = 0
    regions: tuple[Region, ...] = ()  # the plan's whitespace cuts, for the merge and the block boxes
    geometry: BlockGeometry | None = None  # block geometry computed beforehand (page work in a worker)

    @property
    def max_attempts(self) -> int:
        return len(self.temperatures)


@dataclass
class _Read:
    """The outcome of one region: its text, the deepest attempt used, notes, and why it failed (if it did)."""

    text: str = ""
    attempts: int = 1
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None
    failure_type: str | None = None  # the errors.py class the failure stands for
    said_blank: bool = False  # the model answered the blank-page marker


def _halves(image: Image.Image, overlap: float = 0.08) -> list[Image.Image]:
    """Two overlapping halves of ``image``: top/bottom (text lines stay whole), else left/right.

    Top/bottom is used unless the halves would be wider than ``_MAX_HALF_ASPECT``:1 (a thin strip); an
    image too small to split in either direction comes back whole (retried with a hotter temperature only).
    """
    w, h = image.size
    if h >= 2 * _MIN_SPLIT and w / (h / 2) <= _MAX_HALF_ASPECT:
        pad = max(16, round(h * overlap))
        mid = h // 2
        return [image.crop((0, 0, w, min(h, mid + pad))), image.crop((0, max(0, mid - pad), w, h))]
    if w >= 2 * _MIN_SPLIT and h / (w / 2) <= _MAX_HALF_ASPECT:
        pad = max(16, round(w * overlap))
        mid = w // 2
        return [image.crop((0, 0, min(w, mid + pad), h)), image.crop((max(0, mid - pad), 0, w, h))]
    return [image]


def _join_parts(parts: list[str], side_by_side: bool) -> str:
    """Transcriptions of the halves of one region as one text (the overlap kept once)."""
    cleaned = [clean_transcription(p) for p in parts]
    if len(cleaned) == 1:
        return cleaned[0]
    if side_by_side:
        # left/right halves of a strip: merge_overlapping orders them by their boxes
        return merge_overlapping([(cleaned[0], (0, 0, 2, 1)), (cleaned[1], (1, 0, 3, 1))])
    return join_overlap(cleaned[0], cleaned[1]).strip()


_FAILURE_TYPES = {
    "truncated": "TruncatedOutputError",
    "repetition": "RepetitionError",
    "empty": "EmptyOutputError",
}


def _verdict(job: _Job, res: ChatResult, attempt: int, label: str) -> tuple[_Read | None, str]:
    """Check one reply: (the final result when it is good or no try is left, else None; the retry note).

    The whole page's first reply must not be empty (a page sent was judged non-blank, and the prompt asks
    for the blank-page marker otherwise); a crop or a half of a retried page may be empty.
    """
    text = res.text or ""
    chk = check_output(text, res.finish_reason, allow_empty=bool(label) or attempt > 1)
    if chk.ok:
        said_blank = bool(text.strip()) and not clean_transcription(text)
        return _Read(text, attempt, said_blank=said_blank), ""
    reason = "empty reply for a page judged non-blank" if chk.kind == "empty" else chk.reason
    note = f"{label}attempt {attempt} at temperature {job.temperatures[attempt - 1]:g}: {reason}"
    if attempt >= job.max_attempts:
        final = f"{reason} after {attempt} attempts" + (f" ({label.rstrip(': ')})" if label else "")
        return _Read("", attempt, [note], failure=final, failure_type=_FAILURE_TYPES.get(chk.kind)), note
    return None, note


def _combine(reads: list[_Read], note: str, side_by_side: bool) -> _Read:
    """One region's result from the results of its halves (the first failure wins)."""
    warnings = [note] + [w for r in reads for w in r.warnings]
    attempts = max(r.attempts for r in reads)
    failed = next((r for r in reads if r.failure), None)
    if failed:
        return _Read("", attempts, warnings, failure=failed.failure, failure_type=failed.failure_type)
    text = _join_parts([r.text for r in reads], side_by_side)
    return _Read(text, attempts, warnings, said_blank=any(r.said_blank for r in reads))


def _half_prompt(i: int, n: int, plain: bool) -> str:
    return ocr_prompts.crop_prompt(i, n, plain=plain) if n > 1 else ocr_prompts.page_prompt(plain=plain)


def _ask(job: _Job, attempt: int) -> dict[str, Any]:
    """The request options of try ``attempt`` (1-based) of a region."""
    return {"system": job.system, "max_tokens": job.budget, "temperature": job.temperatures[attempt - 1]}


def _split(job: _Job, image: Image.Image) -> tuple[list[tuple[Image.Image, EncodedImage, str]], bool]:
    """The halves a failed region is retried on (each encoded, with its prompt) and whether they sit side by
    side; their image tokens are counted on the job."""
    parts = _halves(image)
    side = len(parts) == 2 and parts[0].height == image.height
    halves = []
    for i, part in enumerate(parts, start=1):
        enc = encode_page(part, profile=job.profile, quality=job.quality)
        job.tokens += enc.tokens
        halves.append((part, enc, _half_prompt(i, len(parts), job.plain)))
    return halves, side


def _read_region(
    job: _Job, image: Image.Image, enc: EncodedImage, prompt: str, attempt: int = 1, label: str = ""
) -> _Read:
    """Transcribe one region, retrying a looping or cut reply hotter and on halves (see the notes above)."""
    res = job.client.chat(prompt, [enc], **_ask(job, attempt))
    job.requests += 1
    final, note = _verdict(job, res, attempt, label)
    if final is not None:
        return final
    halves, side = _split(job, image)
    reads: list[_Read] = []
    for part, penc, p in halves:
        reads.append(_read_region(job, part, penc, p, attempt + 1, label))
        if reads[-1].failure:  # the region has failed for good: the other half would be wasted
            break
    return _combine(reads, note, side)


async def _aread_region(
    job: _Job, image: Image.Image, enc: EncodedImage, prompt: str, attempt: int = 1, label: str = ""
) -> _Read:
    """Async :func:`_read_region`: the halves of a retried region are sent concurrently."""
    res = await job.client.achat(prompt, [enc], **_ask(job, attempt))
    job.requests += 1
    final, note = _verdict(job, res, attempt, label)
    if final is not None:
        return final
    halves, side = _split(job, image)
    reads = await asyncio.gather(*(_aread_region(job, *h[:2], h[2], attempt + 1, label) for h in halves))
    return _combine(list(reads), note, side)


def _profile_of(client: Any) -> ModelProfile:
    prof = getattr(client, "profile", None)
    return prof if isinstance(prof, ModelProfile) else DEFAULT_PROFILE


def _quality_of(client: Any) -> int:
    return int(setting_of(client, "jpeg_quality"))


def _temperature_of(client: Any) -> float:
    value = setting_of(client, "temperature")
    return float(value) if isinstance(value, int | float) else float(setting_of(None, "temperature"))
