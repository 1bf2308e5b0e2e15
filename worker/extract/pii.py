"""Personal-data detection in free text (Chinese and English), validated where a checksum exists.

Types (docs/fields.md, screenshot section):
- ``email``: e-mail addresses.
- ``phone``: found and validated by ``phonenumbers`` (Google's libphonenumber metadata): numbers
  in international format (+44 20 7946 0018, (+86)15012345678) of any country, and national
  formats of the regions in NATIONAL_REGIONS (Chinese mobiles and landlines with an area code,
  North American, UK); a number that is no valid number of its country is not reported.
- ``cn_resident_id``: PRC resident identity numbers, 18 characters, valid for python-stdnum's
  ``stdnum.cn.ric`` (ISO 7064 MOD 11-2 check character, birth date), with a known province code
  and a birth date from 1900 to today.
- ``bank_card``: payment-card numbers, 13-19 digits (spaces or dashes between groups allowed),
  Luhn-valid only (``stdnum.luhn``); and bank account numbers as IBANs (``stdnum.iban``: country
  format and MOD 97-10 check digits), the bank account the screenshot policy also calls so.

Numbers embedded in longer digit runs, dates, money amounts and numbers introduced as order /
invoice / tracking numbers are not reported. Each finding is ``{"type", "value", "span"}``:
``value`` is masked (all but the last 4 characters replaced by ``*``, after removing
separators), ``span`` is the (start, end) character range in the input text.
"""
from __future__ import annotations

import re
from datetime import date

import phonenumbers
from stdnum import ean as _ean
from stdnum import iban as _iban
from stdnum import luhn as _luhn
from stdnum.cn import ric as _ric

__all__ = ["find_personal_data", "mask", "luhn_valid", "cn_resident_id_valid", "PII_TYPES"]

PII_TYPES = ("phone", "email", "cn_resident_id", "bank_card")

_PROVINCES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
              50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91}

# A number introduced like this is a reference number, not personal data.
_REFERENCE_CUE = re.compile(
    r"(?:order|invoice|tracking|ticket|ref(?:erence)?|transaction|txn|receipt|serial|sku|po|case|"
    r"订单|单号|编号|流水号|交易号|发票|运单|快递|批次|序列号|合同号)\s*(?:no\.?|number|#|id|号|编号)?\s*[:：#.]?\s*$",
    re.I,
)
_CARD_CUE = re.compile(r"card|卡号|银行卡|信用卡|借记卡|储蓄卡|账号|帐号|account|visa|mastercard|amex|银联", re.I)

_EMAIL = re.compile(r"(?<![A-Za-z0-9_.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                    r"[A-Za-z]{2,24}(?![A-Za-z0-9_-])")
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx])(?![0-9A-Za-z])")
# groups of digits separated by single spaces or dashes (never newlines), 13-19 digits in all
_CARD = re.compile(r"(?<![\d.,-])(\d{4,6}(?:[ -]?\d{3,6}){1,4})(?![\d-]|[.,]\d)")

_NOT_BEFORE = r"(?<![A-Za-z0-9_+])(?<!\d[.,/-])"
_NOT_AFTER = r"(?![A-Za-z0-9_]|[.,/-]\d)"
# space-grouped formats must not be a slice of a longer run of digit groups (card numbers)
_NOT_IN_GROUPS_BEFORE = r"(?<!\d[ -])"
_NOT_IN_GROUPS_AFTER = r"(?![ -]\d)"
_PHONE_PATTERNS = [
    # Chinese mobile: 13812345678, 138 1234 5678, 138-1234-5678, +86 138 1234 5678, (+86)13812345678
    re.compile(_NOT_BEFORE + r"((?:(?:\+|00)86[ -]?|\(\+?86\)[ -]?)?1[3-9]\d(?:\d{8}|[ -]\d{4}[ -]\d{4}))" + _NOT_AFTER),
    # Chinese landline with area code: 010-12345678, 0755-1234567, (021) 6123 4567, +86 10 1234 5678
    re.compile(_NOT_BEFORE + _NOT_IN_GROUPS_BEFORE + r"((?:\(0\d{2,3}\)[ -]?|0\d{2,3}-|0\d{2,3} )\d{3,4}[ -]?\d{4})"
               + _NOT_AFTER + _NOT_IN_GROUPS_AFTER),
    # international, E.164 style: +44 20 7946 0018, +1 (415) 555-0100, +8613812345678, +49-30-1234567
    re.compile(r"(?<![A-Za-z0-9_+])(\+[1-9]\d{0,3}(?:[ .-]?\(?\d{1,5}\)?){1,5})" + _NOT_AFTER),
    # North American: (415) 555-0100, 415-555-0100, 415.555.0100, 1-800-555-0199
    re.compile(_NOT_BEFORE + r"((?:1[ .-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[.-])[2-9]\d{2}[.-]\d{4})" + _NOT_AFTER),
    # UK national: 020 7946 0018, 07700 900123, 0161 496 0000, 01632 960123
    re.compile(_NOT_BEFORE + _NOT_IN_GROUPS_BEFORE + r"(0\d{2,4} \d{3,4}(?: \d{3,4})?)" + _NOT_AFTER
               + _NOT_IN_GROUPS_AFTER),
]


