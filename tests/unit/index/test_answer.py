"""The answer's crop decision: a region is sent instead of the page only when it costs fewer tokens."""

from __future__ import annotations

from PIL import Image

from minimaxvl_tools.index.answer import region_image
from minimaxvl_tools.profile import image_tokens


def test_region_image_crops_only_when_cheaper() -> None:
    page = Image.new("RGB", (1700, 2200), "white")
    crop, box = region_image(page, [(900, 1900, 1550, 1960)])
    assert box is not None and image_tokens(*crop.size) < image_tokens(1700, 2200)
    assert max(crop.size) / min(crop.size) <= 4.01  # a one-line region is widened, not sent as a strip
    whole, none = region_image(page, [(0, 0, 1700, 2200)])
    assert none is None and whole.size == (1700, 2200)
    mixed, none = region_image(page, [(900, 1900, 1550, 1960), None])  # one hit without a region
    assert none is None and mixed.size == (1700, 2200)
