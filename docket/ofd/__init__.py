"""OFD (GB/T 33190), the fixed-layout format of Chinese e-invoices: a ZIP whose `OFD.xml`
points at documents of pages made of text, path and image objects.

Everything here reads untrusted uploads, so it is careful before it is clever:
- the ZIP's central directory is sized up before Python's zipfile reads it; entry counts,
  declared sizes, compression ratios and the bytes really inflated are all capped (zip bombs);
- entry names that are absolute or climb out of the archive (`../`) are refused, and every
  reference inside the XML is resolved inside the archive only;
- XML goes through defusedxml with DTDs forbidden (no entity expansion, no external entities);
  the common producer bugs (`<:eInvoice xmlns:="">`, undeclared prefixes, GBK text) are
  repaired on a second try;
- pages, objects, path points and image pixels per page are capped, so nothing hangs.
Any failure is a `DocumentError` (code `corrupt_document`, or `too_many_pages`) with a message.

Rendering is a small Pillow renderer: text objects drawn at their glyph positions with one CJK
font (the fonts an OFD names, 宋体/楷体/Courier New, are replaced: embedded font programs are not
trusted), lines and Bézier/arc paths, PNG/JPEG/BMP/TIFF/GIF images, templates and annotations
(stamps). JBIG2 images (some QR codes) and signature seals are not drawn.

The package, by concern: `limits` (the caps and the refusal error), `archive` (the ZIP
container), `xmlsafe` (safe parsing and namespace-free lookups), `model` (what an OFD yields),
`geometry` (transforms and small parsers), `render` (the Pillow painter) and `document`
(`OfdFile` and the convenience functions). Every public name is importable from here.
The readers look the caps up in `docket.ofd.limits` at call time: tighten them there
(`docket.ofd.limits.MAX_ENTRIES = ...`).
"""
from __future__ import annotations


from docket.ofd import limits
from docket.ofd.archive import is_zip_head, looks_like_ofd
from docket.ofd.document import (DEFAULT_PAGE_BOX, MIME_TYPE, OfdFile, attachments, custom_tags, page_count,
                                 render_page, text_objects)
from docket.ofd.geometry import Affine
from docket.ofd.limits import (MAX_CENTRAL_DIRECTORY, MAX_ENTRIES, MAX_IMAGE_PIXELS, MAX_NESTING, MAX_OBJECTS,
                               MAX_PAGES, MAX_PART_BYTES, MAX_PATH_POINTS, MAX_RATIO, MAX_RENDER_SIDE,
                               MAX_TOTAL_BYTES, MAX_XML_BYTES)
from docket.ofd.model import Attachment, TaggedValue, TextObject
from docket.ofd.render import CJK_FONT_CANDIDATES, cjk_font_path
from docket.ofd.xmlsafe import child, child_text, children, local, parse_xml

__all__ = [
    "limits", "MIME_TYPE", "MAX_ENTRIES", "MAX_CENTRAL_DIRECTORY", "MAX_TOTAL_BYTES", "MAX_PART_BYTES", "MAX_XML_BYTES",
    "MAX_RATIO", "MAX_PAGES", "MAX_NESTING", "MAX_OBJECTS", "MAX_PATH_POINTS", "MAX_IMAGE_PIXELS",
    "MAX_RENDER_SIDE", "DEFAULT_PAGE_BOX", "CJK_FONT_CANDIDATES", "Affine", "local", "children", "child",
    "child_text", "parse_xml", "looks_like_ofd", "is_zip_head", "TextObject", "Attachment", "TaggedValue",
    "OfdFile", "cjk_font_path", "page_count", "render_page", "text_objects", "attachments", "custom_tags",
]

