"""From stored bytes to page images (and PDF text) an analyzer can read.

Orientation from EXIF, RGB on white, longest side bounded; PDF pages rasterised with pdfium
at a scale that respects the same bound, with the text layer kept where the PDF has one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

from docket.documents import DocumentError
from docket.pdfium_lock import open_pdf

# 200 dpi reads small print well; the max-side bound caps it for large pages.
PDF_DPI = 200


@dataclass
class Page:
    image: Image.Image
    text_layer: str = ""


@dataclass
class PreparedDocument:
    mime_type: str
    pages: list[Page]
    page_count: int  # in the file; `pages` may hold fewer (the OCR page limit)
    filename: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def text_layer(self) -> str:
        return "\n".join(p.text_layer for p in self.pages if p.text_layer)


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
        with Image.open(path) as img:
            img.seek(0)  # GIF/TIFF: first frame
            page = bound(to_rgb(ImageOps.exif_transpose(img)), max_side)
        return PreparedDocument(mime_type=mime_type, pages=[Page(page)], page_count=1, filename=filename)
    except DocumentError:
        raise
    except Exception as exc:
        raise DocumentError(f"The document could not be read: {exc}", code="corrupt_document") from exc


def _prepare_pdf(path: Path, max_side: int, max_pages: int, filename: str | None) -> PreparedDocument:
    with open_pdf(path) as pdf:
        pages = [_pdf_page(pdf, index, max_side) for index in range(min(len(pdf), max_pages))]
        return PreparedDocument(mime_type="application/pdf", pages=pages, page_count=len(pdf), filename=filename)


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
    finally:
        for obj in (textpage, bitmap, page):
            if obj is not None:
                obj.close()
    return Page(image, text.replace("\r\n", "\n").strip())


def page_image(path: Path, mime_type: str, index: int, *, max_side: int) -> Image.Image:
    """Page `index` exactly as analyzers saw it (same orientation and scale), so positions the
    analyzer recorded (OCR boxes) line up on it. Raises IndexError past the last page."""
    if mime_type != "application/pdf":
        if index != 0:
            raise IndexError(index)
        return prepare(path, mime_type, max_side=max_side, max_pages=1).pages[0].image
    with open_pdf(path) as pdf:
        if not 0 <= index < len(pdf):
            raise IndexError(index)
        return _pdf_page(pdf, index, max_side).image
