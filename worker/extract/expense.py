"""An expense document, read the way a careful clerk would: its own structured data first (an
OFD's invoice XML, a CII/UBL e-invoice, the XML attached to a ZUGFeRD/Factur-X PDF), then the
page — a PDF's text layer where it is sound, else OCR — by the extractor for its kind (VAT
invoice with its QR code, railway ticket, invoice, receipt). Structured values win; the page
fills what the data leaves out. Every field says where it came from (`sources`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from docket.documents import OFD_TYPE, XML_TYPE
from docket.pages import PreparedDocument, stacked_lines, text_layer_is_garbage
from worker.extract import fapiao_qr
from worker.extract.base import Extraction
from worker.extract.category import categorize
from worker.extract.kind import classify

# Without these the page is read too, even when structured data was found.
REQUIRED = ("merchant_name", "total", "transaction_date")


@dataclass
class ExpenseReading:
    extraction: Extraction
    lines: list = field(default_factory=list)
    text: str = ""
    qr: dict[str, Any] | None = None
    read_from: str = "ocr"  # what the page text came from: text_layer, ocr, or embedded_xml alone


def structured(document: PreparedDocument) -> Extraction | None:
    """The fields the file's own data carries, or None."""
    path = document.source
    if path is None:
        return None
    if document.mime_type == OFD_TYPE:
        from worker.extract.ofd_invoice import read_ofd_invoice

        return read_ofd_invoice(path)
    if document.mime_type == XML_TYPE:
        from worker.extract.einvoice import read_xml_invoice

        return read_xml_invoice(path.read_bytes())
    if document.mime_type == "application/pdf":
        from worker.extract.einvoice import read_pdf_invoice

        return read_pdf_invoice(path)
    return None


def page_lines(document: PreparedDocument, recognise: Callable) -> tuple[list[list], str]:
    """Each page's text as positioned lines: a PDF's own text where it is there and sound, else
    OCR of the page images; and which of the two it was."""
    pages = document.pages
    if (document.mime_type == "application/pdf" and document.has_text_layer
            and not text_layer_is_garbage(document.text_layer) and any(p.text_lines for p in pages)):
        return [page.text_lines for page in pages], "text_layer"
    read_pages = getattr(recognise, "pages", None)  # worker.ocr reads several pages in parallel
    if read_pages is not None:
        return read_pages([page.image for page in pages]), "ocr"
    return [recognise(page.image) for page in pages], "ocr"


def _stack(document: PreparedDocument, per_page: list[list]) -> list:
    """The pages' lines stacked vertically, so reading order and positions hold across pages."""
    by_page = iter(per_page)
    return stacked_lines(document.pages, lambda page: next(by_page))


def qr_facts(qr) -> dict[str, Any]:
    """What policy checks compare with the printed fields (docket/invoice_facts.py)."""
    return {"invoice_number": qr.invoice_number, "invoice_code": qr.invoice_code, "date": qr.issue_date,
            "amount": qr.amount, "amount_field": "total" if qr.amount_kind == "incl_tax" else "subtotal",
            "invoice_type": qr.invoice_type}


def read_expense(document: PreparedDocument, recognise: Callable, default_currency: str | None) -> ExpenseReading:
    data = structured(document)
    if data is not None and (document.mime_type == XML_TYPE or all(k in data.fields for k in REQUIRED)):
        # Complete from the file's own data: the page is only read for what a reviewer sees.
        reading = ExpenseReading(data, text=document.text_layer, read_from="embedded_xml")
        if document.mime_type == OFD_TYPE:
            from docket import ofd

            reading.text = "\n".join(obj.text for index in range(len(document.pages))
                                     for obj in ofd.text_objects(document.source, index))
        elif document.mime_type != XML_TYPE:
            per_page, reading.read_from = page_lines(document, recognise)
            reading.lines = _stack(document, per_page)
            reading.text = "\n".join(line.text for line in reading.lines)
        page = None
    else:
        per_page, read_from = page_lines(document, recognise)
        lines = _stack(document, per_page)
        reading = ExpenseReading(Extraction(), lines=lines, text="\n".join(line.text for line in lines),
                                 read_from=read_from)
        page = _read_page(document, lines, per_page, read_from, default_currency, reading)
    fields, sources = {}, {}
    for part in (page, data):  # structured data last: it wins
        if part is None:
            continue
        fields.update(part.fields)
        for name in part.fields:
            sources[name] = part.sources.get(name) or (reading.read_from if part is page else "embedded_xml")
    merged = Extraction(fields=fields, sources=sources,
                        confidence={**(page.confidence if page else {}), **(data.confidence if data else {})},
                        evidence={**(page.evidence if page else {}), **(data.evidence if data else {})},
                        notes={k: v for k, v in (page.notes if page else {}).items() if not (data and k in data.fields)})
    if data is not None:
        for name in data.fields:
            merged.confidence[name] = 1.0
    if "document_kind" not in fields:
        fields["document_kind"] = classify(reading.lines) if reading.lines else "other"
        sources["document_kind"] = reading.read_from
    if fields.get("document_kind") in ("vat_invoice", "train_ticket"):
        fields.setdefault("currency", "CNY")
    fields["expense_category"] = categorize(fields)
    sources["expense_category"] = sources.get("document_kind", reading.read_from)
    reading.extraction = merged
    return reading


def _read_page(document: PreparedDocument, lines: list, per_page: list[list], read_from: str,
               default_currency: str | None, reading: ExpenseReading) -> Extraction:
    kind = classify(lines)
    if kind == "receipt":
        from worker.extract.invoice import looks_like_invoice

        # An invoice that prints few of the classifier's words still names itself and its number.
        if looks_like_invoice(lines):
            kind = "invoice"
    if kind == "vat_invoice":
        from worker.extract.fapiao import extract_vat_invoice

        qr = fapiao_qr.decode(document.pages[0].image) if document.pages else None
        if qr is not None:
            reading.qr = qr_facts(qr)
        extraction = extract_vat_invoice(lines, qr)
    elif kind == "train_ticket":
        from worker.extract.train_ticket import extract_train_ticket

        extraction = extract_train_ticket(lines)
    elif kind == "invoice":
        from worker.extract.invoice import extract_invoice

        # Page by page: an invoice's totals are often on its last page, its issuer on the first.
        extraction = extract_invoice(per_page, default_currency, source=read_from)
    else:
        from worker.extract.receipt import extract_receipt

        extraction = extract_receipt(lines, default_currency=default_currency)
    extraction.fields.setdefault("document_kind", kind)
    for name in extraction.fields:
        if extraction.sources.get(name) not in ("qr", "embedded_xml"):
            extraction.sources[name] = read_from  # the extractor read the lines it was given
    return extraction

