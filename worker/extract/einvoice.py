"""European e-invoices read from their own XML: UN/CEFACT CII (ZUGFeRD 1.0 and 2.x, Factur-X,
XRechnung-CII) and OASIS UBL 2.1 (Invoice and CreditNote: XRechnung-UBL, Peppol BIS), alone or
embedded in a PDF (ZUGFeRD / Factur-X / XRechnung hybrids).

The amount taken as `total` is the invoice total including VAT (CII GrandTotalAmount, BT-112;
UBL TaxInclusiveAmount): the cost the invoice documents. The amount still due (DuePayableAmount
/ PayableAmount, BT-115) is smaller where something was prepaid, and is only used when the total
is absent; `xml_invoice_info` reports it.

Lookups match local element names, so ZUGFeRD 1.0 (`CrossIndustryDocument`, its own
namespace and element names) and CII D16B/D22B (`CrossIndustryInvoice`) are read by the same
code, whatever the namespace prefixes. XML goes through defusedxml with DTDs forbidden.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from docket.errors import DocumentError
# Which roots count as invoices, and the sniffing, live in docket (documents.py uses them too).
from docket.xml_invoice import INVOICE_ROOTS, looks_like_xml_invoice
from worker.extract.base import Extraction

SOURCE = "embedded_xml"
MAX_XML_BYTES = 16 << 20      # XRechnung files embed their attachments in base64
MAX_ITEMS = 50
MAX_DESCRIPTION = 200
MAX_PDF_ATTACHMENTS = 100

# Attachment names the hybrid standards prescribe (compared case-insensitively).
KNOWN_ATTACHMENT_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")


# --------------------------------------------------------------------------------------------
# Namespace-free element helpers


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element: Element | None, *names: str) -> Element | None:
    """The first direct child named any of `names` (in the order of `names`)."""
    if element is None:
        return None
    for name in names:
        for sub in element:
            if _local(sub.tag) == name:
                return sub
    return None


def _children(element: Element | None, name: str) -> list[Element]:
    return [] if element is None else [sub for sub in element if _local(sub.tag) == name]


def _path(element: Element | None, *steps: str | tuple[str, ...]) -> Element | None:
    for step in steps:
        element = _child(element, *((step,) if isinstance(step, str) else step))
        if element is None:
            return None
    return element


def _text(element: Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    cleaned = _plain(element.text)
    return cleaned or None


def _plain(text: str, limit: int = 500) -> str:
    cleaned = "".join(ch for ch in text if ch.isprintable() or ch in " \t\r\n")
    return re.sub(r"\s+", " ", cleaned).strip()[:limit]


def _amount(element: Element | None) -> float | None:
    text = _text(element)
    if text is None:
        return None
    cleaned = text.replace(" ", "")
    if not re.fullmatch(r"[-+]?\d+(?:\.\d+)?", cleaned):
        return None
    return float(cleaned)


def _pick_amount(elements: list[Element], currency: str | None) -> float | None:
    """Of repeated amounts (e.g. VAT in the invoice and in the accounting currency), the one
    in the invoice currency, else one without a currency, else the first readable one."""
    in_currency = [el for el in elements if currency and (el.get("currencyID") or "").strip() == currency]
    unmarked = [el for el in elements if not (el.get("currencyID") or "").strip()]
    for el in in_currency + unmarked + elements:
        value = _amount(el)
        if value is not None:
            return value
    return None


def _date(element: Element | None) -> str | None:
    text = _text(element)
    if text is None:
        return None
    fmt = (element.get("format") or "").strip()
    digits = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)
    iso = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?", text)
    match = digits if (fmt in ("", "102") and digits) else iso
    if not match:
        return None
    try:
        return dt.date(*(int(g) for g in match.groups())).isoformat()
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class EInvoiceInfo:
    syntax: str                 # "CII" or "UBL"
    root: str                   # CrossIndustryInvoice, CrossIndustryDocument, Invoice, CreditNote
    profile: str | None         # the guideline / customization id (BT-24)
    type_code: str | None       # UNTDID 1001: 380 invoice, 381 credit note, 384 correction, …
    due_payable: float | None   # amount still due (BT-115)
    prepaid: float | None       # amount already paid (BT-113)


def _parse(xml_bytes: bytes) -> Element | None:
    if len(xml_bytes) > MAX_XML_BYTES:
        raise DocumentError(f"The invoice XML is {len(xml_bytes)} bytes; the limit is {MAX_XML_BYTES}.",
                            code="corrupt_document", status=422, title="Corrupt document")
    if not looks_like_xml_invoice(xml_bytes[:65_536]):
        return None
    try:
        root = SafeET.fromstring(xml_bytes, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise DocumentError(f"XML with a DTD or entity declarations is refused ({type(exc).__name__}).",
                            code="corrupt_document", status=422, title="Corrupt document") from exc
    except (ParseError, ValueError, LookupError) as exc:
        raise DocumentError(f"The invoice XML is not well-formed: {exc}", code="corrupt_document",
                            status=422, title="Corrupt document") from exc
    ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else None
    return root if (_local(root.tag), ns) in INVOICE_ROOTS else None


def read_xml_invoice(xml_bytes: bytes) -> Extraction | None:
    """The fields of a CII or UBL invoice, or None when the XML is not one. Raises
    DocumentError for XML that is malformed, too large or declares a DTD/entities."""
    root = _parse(xml_bytes)
    if root is None:
        return None
    fields, _ = (_read_cii if INVOICE_ROOTS[_root_key(root)] == "CII" else _read_ubl)(root)
    return _extraction(fields)


def xml_invoice_info(xml_bytes: bytes) -> EInvoiceInfo | None:
    """Which standard, profile and document type the invoice XML is, and what is still due."""
    root = _parse(xml_bytes)
    if root is None:
        return None
    syntax = INVOICE_ROOTS[_root_key(root)]
    _, info = (_read_cii if syntax == "CII" else _read_ubl)(root)
    return info


def _root_key(root: Element) -> tuple[str, str | None]:
    ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else None
    return _local(root.tag), ns


def _tax_id(party: Element | None, registration: str, scheme_attr: str) -> str | None:
    """A party's VAT id (CII scheme VA / UBL TaxScheme VAT), else its other tax number."""
    if party is None:
        return None
    if registration == "SpecifiedTaxRegistration":   # CII
        ids = [el for reg in _children(party, registration) for el in _children(reg, "ID")]
        for wanted in ("VA", "FC", None):
            for el in ids:
                if wanted is None or (el.get(scheme_attr) or "").strip().upper() == wanted:
                    if _text(el):
                        return _text(el)
        return None
    schemes = _children(party, "PartyTaxScheme")   # UBL
    for wanted in ("VAT", None):
        for scheme in schemes:
            scheme_id = (_text(_path(scheme, "TaxScheme", "ID")) or "").upper()
            if wanted is None or scheme_id == wanted:
                if _text(_child(scheme, "CompanyID")):
                    return _text(_child(scheme, "CompanyID"))
    return None


