"""Is this XML an e-invoice? Decided from the root element (name and namespace) found in the
leading bytes, without parsing the document: UN/CEFACT CII (ZUGFeRD 1.0 and 2.x, Factur-X,
XRechnung-CII) and OASIS UBL 2.1 Invoice / CreditNote. Parsing is in worker/extract/einvoice.py."""
from __future__ import annotations

import re

CII_NS = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
ZUGFERD1_NS = "urn:ferd:CrossIndustryDocument:invoice:1p0"
UBL_INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
INVOICE_ROOTS = {
    ("CrossIndustryInvoice", CII_NS): "CII",
    ("CrossIndustryDocument", ZUGFERD1_NS): "CII",
    ("Invoice", UBL_INVOICE_NS): "UBL",
    ("CreditNote", UBL_CREDIT_NOTE_NS): "UBL",
}
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_START_TAG = re.compile(r"<(?:([A-Za-z_][\w.\-]*):)?([A-Za-z_][\w.\-]*)([^<>]*)")


def xml_root(head: bytes) -> tuple[str, str | None] | None:
    """(local name, namespace) of the root element named in the leading bytes of an XML
    document, or None when the bytes are not XML or do not reach the root's start tag.
    Skips a BOM, the XML declaration, comments, processing instructions and a DOCTYPE."""
    text = None
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            text = head[len(bom):].decode(encoding, errors="replace")
            break
    if text is None:
        if head[:2] in (b"<\x00", b"\x00<"):
            text = head.decode("utf-16-le" if head[:1] == b"<" else "utf-16-be", errors="replace")
        else:
            text = head.decode("utf-8", errors="replace")
    i = 0
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n or text[i] != "<":
            return None
        if text.startswith("<?", i):
            end = text.find("?>", i)
            if end < 0:
                return None
            i = end + 2
        elif text.startswith("<!--", i):
            end = text.find("-->", i + 4)
            if end < 0:
                return None
            i = end + 3
        elif text.startswith("<!DOCTYPE", i) or text.startswith("<!doctype", i):
            bracket, close = text.find("[", i), text.find(">", i)
            if close < 0:
                return None
            if 0 <= bracket < close:
                end = text.find("]", bracket)
                close = text.find(">", end) if end >= 0 else -1
                if close < 0:
                    return None
            i = close + 1
        else:
            break
    match = _START_TAG.match(text, i)
    if not match:
        return None
    prefix, name, attrs = match.groups()
    declaration = re.search(r"""\sxmlns%s\s*=\s*(["'])(.*?)\1""" % (":" + re.escape(prefix) if prefix else ""),
                            attrs or "")
    return name, (declaration.group(2).strip() if declaration else None)


def looks_like_xml_invoice(head: bytes) -> bool:
    """True when the leading bytes (up to the root element's start tag; 64 KiB is plenty)
    are those of a CII or UBL invoice / credit note."""
    root = xml_root(head)
    return root is not None and root in INVOICE_ROOTS
