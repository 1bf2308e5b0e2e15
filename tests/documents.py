"""Documents made on the fly for tests: every accepted format, and broken ones."""
from __future__ import annotations

import io
from datetime import date, timedelta

from PIL import Image, ImageDraw, ImageFont

from samples.make_samples import pdf_with_text


def receipt_image(day: date, total: str = "32.50", merchant: str = "KEDAI BUKU MAJU SDN BHD",
                  items: tuple[tuple[str, str], ...] = (("NOTEBOOK A5", "12.50"), ("PEN BLUE x4", "20.00")),
                  scale: int = 1) -> Image.Image:
    """A printed-looking receipt; rendered with Pillow's built-in font so any machine can make it."""
    font = ImageFont.load_default(size=22 * scale)
    lines = [merchant, "NO. 8, JALAN TUN RAZAK,", "50400 KUALA LUMPUR", "TEL: 03-2161 0000", "",
             f"DATE: {day.strftime('%d/%m/%Y')} 10:15", *[f"{n:<26}{a:>8}" for n, a in items],
             "-" * 34, f"{'TOTAL RM':<26}{total:>8}", "THANK YOU"]
    img = Image.new("RGB", (620 * scale, (len(lines) * 34 + 60) * scale), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((30 * scale, (30 + i * 34) * scale), line, fill="black", font=font)
    return img


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def pdf(pages: int = 1, text: str = "Hello") -> bytes:
    return pdf_with_text([[f"{text} page {i + 1}"] for i in range(pages)])


def last_weekday(before: date, weekday: int) -> date:
    """The latest day before `before` that falls on `weekday` (0 = Monday): a receipt dated on a
    weekend, whatever day the tests run."""
    day = before - timedelta(days=1)
    while day.weekday() != weekday:
        day -= timedelta(days=1)
    return day