def _join_address(parts: list[str | None]) -> str | None:
    text = ", ".join(p for p in parts if p)
    return text or None


def _read_cii(root: Element) -> tuple[dict, EInvoiceInfo]:
    doc = _child(root, "ExchangedDocument", "HeaderExchangedDocument")
    context = _child(root, "ExchangedDocumentContext", "SpecifiedExchangedDocumentContext")
    tx = _child(root, "SupplyChainTradeTransaction", "SpecifiedSupplyChainTradeTransaction")
    agreement = _child(tx, "ApplicableHeaderTradeAgreement", "ApplicableSupplyChainTradeAgreement")
    settlement = _child(tx, "ApplicableHeaderTradeSettlement", "ApplicableSupplyChainTradeSettlement")
    summation = _child(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation",
                       "SpecifiedTradeSettlementMonetarySummation")
    seller = _child(agreement, "SellerTradeParty")
    buyer = _child(agreement, "BuyerTradeParty")
    currency = _text(_child(settlement, "InvoiceCurrencyCode"))

    def sums(name: str) -> float | None:
        return _pick_amount(_children(summation, name), currency)

    fields: dict = {
        "invoice_number": _text(_child(doc, "ID")),
        "transaction_date": _date(_path(doc, "IssueDateTime", "DateTimeString")),
        "merchant_name": _text(_child(seller, "Name")),
        "buyer_name": _text(_child(buyer, "Name")),
        "seller_tax_id": _tax_id(seller, "SpecifiedTaxRegistration", "schemeID"),
        "buyer_tax_id": _tax_id(buyer, "SpecifiedTaxRegistration", "schemeID"),
        "currency": currency,
        "subtotal": sums("TaxBasisTotalAmount"),
        "tax": sums("TaxTotalAmount"),
        "total": sums("GrandTotalAmount"),
    }
    address = _child(seller, "PostalTradeAddress")
    if address is not None:
        city = " ".join(p for p in (_text(_child(address, "PostcodeCode")), _text(_child(address, "CityName"))) if p)
        fields["merchant_address"] = _join_address(
            [_text(_child(address, n)) for n in ("LineOne", "LineTwo", "LineThree")]
            + [city or None, _text(_child(address, "CountryID"))])
    due = sums("DuePayableAmount")
    if fields["total"] is None:
        fields["total"] = due
    items = []
    for line in _children(tx, "IncludedSupplyChainTradeLineItem"):
        product = _child(line, "SpecifiedTradeProduct")
        description = _text(_child(product, "Name")) or _text(_child(product, "Description"))
        line_settlement = _child(line, "SpecifiedLineTradeSettlement", "SpecifiedSupplyChainTradeSettlement")
        amount = _pick_amount(_children(_child(line_settlement, "SpecifiedTradeSettlementLineMonetarySummation",
                                                "SpecifiedTradeSettlementMonetarySummation"), "LineTotalAmount"),
                              currency)
        quantity = _amount(_path(line, ("SpecifiedLineTradeDelivery", "SpecifiedSupplyChainTradeDelivery"),
                                 "BilledQuantity"))
        items.append((description, amount, quantity))
    fields["items"] = items
    info = EInvoiceInfo("CII", _local(root.tag),
                        _text(_path(context, "GuidelineSpecifiedDocumentContextParameter", "ID")),
                        _text(_child(doc, "TypeCode")), due, sums("TotalPrepaidAmount"))
    return fields, info


