"""Safe XML: defusedxml parsing with repair of common producer bugs, and namespace-free
lookups."""
from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from docket.ofd import limits
from docket.ofd.limits import _corrupt


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
    if len(data) > limits.MAX_XML_BYTES:
        raise _corrupt(f"{name} is {len(data)} bytes; XML parts are limited to {limits.MAX_XML_BYTES}.")
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
