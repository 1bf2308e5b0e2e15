"""The entry points: `extract_invoice` (every field, with confidence, evidence and source) and
`looks_like_invoice` (an invoice, not a till receipt that prints "TAX INVOICE")."""
from __future__ import annotations

import re
from typing import Any, Sequence

from worker.extract.base import Extraction, corroborated
from worker.extract.invoice.blocks import _Block, _party_blocks
from worker.extract.invoice.currency import _find_currency
from worker.extract.invoice.dates import _issue_date, _month_first
from worker.extract.invoice.items import _items, _MAX_ITEMS
from worker.extract.invoice.labels import _INVOICE_WORD_RE, _TITLE_RE
from worker.extract.invoice.layout import _Doc
from worker.extract.invoice.lines import _ev, _fold, _IL, _prepare
from worker.extract.invoice.numbers import _invoice_number
from worker.extract.invoice.parties import _buyer, _issuer
from worker.extract.invoice.totals import _totals

_MAX_LEN = {"merchant_name": 200, "buyer_name": 200, "invoice_number": 64}


def extract_invoice(lines: Any, default_currency: str | None = None, *, source: str = "ocr") -> Extraction:
    """Extract an invoice's fields from positioned text lines (objects with `text`, `box`,
    `score`): one page's lines, or a list of pages' lines.

    Fields: document_kind ("invoice"), merchant_name (the issuer), buyer_name, invoice_number,
    transaction_date (ISO issue date), total, subtotal, tax, currency (ISO 4217), items.
    `default_currency` is used only when the invoice prints no currency. `source` ("ocr" or
    "text_layer") is recorded for every field.
    """
    ls = _prepare(lines)
    ex = Extraction()
    if not ls:
        return ex
    doc = _Doc(ls)

    def put(name: str, value, used: Sequence[_IL], conf: float, notes: list[str] | None = None) -> None:
        scores = [l.score for l in used if l is not None]
        if source == "ocr" and scores and min(scores) < 0.9:
            # OCR unsure of the very characters: the value is no surer than its worst line
            conf *= max(0.5, min(scores))
            notes = list(notes or []) + ["ocr_low_score"]
        ex.put(name, value, conf, _ev(used), max_len=_MAX_LEN.get(name, 200), source=source, notes=notes)

    blocks = _party_blocks(doc)
    number = _invoice_number(doc)
    put("document_kind", "invoice", [], 0.9 if _looks_like(doc, blocks, number) else 0.6)
    issuer = _issuer(doc, blocks)
    if issuer:
        put("merchant_name", *_party_evidence(doc, *issuer))
    buyer = _buyer(blocks)
    if buyer and (not issuer or _fold(buyer[0]) != _fold(issuer[0])):
        put("buyer_name", *_party_evidence(doc, *buyer))
    if number:
        put("invoice_number", *number, notes=["label_strong" if number[2] >= 0.9 else "label"])
    currency = _find_currency(doc, default_currency)
    if currency:
        code, used, conf = currency
        put("currency", code, used, conf,
            notes=["default", "guess"] if not used else ["guess"] if conf < 0.7 else ["printed"])
    date = _issue_date(doc, _month_first(doc, currency[0] if currency else None))
    if date:
        conf = date[2]
        put("transaction_date", *date, notes=["label_strong" if conf >= 0.9 else "label" if conf >= 0.7
                                             else "layout" if conf >= 0.5 else "guess"])
    totals = _totals(doc, currency[0] if currency else None)
    values = {k: round(float(v[0]), 2) for k, v in totals.items()}
    adds_up = ("total" in values and "subtotal" in values
               and abs(values["subtotal"] + values.get("tax", 0.0) - values["total"]) < 0.011
               and ("tax" in values or values["subtotal"] == values["total"]))
    for key in ("total", "subtotal", "tax"):
        if key in totals:
            value, used, conf = totals[key]
            notes = []
            if adds_up:
                # net + tax = total on the page: each of the three confirms the others
                notes.append("arithmetic")
                conf = corroborated(conf, 0.8)
            if key == "total" and _printed_again(doc, values[key], used):
                notes.append("repeated")
                conf = corroborated(conf, 0.3)
            put(key, values[key], used, conf, notes=notes or ["unconfirmed"])
    totals_y = None
    if "total" in totals or "subtotal" in totals:
        ys = [l.cy for k in ("subtotal", "total") if k in totals for l in totals[k][1]]
        totals_y = min(ys) if ys else None
    items = _items(doc, totals_y)
    if items:
        listed, used = items
        conf = 0.5
        s = round(sum(i["amount"] for i in listed), 2)
        notes = ["unconfirmed"]
        for k in ("subtotal", "total"):
            if k in ex.fields and abs(ex.fields[k] - s) < 0.011:
                conf, notes = 0.85, ["arithmetic"]
                # the lines add up to it: the amount is confirmed by the items too
                ex.confidence[k] = round(corroborated(ex.confidence[k], 0.6), 3)
                ex.notes[k] = [n for n in ex.notes.get(k, []) if n != "unconfirmed"] + ["items_sum"]
                break
        put("items", listed[:_MAX_ITEMS], used, conf, notes=notes)
    return ex


