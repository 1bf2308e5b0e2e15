"""The issue date: the date labelled as the invoice's, never a due, delivery, order or period
date; numeric dates day-first unless the document shows month-first."""
from __future__ import annotations

import re
from typing import Any

from worker.extract.invoice.layout import _Doc
from worker.extract.invoice.lines import _digits, _fold, _IL
from worker.extract.receipt.dates import _date_matches

_ISSUE_DATE_RE = re.compile(
    r"INVOICE\s*DATE|DATE\s*OF\s*(?:INVOICE|ISSUE)|ISSUE\s*DATE|ISSUED(?:\s*ON)?|DATE\s*ISSUED|BILLING\s*DATE|BILL\s*DATE|"
    r"TAX\s*POINT|DATED|RECHNUNGS\s*-?\s*DATUM|BELEG\s*-?\s*DATUM|AUSSTELLUNGS\s*-?\s*DATUM|AUSGESTELLT\s*AM|"
    r"DATE\s*DE\s*(?:LA\s*)?(?:FACTURE|FACTURATION)|DATE\s*D'?\s*EMISSION|EMISE?\s*LE|FAIT\s*LE|"
    r"\bDATE\b|\bDATUM\b|\bDATE\s*:|\bLE\b|\bVOM\b|\bDU\b|\bON\b"
)
_STRONG_ISSUE_RE = re.compile(r"INVOICE\s*DATE|DATE\s*OF\s*(?:INVOICE|ISSUE)|ISSUE\s*DATE|RECHNUNGS\s*-?\s*DATUM|BELEG\s*-?\s*DATUM|"
                              r"DATE\s*DE\s*(?:LA\s*)?FACTURE|DATE\s*D'?\s*EMISSION|AUSSTELLUNGS")
_NOT_ISSUE_DATE_RE = re.compile(
    r"DUE|PAYABLE|PAY\s*BY|PAYMENT|FALLIG|ZAHLBAR|ZAHLUNG|ZIEL|SKONTO|ECHEANCE|REGLEMENT|PAIEMENT|AVANT\s+LE|"
    r"LIEFER|LEISTUNG|DELIVER|SHIP|DISPATCH|SERVICE|PERIOD|ZEITRAUM|BIS\b|UNTIL|THROUGH|VALID|GULTIG|EXPIR|"
    r"ORDER|BESTELL|AUFTRAG|VERTRAG|CONTRACT|LIEFERSCHEIN|LIVRAISON|COMMANDE|EXECUTION|PRESTATION|"
    r"START|END|ENDE|BEGINN|FROM|\bVON\b|\bAU\b|\bTO\b|BIRTH|GEBURT|STAND|PRINTED|GEDRUCKT|ZAHLUNGSEINGANG|RECEIVED|"
    r"ACOMPTE|VIREMENT|KW\b|ABRECHNUNG|REKLAMATION|TELEFONAT|SCHREIBEN"
)
_TITLE_CONTEXT_RE = re.compile(r"RECHNUNG|INVOICE|FACTURE|AVOIR|GUTSCHRIFT|CREDIT\s+NOTE")


def _date_scan(text: str) -> tuple[list[tuple[int, int, Any, int]], str]:
    """The dates in a text (accents folded, so "août", "März", "décembre" read) and the folded
    text their offsets refer to."""
    up = _fold(text)
    up = re.sub(r"\b1ER\b", "1 ", up)
    return _date_matches(up), up


def _month_first(doc: _Doc, currency: str | None) -> bool:
    """Whether numeric dates read month-first: from dates that can only be read one way, else
    from the currency (a US-dollar invoice is American)."""
    dm = md = 0
    for l in doc.ls:
        for m in re.finditer(r"(?<![\d./-])(\d{1,2})([/.-])(\d{1,2})\2(\d{2,4})(?![\d])", _blank_iso(l.text)):
            a, b = int(m.group(1)), int(m.group(3))
            if a > 12 >= b:
                dm += 1
            elif b > 12 >= a:
                md += 1
    if dm or md:
        return md > dm
    return currency == "USD"


def _blank_iso(text: str) -> str:
    return re.sub(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}", " ", text)


def _reread(up: str, start: int, end: int, d, month_first: bool):
    """A numeric day-first date re-read month-first (the receipt parser reads day-first)."""
    if not month_first:
        return d
    span = up[start:end]
    if re.search(r"[A-Z]", span):
        return d
    nums = re.findall(r"\d+", span)
    if len(nums) != 3 or len(nums[0]) == 4:
        return d
    a, b = int(nums[0]), int(nums[1])
    import datetime as _dt

    try:
        return _dt.date(d.year, a, b)
    except ValueError:
        return d


def _date_context(doc: _Doc, l: _IL, before: str) -> tuple[str, list[_IL]]:
    """The label of a date: the words before it in its own box, else the box just left of it on
    its row, else the label printed over it (a header row over a row of values)."""
    if re.search(r"[A-Z]{2}", before):
        return before[-45:], [l]
    for o in doc.left_of(l)[:1]:
        label_like = _digits(o.fold) == 0 or re.search(r"[:：]\s*$|\b(?:VOM|DU|LE|ON|DATED)\s*$", o.fold)
        if l.x0 - o.x1 <= 15 * max(doc.med_h, l.h) and re.search(r"[A-Z]{2}", o.fold) and label_like:
            return o.fold[-45:], [o, l]
    above = doc.label_over(l)
    if above is not None:
        return _overlapping_words(above, l), [above, l]
    return before[-45:], [l]


def _overlapping_words(label: _IL, value: _IL) -> str:
    """The words of a (possibly joined) header box that sit over a value box, their positions
    estimated from their character offsets."""
    text = label.fold
    if label.w <= 1.6 * value.w or not text:
        return text
    per_char = label.w / max(1, len(text))
    words = []
    for m in re.finditer(r"\S+", text):
        x0 = label.x0 + m.start() * per_char
        x1 = label.x0 + m.end() * per_char
        if min(x1, value.x1 + 2 * per_char) - max(x0, value.x0 - 2 * per_char) > 0:
            words.append(m.group(0))
    return " ".join(words) or text


def _issue_date(doc: _Doc, month_first: bool) -> tuple[str, list[_IL], float] | None:
    cands = []
    limit = doc.header_limit
    for l in doc.by_y:
        found, up = _date_scan(l.text)
        prev_end = 0
        for start, end, d, strength in found:
            before = up[prev_end:start]
            prev_end = end
            after = up[end:end + 12]
            d = _reread(up, start, end, d, month_first)
            seg, used = _date_context(doc, l, before)
            if _NOT_ISSUE_DATE_RE.search(seg) or re.match(r"\s*(?:-|–|BIS|TO|AU|UNTIL)\b", after):
                continue
            if re.search(r"(?:-|–|BIS|TO|AU|UNTIL)\s*$", before):
                continue  # the end of a period
            if _STRONG_ISSUE_RE.search(seg):
                score = 4
            elif _ISSUE_DATE_RE.search(seg):
                score = 3.5 if _TITLE_CONTEXT_RE.search(seg) else 3
            elif _TITLE_CONTEXT_RE.search(seg):
                score = 2
            else:
                if l.page != 0 or l.y0 > limit:
                    continue
                score = 1
            cands.append((score, strength, -l.page, -l.y0, d, used))
    if not cands:
        return None
    best = max(cands, key=lambda c: c[:4])
    conf = {4: 0.95, 3.5: 0.9, 3: 0.85, 2: 0.8, 1: 0.6}[best[0]] * (1.0 if best[1] == 2 else 0.85)
    return best[4].isoformat(), best[5], conf
