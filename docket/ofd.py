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
"""
from __future__ import annotations

import codecs
import io
import math
import posixpath
import re
import struct
import threading
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from PIL import Image, ImageDraw, ImageFont

from docket.errors import DocumentError

MIME_TYPE = "application/ofd"

MAX_ENTRIES = 5_000                 # files in the archive
MAX_CENTRAL_DIRECTORY = 4 << 20     # bytes of ZIP central directory
MAX_TOTAL_BYTES = 256 << 20         # declared uncompressed size of all entries together
MAX_PART_BYTES = 32 << 20           # one entry, inflated (images, fonts, attachments)
MAX_XML_BYTES = 8 << 20             # one XML entry, inflated
MAX_RATIO = 200                     # inflated/compressed, checked for entries over 1 MiB
MAX_PAGES = 10_000                  # pages an OFD may list at all (callers apply their own limit)
MAX_NESTING = 32                    # PageBlock / CompositeObject depth followed
MAX_OBJECTS = 50_000                # graphic objects drawn or read on one page
MAX_PATH_POINTS = 500_000           # flattened path points on one page
MAX_IMAGE_PIXELS = 40_000_000       # one embedded image
MAX_RENDER_SIDE = 10_000            # pixels

DEFAULT_PAGE_BOX = (0.0, 0.0, 210.0, 297.0)   # A4, millimetres
CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",        # Debian fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",          # Debian fonts-wqy-zenhei
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian fonts-noto-cjk
)
_IMAGE_FORMATS = ["PNG", "JPEG", "BMP", "TIFF", "GIF"]

Affine = tuple[float, float, float, float, float, float]   # x' = a*x + c*y + e, y' = b*x + d*y + f
_IDENTITY: Affine = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _corrupt(detail: str) -> DocumentError:
    return DocumentError(detail, code="corrupt_document", status=422, title="Corrupt document")


# --------------------------------------------------------------------------------------------
# XML: safe parsing, repair of common producer bugs, namespace-free lookups


def local(tag: object) -> str:
    """An element's name without its namespace ('' for comments and processing instructions)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def children(element: Element | None, name: str) -> Iterator[Element]:
    if element is not None:
        for sub in element:
            if local(sub.tag) == name:
                yield sub


def child(element: Element | None, name: str) -> Element | None:
    return next(children(element, name), None)


def child_text(element: Element | None, name: str) -> str | None:
    found = child(element, name)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_TAG = re.compile(r"<[^<>]*>")
_ELEMENT_PREFIX = re.compile(r"^<(/?)[^\s<>/=\"':]*:")
_XMLNS_ATTRIBUTE = re.compile(r"""\s+xmlns(?::[^\s=]*)?\s*=\s*(?:"[^"]*"|'[^']*')""")
_ATTRIBUTE_PREFIX = re.compile(r"""(\s)[^\s<>/="':]+:(?=[^\s<>/="':]+\s*=)""")
_GB_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "cp936": "gb18030", "x-gbk": "gb18030"}


def parse_xml(data: bytes, name: str = "XML") -> Element:
    """Parse untrusted XML with defusedxml (DTDs and entities refused); when strict parsing
    fails, retry once on a copy decoded from its declared (or GBK) encoding with namespace
    prefixes and declarations removed. Raises DocumentError."""
    if len(data) > MAX_XML_BYTES:
        raise _corrupt(f"{name} is {len(data)} bytes; XML parts are limited to {MAX_XML_BYTES}.")
    try:
        return SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise _corrupt(f"{name}: XML with a DTD or entity declarations is refused ({type(exc).__name__}).") from exc
    except ParseError as first:
        error = first
    except (ValueError, LookupError) as exc:   # e.g. an encoding expat does not know
        error = exc
    try:
        text = _decode(data)
    except UnicodeError as exc:
        raise _corrupt(f"{name}: cannot decode the XML: {exc}") from exc
    repaired = _TAG.sub(_repair_tag, _XML_DECLARATION.sub("", text, count=1))
    try:
        return SafeET.fromstring(repaired.encode("utf-8"), forbid_dtd=True)
    except DefusedXmlException as exc:
        raise _corrupt(f"{name}: XML with a DTD or entity declarations is refused ({type(exc).__name__}).") from exc
    except (ParseError, ValueError) as exc:
        raise _corrupt(f"{name} is not well-formed XML: {error}") from exc


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    declared = _DECLARED_ENCODING.match(data)
    if declared:
        encoding = declared.group(1).decode("ascii").lower()
        encoding = _GB_ALIASES.get(encoding, encoding)
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            codec = "utf-8"
        if codec != "utf-8":
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")   # undeclared Chinese text is mostly GBK


def _repair_tag(match: re.Match) -> str:
    tag = match.group(0)
    if tag.startswith(("<?", "<!")):
        return tag
    tag = _ELEMENT_PREFIX.sub(r"<\1", tag, count=1)
    tag = _XMLNS_ATTRIBUTE.sub("", tag)
    return _ATTRIBUTE_PREFIX.sub(r"\1", tag)


# --------------------------------------------------------------------------------------------
# The ZIP container


def _normalize(name: str) -> str:
    name = name.replace("\\", "/")
    while name.startswith(("/", "./")):
        name = name[1:] if name.startswith("/") else name[2:]
    return name


