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
    r"\bDATE\b|\bDATUM\b|\bDATE\s*:|\bLE\b|\bVOM\b|\bDU\b|\bON\b|"
    r"FACTUUR\s*-?\s*DATUM|DATUM\s*FACTUUR|FECHA(?:\s*DE)?(?:\s*LA)?\s*(?:FACTURA|EMISION|EXPEDICION)|\bFECHA\b|"
    r"DATA\s*(?:DELLA\s*)?FATTURA|DATA\s*(?:DI\s*)?EMISSIONE|DATA\s*D[AE]\s*(?:FATURA|EMISSAO)|\bDATA\b|\bDEL\b|"
    r"开票日期|日期"
)
_STRONG_ISSUE_RE = re.compile(r"INVOICE\s*DATE|DATE\s*OF\s*(?:INVOICE|ISSUE)|ISSUE\s*DATE|RECHNUNGS\s*-?\s*DATUM|BELEG\s*-?\s*DATUM|"
                              r"DATE\s*DE\s*(?:LA\s*)?FACTURE|DATE\s*D'?\s*EMISSION|AUSSTELLUNGS|DATE\s*ISSUED|"
                              r"FACTUUR\s*-?\s*DATUM|DATUM\s*FACTUUR|FECHA\s*(?:DE\s*)?(?:LA\s*)?(?:FACTURA|EMISION|EXPEDICION)|"
                              r"DATA\s*(?:DELLA\s*)?FATTURA|DATA\s*(?:DI\s*)?EMISSIONE|DATA\s*D[AE]\s*(?:FATURA|EMISSAO)|开票日期")
_NOT_ISSUE_DATE_RE = re.compile(
    r"DUE|PAYABLE|PAY\s*BY|PAYMENT|FALLIG|ZAHLBAR|ZAHLUNG|ZIEL|SKONTO|ECHEANCE|REGLEMENT|PAIEMENT|AVANT\s+LE|"
    r"LIEFER|LEISTUNG|DELIVER|SHIP|DISPATCH|SERVICE|PERIOD|ZEITRAUM|BIS\b|UNTIL|THROUGH|VALID|GULTIG|EXPIR|"
    r"ORDER|BESTELL|AUFTRAG|VERTRAG|CONTRACT|LIEFERSCHEIN|LIVRAISON|COMMANDE|EXECUTION|PRESTATION|"
    r"START|END|ENDE|BEGINN|FROM|\bVON\b|\bAU\b|\bTO\b|BIRTH|GEBURT|STAND|PRINTED|GEDRUCKT|ZAHLUNGSEINGANG|RECEIVED|"
    r"ACOMPTE|VIREMENT|KW\b|ABRECHNUNG|REKLAMATION|TELEFONAT|SCHREIBEN|RENEW|COVERAGE|ACTIVATION|"
    r"VERVAL|LEVER|PERIODE|BETAAL|UITERLIJK|BESTEL|\bTOT\b|\bT/M\b|"
    r"VENCIM|ENTREGA|PERIODO|SERVICIO|PRESTACION|PAGO|PEDIDO|DESDE|HASTA|ENVIO|"
    r"SCADENZA|CONSEGNA|SPEDIZIONE|PAGAMENTO|ORDINE|\bDAL\b|\bAL\b|CONTRATTO|"
    r"ENCOMENDA|CONTRATO|\bATE\b|ASSOCIE|LIEE|RELATED|REFERENCED|ORIGINAL\s*INVOICE|URSPRUNG|BEZUG|CORRIG|"
    r"到期|交货|服务期|期间"
)
_PAYMENT_OR_ORDER_RE = re.compile(r"PAYMENT|PAID|PAY\s*DATE|ACTIVATION|ORDER|BESTELL|COMMANDE|PEDIDO|ORDINE|BETAALD|ZAHLUNGSEINGANG")
_TITLE_CONTEXT_RE = re.compile(r"RECHNUNG|INVOICE|FACTURE|AVOIR|GUTSCHRIFT|CREDIT\s+NOTE")


# Month names (accent-folded, upper case) by language, for dates written in words in the languages
# the receipt parser does not read (Dutch, Spanish, Italian, Portuguese; English, German and French
# it reads itself). A span found here is handed to `dateparser`, restricted to the languages
# whose month names it uses.
_MONTHS = {
    "en": "JANUARY FEBRUARY MARCH APRIL MAY JUNE JULY AUGUST SEPTEMBER OCTOBER NOVEMBER DECEMBER",
    "de": "JANUAR JANNER FEBRUAR MARZ APRIL MAI JUNI JULI AUGUST SEPTEMBER OKTOBER NOVEMBER DEZEMBER",
    "fr": "JANVIER FEVRIER MARS AVRIL MAI JUIN JUILLET AOUT SEPTEMBRE OCTOBRE NOVEMBRE DECEMBRE",
    "nl": "JANUARI FEBRUARI MAART APRIL MEI JUNI JULI AUGUSTUS SEPTEMBER OKTOBER NOVEMBER DECEMBER",
    "es": "ENERO FEBRERO MARZO ABRIL MAYO JUNIO JULIO AGOSTO SEPTIEMBRE SETIEMBRE OCTUBRE NOVIEMBRE DICIEMBRE",
    "it": "GENNAIO FEBBRAIO MARZO APRILE MAGGIO GIUGNO LUGLIO AGOSTO SETTEMBRE OTTOBRE NOVEMBRE DICEMBRE",
    "pt": "JANEIRO FEVEREIRO MARCO ABRIL MAIO JUNHO JULHO AGOSTO SETEMBRO OUTUBRO NOVEMBRO DEZEMBRO",
}
_MONTH_LANGS: dict[str, set[str]] = {}
for _lang, _names in _MONTHS.items():
    for _name in _names.split():
        for _form in {_name, _name[:3], _name[:4]}:
            _MONTH_LANGS.setdefault(_form, set()).add(_lang)
