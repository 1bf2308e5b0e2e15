"""The currency: what the document prints ($ alone is USD unless it names another dollar), else
the deployment default."""
from __future__ import annotations

import re

from worker.extract.invoice.layout import _Doc
from worker.extract.invoice.lines import _IL
from worker.extract.receipt.currency import _currency

_CURRENCY_LABEL_RE = re.compile(r"(?:CURRENCY|WAHRUNG|RECHNUNGSWAHRUNG|DEVISE|MONNAIE)\s*[:：]?\s*(?P<code>[A-Z]{3})\b")
_AMOUNTS_IN_RE = re.compile(r"(?:(?:ALL\s+)?(?:AMOUNTS|PRICES|FIGURES)\s+(?:ARE\s+)?(?:IN|SHOWN\s+IN|STATED\s+IN)|"
                            r"(?:ALLE\s+)?(?:BETRAGE|PREISE)\s+IN|MONTANTS\s+(?:EXPRIMES\s+)?EN)\s+(?P<code>[A-Z]{3})\b")
_DOLLAR_CODES = {"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "TWD"}
_ISO_CODES = {"USD", "EUR", "GBP", "CHF", "CAD", "AUD", "NZD", "SGD", "HKD", "JPY", "CNY", "SEK", "NOK", "DKK", "PLN",
              "CZK", "HUF", "INR", "MYR", "ZAR", "AED", "MXN", "BRL", "TWD", "KRW", "THB", "IDR", "PHP", "VND", "MAD"}


def _find_currency(doc: _Doc, default_currency: str | None) -> tuple[str, list[_IL], float] | None:
    for l in doc.by_y:
        m = _CURRENCY_LABEL_RE.search(l.fold)
        used = [l]
        code = m.group("code") if m else None
        if m is None and re.search(r"(?:CURRENCY|WAHRUNG|DEVISE)\s*[:：]?\s*$", l.fold):
            right = doc.right_of(l)
            if right and re.fullmatch(r"[A-Z]{3}", right[0].fold):
                code, used = right[0].fold, [l, right[0]]
        if code in _ISO_CODES:
            return code, used, 0.95
    m = None
    for l in doc.ls:
        m = _AMOUNTS_IN_RE.search(l.fold)
        if m and m.group("code") in _ISO_CODES:
            return m.group("code"), [l], 0.9
    # the marks and codes printed with the amounts, else anywhere; a bare "$" is USD unless
    # the document names another dollar
    money_lines = [l for l in doc.ls if doc.amounts(l.text) or re.search(r"[€$£¥]", l.text)]
    found = _currency(money_lines, None) if money_lines else None
    anywhere = _currency(doc.ls, None)
    if found and found[2] < 0.9 and anywhere and anywhere[0] in _DOLLAR_CODES:
        found = (anywhere[0], found[1], max(found[2], anywhere[2] - 0.1))  # which dollar, from the whole page
    found = found or anywhere
    if found:
        return found
    if default_currency:
        return default_currency.upper(), [], 0.4
    return None
