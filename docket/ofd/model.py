"""The document model: what an OFD yields (text objects, attachments, tagged values) and the
internal records of documents, pages and resources."""
from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element


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