def _read_ubl(root: Element) -> tuple[dict, EInvoiceInfo]:
    credit = _local(root.tag) == "CreditNote"
    currency = _text(_child(root, "DocumentCurrencyCode"))
    seller = _path(root, "AccountingSupplierParty", "Party")
    buyer = _path(root, "AccountingCustomerParty", "Party")
    totals = _child(root, "LegalMonetaryTotal")

    def name_of(party: Element | None) -> str | None:
        for entity in _children(party, "PartyLegalEntity"):
            if _text(_child(entity, "RegistrationName")):
                return _text(_child(entity, "RegistrationName"))
        return _text(_path(party, "PartyName", "Name"))

    tax_amounts = [el for total in _children(root, "TaxTotal") for el in _children(total, "TaxAmount")]
    fields: dict = {
        "invoice_number": _text(_child(root, "ID")),
        "transaction_date": _date(_child(root, "IssueDate")),
        "merchant_name": name_of(seller),
        "buyer_name": name_of(buyer),
        "seller_tax_id": _tax_id(seller, "PartyTaxScheme", ""),
        "buyer_tax_id": _tax_id(buyer, "PartyTaxScheme", ""),
        "currency": currency,
        "subtotal": _pick_amount(_children(totals, "TaxExclusiveAmount"), currency),
        "tax": _pick_amount(tax_amounts, currency),
        "total": _pick_amount(_children(totals, "TaxInclusiveAmount"), currency),
    }
    address = _child(seller, "PostalAddress")
    if address is not None:
        city = " ".join(p for p in (_text(_child(address, "PostalZone")), _text(_child(address, "CityName"))) if p)
        fields["merchant_address"] = _join_address(
            [_text(_child(address, "StreetName")), _text(_child(address, "AdditionalStreetName")),
             *(_text(_child(line, "Line")) for line in _children(address, "AddressLine"))]
            + [city or None, _text(_path(address, "Country", "IdentificationCode"))])
    due = _pick_amount(_children(totals, "PayableAmount"), currency)
    if fields["total"] is None:
        fields["total"] = due
    items = []
    for line in _children(root, "CreditNoteLine" if credit else "InvoiceLine"):
        item = _child(line, "Item")
        description = _text(_child(item, "Name")) or _text(_child(item, "Description"))
        amount = _pick_amount(_children(line, "LineExtensionAmount"), currency)
        quantity = _amount(_child(line, "CreditedQuantity" if credit else "InvoicedQuantity"))
        items.append((description, amount, quantity))
    fields["items"] = items
    info = EInvoiceInfo("UBL", _local(root.tag), _text(_child(root, "CustomizationID")),
                        _text(_child(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode")),
                        due, _pick_amount(_children(totals, "PrepaidAmount"), currency))
    return fields, info


def _extraction(fields: dict) -> Extraction | None:
    ex = Extraction()
    for key, value in fields.items():
        if key == "items" or value is None or value == "":
            continue
        ex.fields[key] = value
        ex.confidence[key] = 1.0
        ex.sources[key] = SOURCE
    items = []
    for description, amount, quantity in fields.get("items", []):
        if not description or amount is None:
            continue
        item: dict = {"description": _plain(description, MAX_DESCRIPTION), "amount": amount}
        if quantity is not None:
            item["quantity"] = quantity
        items.append(item)
        if len(items) >= MAX_ITEMS:
            break
    if items:
        ex.fields["items"] = items
        ex.confidence["items"] = 1.0
        ex.sources["items"] = SOURCE
    if not any(k in ex.fields for k in ("invoice_number", "total", "merchant_name")):
        return None
    ex.fields["document_kind"] = "invoice"
    ex.confidence["document_kind"] = 1.0
    ex.sources["document_kind"] = SOURCE
    total, subtotal, tax = (ex.fields.get(k) for k in ("total", "subtotal", "tax"))
    if None not in (total, subtotal, tax) and abs(subtotal + tax - total) > 0.011:
        for k in ("total", "subtotal", "tax"):
            ex.confidence[k] = 0.5
    return ex


# --------------------------------------------------------------------------------------------
# PDF hybrids


def pdf_invoice_xml(path: Path | str) -> bytes | None:
    """The CII/UBL invoice XML attached to a PDF (ZUGFeRD, Factur-X, XRechnung hybrids), or
    None. Prefers the standard attachment names, then any attached XML whose root is an
    invoice. Raises DocumentError for a PDF that cannot be opened."""
    import ctypes

    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    from docket.pdfium_lock import open_pdf

    def data_of(attachment) -> bytes | None:
        size = ctypes.c_ulong()
        if not pdfium_c.FPDFAttachment_GetFile(attachment, None, 0, size) or not size.value:
            return None
        if size.value > MAX_XML_BYTES:
            return None
        return bytes(attachment.get_data())

    try:
        with open_pdf(path) as pdf:
            named: list[tuple[int, str, object]] = []
            for index in range(min(pdf.count_attachments(), MAX_PDF_ATTACHMENTS)):
                attachment = pdf.get_attachment(index)
                named.append((index, (attachment.get_name() or "").strip(), attachment))
            known = [a for a in named if a[1].casefold() in KNOWN_ATTACHMENT_NAMES]
            known.sort(key=lambda a: KNOWN_ATTACHMENT_NAMES.index(a[1].casefold()))
            others = [a for a in named if a not in known and _maybe_xml(a[1], a[2])]
            for _, _, attachment in known + others:
                try:
                    data = data_of(attachment)
                except pdfium.PdfiumError:
                    continue
                if data and looks_like_xml_invoice(data[:65_536]):
                    return data
    except pdfium.PdfiumError as exc:
        raise DocumentError(f"The PDF cannot be read: {exc}", code="corrupt_document", status=422,
                            title="Corrupt document") from exc
    return None


def _maybe_xml(name: str, attachment) -> bool:
    if name.lower().endswith(".xml"):
        return True
    try:
        subtype = attachment.get_subtype() or ""
    except Exception:   # an odd /Subtype must not stop the search
        return False
    return "xml" in subtype.lower()


def read_pdf_invoice(path: Path | str) -> Extraction | None:
    """read_xml_invoice of the PDF's attached invoice XML, or None."""
    xml = pdf_invoice_xml(path)
    return read_xml_invoice(xml) if xml else None
