"""The currency: what the document prints (a label, a code, a symbol, "Rs.", a currency's name; $
alone is USD unless it names another dollar), else what the document implies (the VAT id and
country of its parties, its language) with a confidence that says it is a guess, and only then
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


# Printed marks the receipt parser does not know: rupees written "Rs." / "Rs" before an amount,
# and currencies written out by name.
_MARK_RES = [
    (re.compile(r"(?<![A-Z])RS\.?\s?\d|\d\s?/-(?!\w)|(?<![A-Z])RUPEES?\b|(?<![A-Z])INR\b|₹"), "INR"),
    (re.compile(r"(?<![A-Z])EUROS?\b"), "EUR"),
    (re.compile(r"\bUS\s*DOLLARS?\b|\bU\.S\.\s*DOLLARS?\b|\bDOLARES\s*ESTADOUNIDENSES\b"), "USD"),
    (re.compile(r"\bPOUNDS?\s*STERLING\b|\bSTERLING\b"), "GBP"),
    (re.compile(r"\bRINGGIT\b"), "MYR"),
    (re.compile(r"\bSWISS\s*FRANCS?\b|\bSCHWEIZER\s*FRANKEN\b|\bFRANCS?\s*SUISSES?\b"), "CHF"),
    (re.compile(r"元|人民币"), "CNY"),
]
_EURO_COUNTRIES = "AT|BE|CY|DE|EE|EL|ES|FI|FR|GR|HR|IE|IT|LT|LU|LV|MT|NL|PT|SI|SK"
# A VAT / GST id in its country's format: the currency of that country (the issuer's, or a
# party's: a clue, not proof).
_TAX_ID_RES = [
    (re.compile(r"(?<![A-Z0-9])(?:" + _EURO_COUNTRIES + r")\s?[0-9A-Z]{8,12}\b"), "EUR"),
    (re.compile(r"(?<![A-Z0-9])GB\s?(?:\d{3}\s?\d{4}\s?\d{2}|\d{9})\b"), "GBP"),
    (re.compile(r"(?<![A-Z0-9])CHE[-\s]?\d{3}\.?\d{3}\.?\d{3}\b"), "CHF"),
    (re.compile(r"(?<![A-Z0-9])\d{2}[A-Z]{5}\d{4}[A-Z][1-9A-Z]Z[0-9A-Z]\b"), "INR"),  # GSTIN
]
_TAX_ID_LABEL_RE = re.compile(r"\b(?:VAT|UST|TVA|BTW|IVA|MWST|NIF|CIF|GST|GSTIN|TAX)\b|USTID|P\.?\s*IVA|PARTITA")
_COUNTRY_RES = [
    (re.compile(r"\b(?:GERMANY|DEUTSCHLAND|FRANCE|NETHERLANDS|NEDERLAND|THE\s+NETHERLANDS|BELGIUM|BELGIQUE|BELGIE|"
                r"AUSTRIA|OSTERREICH|ITALY|ITALIA|SPAIN|ESPANA|PORTUGAL|IRELAND|FINLAND|LUXEMBOURG|GREECE|"
                r"SLOVAKIA|SLOVENIA|ESTONIA|LATVIA|LITHUANIA|MALTA|CYPRUS|CROATIA)\s*$"), "EUR"),
    (re.compile(r"\b(?:INDIA|BHARAT)\s*$|\b(?:MAHARASHTRA|KARNATAKA|TAMIL\s+NADU|DELHI|GUJARAT|TELANGANA)\b"), "INR"),
    (re.compile(r"\b(?:UNITED\s+KINGDOM|ENGLAND|SCOTLAND|WALES|GREAT\s+BRITAIN)\s*$|\bUK\s*$"), "GBP"),
    (re.compile(r"\b(?:UNITED\s+STATES(?:\s+OF\s+AMERICA)?|USA|U\.S\.A\.)\s*$"), "USD"),
    (re.compile(r"\b(?:SWITZERLAND|SCHWEIZ|SUISSE|SVIZZERA)\s*$"), "CHF"),
    (re.compile(r"\bMALAYSIA\s*$"), "MYR"),
]
# The language of the page: words every invoice in it prints (a weak clue: EUR for the euro area's
# languages; English and German say nothing on their own).
_LANGUAGE_RES = [
    (re.compile(r"\b(?:FACTUUR|BTW|TOTAAL|BEDRAG|FACTURE|TVA|MONTANT|FACTURA|IMPORTE|FATTURA|IMPORTO|FATURA|"
                r"RECHNUNG|MWST|UST)\b"), "EUR"),
]


def _clue_currency(doc: _Doc) -> tuple[str, list[_IL], float] | None:
    """The currency the document implies without printing one: the parties' VAT ids in their
    country's format (each counts twice) and the countries closing their addresses, by majority,
    else the page's language. Confidence 0.45–0.65: a guess, lower when the clues disagree."""
    votes: dict[str, list] = {}
    for l in doc.ls:
        f = l.fold
        if _TAX_ID_LABEL_RE.search(f):
            for rx, code in _TAX_ID_RES:
                if rx.search(f.replace(" ", "") if code != "INR" else f):
                    votes.setdefault(code, []).append((2, l))
        for rx, code in _COUNTRY_RES:
            if rx.search(f.strip()):
                votes.setdefault(code, []).append((1, l))
    if votes:
        code = max(votes, key=lambda c: sum(w for w, _ in votes[c]))
        weight = sum(w for w, _ in votes[code])
        others = sum(w for c, v in votes.items() if c != code for w, _ in v)
        conf = 0.65 if weight >= 2 and not others else 0.55 if weight > others else 0.45
        return code, [l for _, l in votes[code][:3]], conf
    for rx, code in _LANGUAGE_RES:
        hits = [l for l in doc.ls if rx.search(l.fold)]
        if hits:
            return code, hits[:2], 0.5
    return None


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
    if found and found[0] in _DOLLAR_CODES and found[2] < 0.9 and not any(
            re.search(r"\b" + found[0] + r"\b|" + {"CAD": "C\\$", "AUD": "A\\$", "SGD": "S\\$", "HKD": "HK\\$",
                                                    "NZD": "NZ\\$", "TWD": "NT\\$"}.get(found[0], "US\\$"), l.up)
            for l in doc.ls) and not any(re.search(r"\b(?:ABN|ACN|GST|HST|QST|UEN|GSTIN|SDN\.?\s*BHD|BHD|PTE)\b", l.up)
                                         for l in doc.ls):
        # "$" and a country's name without its tax registration: the receipt reader's guess of
        # which dollar. An invoice that prints no code and no local tax id (ABN, GST/HST…) is
        # billed in US dollars more often than in its issuer's dollar; either way a guess.
        found = ("USD", found[1], 0.55)
    marks = None
    for rx, code in _MARK_RES:
        hits = [l for l in doc.ls if rx.search(l.up)]
        if hits and (marks is None or len(hits) > len(marks[1])):
            marks = (code, hits[:3], 0.85 if code == "INR" or len(hits) > 1 else 0.75)
    if marks and (found is None or found[2] < 0.9 or found[0] == "MYR" and marks[0] == "INR"):
        # "Rs." read by the receipt rules as something else, or a bare "$" beside a currency's name
        if found is None or found[0] != marks[0]:
            found = marks
    if found:
        return found
    clue = _clue_currency(doc)
    if clue:
        return clue
    if default_currency:
        return default_currency.upper(), [], 0.4
    return None