def _check_central_directory(fh) -> None:
    """Refuse archives whose central directory is too big before zipfile loads all of it."""
    fh.seek(0, 2)
    size = fh.tell()
    tail_len = min(size, 65_536 + 22)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise _corrupt("The OFD is not a readable ZIP archive (no end of central directory).")
    entries, cd_size = struct.unpack("<HI", tail[at + 10:at + 16])
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:   # ZIP64: the locator sits just before
        loc = tail[at - 20:at] if at >= 20 else b""
        if loc[:4] != b"PK\x06\x07":
            raise _corrupt("The OFD's ZIP64 directory is damaged.")
        (offset,) = struct.unpack("<Q", loc[8:16])
        if offset > size - 56:
            raise _corrupt("The OFD's ZIP64 directory is damaged.")
        fh.seek(offset)
        rec = fh.read(56)
        if rec[:4] != b"PK\x06\x06":
            raise _corrupt("The OFD's ZIP64 directory is damaged.")
        entries, cd_size = struct.unpack("<QQ", rec[32:48])
    if entries > MAX_ENTRIES:
        raise _corrupt(f"The OFD archive lists {entries} files; the limit is {MAX_ENTRIES}.")
    if cd_size > MAX_CENTRAL_DIRECTORY:
        raise _corrupt(f"The OFD archive's directory is {cd_size} bytes; the limit is {MAX_CENTRAL_DIRECTORY}.")
    fh.seek(0)


class _Archive:
    """Read-only, size-capped view of the archive's entries."""

    def __init__(self, path: Path | str):
        try:
            self._fh = open(path, "rb")
        except OSError as exc:
            raise _corrupt(f"The OFD cannot be read: {exc}") from exc
        try:
            _check_central_directory(self._fh)
            self._zip = zipfile.ZipFile(self._fh)
            self._entries = self._index(self._zip.infolist())
        except DocumentError:
            self._fh.close()
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, struct.error) as exc:
            self._fh.close()
            raise _corrupt(f"The OFD is not a readable ZIP archive: {exc}") from exc
        self._folded = {}
        for name in self._entries:
            self._folded.setdefault(name.casefold(), name)

    @staticmethod
    def _index(infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
        if len(infos) > MAX_ENTRIES:
            raise _corrupt(f"The OFD archive holds {len(infos)} files; the limit is {MAX_ENTRIES}.")
        total = 0
        entries: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            raw = info.filename
            name = _entry_name(info).replace("\\", "/")
            parts = name.split("/")
            if (name.startswith("/") or "\x00" in name or ".." in parts
                    or re.match(r"^[A-Za-z]:", name)):
                raise _corrupt(f"The OFD archive has an unsafe file name: {raw[:200]!r}.")
            if info.is_dir():
                continue
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise _corrupt(f"The OFD's files would expand to more than {MAX_TOTAL_BYTES} bytes "
                               "(a ZIP bomb?).")
            if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise _corrupt(f"The OFD's file {name[:200]!r} is compressed {info.file_size // max(info.compress_size, 1)}"
                               f" to 1 (a ZIP bomb?); the limit is {MAX_RATIO} to 1.")
            entries.setdefault(_normalize(name), info)
        return entries

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def find(self, name: str) -> str | None:
        name = _normalize(name)
        if name in self._entries:
            return name
        return self._folded.get(name.casefold())   # producers get letter case wrong

    def resolve(self, base: str | None, location: str | None) -> str | None:
        """A location written in entry `base` (relative to it, or absolute from the root) as an
        entry name, or None. A location that climbs out of the archive is an error."""
        location = (location or "").strip().replace("\\", "/")
        if not location:
            return None
        if location.startswith("/"):
            candidates = [location.lstrip("/")]
        else:
            base_dir = posixpath.dirname(_normalize(base)) if base else ""
            candidates = [posixpath.join(base_dir, location), location]
        for candidate in candidates:
            normal = posixpath.normpath(_normalize(candidate))
            if normal == ".." or normal.startswith("../"):
                raise _corrupt(f"The OFD refers to {location[:200]!r}, outside the archive.")
            found = self.find(normal)
            if found is not None:
                return found
        return None

    def read(self, name: str, limit: int | None = None) -> bytes:
        limit = MAX_PART_BYTES if limit is None else limit
        info = self._entries.get(name)
        if info is None:
            raise _corrupt(f"The OFD lacks {name[:200]!r}.")
        if info.file_size > limit:
            raise _corrupt(f"The OFD's file {name[:200]!r} is {info.file_size} bytes; the limit is {limit}.")
        try:
            with self._zip.open(info) as stream:
                data = stream.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError, OSError,
                ValueError) as exc:   # RuntimeError: encrypted; NotImplementedError: compression method
            raise _corrupt(f"The OFD's file {name[:200]!r} cannot be read: {exc}") from exc
        if len(data) > limit:
            raise _corrupt(f"The OFD's file {name[:200]!r} inflates past {limit} bytes (a ZIP bomb?).")
        return data

    def close(self) -> None:
        try:
            self._zip.close()
        finally:
            self._fh.close()


def _entry_name(info: zipfile.ZipInfo) -> str:
    """Entry names without the UTF-8 flag are decoded as CP437 by zipfile; Chinese tools
    mostly wrote UTF-8 or GBK there."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    if raw.isascii():
        return info.filename
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def looks_like_ofd(path: Path | str) -> bool:
    """True when the file is a ZIP archive with an `OFD.xml` at its root. Never raises: a ZIP
    that cannot even be listed is not taken for an OFD (it is refused as unsupported)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
                return False
            _check_central_directory(fh)
            with zipfile.ZipFile(fh) as zf:
                names = zf.namelist()
    except (DocumentError, zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            struct.error):
        return False
    return any(_normalize(n.replace("\\", "/")).casefold() == "ofd.xml" for n in names)