_MONTH_ALT = "|".join(sorted(_MONTH_LANGS, key=len, reverse=True))
_WORD_DATE_RES = (
    # 3 maart 2014, 3 de agosto de 2014, 3. März 2014, 1º de março de 2014, 15-set-2023
    re.compile(r"(?<![\d\w])(?P<d>\d{1,2})(?:\.|ST|ND|RD|TH|ER|E|O|º|°)?\s*(?:DE\s+|[-/]\s*)?(?P<m>" + _MONTH_ALT
               + r")\.?(?![A-Z])\s*(?:DE\s+|DEL\s+|[-/,]\s*)?(?P<y>\d{4})(?!\d)"),
    # August 3, 2014 / maart 3 2014
    re.compile(r"(?<![A-Z])(?P<m>" + _MONTH_ALT + r")\.?\s+(?P<d>\d{1,2})(?:ST|ND|RD|TH)?,?\s+(?P<y>\d{4})(?!\d)"),
)
_PARSERS: dict[tuple[str, ...], Any] = {}


def _parser(languages: tuple[str, ...]):
    """One `dateparser` parser per set of languages, made once (its locale data loads lazily)."""
    parser = _PARSERS.get(languages)
    if parser is None:
        from dateparser.date import DateDataParser

        parser = DateDataParser(languages=list(languages), settings={"REQUIRE_PARTS": ["day", "month", "year"],
                                                                     "PREFER_DAY_OF_MONTH": "first"})
        _PARSERS[languages] = parser
    return parser


def _word_dates(up: str, taken: list[tuple[int, int]]) -> list[tuple[int, int, Any, int]]:
    """Dates written with a month name that the receipt parser did not read, parsed by
    `dateparser` in the languages that use that month name."""
    out = []
    for rx in _WORD_DATE_RES:
        for m in rx.finditer(up):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            langs = tuple(sorted(_MONTH_LANGS.get(m.group("m"), ())))
            if not langs:
                continue
            text = f"{int(m.group('d'))} {m.group('m')} {m.group('y')}"
            try:
                found = _parser(langs).get_date_data(text).date_obj
            except Exception:  # a parser failure is no date, never a crash
                found = None
            if found is None:
                continue
            out.append((m.start(), m.end(), found.date(), 2))
            taken = taken + [(m.start(), m.end())]
    return out


def _date_scan(text: str) -> tuple[list[tuple[int, int, Any, int]], str]:
    """The dates in a text (accents folded, so "août", "März", "décembre" read; Dutch, Spanish,
    Italian and Portuguese month names through `dateparser`) and the folded text their offsets
    refer to."""
    up = _fold(text)
    up = re.sub(r"\b1ER\b", "1 ", up)
    found = list(_date_matches(up))
    if re.search(r"[A-Z]{3}", up) and re.search(r"\d{4}", up):
        found += _word_dates(up, [(s, e) for s, e, _, _ in found])
        found.sort(key=lambda f: f[0])
    return found, up


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
    if re.search(r"[A-Z]{2}|[\u4e00-\u9fff]{2}", before):
        return before[-45:], [l]
    for o in doc.left_of(l)[:1]:
        label_like = _digits(o.fold) == 0 or re.search(r"[:：]\s*$|\b(?:VOM|DU|LE|ON|DATED)\s*$", o.fold)
        if (l.x0 - o.x1 <= max(15 * max(doc.med_h, l.h), 0.3 * doc.width) and re.search(r"[A-Z]{2}|[\u4e00-\u9fff]{2}", o.fold)
                and label_like):
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
    fallback = []
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
            if re.match(r"\s*(?:-|–|BIS|TO|AU|UNTIL|TOT|HASTA|AL|ATE)\b", after):
                continue  # the start of a period
            strong = _STRONG_ISSUE_RE.search(seg)
            bad = _NOT_ISSUE_DATE_RE.search(seg)
            if bad and strong and bad.start() < strong.start() and re.search(
                    r"[-\s](?:UND|AND|ET|EN|Y|E)\s|&|/", seg[bad.start():strong.start()]):
                bad = None  # "Liefer- und Rechnungsdatum": the invoice's date too
            if bad:
                if _PAYMENT_OR_ORDER_RE.search(seg) and not re.search(r"DUE|FALLIG|ECHEANCE|VERVAL|VENCIM|SCADENZA", seg):
                    fallback.append((0.5, strength, -l.page, -l.y0, d, used))
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
            height = max(1.0, l.page_bottom - l.page_top)
            if score < 4 and l.h < 0.7 * doc.med_h and l.y1 > l.page_bottom - 0.12 * height:
                score = 0.5  # fine print at the foot of the page: when it was printed, not issued
            cands.append((score, strength, -l.page, -l.y0, d, used))
    if not cands and fallback:
        # nothing but the date it was paid, activated or ordered (a receipt-like invoice paid at
        # checkout): that date, as a guess
        best = max(fallback, key=lambda c: c[:4])
        return best[4].isoformat(), best[5], 0.45
    if not cands:
        return None
    best = max(cands, key=lambda c: c[:4])
    conf = {4: 0.95, 3.5: 0.9, 3: 0.85, 2: 0.8, 1: 0.6, 0.5: 0.45}[best[0]] * (1.0 if best[1] == 2 else 0.85)
    return best[4].isoformat(), best[5], conf
