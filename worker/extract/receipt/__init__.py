"""Receipt field extraction over OCR lines.

Pure Python heuristics over `worker.ocr.OcrLine`s (text plus axis-aligned box): no model, no
dataset-specific rules. The layout matters as much as the text: a "TOTAL" label and its amount
are usually separate boxes on the same row, the merchant name is one of the first rows (often
in larger type), and the address runs from there down to the phone/GST/registration line.

Fields (docs/fields.md, receipt): merchant_name, merchant_address, transaction_date (ISO),
total, subtotal, tax, currency (ISO 4217), items. A field that is not found is absent.

Modules, by concern (the shared helpers are meant for the other document types too):
`text` (normalisation, character counts, phones), `lines` (OCR lines, rows, evidence),
`dates` (date parsing, transaction date), `amounts` (amount parsing, total/subtotal/tax),
`currency` (currency detection), `merchant` (merchant name and address), `items` (line items).
"""
from __future__ import annotations

from worker.extract.base import Extraction, corroborated
from worker.extract.receipt.amounts import _amount_fields, find_amounts
from worker.extract.receipt.currency import _currency
from worker.extract.receipt.dates import _transaction_date, parse_date
from worker.extract.receipt.items import _items
from worker.extract.receipt.lines import _L, _evidence, _rows
from worker.extract.receipt.merchant import _address, _merchant
from worker.extract.receipt.text import _fold_accents, _norm, _stray_accents

__all__ = ["extract_receipt", "parse_date", "find_amounts"]


_MAX_LEN = {"merchant_name": 200, "merchant_address": 300}  # the receipt schema's limits


def extract_receipt(lines: list, default_currency: str | None = None) -> Extraction:
    """Extract the receipt fields from OCR lines (objects with `text`, `box`, `score`).

    `default_currency` (ISO 4217) is used when the receipt prints no currency mark.
    """
    raw_lines = list(lines or [])
    fold = _stray_accents(getattr(r, "text", "") or "" for r in raw_lines)
    ls: list[_L] = []
    for i, raw in enumerate(raw_lines):
        text = _norm(getattr(raw, "text", "") or "")
        if fold:
            text = _fold_accents(text)
        if not text:
            continue
        box = tuple(float(v) for v in getattr(raw, "box", (0, 0, 0, 0)))
        ls.append(_L(i, text, text.upper(), box, float(getattr(raw, "score", 1.0) or 0.0)))
    ex = Extraction()
    if not ls:  # nothing was read: not even the default currency is claimed for it
        return ex

    def put(name: str, value, used: list[_L], conf: float) -> None:
        ex.put(name, value, conf, _evidence(used), max_len=_MAX_LEN.get(name, 200))

    rows = _rows(ls)
    merchant = _merchant(rows, ls)
    if merchant:
        name, used, conf, last = merchant
        put("merchant_name", name, used, conf)
        addr = _address(rows, last)
    else:
        addr = _address(rows, -1)
    if addr:
        put("merchant_address", addr[0], addr[1], addr[2])

    date = _transaction_date(ls)
    if date:
        put("transaction_date", *date)

    amounts = _amount_fields(ls)
    for key in ("total", "subtotal", "tax"):
        if key in amounts:
            value, used, conf = amounts[key]
            put(key, round(float(value), 2), used, conf)

    cur = _currency(ls, default_currency)
    if cur:
        put("currency", *cur)

    items = _items(ls, rows)
    if items:
        listed, used, conf = items
        # the items adding up to the subtotal or the total is good evidence they were read right
        total_items = round(sum(i["amount"] for i in listed), 2)
        for key in ("subtotal", "total"):
            if key in ex.fields and abs(ex.fields[key] - total_items) < 0.011:
                conf = 0.85
                break
        for item in listed:
            item["description"] = item["description"][:200]
        put("items", listed[:50], used, conf)
    _corroborate_total(ex)
    return ex


def _corroborate_total(ex: Extraction) -> None:
    """Raise the total's confidence when amounts read from other lines add up to it (subtotal +
    tax, or the items): a misread total (7.20 for 127.20) does not also satisfy an independent
    sum, nor an item line at its price. The sum's own confidence is its weakest piece's (paid -
    change already counts in the amounts reader)."""
    fields, conf = ex.fields, ex.confidence
    total = fields.get("total")
    if not isinstance(total, (int, float)) or total <= 0:
        return
    support = []
    subtotal, tax = fields.get("subtotal"), fields.get("tax")
    if isinstance(subtotal, (int, float)) and isinstance(tax, (int, float)) and tax > 0 \
            and abs(subtotal + tax - total) < 0.011:
        support.append(min(conf["subtotal"], conf["tax"]))
    items = fields.get("items")
    if isinstance(items, list) and items:
        amounts = [i.get("amount") for i in items if isinstance(i, dict)]
        # Read from other lines than the total's (one item at the total's price is the value
        # printed twice: still two readings).
        apart = not {tuple(b) for b in ex.evidence.get("total", ())} & {tuple(b) for b in ex.evidence.get("items", ())}
        if apart and amounts and all(isinstance(a, (int, float)) for a in amounts) \
                and abs(round(sum(amounts), 2) - total) < 0.011:
            support.append(conf.get("items", 0.0))
    if support:
        conf["total"] = round(corroborated(conf["total"], max(support)), 3)