def is_zip_head(head: bytes) -> bool:
    """The leading bytes of a ZIP archive (which an OFD is)."""
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


# --------------------------------------------------------------------------------------------
# The document model


@dataclass(frozen=True)
class TextObject:
    """A text object on a page: its text, and its box on the page in millimetres
    (origin top left)."""

    id: str | None
    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    size: float
    from_template: bool = False


@dataclass(frozen=True)
class Attachment:
    """A file attached to the OFD (`Attachs/…`), e.g. the invoice's own XML."""

    name: str          # the Name attribute, e.g. "original_invoice"
    format: str        # the Format attribute, e.g. "xml" ("" when absent)
    entry: str         # the archive entry, e.g. "Doc_0/Attachs/original_invoice.xml"
    size: int          # inflated bytes


@dataclass(frozen=True)
class TaggedValue:
    """One leaf of a custom tag file (`Tags/CustomTag.xml`): the element path from below the
    root (local names, e.g. ("Seller", "SellerName")), the page text objects it points at
    (PageRef, object ID) and their text joined. `parent` numbers the leaf's parent element
    (document order), so repeated groups such as GoodsInfo can be told apart."""

    path: tuple[str, ...]
    text: str
    refs: tuple[tuple[str | None, str], ...]
    parent: int


@dataclass
class _Resources:
    fonts: dict[str, str] = field(default_factory=dict)              # ID -> font name
    media: dict[str, tuple[str, str]] = field(default_factory=dict)  # ID -> (format, entry)
    draw_params: dict[str, Element] = field(default_factory=dict)
    color_spaces: dict[str, str] = field(default_factory=dict)       # ID -> RGB/GRAY/CMYK
    units: dict[str, Element] = field(default_factory=dict)          # composite graphic units


@dataclass
class _Doc:
    entry: str
    page_box: tuple[float, float, float, float]
    templates: dict[str, str]
    resources: _Resources
    custom_tags: str | None
    attachments: str | None
    annotations: str | None


@dataclass
class _Page:
    doc: _Doc
    id: str | None
    entry: str | None