def _party_evidence(doc: _Doc, name: str, used: Sequence[_IL], conf: float) -> tuple:
    """A party's name with its notes: `repeated` (and a little more confidence) when the page
    prints it again elsewhere (a footer, a bank line, a second address block), else `once`."""
    key = _fold(name)
    ids = {l.idx for l in used}
    if len(key) >= 4 and any(l.idx not in ids and key in l.fold for l in doc.ls):
        return name, used, corroborated(conf, 0.3), ["repeated"]
    return name, used, conf, ["once"]


def _printed_again(doc: _Doc, value: float, used: Sequence[_IL]) -> bool:
    """Whether an amount is printed on a line other than those it was read from ("$19.00 due
    April 16" over the totals, the amount due equal to the total)."""
    ids = {l.idx for l in used}
    return any(l.idx not in ids and any(abs(a.value - value) < 0.006 for a in doc.amounts(l.text)) for l in doc.ls
               if abs(value) >= 0.01)


_RECEIPT_SIGNS_RE = re.compile(
    r"\b(?:CASH|CHANGE|TENDER(?:ED)?|CASHIER|RECEIPT|COUNTER|TERMINAL|TABLE|PAX|ROUNDING|"
    r"KASSE|KASSIERER\w*|BAR|RUCKGELD|QUITTUNG|KASSENBON|TICKET\s+DE\s+CAISSE|ESPECES|CAISSE)\b"
)
_INVOICE_SIGNS_RE = re.compile(
    r"\b(?:DUE\s*DATE|PAYMENT\s*(?:TERMS|DUE)|TERMS|NET\s*\d{1,2}|PAY\s*BY|IBAN|SWIFT|BIC|SORT\s*CODE|BANK\s*(?:DETAILS|TRANSFER|ACCOUNT)|"
    r"ROUTING|REMIT|PURCHASE\s*ORDER|P\.?O\.?\s*(?:NO|NUMBER|#)|FALLIG\w*|ZAHLBAR|ZAHLUNGSZIEL|ZAHLUNGSBEDINGUNGEN|"
    r"BANKVERBINDUNG|USt-?IdNr|ECHEANCE|CONDITIONS\s*DE\s*(?:PAIEMENT|REGLEMENT)|VIREMENT|SIRET|TVA\s*INTRA\w*|"
    r"LEISTUNGSDATUM|LIEFERDATUM|RECHNUNGSDATUM|DATE\s*DE\s*FACTURE|INVOICE\s*DATE|DATE\s*(?:ISSUED|OF\s*ISSUE)|"
    r"FACTUURDATUM|VERVALDATUM|BTW|KVK|BETAALTERMIJN|FECHA\s*DE\s*(?:FACTURA|EMISION|VENCIMIENTO)|VENCIMIENTO|NIF|CIF|"
    r"DATA\s*(?:DELLA\s*)?FATTURA|SCADENZA|PARTITA\s*IVA|DATA\s*DE\s*(?:EMISSAO|VENCIMENTO)|VENCIMENTO|NIPC|GSTIN)\b"
    r"|开票日期|发票号码"
)


def looks_like_invoice(lines: Any) -> bool:
    """True for a document that calls itself an invoice (Invoice, Tax invoice, Rechnung, Facture,
    Avoir, Gutschrift, Credit note) and carries an invoice number, with an invoice's structure (a
    customer block, payment terms, bank details, a due date, a seller block); False for a till
    receipt, which may print "TAX INVOICE" and a number but has cash, change and a cashier."""
    ls = _prepare(lines)
    if not ls:
        return False
    doc = _Doc(ls)
    return _looks_like(doc, _party_blocks(doc), _invoice_number(doc))


def _looks_like(doc: _Doc, blocks: list[_Block], number) -> bool:
    ls = doc.ls
    text = " ".join(l.fold for l in ls)
    if not _INVOICE_WORD_RE.search(text):
        return False
    parties = any(b.kind in ("buyer", "seller") for b in blocks)
    invoice_signs = len({m.group(0)[:6] for m in _INVOICE_SIGNS_RE.finditer(text)})
    receipt_signs = len({m.group(0)[:6] for m in _RECEIPT_SIGNS_RE.finditer(text)})
    structure = invoice_signs + 2 * parties
    if number is None:
        titled = any(_TITLE_RE.match(l.fold) and _INVOICE_WORD_RE.search(l.fold) for l in ls)
        return structure >= 3 and receipt_signs == 0 and titled
    if structure == 0:
        return False
    return structure >= receipt_signs
