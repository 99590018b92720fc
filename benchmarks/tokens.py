"""Token efficiency vs legibility: one image vs a fixed 3x3 grid vs our plan, on pages of known text.

Pages of pseudo-random words in DejaVuSans at several sizes (6-14 pt: fine print such as footnotes and
contract terms, body text, large text) on letter and A4 are rendered at 200 dpi. Three ways of sending a
page are compared:

(a) ``one image``: the 200 dpi render sent as is (the server shrinks it into its canvas);
(b) ``3x3 grid``: nine equal crops, no overlap;
(c) ``our plan``: :func:`minimaxvl_tools.pages.plan_page_image`: the page's small print is measured
    (:func:`~minimaxvl_tools.images.quality.estimate_x_height`); one fitted image when it stays legible
    there, else overlapping full-width crops at the lowest resolution that keeps it legible, cut and
    fitted exactly as the client does.

Tokens are :func:`profile.image_tokens` of each image as sent, summed over crops. Legibility is Tesseract's
character error rate on the images AS THE SERVER SEES THEM: each image is JPEG-encoded like the client does,
then resized like vLLM (best canvas, scale = min(cw/W, ch/H), bicubic to (int(W*scale), int(H*scale))).
Every image is OCRed with word boxes; words are mapped back to page coordinates, a word seen in two
overlapping crops is kept from the crop whose centre is nearest, and words are regrouped into lines by
position. The same assembly is used for all three plans, so CER measures what the pixels let a reader see,
not how well texts are stitched. CER is corpus-level (edits / characters), whitespace collapsed.
Targets: (c) has a lower CER than (a); (c) spends >= 35 % fewer tokens than (b) at no worse CER.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .common import BenchResult, Row, make_text_pdf

DPI = 200
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Sent:
    """One image as sent: its pixels (after the client's JPEG round trip), its box on the page, tokens."""

    image: Image.Image
    box: Box
    tokens: int


def server_view(image: Image.Image) -> Image.Image:
    """The image as MiniMax-VL-01's server resizes it: aspect kept, bicubic, into the best canvas."""
    from minimaxvl_tools.profile import best_canvas

    w, h = image.size
    cw, ch = best_canvas(w, h)
    scale = min(cw / w, ch / h)
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return image if size == (w, h) else image.resize(size, Image.Resampling.BICUBIC)


def _as_sent(image: Image.Image, box: Box) -> Sent:
    """JPEG round trip with the client's encoder (quality 90), tokens of the encoded size."""
    from minimaxvl_tools.images.encode import encode_image

    enc = encode_image(image)
    import base64

    raw = base64.b64decode(enc.data_url.split(",", 1)[1])
    decoded = Image.open(io.BytesIO(raw)).convert("RGB")
    return Sent(decoded, box, enc.tokens)


def plan_one_image(page: Image.Image) -> list[Sent]:
    """(a) the whole render as one image."""
    return [_as_sent(page, (0, 0, page.width, page.height))]


def plan_grid(page: Image.Image, n: int = 3) -> list[Sent]:
    """(b) an ``n`` x ``n`` grid of equal crops without overlap."""
    w, h = page.size
    xs = [round(i * w / n) for i in range(n + 1)]
    ys = [round(i * h / n) for i in range(n + 1)]
    boxes = [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(n) for c in range(n)]
    return [_as_sent(page.crop(b), b) for b in boxes]


def plan_ours(page: Image.Image) -> list[Sent]:
    """(c) our plan: :func:`pages.plan_page_image` (the page's small print measured, then one fitted image
    or crops at the resolution that print needs), cut and fitted exactly as the client does."""
    from minimaxvl_tools.images.sizing import fit_image
    from minimaxvl_tools.pages import cut_page, plan_page_image

    plan = plan_page_image(page)
    if plan.mode == "tiles":
        return [_as_sent(img, plan.boxes[t.index]) for img, t in cut_page(page, plan)]
    fitted, _ = fit_image(page)
    return [_as_sent(fitted, (0, 0, page.width, page.height))]


def _ocr_words(sent: Sent) -> list[tuple[str, float, float, float]]:
    """Tesseract words of the server's view of ``sent``: (text, page x centre, page y centre, page height)."""
    import pytesseract

    view = server_view(sent.image)
    sx = view.width / (sent.box[2] - sent.box[0])
    sy = view.height / (sent.box[3] - sent.box[1])
    data = pytesseract.image_to_data(view, lang="eng", config="--psm 3", output_type=pytesseract.Output.DICT)
    out = []
    for text, left, top, width, height in zip(
        data["text"], data["left"], data["top"], data["width"], data["height"], strict=True
    ):
        if text and text.strip():
            out.append(
                (
                    text.strip(),
                    sent.box[0] + (left + width / 2) / sx,
                    sent.box[1] + (top + height / 2) / sy,
                    height / sy,
                )
            )
    return out


def _owner(x: float, y: float, boxes: list[Box]) -> int:
    """Index of the crop containing (x, y) whose centre is nearest (the owner of an overlap)."""
    best, best_d = 0, float("inf")
    for i, (left, top, right, bottom) in enumerate(boxes):
        if left <= x <= right and top <= y <= bottom:
            d = (x - (left + right) / 2) ** 2 + (y - (top + bottom) / 2) ** 2
            if d < best_d:
                best, best_d = i, d
    return best


def assemble(words_per_image: list[list[tuple[str, float, float, float]]], boxes: list[Box]) -> str:
    """Page text from the words of every crop: overlaps kept once, words regrouped into lines by position."""
    words = [
        (t, x, y, h) for i, ws in enumerate(words_per_image) for t, x, y, h in ws if _owner(x, y, boxes) == i
    ]
    if not words:
        return ""
    heights = sorted(h for *_, h in words)
    tol = 0.5 * heights[len(heights) // 2]
    words.sort(key=lambda w: w[2])
    lines: list[list[tuple[str, float, float, float]]] = []
    centre = 0.0
    for w in words:
        if lines and abs(w[2] - centre) <= tol:
            lines[-1].append(w)
            centre = sum(v[2] for v in lines[-1]) / len(lines[-1])
        else:
            lines.append([w])
            centre = w[2]
    return "\n".join(" ".join(t for t, *_ in sorted(line, key=lambda v: v[1])) for line in lines)


def read_plan(sent: list[Sent], pool: ThreadPoolExecutor) -> str:
    """OCR every image of a plan (in parallel Tesseract processes) and assemble the page text."""
    words = list(pool.map(_ocr_words, sent))
    return assemble(words, [s.box for s in sent])


def _cer_counts(reference: str, hypothesis: str) -> tuple[int, int]:
    """(character edits, reference characters), whitespace collapsed."""
    try:
        from minimaxvl_tools.eval.metrics import corpus_cer

        c = corpus_cer([reference], [hypothesis], collapse_whitespace=True)
        return c.edits, c.ref_len
    except ImportError:  # pragma: no cover - metrics ship with the package
        r, h = " ".join(reference.split()), " ".join(hypothesis.split())
        prev = list(range(len(h) + 1))
        for i, rc in enumerate(r, 1):
            cur = [i]
            for j, hc in enumerate(h, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rc != hc)))
            prev = cur
        return prev[-1], len(r)


