"""Regenerates the small sample documents shipped in samples/ (deterministic; no downloads).

- samples/scanned_report.pdf: a 3-page *scanned* PDF (pages are images, no text layer): an invoice,
  a memo and a table page, with scanner-like noise. The main job's RAG pipeline runs over it.
- samples/born_digital.pdf: a 2-page PDF with a real text layer (ground truth for the OCR CER task).
- samples/bar_chart.png: a bar chart with known values; samples/food_web.png: a small science diagram.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFilter, ImageFont

OUT = Path(__file__).resolve().parent.parent / "samples"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

PAGES: list[list[tuple[str, int, bool]]] = [
    [
        ("ACME Components Ltd.", 44, True),
        ("INVOICE No. 2024-0117", 34, True),
        ("Date: 12 March 2024", 28, False),
        ("Bill to: Northwind Traders, 4 Harbour Road, Leeds", 28, False),
        ("", 20, False),
        ("Item                         Qty    Unit price    Amount", 26, False),
        ("Steel brackets M8              40        2.50      100.00", 26, False),
        ("Hydraulic pump HP-200           2      310.00      620.00", 26, False),
        ("Service visit (4 hours)         1      180.00      180.00", 26, False),
        ("", 20, False),
        ("Subtotal: 900.00 EUR", 28, False),
        ("VAT 20%: 180.00 EUR", 28, False),
        ("Total due: 1,080.00 EUR", 32, True),
        ("Payment terms: 30 days from the invoice date.", 26, False),
    ],
    [
        ("MEMO", 44, True),
        ("To: All plant staff", 28, False),
        ("From: Maria Lopez, Safety Officer", 28, False),
        ("Subject: Fire drill on Friday", 28, False),
        ("", 20, False),
        ("A fire drill will take place on Friday 22 March at 10:30.", 26, False),
        ("Assemble at meeting point B, next to the north car park.", 26, False),
        ("The drill is expected to last about 25 minutes.", 26, False),
        ("Contact extension 4417 with any questions.", 26, False),
    ],
    [
        ("Quarterly production (units)", 38, True),
        ("", 20, False),
        ("Line       Q1       Q2       Q3       Q4", 28, False),
        ("Alpha    1200     1350     1410     1500", 28, False),
        ("Beta      800      760      905      990", 28, False),
        ("Gamma     430      515      600      640", 28, False),
        ("", 20, False),
        ("Line Alpha reached its annual target of 5,400 units.", 26, False),
    ],
]


def _page_image(lines: list[tuple[str, int, bool]], seed: int) -> Image.Image:
    rng = random.Random(seed)
    img = Image.new("L", (1240, 1754), 255)  # A4 at 150 dpi
    d = ImageDraw.Draw(img)
    y = 120
    for text, size, bold in lines:
        font = ImageFont.truetype(BOLD if bold else FONT, size)
        d.text((110, y), text, fill=20, font=font)
        y += int(size * 1.7)
    for _ in range(2500):  # scanner speckle
        x, yy = rng.randrange(1240), rng.randrange(1754)
        img.putpixel((x, yy), rng.randrange(150, 235))
    img = img.rotate(0.4, resample=Image.Resampling.BICUBIC, fillcolor=255)
    return img.filter(ImageFilter.GaussianBlur(0.6)).convert("RGB")


def scanned_pdf(path: Path) -> None:
    pdf = FPDF(unit="pt", format="A4")
    for i, lines in enumerate(PAGES):
        buf = io.BytesIO()
        _page_image(lines, i).save(buf, format="JPEG", quality=70)
        pdf.add_page()
        pdf.image(buf, x=0, y=0, w=pdf.w, h=pdf.h)
    pdf.output(str(path))


def born_digital_pdf(path: Path) -> None:
    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=12)
    paras = [
        "Annual maintenance report. The plant operated for 312 days in 2023 and produced 5,400 units "
        "on line Alpha.",
        "Unplanned downtime fell from 41 hours to 27 hours after the pump replacement programme.",
        "Energy use per unit decreased by 8 percent, mainly because of the new compressor controls.",
        "Recommendations: replace the conveyor belt on line Beta and train two more operators.",
    ]
    for page in (paras[:2], paras[2:]):
        pdf.add_page()
        pdf.set_font("helvetica", "B", 16)
        pdf.multi_cell(0, 10, "Maintenance report", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=12)
        for p in page:
            pdf.multi_cell(0, 8, p, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
    pdf.output(str(path))


def bar_chart(path: Path) -> None:
    values = {"2019": 12, "2020": 18, "2021": 9, "2022": 24}
    img = Image.new("RGB", (640, 480), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 16)
    d.text((180, 15), "Sales by year (million EUR)", fill="black", font=ImageFont.truetype(BOLD, 20))
    d.line((80, 420, 600, 420), fill="black", width=2)
    d.line((80, 60, 80, 420), fill="black", width=2)
    for tick in range(0, 30, 5):
        y = 420 - tick * 12
        d.text((45, y - 9), str(tick), fill="black", font=font)
        d.line((76, y, 80, y), fill="black")
    for i, (label, v) in enumerate(values.items()):
        x = 120 + i * 120
        d.rectangle((x, 420 - v * 12, x + 60, 420), fill=(52, 101, 164))
        d.text((x + 8, 428), label, fill="black", font=font)
        d.text((x + 18, 420 - v * 12 - 22), str(v), fill="black", font=font)
    img.save(path, optimize=True)


def food_web(path: Path) -> None:
    img = Image.new("RGB", (640, 420), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 20)
    boxes = {"Grass": (60, 320), "Rabbit": (260, 320), "Fox": (460, 320), "Sun": (60, 60), "Hawk": (460, 60)}
    for name, (x, y) in boxes.items():
        d.rectangle((x, y, x + 120, y + 50), outline="black", width=2)
        d.text((x + 20, y + 12), name, fill="black", font=font)
    for a, b in [("Sun", "Grass"), ("Grass", "Rabbit"), ("Rabbit", "Fox"), ("Rabbit", "Hawk")]:
        (x1, y1), (x2, y2) = boxes[a], boxes[b]
        d.line((x1 + 60, y1 + 25, x2 + 60, y2 + 25), fill="black", width=3)
        d.ellipse((x2 + 55, y2 + 20, x2 + 65, y2 + 30), fill="black")
    img.save(path, optimize=True)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    scanned_pdf(OUT / "scanned_report.pdf")
    born_digital_pdf(OUT / "born_digital.pdf")
    bar_chart(OUT / "bar_chart.png")
    food_web(OUT / "food_web.png")
    for p in sorted(OUT.iterdir()):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
