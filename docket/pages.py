"""From stored bytes to page images (and PDF text) an analyzer can read.

Orientation from EXIF, RGB on white, longest side bounded; PDF pages rasterised with pdfium
at a scale that respects the same bound, with the text layer kept where the PDF has one.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import defusedxml.ElementTree as SafeET
from PIL import Image, ImageDraw, ImageFont, ImageOps

from docket import ofd

from docket.documents import OFD_TYPE, XML_TYPE, DocumentError
from docket.pdfium_lock import open_pdf

# 200 dpi reads small print well; the max-side bound caps it for large pages.
PDF_DPI = 200
# A PDF whose text layer has fewer characters than this per page is treated as a scan.
MIN_TEXT_PER_PAGE = 40


@dataclass(frozen=True)
class TextLine:
    """One line of text on a page: its text, axis-aligned box (x0, y0, x1, y1) in the page
    image's pixels, and a confidence score (1.0 for a PDF's own text). OCR makes the same."""

    text: str
    box: tuple[float, float, float, float]
    score: float


@dataclass
class Page:
    image: Image.Image
    text_layer: str = ""
    # The text layer as positioned lines, in the image's pixel space (PDFs with text only).
    text_lines: list[TextLine] = field(default_factory=list)


@dataclass
class PreparedDocument:
    mime_type: str
    pages: list[Page]
    page_count: int  # in the file; `pages` may hold fewer (the OCR page limit)
    filename: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # The stored file itself, for analyzers that read a format's own data (e-invoice XML, OFD).
    source: Path | None = None

    @property
    def text_layer(self) -> str:
        return "\n".join(p.text_layer for p in self.pages if p.text_layer)

    @property
    def has_text_layer(self) -> bool:
        """Enough text per page to be a born-digital PDF rather than a scan."""
        return len(self.text_layer) >= MIN_TEXT_PER_PAGE * max(1, len(self.pages))


def to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def bound(img: Image.Image, max_side: int) -> Image.Image:
    if max(img.size) <= max_side:
        return img
    scale = max_side / max(img.size)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)


def prepare(path: Path, mime_type: str, *, max_side: int, max_pages: int, filename: str | None = None) -> PreparedDocument:
    try:
        if mime_type == "application/pdf":
            return _prepare_pdf(path, max_side, max_pages, filename)
        if mime_type == OFD_TYPE:
            count = ofd.page_count(path)
            pages = [Page(_ofd_page(path, index, max_side)) for index in range(min(count, max_pages))]
            return PreparedDocument(mime_type=mime_type, pages=pages, page_count=count, filename=filename, source=path)
        if mime_type == XML_TYPE:
            text = xml_text(path)
            return PreparedDocument(mime_type=mime_type, pages=[Page(_text_page(text, max_side), text_layer=text)],
                                    page_count=1, filename=filename, source=path)
        with Image.open(path) as img:
            img.seek(0)  # GIF/TIFF: first frame
            page = bound(to_rgb(ImageOps.exif_transpose(img)), max_side)
        return PreparedDocument(mime_type=mime_type, pages=[Page(page)], page_count=1, filename=filename,
                                source=path)
    except DocumentError:
        raise
    except Exception as exc:
        raise DocumentError(f"The document could not be read: {exc}", code="corrupt_document") from exc


def _prepare_pdf(path: Path, max_side: int, max_pages: int, filename: str | None) -> PreparedDocument:
    with open_pdf(path) as pdf:
        pages = [_pdf_page(pdf, index, max_side) for index in range(min(len(pdf), max_pages))]
        return PreparedDocument(mime_type="application/pdf", pages=pages, page_count=len(pdf), filename=filename,
                                source=path)


def _pdf_page(pdf, index: int, max_side: int) -> Page:
    """Render one page; call with the PDFium lock held (inside open_pdf). Everything PDFium
    made is closed here, and the image is copied out of PDFium's buffer first."""
    page = pdf[index]
    bitmap = textpage = None
    try:
        width, height = page.get_size()  # points: 1/72 inch
        scale = min(PDF_DPI / 72, max_side / max(width, height, 1))
        bitmap = page.render(scale=scale)
        image = to_rgb(bitmap.to_pil()).copy()
        textpage = page.get_textpage()
        text = textpage.get_text_range()
        segments = _char_runs(textpage, height, scale)
    finally:
        for obj in (textpage, bitmap, page):
            if obj is not None:
                obj.close()
    return Page(image, text.replace("\r\n", "\n").strip(), _join_segments(segments))