PLANS = {"one image": plan_one_image, "3x3 grid": plan_grid, "our plan": plan_ours}


def run(
    quick: bool = False,
    *,
    sizes: tuple[float, ...] | None = None,
    formats: tuple[str, ...] | None = None,
    stride: int | None = None,
) -> BenchResult:
    """Tokens and Tesseract CER of the three plans over pages of known text; rows for the targets."""
    from minimaxvl_tools.pdf import iter_pdf_pages

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # one thread per Tesseract process; we run 2 at once
    t0 = time.perf_counter()
    if sizes is None and formats is None:
        pages = [("letter", s) for s in ((6.0, 12.0) if quick else (6.0, 7.0, 8.0, 10.0, 12.0, 14.0))]
        pages += [] if quick else [("a4", 6.0), ("a4", 8.0), ("a4", 12.0)]
    else:
        pages = [(f, s) for f in (formats or ("letter",)) for s in (sizes or (8.0, 12.0))]
    stride = stride or (4 if quick else 2)
    totals = {k: {"tokens": 0, "edits": 0, "chars": 0, "images": 0} for k in PLANS}
    lines = [
        f"DejaVuSans pages at {DPI} dpi: {', '.join(f'{f} {s:g} pt' for f, s in pages)}; a text line every "
        f"{stride} line heights over the whole page; Tesseract (psm 3) on the server's view of each image",
        "format  size | " + " | ".join(f"{k:>9s} tokens  CER   " for k in PLANS),
    ]
    seed = 0
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=2) as pool:
        for fmt, size in pages:
            seed += 1
            pdf = Path(tmp) / f"t_{fmt}_{size}.pdf"
            truth = make_text_pdf(pdf, 1, font_size=size, page_format=fmt, seed=seed, stride=stride)[0]
            reference = "\n".join(truth)
            page = next(iter_pdf_pages(pdf, dpi=DPI)).image
            assert page is not None
            cells = []
            for name, plan in PLANS.items():
                sent = plan(page)
                text = read_plan(sent, pool)
                edits, chars = _cer_counts(reference, text)
                tokens = sum(s.tokens for s in sent)
                tot = totals[name]
                tot["tokens"] += tokens
                tot["edits"] += edits
                tot["chars"] += chars
                tot["images"] += len(sent)
                cells.append(f"{len(sent)}x {tokens:6d}  {edits / max(1, chars):.4f}")
            lines.append(f"{fmt:6s} {size:4.0f}  | " + " | ".join(cells))
    n_pages = len(pages)
    cer = {k: v["edits"] / max(1, v["chars"]) for k, v in totals.items()}
    tok = {k: v["tokens"] / n_pages for k, v in totals.items()}
    lines.append(
        "corpus: "
        + "; ".join(
            f"{k}: {tok[k]:.0f} tokens/page, CER {cer[k]:.4f}, {totals[k]['images']} images" for k in PLANS
        )
    )
    rows = [
        Row("tokens: CER, our plan vs one image", cer["our plan"], cer["one image"], "CER", "<", 1.0),
        Row("tokens: tokens/page, our plan vs 3x3 grid", tok["our plan"], tok["3x3 grid"], "tok", "<=", 0.65),
        Row("tokens: CER, our plan vs 3x3 grid", cer["our plan"], cer["3x3 grid"], "CER", "<=", 1.0),
        Row("tokens: tokens/page, our plan vs one image", tok["our plan"], tok["one image"], "tok", "info"),
    ]
    details: dict[str, object] = {"cer": cer, "tokens_per_page": tok}
    return BenchResult("tokens", rows, "\n".join(lines), time.perf_counter() - t0, details)