class OfdFile:
    """An opened OFD. Use as a context manager; every method may raise DocumentError."""

    def __init__(self, path: Path | str):
        self._archive = _Archive(path)
        self._xml_cache: dict[str, Element] = {}
        try:
            self._load()
        except BaseException:
            self._archive.close()
            raise

    def __enter__(self) -> OfdFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._archive.close()

    # -- structure

    def xml(self, entry: str) -> Element:
        if entry not in self._xml_cache:
            self._xml_cache[entry] = parse_xml(self._archive.read(entry, MAX_XML_BYTES), entry)
        return self._xml_cache[entry]

    def _load(self) -> None:
        entry = self._archive.find("OFD.xml")
        if entry is None:
            raise _corrupt("Not an OFD: the archive has no OFD.xml.")
        root = self.xml(entry)
        if local(root.tag) != "OFD":
            raise _corrupt(f"Not an OFD: OFD.xml holds <{local(root.tag)[:50]}>.")
        self.custom_data: dict[str, str] = {}
        for item in children(child(child(child(root, "DocBody"), "DocInfo"), "CustomDatas"), "CustomData"):
            name = (item.get("Name") or "").strip()
            if name and name not in self.custom_data:
                self.custom_data[name] = (item.text or "").strip()
        self.docs: list[_Doc] = []
        self.pages: list[_Page] = []
        for body in children(root, "DocBody"):
            doc_entry = self._archive.resolve(entry, child_text(body, "DocRoot"))
            if doc_entry is None:
                continue
            self._load_doc(doc_entry)
        if not self.docs:
            raise _corrupt("The OFD has no readable document (DocRoot missing).")
        if not self.pages:
            raise _corrupt("The OFD has no pages.")

    def _load_doc(self, entry: str) -> None:
        document = self.xml(entry)
        common = child(document, "CommonData")
        resolve = self._archive.resolve
        templates = {}
        for tpl in children(common, "TemplatePage"):
            tpl_id = (tpl.get("ID") or "").strip()
            located = resolve(entry, tpl.get("BaseLoc"))
            if tpl_id and located:
                templates[tpl_id] = located
        res_entries = [resolve(entry, el.text) for el in (common if common is not None else [])
                       if local(el.tag) in ("PublicRes", "DocumentRes")]
        doc = _Doc(
            entry=entry,
            page_box=_box(child_text(child(common, "PageArea"), "PhysicalBox")) or DEFAULT_PAGE_BOX,
            templates=templates,
            resources=self._resources([r for r in res_entries if r]),
            custom_tags=resolve(entry, child_text(document, "CustomTags")),
            attachments=resolve(entry, child_text(document, "Attachments")),
            annotations=resolve(entry, child_text(document, "Annotations")),
        )
        self.docs.append(doc)
        for page in children(child(document, "Pages"), "Page"):
            if len(self.pages) >= MAX_PAGES:
                raise DocumentError(f"The OFD lists more than {MAX_PAGES} pages.", code="too_many_pages",
                                    status=422, title="Too many pages")
            self.pages.append(_Page(doc, (page.get("ID") or "").strip() or None,
                                    resolve(entry, page.get("BaseLoc"))))

    def _resources(self, entries: list[str], into: _Resources | None = None) -> _Resources:
        res = into or _Resources()
        for entry in entries:
            try:
                root = self.xml(entry)
            except DocumentError:
                continue   # a broken resource file costs fonts or images, not the document
            base = entry
            base_loc = (root.get("BaseLoc") or "").strip().replace("\\", "/")
            if base_loc.startswith("/"):
                base = base_loc.strip("/") + "/_"
            elif base_loc:
                base = posixpath.join(posixpath.dirname(entry), base_loc.strip("/"), "_")
            for group in root:
                kind = local(group.tag)
                for item in group:
                    item_id = (item.get("ID") or "").strip()
                    if not item_id:
                        continue
                    if kind == "Fonts":
                        res.fonts.setdefault(item_id, item.get("FontName") or item.get("FamilyName") or "")
                    elif kind == "MultiMedias":
                        media_file = child_text(item, "MediaFile")
                        try:
                            located = (self._archive.resolve(base, media_file)
                                       or self._archive.resolve(entry, media_file))
                        except DocumentError:
                            located = None
                        if located:
                            res.media.setdefault(item_id, ((item.get("Format") or "").upper(), located))
                    elif kind == "DrawParams":
                        res.draw_params.setdefault(item_id, item)
                    elif kind == "ColorSpaces":
                        res.color_spaces.setdefault(item_id, (item.get("Type") or "RGB").upper())
                    elif kind == "CompositeGraphicUnits":
                        res.units.setdefault(item_id, item)
        return res

    def page_count(self) -> int:
        return len(self.pages)

    def _page(self, index: int) -> _Page:
        if not 0 <= index < len(self.pages):
            raise _corrupt(f"The OFD has {len(self.pages)} pages; there is no page {index + 1}.")
        return self.pages[index]

    def page_size(self, index: int) -> tuple[float, float]:
        """(width, height) of a page in millimetres."""
        return self._page_box(self._page(index))[2:]

    def _page_box(self, page: _Page) -> tuple[float, float, float, float]:
        box = None
        if page.entry:
            box = _box(child_text(child(self.xml(page.entry), "Area"), "PhysicalBox"))
        return box or page.doc.page_box

    def _page_resources(self, page: _Page, root: Element) -> _Resources:
        extra = [self._archive.resolve(page.entry, (el.text or "")) for el in children(root, "PageRes")]
        extra = [e for e in extra if e]
        if not extra:
            return page.doc.resources
        base = page.doc.resources
        merged = _Resources(dict(base.fonts), dict(base.media), dict(base.draw_params),
                            dict(base.color_spaces), dict(base.units))
        return self._resources(extra, merged)

    # -- walking page content

    def _layers(self, page: _Page) -> Iterator[tuple[list[Element], Affine, bool, _Resources]]:
        """(objects, transform, from_template, resources) in drawing order: background
        templates, the page, foreground templates, then annotations."""
        if page.entry is None:
            raise _corrupt("An OFD page's content file is missing.")
        root = self.xml(page.entry)
        res = self._page_resources(page, root)
        box = self._page_box(page)
        origin: Affine = (1.0, 0.0, 0.0, 1.0, -box[0], -box[1])
        before, after = [], []
        for ref in children(root, "Template"):
            tpl = page.doc.templates.get((ref.get("TemplateID") or "").strip())
            if tpl is None:
                continue
            try:
                tpl_root = self.xml(tpl)
            except DocumentError:
                continue
            layers = [list(layer) for layer in children(child(tpl_root, "Content"), "Layer")]
            (after if (ref.get("ZOrder") or "").lower() == "foreground" else before).extend(layers)
        for objects in before:
            yield objects, origin, True, res
        for layer in children(child(root, "Content"), "Layer"):
            yield list(layer), origin, False, res
        for objects in after:
            yield objects, origin, True, res
        for appearance, transform in self._annotations(page, origin):
            yield appearance, transform, True, res

    def _annotations(self, page: _Page, origin: Affine) -> Iterator[tuple[list[Element], Affine]]:
        doc = page.doc
        if doc.annotations is None or page.id is None:
            return
        try:
            listing = self.xml(doc.annotations)
        except DocumentError:
            return
        for ref in children(listing, "Page"):
            if (ref.get("PageID") or "").strip() != page.id:
                continue
            try:
                entry = self._archive.resolve(doc.annotations, child_text(ref, "FileLoc"))
                annots = self.xml(entry) if entry else None
            except DocumentError:
                continue
            for annot in children(annots, "Annot"):
                if (annot.get("Visible") or "true").lower() == "false":
                    continue
                for appearance in children(annot, "Appearance"):
                    box = _box(appearance.get("Boundary")) or (0.0, 0.0, 0.0, 0.0)
                    yield list(appearance), _compose(origin, (1.0, 0.0, 0.0, 1.0, box[0], box[1]))

    def _walk(self, page: _Page, visit: Callable[[Element, Affine, bool, _Resources], None]) -> None:
        count = 0

        def walk(objects: list[Element], transform: Affine, from_template: bool, res: _Resources,
                 depth: int) -> None:
            nonlocal count
            for obj in objects:
                name = local(obj.tag)
                count += 1
                if count > MAX_OBJECTS:
                    raise _corrupt(f"An OFD page holds more than {MAX_OBJECTS} objects.")
                if name in ("TextObject", "PathObject", "ImageObject"):
                    visit(obj, transform, from_template, res)
                elif depth >= MAX_NESTING:
                    continue
                elif name == "PageBlock":
                    walk(list(obj), transform, from_template, res, depth + 1)
                elif name == "CompositeObject":
                    unit = res.units.get((obj.get("ResourceID") or "").strip())
                    content = child(unit, "Content")
                    if content is not None:
                        walk(list(content), _compose(transform, _object_transform(obj)), from_template, res,
                             depth + 1)

        for objects, transform, from_template, res in self._layers(page):
            walk(objects, transform, from_template, res, 0)

    # -- text and invoice data

    def text_objects(self, index: int, *, include_templates: bool = True) -> list[TextObject]:
        """The page's text objects in document order, with their boxes in millimetres."""
        found: list[TextObject] = []

        def visit(obj: Element, transform: Affine, from_template: bool, res: _Resources) -> None:
            if local(obj.tag) != "TextObject" or (from_template and not include_templates):
                return
            text = "".join(_clean(code.text) for code in children(obj, "TextCode"))
            box = _box(obj.get("Boundary")) or (0.0, 0.0, 0.0, 0.0)
            x0, y0, x1, y1 = _transform_rect(transform, box)
            found.append(TextObject((obj.get("ID") or "").strip() or None, text, x0, y0, x1, y1,
                                    _float(obj.get("Size"), 0.0), from_template))

        self._walk(self._page(index), visit)
        return found

    def page_text(self, index: int) -> str:
        """The page's text, one line per row of text objects, left to right."""
        objects = [o for o in self.text_objects(index) if o.text.strip()]
        lines: list[list[TextObject]] = []
        for obj in sorted(objects, key=lambda o: (o.y1, o.x0)):
            if lines and abs(lines[-1][0].y1 - obj.y1) < max(1.0, obj.size * 0.5):
                lines[-1].append(obj)
            else:
                lines.append([obj])
        return "\n".join(" ".join(o.text for o in sorted(line, key=lambda o: o.x0)) for line in lines)

    def object_texts(self, index: int) -> dict[str, str]:
        """Text of each text object with an ID on the page (page objects win over template ones)."""
        texts: dict[str, str] = {}
        for obj in self.text_objects(index):
            if obj.id and (obj.id not in texts or not obj.from_template):
                texts[obj.id] = obj.text
        return texts

    def attachments(self) -> list[Attachment]:
        found = []
        for doc in self.docs:
            if doc.attachments is None:
                continue
            listing = self.xml(doc.attachments)
            for att in children(listing, "Attachment"):
                entry = self._archive.resolve(doc.attachments, child_text(att, "FileLoc"))
                if entry is None:
                    continue
                info = self._archive._entries[entry]
                found.append(Attachment((att.get("Name") or posixpath.basename(entry)).strip(),
                                        (att.get("Format") or "").strip(), entry, info.file_size))
        return found

    def read_attachment(self, attachment: Attachment) -> bytes:
        return self._archive.read(attachment.entry)

    def custom_tags(self) -> list[TaggedValue]:
        """Every leaf of the custom tag files, its object references resolved to page text."""
        page_texts: dict[int, dict[str, str]] = {}

        def object_text(page_ref: str | None, object_id: str) -> str | None:
            candidates = [i for i, p in enumerate(self.pages) if page_ref and p.id == page_ref.strip()]
            for i in candidates or range(len(self.pages)):
                if i not in page_texts:
                    page_texts[i] = self.object_texts(i)
                if object_id in page_texts[i]:
                    return page_texts[i][object_id]
            return None

        values: list[TaggedValue] = []
        for doc in self.docs:
            if doc.custom_tags is None:
                continue
            listing = self.xml(doc.custom_tags)
            for tag in children(listing, "CustomTag"):
                entry = self._archive.resolve(doc.custom_tags, child_text(tag, "FileLoc"))
                if entry is None:
                    continue
                self._tag_leaves(self.xml(entry), values, object_text)
        return values

    @staticmethod
    def _tag_leaves(root: Element, values: list[TaggedValue],
                    object_text: Callable[[str | None, str], str | None]) -> None:
        counter = 0

        def visit(element: Element, path: tuple[str, ...], parent: int, depth: int) -> None:
            nonlocal counter
            name = local(element.tag)
            if not name or depth > MAX_NESTING or len(values) > MAX_OBJECTS:
                return
            refs = [(r.get("PageRef"), (r.text or "").strip()) for r in children(element, "ObjectRef")]
            subs = [e for e in element if local(e.tag) and local(e.tag) != "ObjectRef"]
            if refs or not subs:
                if refs:
                    text = "".join(object_text(page_ref, oid) or "" for page_ref, oid in refs if oid)
                else:
                    text = (element.text or "")
                text = text.strip()
                if text or refs:
                    values.append(TaggedValue((*path, name), text, tuple(refs), parent))
                return
            counter += 1
            me = counter
            for sub in subs:
                visit(sub, (*path, name), me, depth + 1)

        for sub in root:
            visit(sub, (), 0, 0)

    # -- rendering

    def render(self, index: int, max_side: int = 1600) -> Image.Image:
        page = self._page(index)
        box = self._page_box(page)
        width_mm, height_mm = box[2], box[3]
        max_side = int(min(max(max_side, 16), MAX_RENDER_SIDE))
        scale = max_side / max(width_mm, height_mm)
        size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
        image = Image.new("RGB", size, "white")
        _Painter(self, image, scale).paint(page)
        return image


