"""An opened OFD (`OfdFile`): documents, pages, text objects, attachments and custom tags,
plus the convenience functions over a path."""
from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

from PIL import Image

from docket.errors import DocumentError
from docket.ofd import limits
from docket.ofd.archive import _Archive
from docket.ofd.geometry import Affine, _box, _clean, _compose, _float, _object_transform, _transform_rect
from docket.ofd.limits import _corrupt
from docket.ofd.model import Attachment, _Doc, _Page, _Resources, TaggedValue, TextObject
from docket.ofd.render import _Painter
from docket.ofd.xmlsafe import child, child_text, children, local, parse_xml

MIME_TYPE = "application/ofd"
DEFAULT_PAGE_BOX = (0.0, 0.0, 210.0, 297.0)   # A4, millimetres


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
            self._xml_cache[entry] = parse_xml(self._archive.read(entry, limits.MAX_XML_BYTES), entry)
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
            if len(self.pages) >= limits.MAX_PAGES:
                raise DocumentError(f"The OFD lists more than {limits.MAX_PAGES} pages.", code="too_many_pages",
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
                if count > limits.MAX_OBJECTS:
                    raise _corrupt(f"An OFD page holds more than {limits.MAX_OBJECTS} objects.")
                if name in ("TextObject", "PathObject", "ImageObject"):
                    visit(obj, transform, from_template, res)
                elif depth >= limits.MAX_NESTING:
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
            if not name or depth > limits.MAX_NESTING or len(values) > limits.MAX_OBJECTS:
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
        max_side = int(min(max(max_side, 16), limits.MAX_RENDER_SIDE))
        scale = max_side / max(width_mm, height_mm)
        size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
        image = Image.new("RGB", size, "white")
        _Painter(self, image, scale).paint(page)
        return image


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
