"""Synthetic pages with known text lines (positions, words) for the cutter, merge, boxes, reader tests."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
WORDS = [
    "the",
    "of",
    "and",
    "invoice",
    "total",
    "page",
    "table",
    "line",
    "column",
    "figure",
    "small",
    "print",
    "value",
    "rate",
    "data",
    "report",
    "amount",
    "north",
    "south",
    "river",
    "clock",
    "paper",
    "glass",
    "stone",
    "reading",
    "model",
    "server",
    "crop",
    "merge",
    "token",
]

Box = tuple[int, int, int, int]


@dataclass
class Page:
    """A rendered page: its image, each text line's text and ink box (after skew), figure boxes, and a label
    image whose pixel value is 1 + the index of the line whose ink is there (0: no text)."""

    image: Image.Image
    labels: Image.Image
    lines: list[str]
    boxes: list[Box]
    figures: list[Box]


def make_page(
    width: int = 1200,
    height: int = 1600,
    *,
    font_px: int = 22,
    columns: int = 1,
    skew: float = 0.0,
    figure: bool = False,
    noise: float = 0.0,
    border: bool = False,
    seed: int = 0,
    line_gap: float = 1.5,
    paragraphs: bool = True,
    title: str = "",
) -> Page:
    """A white page of random-word lines in ``columns`` columns, optionally with a figure block, skewed by
    ``skew`` degrees, speckled with ``noise`` (fraction of pixels) and a dark scan border."""
    rng = random.Random(seed)
    font = ImageFont.truetype(DEJAVU, font_px)
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    labels = Image.new("L", (width, height), 0)
    margin = width // 12
    gutter = width // 20
    col_w = (width - 2 * margin - (columns - 1) * gutter) // columns
    pitch = round(font_px * line_gap)
    lines: list[str] = []
    boxes: list[Box] = []
    figures: list[Box] = []
    top = margin
    if title:  # a heading across all columns
        tfont = ImageFont.truetype(DEJAVU, font_px * 2)
        draw.text((margin, margin), title, font=tfont, fill=0)
        bb = draw.textbbox((margin, margin), title, font=tfont)
        _label(labels, draw, (margin, margin), title, tfont, 1, bb)
        lines.append(title)
        boxes.append((bb[0], bb[1], bb[2], bb[3]))
        top = bb[3] + 2 * pitch
    for c in range(columns):
        x0 = margin + c * (col_w + gutter)
        y = top
        fig_at = rng.randint(3, 8) if figure and c == 0 else -1
        n = 0
        while y + pitch < height - margin:
            if n == fig_at:
                fh = min(height // 4, height - margin - y - pitch)
                if fh > pitch:
                    box = (x0, y, x0 + col_w, y + fh)
                    draw.rectangle(box, fill=120)
                    for _ in range(200):  # texture: a photo-like block with no white rows
                        px, py = rng.randrange(box[0], box[2]), rng.randrange(box[1], box[3])
                        draw.point((px, py), fill=rng.randrange(0, 255))
                    figures.append(box)
                    y += fh + pitch
            n += 1
            text = ""
            while True:
                word = rng.choice(WORDS) + (str(rng.randint(1, 99)) if rng.random() < 0.15 else "")
                cand = (text + " " + word).strip()
                if draw.textlength(cand, font=font) > col_w:
                    break
                text = cand
            if paragraphs and rng.random() < 0.15:  # a paragraph's short last line, then a blank line
                text = " ".join(text.split()[: max(1, len(text.split()) // 3)])
            draw.text((x0, y), text, font=font, fill=0)
            bb = draw.textbbox((x0, y), text, font=font)
            _label(labels, draw, (x0, y), text, font, len(lines) + 1, bb)
            lines.append(text)
            boxes.append((bb[0], bb[1], bb[2], bb[3]))
            y += pitch * (2 if paragraphs and rng.random() < 0.1 else 1)
    if skew:
        img = img.rotate(skew, resample=Image.Resampling.BICUBIC, fillcolor=255)
        labels = labels.rotate(skew, resample=Image.Resampling.NEAREST, fillcolor=0)
        boxes = [_rotate_box(b, skew, width, height) for b in boxes]
        figures = [_rotate_box(b, skew, width, height) for b in figures]
    if noise:
        px = img.load()
        for _ in range(int(noise * width * height)):
            px[rng.randrange(width), rng.randrange(height)] = rng.randrange(0, 100)
    if border:
        d = ImageDraw.Draw(img)
        d.rectangle((0, 0, width - 1, 14), fill=30)
        d.rectangle((0, 0, 12, height - 1), fill=30)
    return Page(img, labels, lines, boxes, figures)


def _label(
    labels: Image.Image,
    draw: ImageDraw.ImageDraw,
    at: tuple[int, int],
    text: str,
    font: ImageFont.FreeTypeFont,
    value: int,
    bb: tuple[int, int, int, int],
) -> None:
    """Mark the ink of one line in ``labels`` with ``value``."""
    glyphs = Image.new("L", (bb[2] - bb[0] + 2, bb[3] - bb[1] + 2), 0)
    ImageDraw.Draw(glyphs).text((at[0] - bb[0] + 1, at[1] - bb[1] + 1), text, font=font, fill=255)
    labels.paste(min(255, value), (bb[0] - 1, bb[1] - 1), glyphs.point(lambda v: 255 if v > 100 else 0))


def _rotate_box(box: Box, angle: float, width: int, height: int) -> Box:
    """Bounds of ``box`` after PIL's counter-clockwise rotation by ``angle`` degrees about the centre."""
    cx, cy = width / 2, height / 2
    a = math.radians(angle)
    pts = []
    for x, y in ((box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])):
        dx, dy = x - cx, y - cy
        pts.append((cx + dx * math.cos(a) + dy * math.sin(a), cy - dx * math.sin(a) + dy * math.cos(a)))
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return (math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys)))