# --------------------------------------------------------------------------------------------
# Drawing


class _Painter:
    def __init__(self, ofd: OfdFile, image: Image.Image, scale: float):
        self.ofd = ofd
        self.image = image
        self.draw = ImageDraw.Draw(image, "RGBA")
        self.scale = scale
        self.points = 0
        self.font_path = cjk_font_path()

    def paint(self, page: _Page) -> None:
        with _FONT_LOCK:   # the cached FreeType faces are shared between threads
            self.ofd._walk(page, self.visit)

    def visit(self, obj: Element, transform: Affine, from_template: bool, res: _Resources) -> None:
        if (obj.get("Visible") or "true").lower() == "false":
            return
        t = _compose(transform, _object_transform(obj))
        t = (t[0] * self.scale, t[1] * self.scale, t[2] * self.scale, t[3] * self.scale,
             t[4] * self.scale, t[5] * self.scale)
        name = local(obj.tag)
        try:
            if name == "TextObject":
                self.text(obj, t, res)
            elif name == "PathObject":
                self.path(obj, t, res)
            elif name == "ImageObject":
                self.picture(obj, t, res)
        except DocumentError:
            raise
        except (ValueError, OverflowError, ZeroDivisionError, OSError, MemoryError):
            pass   # one undrawable object must not cost the page

    def _params(self, obj: Element, res: _Resources) -> dict:
        """Line width and colours from the object, falling back to its DrawParam chain."""
        params: dict = {}
        chain, seen = [], set()
        ref = (obj.get("DrawParam") or "").strip()
        while ref and ref not in seen and len(seen) < 16:
            seen.add(ref)
            dp = res.draw_params.get(ref)
            if dp is None:
                break
            chain.append(dp)
            ref = (dp.get("Relative") or "").strip()
        for source in [obj, *chain]:
            if "line_width" not in params and source.get("LineWidth"):
                params["line_width"] = _float(source.get("LineWidth"), 0.353)
            for key, tag in (("fill", "FillColor"), ("stroke", "StrokeColor")):
                el = child(source, tag)
                if key not in params and el is not None:
                    params[key] = _color(el, res)
        return params

    def text(self, obj: Element, t: Affine, res: _Resources) -> None:
        params = self._params(obj, res)
        fill_flag = (obj.get("Fill") or "true").lower() != "false"
        stroke_flag = (obj.get("Stroke") or "false").lower() == "true"
        if not fill_flag and not stroke_flag:
            return   # invisible text (e.g. the text layer over a scanned image)
        color = params.get("fill", (0, 0, 0, 255)) if fill_flag else params.get("stroke", (0, 0, 0, 255))
        alpha = obj.get("Alpha")
        if alpha is not None:
            color = (*color[:3], int(min(255, max(0, _float(alpha, 255)))))
        if color[3] == 0:
            return
        size_mm = _float(obj.get("Size"), 3.5)
        det = math.sqrt(abs(t[0] * t[3] - t[1] * t[2]))
        px = size_mm * det
        if not 1 <= px <= 2000 or self.font_path is None:
            return
        font = _font(self.font_path, int(round(px)))
        x = y = 0.0
        for code in children(obj, "TextCode"):
            text = _clean(code.text)
            x = _float(code.get("X"), x)
            y = _float(code.get("Y"), y)
            if not text:
                continue
            dx = _deltas(code.get("DeltaX"), len(text) - 1)
            dy = _deltas(code.get("DeltaY"), len(text) - 1)
            cx, cy = x, y
            for i, char in enumerate(text):
                self.points += 1
                if self.points > MAX_PATH_POINTS:
                    return
                if not char.isspace():
                    gx, gy = _apply(t, cx, cy)
                    self.draw.text((gx, gy), char, font=font, fill=color, anchor="ls")
                if i < len(dx):
                    cx += dx[i]
                else:
                    cx += font.getlength(char) / max(det, 1e-6)
                if i < len(dy):
                    cy += dy[i]
            x, y = cx, cy

    def path(self, obj: Element, t: Affine, res: _Resources) -> None:
        params = self._params(obj, res)
        data = child_text(obj, "AbbreviatedData")
        if not data:
            return
        subpaths = _flatten(data, MAX_PATH_POINTS - self.points)
        self.points += sum(len(s) for s in subpaths)
        if self.points > MAX_PATH_POINTS:
            raise _corrupt(f"An OFD page draws more than {MAX_PATH_POINTS} path points.")
        alpha = obj.get("Alpha")
        det = math.sqrt(abs(t[0] * t[3] - t[1] * t[2]))
        if (obj.get("Fill") or "false").lower() == "true" and "fill" in params:
            color = params["fill"]   # a path's fill colour defaults to transparent (GB/T 33190)
            if alpha is not None:
                color = (*color[:3], int(min(255, max(0, _float(alpha, 255)))))
            for sub in subpaths:
                if len(sub) >= 3:
                    self.draw.polygon([_apply(t, px, py) for px, py in sub], fill=color)
        if (obj.get("Stroke") or "true").lower() != "false":
            color = params.get("stroke", (0, 0, 0, 255))
            if alpha is not None:
                color = (*color[:3], int(min(255, max(0, _float(alpha, 255)))))
            width = max(1, min(200, round(params.get("line_width", 0.353) * det)))
            for sub in subpaths:
                if len(sub) >= 2:
                    self.draw.line([_apply(t, px, py) for px, py in sub], fill=color, width=width,
                                   joint="curve" if width > 2 else None)

    def picture(self, obj: Element, t: Affine, res: _Resources) -> None:
        media = res.media.get((obj.get("ResourceID") or "").strip())
        if media is None:
            return
        fmt, entry = media
        data = self.ofd._archive.read(entry)
        if fmt in ("GBIG2", "JBIG2", "JB2") or data[:8] == b"\x97JB2\r\n\x1a\n":
            return   # JBIG2 (some QR codes): Pillow cannot decode it
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                with Image.open(io.BytesIO(data), formats=_IMAGE_FORMATS) as src:
                    if src.width * src.height > MAX_IMAGE_PIXELS:
                        return
                    src.load()
                    picture = src.convert("RGBA")
            except (Image.UnidentifiedImageError, Image.DecompressionBombError,
                    Image.DecompressionBombWarning, OSError, SyntaxError, ValueError, EOFError):
                return
        corners = [_apply(t, cx, cy) for cx, cy in ((0, 0), (1, 0), (0, 1), (1, 1))]
        xs = [c[0] for c in corners]
        ys = [c[1] for c in corners]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        w, h = round(x1 - x0), round(y1 - y0)
        if w < 1 or h < 1 or w > 4 * self.image.width or h > 4 * self.image.height:
            return
        if t[0] < 0:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if t[3] < 0:
            picture = picture.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        picture = picture.resize((w, h), Image.Resampling.LANCZOS)
        alpha = obj.get("Alpha")
        if alpha is not None:
            factor = min(255, max(0, _float(alpha, 255))) / 255
            picture.putalpha(picture.getchannel("A").point(lambda v: int(v * factor)))
        self.image.paste(picture, (round(x0), round(y0)), picture)