#: Regions whose national formats (no +country code) libphonenumber reads as phone numbers;
#: numbers in international format are read for every country. Chinese, North American and UK
#: formats, as the patterns above: what the screenshots Docket screens show. A national number
#: must be written with separators (a bare run of ten digits is as often an invoice or delivery
#: number, valid for North America's plan) and without dots (dates, times, amounts).
NATIONAL_REGIONS = ("CN", "US", "GB")
# Numbers introduced like this are tax, order or delivery numbers (German and French invoices),
# whatever numbering plan they happen to fit.
_TAX_OR_ORDER_CUE = re.compile(
    r"(?:bestellung|steuernummer|kundennummer|rechnungsnummer|lieferschein|ust\.?-?id\.?|tva|siret|siren|"
    r"n°|nr\.?|nummer)\s*(?:nr\.?|no\.?)?\s*[:：#.]?\s*(?:[A-Z]{2}\s?)?$", re.I)
_DATE_START = re.compile(r"^(?:(?:19|20)\d{2}-[01]?\d-|[0-3]?\d-[01]?\d-(?:19|20)\d{2})")
_SEPARATED = re.compile(r"\d[ \u00a0()/-]+\d")
# An IBAN: country, check digits, then 11-30 letters and digits, in groups of four or not.
_IBAN = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?)(?![A-Za-z0-9])")
# A decimal number ("1.3812345678") is no phone number, whatever libphonenumber makes of it.
_DECIMAL = re.compile(r"^\d+[.,]\d+$")


