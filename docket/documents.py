"""What a document is, decided from its bytes (never its name or declared type), and whether
it is safe and sane to process: size, pixel and page limits, truncation and corruption.

Besides images and PDFs: OFD (the Chinese e-invoice format, a ZIP with an OFD.xml; checked
for ZIP bombs and unsafe names by docket.ofd) and e-invoice XML (UN/CEFACT CII or OASIS UBL
roots only: any other XML is still refused as an unsupported type)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from PIL import Image, ImageFile

from docket import ofd
from docket.errors import DocumentError
from docket.xml_invoice import looks_like_xml_invoice

# A truncated image must be an error, not silently grey pixels.
ImageFile.LOAD_TRUNCATED_IMAGES = False

IMAGE_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "GIF": "image/gif",
}
OFD_TYPE = ofd.MIME_TYPE          # application/ofd
XML_TYPE = "application/xml"      # CII / UBL e-invoices
SUPPORTED = sorted(set(IMAGE_TYPES.values()) | {"application/pdf", OFD_TYPE, XML_TYPE})
# An e-invoice's root element may follow a long licence comment (FeRD's samples): read this
# much of an XML-looking upload to find it.
XML_HEAD_BYTES = 65_536
XML_MAX_BYTES = 16 << 20          # XRechnung files embed their attachments in base64


@dataclass(frozen=True)
class DocumentInfo:
    mime_type: str
    page_count: int
    width: int | None = None
    height: int | None = None


def sniff(head: bytes) -> str | None:
    """The MIME type named by the leading bytes, or None when it is none we accept. An OFD
    (a ZIP) needs a look inside the archive: `inspect` does that."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"BM"):
        return "image/bmp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if looks_like_xml_invoice(head):
        return XML_TYPE
    # PDF readers accept a header anywhere in the first KiB.
    if b"%PDF-" in head[:1024]:
        return "application/pdf"
    return None


def inspect(path: Path, *, max_pixels: int, max_pages: int) -> DocumentInfo:
    """Check a stored upload fully; raise DocumentError with a stable code when unusable."""
    size = path.stat().st_size
    if size == 0:
        raise DocumentError("The uploaded file is empty.", code="empty_file", status=400, title="Empty file")
    with path.open("rb") as fh:
        head = fh.read(1024)
        if _xml_like(head):
            head += fh.read(XML_HEAD_BYTES - len(head))
    mime = sniff(head)
    if mime is None and ofd.is_zip_head(head) and ofd.looks_like_ofd(path):
        mime = OFD_TYPE
    if mime is None:
        raise DocumentError(
            f"Unsupported document type; accepted: {', '.join(SUPPORTED)} (decided from the file's bytes).",
            code="unsupported_type", status=415, title="Unsupported media type")
    if mime == "application/pdf":
        return _inspect_pdf(path, max_pages)
    if mime == OFD_TYPE:
        return _inspect_ofd(path, max_pages)
    if mime == XML_TYPE:
        return _inspect_xml(path)
    return _inspect_image(path, mime, max_pixels)


def _xml_like(head: bytes) -> bool:
    stripped = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return stripped.startswith(b"<") or head[:2] in (b"\xff\xfe", b"\xfe\xff")


def _inspect_ofd(path: Path, max_pages: int) -> DocumentInfo:
    """Open the archive (ZIP bomb, name and XML checks happen there), count the pages and
    read the first page's size (in points, as for PDFs; the OFD's own unit is the mm)."""
    with ofd.OfdFile(path) as doc:
        pages = doc.page_count()
        if pages > max_pages:
            raise DocumentError(f"The OFD has {pages} pages; the limit is {max_pages}.",
                                code="too_many_pages", status=422, title="Too many pages")
        width_mm, height_mm = doc.page_size(0)
        doc.text_objects(0)   # the first page's content must be readable
    return DocumentInfo(mime_type=OFD_TYPE, page_count=pages, width=round(width_mm / 25.4 * 72),
                        height=round(height_mm / 25.4 * 72))


def _inspect_xml(path: Path) -> DocumentInfo:
    """Parse it fully (defusedxml, no DTDs or entities): truncated or hostile XML is refused."""
    if path.stat().st_size > XML_MAX_BYTES:
        raise DocumentError(f"The XML document is over {XML_MAX_BYTES} bytes.", code="corrupt_document",
                            status=422, title="Corrupt document")
    try:
        SafeET.fromstring(path.read_bytes(), forbid_dtd=True)
    except DefusedXmlException as exc:
        raise DocumentError(f"XML with a DTD or entity declarations is refused ({type(exc).__name__}).",
                            code="corrupt_document", status=422, title="Corrupt document") from exc
    except (ParseError, ValueError, LookupError) as exc:
        raise DocumentError(f"The XML is truncated or not well-formed: {exc}", code="corrupt_document",
                            status=422, title="Corrupt document") from exc
    return DocumentInfo(mime_type=XML_TYPE, page_count=1)


def _inspect_image(path: Path, mime: str, max_pixels: int) -> DocumentInfo:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise DocumentError(
                        f"Image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}.",
                        code="image_too_large", status=422, title="Image too large")
                img.seek(0)  # GIF/TIFF: the first frame is the document
                img.load()
    except DocumentError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DocumentError(f"Image exceeds the pixel limit: {exc}", code="image_too_large",
                            status=422, title="Image too large") from exc
    except Exception as exc:  # PIL raises many types for broken files
        raise DocumentError(f"The image is truncated or corrupt: {exc}", code="corrupt_document",
                            status=422, title="Corrupt document") from exc
    return DocumentInfo(mime_type=mime, page_count=1, width=width, height=height)


def _inspect_pdf(path: Path, max_pages: int) -> DocumentInfo:
    import pypdfium2 as pdfium

    from docket.pdfium_lock import open_pdf

    try:
        with open_pdf(path) as pdf:
            pages = len(pdf)
            if pages == 0:
                raise DocumentError("The PDF has no pages.", code="corrupt_document", status=422,
                                    title="Corrupt document")
            if pages > max_pages:
                raise DocumentError(f"The PDF has {pages} pages; the limit is {max_pages}.",
                                    code="too_many_pages", status=422, title="Too many pages")
            first = pdf[0]
            try:
                width, height = first.get_size()
            finally:
                first.close()
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise DocumentError("The PDF is encrypted with a password.", code="encrypted_pdf",
                                status=422, title="Encrypted PDF") from exc
        raise DocumentError(f"The PDF is truncated or corrupt: {exc}", code="corrupt_document",
                            status=422, title="Corrupt document") from exc
    return DocumentInfo(mime_type="application/pdf", page_count=pages, width=int(width), height=int(height))