_FONT_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def cjk_font_path() -> str | None:
    """The CJK font used for all text (Debian's fonts-wqy-microhei, or another CJK font)."""
    for candidate in CJK_FONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return None


@lru_cache(maxsize=64)
def _font(path: str, size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, max(1, size_px))


# --------------------------------------------------------------------------------------------
# Geometry and small parsers


def _float(value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        return default
    return number if math.isfinite(number) else default


def _numbers(value: str | None, count: int) -> tuple[float, ...] | None:
    if not value:
        return None
    try:
        numbers = tuple(float(p) for p in value.replace(",", " ").split()[:count])
    except ValueError:
        return None
    if len(numbers) < count or not all(math.isfinite(n) for n in numbers):
        return None
    return numbers


def _box(value: str | None) -> tuple[float, float, float, float] | None:
    numbers = _numbers(value, 4)
    if numbers is None or numbers[2] <= 0 or numbers[3] <= 0 or max(abs(n) for n in numbers) > 1e5:
        return None
    return numbers  # type: ignore[return-value]


def _object_transform(obj: Element) -> Affine:
    """Object space to its parent: the CTM, then a move to the Boundary's origin."""
    box = _numbers(obj.get("Boundary"), 4) or (0.0, 0.0, 0.0, 0.0)
    a, b, c, d, e, f = _numbers(obj.get("CTM"), 6) or _IDENTITY
    return (a, b, c, d, e + box[0], f + box[1])


def _compose(outer: Affine, inner: Affine) -> Affine:
    """Apply `inner` first, then `outer`."""
    A, B, C, D, E, F = outer
    a, b, c, d, e, f = inner
    return (A * a + C * b, B * a + D * b, A * c + C * d, B * c + D * d, A * e + C * f + E, B * e + D * f + F)


def _apply(t: Affine, x: float, y: float) -> tuple[float, float]:
    return (t[0] * x + t[2] * y + t[4], t[1] * x + t[3] * y + t[5])


def _transform_rect(t: Affine, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = box
    corners = [_apply(t, cx, cy) for cx, cy in ((x, y), (x + w, y), (x, y + h), (x + w, y + h))]
    return (min(c[0] for c in corners), min(c[1] for c in corners),
            max(c[0] for c in corners), max(c[1] for c in corners))


def _deltas(value: str | None, limit: int) -> list[float]:
    """A DeltaX/DeltaY list, `g <count> <value>` expanded, never longer than `limit`."""
    if not value or limit <= 0:
        return []
    tokens = value.split()
    out: list[float] = []
    i = 0
    while i < len(tokens) and len(out) < limit:
        token = tokens[i]
        try:
            if token == "g" and i + 2 < len(tokens):
                count = int(float(tokens[i + 1]))
                out.extend([float(tokens[i + 2])] * max(0, min(count, limit - len(out))))
                i += 3
                continue
            out.append(float(token))
        except (ValueError, OverflowError):
            pass
        i += 1
    return [v if math.isfinite(v) else 0.0 for v in out]


def _clean(text: str | None) -> str:
    """A TextCode's text: line breaks with the indentation around them (pretty-printed XML)
    removed, other control characters dropped, tabs as spaces."""
    if not text:
        return ""
    if "\n" in text or "\r" in text:
        text = _LINE_BREAK.sub("", text)
    return "".join(" " if ch == "\t" else ch for ch in text
                   if ch == "\t" or not (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0))


def _color(element: Element, res: _Resources) -> tuple[int, int, int, int]:
    values = []
    for token in (element.get("Value") or "").split():
        try:
            values.append(int(token[1:], 16) if token.startswith("#") else float(token))
        except ValueError:
            return (0, 0, 0, 255)
    kind = res.color_spaces.get((element.get("ColorSpace") or "").strip(), "RGB")
    alpha = int(min(255, max(0, _float(element.get("Alpha"), 255))))
    if kind == "GRAY" and values:
        g = int(min(255, max(0, values[0])))
        return (g, g, g, alpha)
    if kind == "CMYK" and len(values) >= 4:
        c, m, y, k = (min(255, max(0, v)) / 255 for v in values[:4])
        return (int(255 * (1 - c) * (1 - k)), int(255 * (1 - m) * (1 - k)), int(255 * (1 - y) * (1 - k)), alpha)
    if len(values) >= 3:
        r, g, b = (int(min(255, max(0, v))) for v in values[:3])
        return (r, g, b, alpha)
    return (0, 0, 0, alpha)


_LINE_BREAK = re.compile(r"[ \t]*[\r\n]+[ \t]*")
_PATH_TOKEN = re.compile(r"[A-Za-z]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_ARITY = {"S": 2, "M": 2, "L": 2, "Q": 4, "B": 6, "A": 7, "C": 0}


def _flatten(data: str, budget: int) -> list[list[tuple[float, float]]]:
    """AbbreviatedData (S/M/L/Q/B/A/C commands) as polylines in object space."""
    tokens = _PATH_TOKEN.findall(data)
    subpaths: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    pos = (0.0, 0.0)
    start = pos
    i = 0
    used = 0
    while i < len(tokens) and used < budget:
        cmd = tokens[i].upper()
        i += 1
        if cmd not in _ARITY:
            continue
        n = _ARITY[cmd]
        try:
            args = [float(v) for v in tokens[i:i + n]]
        except ValueError:
            break
        if len(args) < n or not all(math.isfinite(a) for a in args):
            break
        i += n
        if cmd in ("S", "M"):
            if len(current) > 1:
                subpaths.append(current)
            pos = start = (args[0], args[1])
            current = [pos]
            continue
        if not current:
            current = [pos]
        if cmd == "L":
            points = [(args[0], args[1])]
        elif cmd == "Q":
            points = _bezier([pos, (args[0], args[1]), (args[2], args[3])])
        elif cmd == "B":
            points = _bezier([pos, (args[0], args[1]), (args[2], args[3]), (args[4], args[5])])
        elif cmd == "A":
            points = _arc(pos, *args)
        else:   # C: close
            points = [start]
        current.extend(points)
        used += len(points)
        pos = current[-1]
    if len(current) > 1:
        subpaths.append(current)
    return subpaths


def _bezier(ctrl: list[tuple[float, float]], steps: int = 12) -> list[tuple[float, float]]:
    out = []
    for s in range(1, steps + 1):
        t = s / steps
        pts = ctrl
        while len(pts) > 1:
            pts = [((1 - t) * p[0] + t * q[0], (1 - t) * p[1] + t * q[1]) for p, q in zip(pts, pts[1:])]
        out.append(pts[0])
    return out


def _arc(p0: tuple[float, float], rx: float, ry: float, angle: float, large: float, sweep: float,
         x: float, y: float) -> list[tuple[float, float]]:
    """An SVG-style elliptical arc from p0 to (x, y), as points."""
    x0, y0 = p0
    rx, ry = abs(rx), abs(ry)
    if rx < 1e-9 or ry < 1e-9 or (x0 == x and y0 == y):
        return [(x, y)]
    phi = math.radians(angle)
    cos, sin = math.cos(phi), math.sin(phi)
    dx, dy = (x0 - x) / 2, (y0 - y) / 2
    x1p, y1p = cos * dx + sin * dy, -sin * dx + cos * dy
    lam = (x1p / rx) ** 2 + (y1p / ry) ** 2
    if lam > 1:
        rx, ry = rx * math.sqrt(lam), ry * math.sqrt(lam)
    num = rx * rx * ry * ry - rx * rx * y1p * y1p - ry * ry * x1p * x1p
    den = rx * rx * y1p * y1p + ry * ry * x1p * x1p
    coef = math.sqrt(max(0.0, num / den)) if den else 0.0
    if bool(large) == bool(sweep):
        coef = -coef
    cxp, cyp = coef * rx * y1p / ry, -coef * ry * x1p / rx
    cx = cos * cxp - sin * cyp + (x0 + x) / 2
    cy = sin * cxp + cos * cyp + (y0 + y) / 2

    def angle_of(ux: float, uy: float) -> float:
        return math.atan2(uy, ux)

    t1 = angle_of((x1p - cxp) / rx, (y1p - cyp) / ry)
    t2 = angle_of((-x1p - cxp) / rx, (-y1p - cyp) / ry)
    delta = t2 - t1
    if sweep and delta < 0:
        delta += 2 * math.pi
    elif not sweep and delta > 0:
        delta -= 2 * math.pi
    steps = max(4, min(64, int(abs(delta) / (math.pi / 16)) + 1))
    out = []
    for s in range(1, steps + 1):
        th = t1 + delta * s / steps
        ex, ey = rx * math.cos(th), ry * math.sin(th)
        out.append((cos * ex - sin * ey + cx, sin * ex + cos * ey + cy))
    return out


# --------------------------------------------------------------------------------------------
# Convenience functions over a path


def page_count(path: Path | str) -> int:
    """The number of pages the OFD lists (every listed document together)."""
    with OfdFile(path) as ofd:
        return ofd.page_count()


def render_page(path: Path | str, index: int = 0, max_side: int = 1600) -> Image.Image:
    """Page `index` (0-based) drawn as an RGB image whose longer side is `max_side` pixels."""
    with OfdFile(path) as ofd:
        return ofd.render(index, max_side)


def text_objects(path: Path | str, index: int = 0) -> list[TextObject]:
    with OfdFile(path) as ofd:
        return ofd.text_objects(index)


def attachments(path: Path | str) -> dict[str, bytes]:
    """Attached files by archive entry name (e.g. "Doc_0/Attachs/original_invoice.xml")."""
    with OfdFile(path) as ofd:
        return {att.entry: ofd.read_attachment(att) for att in ofd.attachments()}


def custom_tags(path: Path | str) -> list[TaggedValue]:
    with OfdFile(path) as ofd:
        return ofd.custom_tags()
