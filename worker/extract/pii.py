"""Personal-data detection in free text (Chinese and English), validated where a checksum exists.

Types (docs/fields.md, screenshot section):
- ``email``: e-mail addresses.
- ``phone``: Chinese mobiles (1[3-9]x xxxx xxxx, optional +86), Chinese landlines with an area
  code (010-12345678, (0755) 1234 5678), international numbers in E.164 style (+44 20 7946 0018),
  North American (555-123-4567, (415) 555-0100) and UK national (020 7946 0018) formats.
- ``cn_resident_id``: PRC resident identity numbers, 18 characters, with a valid ISO 7064
  MOD 11-2 check character, a known province code and a plausible birth date.
- ``bank_card``: payment-card numbers, 13-19 digits (spaces or dashes between groups allowed),
  Luhn-valid only.

Numbers embedded in longer digit runs, dates, money amounts and numbers introduced as order /
invoice / tracking numbers are not reported. Each finding is ``{"type", "value", "span"}``:
``value`` is masked (all but the last 4 characters replaced by ``*``, after removing
separators), ``span`` is the (start, end) character range in the input text.
"""
from __future__ import annotations

import re
from datetime import date

__all__ = ["find_personal_data", "mask", "luhn_valid", "cn_resident_id_valid", "PII_TYPES"]

PII_TYPES = ("phone", "email", "cn_resident_id", "bank_card")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
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


def mask(value: str, keep: int = 4) -> str:
    """All but the last `keep` characters replaced by '*'."""
    if len(value) <= keep:
        return value
    return "*" * (len(value) - keep) + value[-keep:]


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check over a string of digits."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def cn_resident_id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits of a PRC resident ID."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS)) % 11]


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
    return cn_resident_id_check_char(value[:17]) == value[17]


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
        if digits[0] not in "23456789" or not luhn_valid(digits):
            continue
        if _looks_like_date_or_amount(text, *span):
            continue
        if _is_reference(text, span[0]) and not _CARD_CUE.search(text[max(0, span[0] - 24):span[0]]):
            continue
        add("bank_card", digits, span)

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

    findings.sort(key=lambda f: f["span"])
    return findings