def _ofd_page(path: Path, index: int, max_side: int) -> Image.Image:
    # OFD pages are vector drawings: drawn at 200 dpi like PDFs, bounded by max_side.
    return to_rgb(ofd.render_page(path, index, max_side=max_side))


def xml_text(path: Path, max_lines: int = 400) -> str:
    """An XML e-invoice as readable lines ("Name: value" for each element with text), for
    people and for the text a decision keeps; the invoice's data itself is read elsewhere."""
    root = SafeET.parse(str(path)).getroot()
    lines = []
    for element in root.iter():
        text = (element.text or "").strip()
        if text:
            name = element.tag.rsplit("}", 1)[-1]
            lines.append(f"{name}: {' '.join(text.split())}"[:200])
            if len(lines) >= max_lines:
                break
    return "\n".join(lines)


def _text_page(text: str, max_side: int) -> Image.Image:
    """Lines of text drawn on a white page (what an XML e-invoice looks like to a person)."""
    lines = text.splitlines()[:120] or [""]
    font = _font(22)
    width = min(max_side, 1400)
    height = min(max_side, 40 + 30 * len(lines))
    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(lines):
        draw.text((30, 20 + 30 * i), line[:110], fill="black", font=font)
    return page


def _font(size: int):
    path = ofd.cjk_font_path()  # CJK-capable, so Chinese names show
    try:
        return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)
    except OSError:
        return ImageFont.load_default(size=size)


def stacked_lines(pages: list[Page], lines_of) -> list[TextLine]:
    """Each page's lines (`lines_of(page)`: its text layer, or OCR of its image) with the pages
    stacked vertically, so reading order and positions hold across pages."""
    out, offset = [], 0.0
    for page in pages:
        for line in lines_of(page):
            x0, y0, x1, y1 = line.box
            out.append(TextLine(line.text, (x0, y0 + offset, x1, y1 + offset), line.score))
        offset += page.image.height
    return out


def _char_runs(textpage, height: float, scale: float) -> list[tuple[str, tuple[float, float, float, float]]]:
    """The page's characters in content order, cut into runs where a line breaks or the next
    character does not continue the previous one on its line (a jump back, a wide gap, another
    baseline), each run with its box in image pixels. Built from each character's loose box (the
    font's full line height): PDFium's own text rectangles split a run wherever glyph heights
    differ ("p" under the baseline), and reading each rectangle back by position mixed letters of
    neighbouring runs ("Invoice" became "Invo" + "ice", "Storyblok" "Stry" + "bo" + "lk")."""
    count = textpage.count_chars()
    text = textpage.get_text_range(0, count) if count else ""
    if len(text) != count:  # characters outside the BMP: read them one by one
        text = "".join(textpage.get_text_range(i, 1)[:1] or " " for i in range(count))
    runs: list[tuple[str, tuple[float, float, float, float]]] = []
    chars: list[str] = []
    box: list[float] | None = None  # PDF space: left, bottom, right, top
    last: tuple[float, float, float, float] | None = None

    def close() -> None:
        nonlocal chars, box, last
        piece = "".join(chars)
        if piece.strip() and box is not None:
            # PDF space has y upwards from the bottom; images have it downwards from the top.
            left, bottom, right, top = box
            runs.append((piece, (left * scale, (height - top) * scale, right * scale, (height - bottom) * scale)))
        chars, box, last = [], None, None

    for i, c in enumerate(text):
        if c in "\r\n":
            close()
            continue
        left, bottom, right, top = textpage.get_charbox(i, loose=True)
        if c.isspace() or right - left <= 0 and top - bottom <= 0:
            if chars:
                chars.append(" ")
            continue
        if last is not None:
            h = max(last[3] - last[1], top - bottom, 1e-3)
            gap = left - last[2]
            mid, last_mid = (top + bottom) / 2, (last[3] + last[1]) / 2
            if abs(mid - last_mid) > 0.5 * h or gap < -0.5 * h or gap > 1.0 * h:
                close()
        chars.append(c)
        last = (left, bottom, right, top)
        box = [left, bottom, right, top] if box is None else [min(box[0], left), min(box[1], bottom),
                                                              max(box[2], right), max(box[3], top)]
    close()
    return runs