def mask(value: str, keep: int = 4) -> str:
    """All but the last `keep` characters replaced by '*'."""
    if len(value) <= keep:
        return value
    return "*" * (len(value) - keep) + value[-keep:]


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check over a string of digits."""
    return digits.isdigit() and _luhn.is_valid(digits)


def cn_resident_id_valid(value: str, today: date | None = None) -> bool:
    """18-character PRC resident ID: province code, birth date (1900..today) and check character."""
    value = value.upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    if int(value[:2]) not in _PROVINCES:
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if born.year < 1900 or born > (today or date.today()):
        return False
    return _ric.is_valid(value)


# Card networks' issuer prefixes (ISO/IEC 7812 IIN ranges as the networks publish them) and lengths.
_NETWORKS = (
    (("4",), (13, 16, 19)),                                            # Visa
    (tuple(str(p) for p in range(51, 56)) + tuple(str(p) for p in range(2221, 2721)), (16,)),  # Mastercard
    (("34", "37"), (15,)),                                             # American Express
    (("300", "301", "302", "303", "304", "305", "36", "38", "39"), (14, 15, 16, 17, 18, 19)),  # Diners
    (("6011", "644", "645", "646", "647", "648", "649", "65"), (16, 17, 18, 19)),  # Discover
    (tuple(str(p) for p in range(3528, 3590)), (16, 17, 18, 19)),      # JCB
    (("62", "81"), (16, 17, 18, 19)),                                  # UnionPay
    (("50", "56", "57", "58", "6"), (12, 13, 14, 15, 16, 17, 18, 19)),  # Maestro and national debit
)


def _card_network(digits: str) -> bool:
    return any(len(digits) in lengths and digits.startswith(prefixes) for prefixes, lengths in _NETWORKS)


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(a < span[1] and span[0] < b for a, b in taken)


def _is_reference(text: str, start: int) -> bool:
    return bool(_REFERENCE_CUE.search(text[max(0, start - 24):start]))


def _looks_like_date_or_amount(text: str, start: int, end: int) -> bool:
    """Digits right after a currency mark, or followed by a unit / date character."""
    before = text[max(0, start - 2):start]
    after = text[end:end + 1]
    if re.search(r"[$€£¥￥]\s?$", before) or re.search(r"(?:RMB|USD|CNY|HKD)\s?$", text[max(0, start - 4):start], re.I):
        return True
    return after in ("年", "元", "%", "万", "月", "日")


def find_personal_data(text: str) -> list[dict]:
    """Personal data in text, as ``[{"type", "value" (masked), "span": (start, end)}]`` in text order."""
    if not text:
        return []
    findings: list[dict] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, raw: str, span: tuple[int, int]) -> None:
        taken.append(span)
        findings.append({"type": kind, "value": mask(raw), "span": span})

    for m in _EMAIL.finditer(text):
        add("email", m.group(0), m.span())

    for m in _RESIDENT_ID.finditer(text):
        if not _overlaps(m.span(1), taken) and cn_resident_id_valid(m.group(1)):
            add("cn_resident_id", m.group(1).upper(), m.span(1))

    for m in _CARD.finditer(text):
        raw = m.group(1)
        span = m.span(1)
        digits = _digits(raw)
        if not 13 <= len(digits) <= 19 or _overlaps(span, taken):
            continue
        groups = re.split(r"[ -]", raw)
        if len(groups) > 1 and len(set(re.findall(r"[ -]", raw))) > 1:
            continue  # mixed separators: not how card numbers are written
        if len(groups) > 1 and any(len(g) < 4 for g in groups[:-1]):
            continue
        if not _card_network(digits) or not luhn_valid(digits) or (len(digits) == 13 and _ean.is_valid(digits)):
            continue  # no card network issues it, or a product number (GTIN/GLN, EAN-13)
        if _looks_like_date_or_amount(text, *span):
            continue
        if _is_reference(text, span[0]) and not _CARD_CUE.search(text[max(0, span[0] - 24):span[0]]):
            continue
        add("bank_card", digits, span)

    for m in _IBAN.finditer(text):
        if not _overlaps(m.span(1), taken) and _iban.is_valid(m.group(1)):
            add("bank_card", _iban.compact(m.group(1)), m.span(1))

    for rx in _PHONE_PATTERNS:
        for m in rx.finditer(text):
            raw = m.group(1).rstrip(" .-")
            span = (m.start(1), m.start(1) + len(raw))
            if _overlaps(span, taken):
                continue
            digits = _digits(raw)
            if raw.startswith("+"):
                if not 8 <= len(digits) <= 15:
                    continue
                # "+86" followed by something that is not a valid Chinese number is still allowed,
                # but a lone country code followed by one short group is not a phone number
                if len(re.findall(r"\d+", raw)) == 1 and len(digits) < 10:
                    continue
            elif not 7 <= len(digits) <= 15:
                continue
            if _looks_like_date_or_amount(text, *span) or _is_reference(text, span[0]):
                continue
            normal = ("+" if raw.startswith("+") else "") + digits
            add("phone", normal, span)

    # libphonenumber: what the patterns miss (other countries' numbers, other groupings), only
    # numbers valid in their country's numbering plan.
    for region in NATIONAL_REGIONS:
        for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            raw, span = m.raw_string, (m.start, m.end)
            international = raw.lstrip("( ").startswith(("+", "00"))
            if _overlaps(span, taken) or _DECIMAL.match(raw):
                continue
            if not international and ("." in raw or not _SEPARATED.search(raw)):
                continue
            if re.search(r"\S/|/\S", raw):
                continue  # 99999/22222: a tax or file number; a phone's slash stands between spaces
            before, after = text[max(0, span[0] - 2):span[0]], text[span[1]:span[1] + 2]
            if re.search(r"[A-Za-z0-9_]$|\d[.,/ -]$", before) or re.match(r"[A-Za-z0-9_]|[.,/: -]\d", after):
                continue  # a slice of a longer word or number, of a row of numbers, or a date before a time
            if _DATE_START.match(raw):
                continue  # 2018-01-05 (OCR glues the time on: 2018-01-0522:55:25)
            if _TAX_OR_ORDER_CUE.search(text[max(0, span[0] - 32):span[0]]):
                continue
            if _looks_like_date_or_amount(text, *span) or _is_reference(text, span[0]):
                continue
            normal = ("+" if raw.startswith("+") else "") + _digits(raw)
            add("phone", normal, span)

    findings.sort(key=lambda f: f["span"])
    return findings