def _join_segments(segments: list[tuple[str, tuple[float, float, float, float]]]) -> list[TextLine]:
    """PDFium's text rectangles are runs of characters; join the runs that sit on one line and
    nearly touch into lines, as OCR would read them (a wide gap starts a new line: columns)."""
    lines: list[TextLine] = []
    rows: list[list] = []
    for text, box in sorted(segments, key=lambda s: ((s[1][1] + s[1][3]) / 2, s[1][0])):
        middle, height = (box[1] + box[3]) / 2, box[3] - box[1]
        for row in rows:
            r_box = row[-1][1]
            r_mid, r_height = (r_box[1] + r_box[3]) / 2, r_box[3] - r_box[1]
            gap = box[0] - r_box[2]
            if abs(middle - r_mid) <= 0.5 * max(height, r_height, 1) and -0.5 * height <= gap <= 1.5 * max(height, r_height, 1):
                row.append((text, box))
                break
        else:
            rows.append([(text, box)])
    for row in rows:
        text = "".join(t for t, _ in row).replace("\u3000", " ")
        text = " ".join(text.split())
        if text:
            boxes = [b for _, b in row]
            lines.append(TextLine(text, (min(b[0] for b in boxes), min(b[1] for b in boxes),
                                         max(b[2] for b in boxes), max(b[3] for b in boxes)), 1.0))
    lines.sort(key=lambda line: (round(line.box[1] / 4), line.box[0]))
    return lines


def text_layer_is_garbage(text: str) -> bool:
    """A text layer that does not say what the page shows: characters from a broken font
    encoding (private-use, replacement and control characters, symbol soup) or letters strewn
    one or two at a time (a font whose glyphs map to the wrong letters). OCR the page instead."""
    chars = [c for c in text if not c.isspace()]
    if len(chars) < 20:
        return False
    odd = sum(1 for c in chars if _odd_char(c))
    if odd / len(chars) > 0.05:
        return True
    words = [w for w in text.split() if any(ch.isalpha() for ch in w) and not any(_is_cjk(ch) for ch in w)]
    if len(words) >= 20:
        tiny = sum(1 for w in words if len(w) <= 2)
        vowelless = sum(1 for w in words if len(w) >= 4 and w.isascii() and not any(v in w.lower() for v in "aeiouy"))
        if tiny / len(words) > 0.6 or vowelless / len(words) > 0.4:
            return True
    return False


def _is_cjk(c: str) -> bool:
    return "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff"


def _odd_char(c: str) -> bool:
    category = unicodedata.category(c)
    return c == "\ufffd" or category in ("Co", "Cc", "Cn", "Cs") or (category == "So" and not _is_cjk(c))


def page_image(path: Path, mime_type: str, index: int, *, max_side: int) -> Image.Image:
    """Page `index` exactly as analyzers saw it (same orientation and scale), so positions the
    analyzer recorded (OCR boxes) line up on it. Raises IndexError past the last page."""
    if mime_type == OFD_TYPE:
        if not 0 <= index < ofd.page_count(path):
            raise IndexError(index)
        return _ofd_page(path, index, max_side)
    if mime_type != "application/pdf":
        if index != 0:
            raise IndexError(index)
        return prepare(path, mime_type, max_side=max_side, max_pages=1).pages[0].image
    with open_pdf(path) as pdf:
        if not 0 <= index < len(pdf):
            raise IndexError(index)
        return _pdf_page(pdf, index, max_side).image
