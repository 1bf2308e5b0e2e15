"""Receipt field extraction over OCR lines.

Pure Python heuristics over `worker.ocr.OcrLine`s (text plus axis-aligned box): no model, no
dataset-specific rules. The layout matters as much as the text: a "TOTAL" label and its amount
are usually separate boxes on the same row, the merchant name is one of the first rows (often
in larger type), and the address runs from there down to the phone/GST/registration line.

Fields (docs/fields.md, receipt): merchant_name, merchant_address, transaction_date (ISO),
total, subtotal, tax, currency (ISO 4217), items. A field that is not found is absent.
"""
from __future__ import annotations

import datetime as _dt
import functools
import re
import statistics
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

from worker.extract.base import Extraction

__all__ = ["extract_receipt", "parse_date", "find_amounts"]


# --------------------------------------------------------------------------------------------
# Lines and rows


@dataclass
class _L:
    """One OCR line, with its text normalised for matching (NFKC, upper-case)."""

    idx: int
    text: str  # NFKC, whitespace collapsed (case kept: used for output)
    up: str  # upper-cased `text`, used for matching
    box: tuple[float, float, float, float]
    score: float

    @property
    def x0(self) -> float:
        return self.box[0]

    @property
    def y0(self) -> float:
        return self.box[1]

    @property
    def x1(self) -> float:
        return self.box[2]

    @property
    def y1(self) -> float:
        return self.box[3]

    @property
    def h(self) -> float:
        return max(1.0, self.box[3] - self.box[1])

    @property
    def cy(self) -> float:
        return (self.box[1] + self.box[3]) / 2.0


def _accented(c: str) -> bool:
    d = unicodedata.normalize("NFD", c)
    return len(d) > 1 and d[0].isascii() and d[0].isalpha()


def _stray_accents(texts: Iterable[str]) -> bool:
    """True when a Latin-script document has only one or two accented letters: the OCR's
    recogniser then made them up (`Restäurants`, `Chéras`), and they are folded to ASCII. A text
    in a language that uses accents has more of them and is left alone."""
    accented = letters = 0
    for t in texts:
        for c in t:
            if c.isalpha():
                letters += 1
                accented += _accented(c)
    return 0 < accented <= 2 and letters >= 100


def _fold_accents(text: str) -> str:
    return "".join(unicodedata.normalize("NFD", c)[0] if _accented(c) else c for c in text)


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    return re.sub(r"\s+", " ", text).strip()


def _same_row(a: _L, b: _L, tol: float = 0.5) -> bool:
    """True when two boxes sit on the same printed row (centres within tol × the taller)."""
    return abs(a.cy - b.cy) <= tol * max(a.h, b.h) and min(a.y1, b.y1) - max(a.y0, b.y0) > 0


def _rows(lines: Sequence[_L]) -> list[list[_L]]:
    """Group lines into rows, top to bottom, each row left to right."""
    rows: list[list[_L]] = []
    for ln in sorted(lines, key=lambda l: (l.cy, l.x0)):
        placed = False
        for row in rows[-3:]:  # rows near the bottom of what was built so far
            if any(_same_row(ln, other, 0.45) for other in row):
                row.append(ln)
                placed = True
                break
        if not placed:
            rows.append([ln])
    for row in rows:
        row.sort(key=lambda l: l.x0)
    rows.sort(key=lambda r: min(l.y0 for l in r))
    return rows


def _row_text(row: Sequence[_L]) -> str:
    return " ".join(l.text for l in row)


def _evidence(lines: Iterable[_L]) -> list[tuple[float, float, float, float, int]]:
    seen = set()
    out = []
    for l in lines:
        if l.idx in seen:
            continue
        seen.add(l.idx)
        out.append((float(l.box[0]), float(l.box[1]), float(l.box[2]), float(l.box[3]), 0))
    return out


def _mean_score(lines: Iterable[_L]) -> float:
    scores = [l.score for l in lines]
    return sum(scores) / len(scores) if scores else 0.0


# --------------------------------------------------------------------------------------------
# Amounts

_CUR_TOKEN = r"(?:RM|MYR|S\$|SGD|HK\$|HKD|US\$|USD|A\$|AUD|C\$|CAD|NT\$|\$|¥|RMB|CNY|€|EUR|£|GBP)"
_AMOUNT_RE = re.compile(
    r"(?<![\w.,/-])"
    r"(?P<neg1>-)?\s*(?P<cur>" + _CUR_TOKEN + r")?\s*(?P<neg2>-)?\s*"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+\.\d{2}|\.\d{2}|\d+,\d{2}|\d+)"
    r"(?P<yuan>\s*元)?"
    r"(?!\d|[.,]\d|\s*%|[:/])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Amount:
    value: float
    start: int
    end: int
    has_cur: bool


def find_amounts(text: str) -> list[_Amount]:
    """Money amounts in a text (see `_find_amounts`); cached, as layout matching asks often."""
    return list(_find_amounts(text))


@functools.lru_cache(maxsize=4096)
def _find_amounts(text: str) -> tuple[_Amount, ...]:
    """Money amounts in a text: `12.50`, `RM 65.20`, `$8.20`, `-9.60`, `13,00`, `¥58`, `58元`.

    An integer without a currency mark is not taken as an amount (it is a quantity, a code…).
    Dates are blanked first so that `30.03.2018` is not read as 30.03.
    """
    text = _norm(text)
    blanked = text
    for m in _iter_date_spans(text):
        blanked = blanked[: m[0]] + " " * (m[1] - m[0]) + blanked[m[1]:]
    out = []
    for m in _AMOUNT_RE.finditer(blanked):
        num = m.group("num")
        has_cur = bool(m.group("cur") or m.group("yuan"))
        if re.fullmatch(r"\d+", num):
            if not has_cur or len(num) > 7:
                continue
            value = float(num)
        elif num.startswith("."):
            value = float("0" + num)
        elif re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?", num):
            value = float(num.replace(",", ""))
        else:
            value = float(num.replace(",", "."))
        if m.group("neg1") or m.group("neg2"):
            value = -value
        out.append(_Amount(value, m.start(), m.end(), has_cur))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Dates

_MONTHS = {
    "JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8,
    "SEP": 9, "SEPT": 9, "OCT": 10, "NOV": 11, "DEC": 12,
    # Malay / French / German / Spanish abbreviations that differ from the English ones
    "MEI": 5, "OGO": 8, "OGOS": 8, "DIS": 12, "JANV": 1, "FEV": 2, "FEVR": 2, "AVR": 4,
    "MAI": 5, "JUIN": 6, "JUIL": 7, "AOUT": 8, "DEZ": 12, "OKT": 10, "MRZ": 3, "ENE": 1,
    "ABR": 4, "AGO": 8, "DIC": 12,
}
_MON_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))

_YMD_RE = re.compile(r"(?<!\d)(?P<y>(?:19|20)\d{2})\s*(?P<s1>[-/.年])\s*(?P<m>\d{1,2})\s*(?P<s2>[-/.月])\s*(?P<d>\d{1,2})(?:\s*日)?")
_DMY_RE = re.compile(r"(?<![\d/.-])(?P<d>\d{1,2})\s?(?P<s1>[-/.])\s?(?P<m>\d{1,2})\s?(?P<s2>(?P=s1))\s?(?P<y>\d{4}|\d{2})")
_DMONY_RE = re.compile(
    r"(?<![A-Z\d])(?P<d>\d{1,2})(?:ST|ND|RD|TH)?\s*[-/. ]?\s*(?P<mon>" + _MON_ALT + r")[A-Z]*\.?\s*[-/., ]?\s*(?P<y>\d{4}|\d{2})(?!\d{1,2}\b)",
    re.IGNORECASE,
)
_MONDY_RE = re.compile(
    r"(?<![A-Z])(?P<mon>" + _MON_ALT + r")[A-Z]*\.?\s+(?P<d>\d{1,2})(?:ST|ND|RD|TH)?,?\s+(?P<y>\d{4})",
    re.IGNORECASE,
)
_COMPACT_RE = re.compile(r"(?<!\d)(?P<d>\d{2})(?P<m>\d{2})(?P<y>20\d{2})(?!\d)")


def _year(y: str) -> int:
    yi = int(y)
    if len(y) == 2:
        yi += 2000 if yi < 70 else 1900
    return yi


def _mkdate(y: int, m: int, d: int) -> _dt.date | None:
    if not 1970 <= y <= 2099:
        return None
    try:
        return _dt.date(y, m, d)
    except ValueError:
        return None


def _date_matches(text: str) -> list[tuple[int, int, _dt.date, int]]:
    """(start, end, date, strength) for every date in a text. strength: 2 = full year or month
    name, 1 = two-digit year, 0 = separator-less ddmmyyyy."""
    up = text.upper()
    found: list[tuple[int, int, _dt.date, int]] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    for m in _YMD_RE.finditer(up):
        if (m.group("s1") == "年") != (m.group("s2") == "月"):
            continue
        d = _mkdate(int(m.group("y")), int(m.group("m")), int(m.group("d")))
        if d:
            found.append((m.start(), m.end(), d, 2))
            taken.append((m.start(), m.end()))
    for m in _DMY_RE.finditer(up):
        if not free(m.start(), m.end()) or m.group("s1") != m.group("s2"):
            continue
        ys = m.group("y")
        day, mon = int(m.group("d")), int(m.group("m"))
        end = m.end()
        if len(ys) == 4 and not 1970 <= int(ys) <= 2099:  # "22-05-1610:02": 2-digit year glued to the time
            ys, end = ys[:2], end - 2
        d = _mkdate(_year(ys), mon, day)
        if d is None and mon > 12 >= day:  # month-first print (US style), only when unambiguous
            d = _mkdate(_year(ys), day, mon)
        if d:
            found.append((m.start(), end, d, 2 if len(ys) == 4 else 1))
            taken.append((m.start(), end))
    for rx in (_DMONY_RE, _MONDY_RE):
        for m in rx.finditer(up):
            if not free(m.start(), m.end()):
                continue
            mon = _MONTHS.get(m.group("mon").upper())
            d = _mkdate(_year(m.group("y")), mon or 0, int(m.group("d")))
            if d:
                found.append((m.start(), m.end(), d, 2))
                taken.append((m.start(), m.end()))
    for m in _COMPACT_RE.finditer(up):
        if not free(m.start(), m.end()):
            continue
        d = _mkdate(int(m.group("y")), int(m.group("m")), int(m.group("d")))
        if d:
            found.append((m.start(), m.end(), d, 0))
    found.sort()
    return found


def _iter_date_spans(text: str) -> list[tuple[int, int]]:
    return [(s, e) for s, e, _, _ in _date_matches(text)]


def parse_date(text: str) -> _dt.date | None:
    """The first date in a text, read day-first (`25/12/2018`, `22-05-16`, `30 DEC 17`,
    `2018-12-25`, `2023年5月4日`); None when there is none."""
    found = _date_matches(_norm(text))
    return found[0][2] if found else None


# --------------------------------------------------------------------------------------------
# Keyword patterns

_TOT = r"T[O0]T[AE4]?[LI1]"
_SUBTOTAL_RE = re.compile(r"SUB\s*[-.]?\s*T[O0][T1]|SUBT[O0]TA|小计|小計|TOTAL\s+(?:EXCL|BEFORE|W/?O)|" + _TOT + r"\s+(?:EXCL|BEFORE)|NET\s+AMOUNT|BEFORE\s+(?:TAX|GST)|不含税|不含稅")
_TOTAL_RE = re.compile(_TOT + r"|合计|合計|总计|總計|总额|总金额|應付|应付|实付|實付|应收|AMOUNT\s+DUE|BALANCE\s+DUE|AMOUNT\s+PAYABLE|GRAND|NETT|JUMLAH")
_TOTAL_STRONG_RE = re.compile(
    r"GRAND\s*" + _TOT + r"|NETT?\s*" + _TOT + r"|PAYABLE|AMOUNT\s+DUE|" + _TOT + r"\s+DUE|BALANCE\s+DUE|ROUNDED|AFTER\s+(?:ADJ|ROUND)|"
    r"应付|應付|实付|實付|应收|实付金额|合计金额|JUMLAH\s+BESAR"
)
_NOT_TOTAL_RE = re.compile(
    _TOT + r"\s*(?:QTY|QUANTITY|ITEM|ITEMS|NO\b|DISC|DISCOUNT|SAVING|SAVINGS|TAX\b|GST\b|SST\b|VAT\b|WEIGHT|POINTS?|UNITS?|PCS|PIECES|"
    r"TENDER|EXCL|BEFORE|PAID|CASH|CHANGE|STAMP)"
    r"|INCLUDED\s+IN"
    r"|EXCL|BEFORE\s+DISC|SUB\s*[-.]?\s*T[O0]T|SUBT[O0]T|小计|小計|件数|数量|QTY"
)
_SUMMARY_RE = re.compile(r"(?:GST|SST|TAX|VAT)\s*SUMMARY|SUMMARY|税率|稅率")
_PAID_RE = re.compile(r"^(?:CASH|CREDIT|DEBIT|PAID|PAYMENT|TENDER(?:ED)?|RECEIVED|AMOUNT\s+PAID|PAID\s+AMOUNT|ACCEPTED|CARD|VISA|MASTER|现金|現金|实收|實收|收款|付款|支付)|CASH\s*RECEIVED|PAID\s*AMOUNT|AMOUNT\s*(?:PAID|TENDERED)|ACCEPTED\s+" + _TOT + r"|CASH\b")
_CHANGE_RE = re.compile(r"^(?:CHANGE|CHANGE\s+DUE|BAKI|找零|找赎|找續|找续)|\bCHANGE\b|找零|找赎")
_TAX_RE = re.compile(r"\b(?:GST|SST|VAT|TAX|TAXES|PPN|IVA|MWST|TVA)\b|税额|稅額|税金|税|稅")
_NOT_TAX_RE = re.compile(
    r"\b(?:ID|REG|REGN|REGISTRATION|NO|NO\.|NUMBER|INVOICE|INV|CODE|SUMMARY|INCL|INCLUSIVE|EXCL|EXCLUSIVE|EXCLUDING|"
    r"ABN|PIN|TIN|NPWP|RATE)\b|TAX\s*INVOICE|含税|含稅|税号|税號|纳税人|識別|识别|税率|稅率|" + _TOT + r"\s+(?:AMT|AMOUNT|SALES|INCL)"
)

_STOP_HEADER_RE = re.compile(
    r"\b(?:TEL|TELE|TELEPHONE|PHONE|PH|FAX|H/?P|HP|MOBILE|WHATSAPPS?|HOTLINE|CARELINE|OUTLET|EMAIL|E-MAIL|WEBSITE|"
    r"GST|SST|VAT|TIN|ABN|BRN|NPWP|CO\.?\s*REG|CO\.?\s*NO|COMPANY\s*(?:REG|NO)|REG\.?\s*NO|ROC|"
    r"INVOICE|RECEIPT|BILL|CASHIER|TABLE|DATE|TIME|ORDER|SHOPPING\s+HOURS|OPENING|OPEN)\b"
    r"|WWW\.|HTTPS?:|@|\.COM\b|电话|電話|传真|傳真|税号|稅號|手机|手機|网址|網址|发票|發票|收银|收銀|单号|單號|日期|时间|時間"
)
_REGNO_RE = re.compile(r"^\(?\s*(?:CO\.?\s*(?:REG|NO)\.?|COMPANY\s*NO\.?|ROC)?\s*[:.]?\s*[A-Z]{0,2}\d{4,}[\s-]*[A-Z]?\s*\)?\.?$")
_TRAILING_REGNO_RE = re.compile(r"\s*[\[(]\s*(?:CO\.?\s*(?:REG\.?|NO\.?)\s*:?\s*)?\d{3,}[\s-]*[A-Z]{0,2}\s*[\])]?\s*$")
_PHONE_RE = re.compile(r"(?<![\w/])\+?\(?\d[\d ()\-]{6,}\d(?![\w/])")
_JUNK_RE = re.compile(
    r"(?:CHECKED|POSTED|PAID|APPROVED|RECEIVED|VERIFIED|COPY|DUPLICATE|REPRINT|REPRINTED|CANCELL?ED|VOID|ORIGINAL|"
    r"CASH|CASH\s*SALES?|CASH\s*BILL|CREDIT\s*SALES?|SALES|RECEIPT|OFFICIAL\s*RECEIPT|INVOICE|TAX\s*INVOICE|"
    r"SIMPLIFIED\s*TAX\s*INVOICE|WELCOME|WELCOME\s+TO|THANK\s+YOU|CUSTOMER\s*COPY|MERCHANT\s*COPY|"
    r"欢迎光临|歡迎光臨|欢迎|收据|收據|发票|發票|小票|购物小票|销售单|銷售單)[\s.:!*-]*",
)
_COMPANY_RE = re.compile(
    r"S/B\b|\b(?:SDN\.?\s*BHD|BHD|SDN|PTE\.?\s*LTD|LTD|LIMITED|LLC|L\.L\.C|INC|CORP|CORPORATION|CO\.|COMPANY|GMBH|S\.?A\.?R\.?L|"
    r"ENTERPRISES?|TRADING|HOLDINGS?|MARKETING|INDUSTRIES|RESTAURANT|RESTORAN|RESTAURANTS|CAFE|CAFÉ|COFFEE|BAKERY|BAKERIES|"
    r"STATIONERY|HARDWARE|MART|MARKET|SUPERMARKET|HYPERMARKET|MINIMARKET|SHOP|STORE|STORES|PHARMACY|KEDAI|SYARIKAT|"
    r"PERNIAGAAN|BOOKS?|HOUSE|KITCHEN|BISTRO|BAR|GRILL|FOOD|FOODS|TELECOMMUNICATIONS?|CENTRE|CENTER|HOTEL|STATION)\b"
    r"|有限公司|公司|商店|商行|超市|便利店|餐厅|餐廳|饭店|飯店|酒店|酒楼|酒樓|药房|藥房|书店|書店|店"
)
_COMPANY_SUFFIX_RE = re.compile(r"(?:S/B|\b(?:SDN\.?\s*BHD|BHD|PTE\.?\s*LTD|LTD|LIMITED|LLC|INC|CORP|GMBH))\b\.?|有限公司|公司")
_ADDR_START_RE = re.compile(
    r"^(?:NO\b|NO\.|NO:|LOT\b|LEVEL\b|LVL\b|BLOCK\b|BLK\b|UNIT\b|SUITE\b|FLOOR\b|GROUND\b|\d+(?:ST|ND|RD|TH)\s+(?:FL|FLR|FLOOR)|"
    r"[A-Z]?-?\d+[A-Z]?(?:-\d+)*[A-Z]?\s*[,.]|JALAN\b|JLN\b|LORONG\b|PERSIARAN\b|LEBUH\b|TAMAN\b|"
    r"\d+[A-Z]?\s+(?:JALAN|JLN|LORONG|\w+\s+(?:ROAD|RD|STREET|ST|AVENUE|AVE|BOULEVARD|BLVD|LANE|LN|DRIVE|DR|WAY|HIGHWAY|HWY)\b))"
)
_ADDR_WORD_RE = re.compile(
    r"\b(?:JALAN|JLN|LORONG|PERSIARAN|LEBUH|TAMAN|TMN|BANDAR|KAWASAN|SEKSYEN|ROAD|RD|STREET|AVENUE|AVE|BOULEVARD|"
    r"HIGHWAY|LANE|FLOOR|FLR|LEVEL|BLOCK|BLK|PLAZA|MALL|CENTRE|KUALA\s+LUMPUR|SELANGOR|JOHOR|PENANG|PERAK|PAHANG|"
    r"SABAH|SARAWAK|KEDAH|MELAKA|MALAYSIA|SINGAPORE)\b"
    r"|(?<![\d-])\d{5,6}(?![\d-])"
    r"|[省市区區县縣镇鎮村]|路|街|号|號|大道|大厦|大廈|广场|廣場"
)
_ADDR_LABEL_RE = re.compile(r"^(?:ADDRESS|ADDR|ALAMAT|地址|店址)\s*[:：]?\s*", re.IGNORECASE)
_NAME_LABEL_RE = re.compile(r"^(?:MERCHANT(?:\s+NAME)?|STORE(?:\s+NAME)?|SHOP(?:\s+NAME)?|商户名称|商戶名稱|商户|商戶|店名|商家)\s*[:：]\s*", re.IGNORECASE)
_DATE_LABEL_RE = re.compile(r"DATE|\bDT\b|TARIKH|日期|時間|时间|交易时间|DATUM|FECHA|\bLE\b")
_COLUMN_HEADER_RE = re.compile(r"\b(?:DESCRIPTION|DESC|ITEM|ITEMS|QTY|QUANTITY|U/?P|PRICE|AMOUNT|AMT)\b|品名|商品|数量|數量|单价|單價|金额|金額")


def _letters(s: str) -> int:
    return sum(1 for c in s if c.isalpha())


def _digits(s: str) -> int:
    return sum(1 for c in s if c.isdigit())


def _is_cjk(s: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in s)


def _is_phone_line(up: str) -> bool:
    for m in _PHONE_RE.finditer(up):
        if _digits(m.group(0)) >= 8 and not re.search(r"\d{5,6}\s*,", m.group(0)):
            return True
    return False


def _is_stop_line(up: str) -> bool:
    """A header line that ends the address: phone, fax, GST/registration, e-mail, web…"""
    if _STOP_HEADER_RE.search(up):
        return True
    if _REGNO_RE.match(up):
        return True
    if _is_phone_line(up):
        return True
    if _letters(up) == 0 and _digits(up) >= 6:
        return True
    if _date_matches(up):
        return True
    return False


def _looks_address(up: str) -> bool:
    return bool(_ADDR_START_RE.match(up) or _ADDR_WORD_RE.search(up))


# --------------------------------------------------------------------------------------------
# Merchant name and address


def _median_height(lines: Sequence[_L]) -> float:
    return statistics.median([l.h for l in lines]) if lines else 1.0


def _header_rows(rows: list[list[_L]]) -> list[list[_L]]:
    """The rows above the body (first amount, column header or item row), at most 16."""
    out = []
    for row in rows:
        text = _row_text(row).upper()
        amounts = find_amounts(text)
        if out and amounts and not _date_matches(text) and not _is_phone_line(text):
            # an amount row: the body has started (a lone postcode is not an amount: no decimals)
            if any("." in text[a.start:a.end] or "," in text[a.start:a.end] for a in amounts):
                break
        if out and len(_COLUMN_HEADER_RE.findall(text)) >= 2:
            break
        out.append(row)
        if len(out) >= 16:
            break
    return out


def _junk_box(l: _L) -> bool:
    """A header box that is not printed name text: a stamp, a handwritten note, a number."""
    text = l.text
    letters = _letters(text)
    if l.score < 0.6 or letters == 0:
        return True
    if _JUNK_RE.fullmatch(l.up.strip(" .:*-=~#")):
        return True
    if "!" in text or "?" in text:
        return True
    if not _is_cjk(text) and _digits(text) > letters and not _COMPANY_RE.search(l.up):
        return True
    cased = [c for c in text if c.isalpha() and c.lower() != c.upper()]
    if cased and all(c.islower() for c in cased):
        return True  # all lower case: a handwritten note, not a printed name
    return False


def _name_text(row: list[_L]) -> tuple[str, list[_L]]:
    kept = [l for l in row if not _junk_box(l)]
    return _row_text(kept), kept


def _junk_name_row(row: list[_L]) -> bool:
    text, kept = _name_text(row)
    if not kept:
        return True
    text = _clean_name(text)
    up = text.upper()
    letters = _letters(text)
    if letters < 2 or (not _is_cjk(text) and letters < 3):
        return True
    if _JUNK_RE.fullmatch(up.strip(" .:*-=~#")):
        return True
    if _is_stop_line(up):
        return True
    if _looks_address(up) and not _COMPANY_RE.search(up):
        return True
    return False


_BUSINESS_WORDS = sorted(
    {
        "STATIONERY", "STATIONERS", "SHOP", "HARDWARE", "RESTAURANT", "RESTORAN", "ENTERPRISE", "TRADING", "BAKERY",
        "BAKERIES", "CAFE", "MART", "MARKET", "SUPERMARKET", "MINIMARKET", "STORE", "STORES", "HOLDINGS", "MARKETING",
        "CENTRE", "CENTER", "BOOKS", "BOOKSTORE", "HOUSE", "KITCHEN", "FOOD", "SEAFOOD", "PHARMACY", "ELECTRICAL",
        "TRADERS", "SUPPLY", "SUPPLIES", "INTERNATIONAL", "INDUSTRIES", "CORPORATION", "COMPANY", "HOTEL", "BISTRO",
        "GROCERY", "FURNITURE", "OPTICAL", "CLINIC", "BEAUTY", "SALON", "PRINTING", "BOUTIQUE", "FASHION",
    },
    key=len,
    reverse=True,
)


def _split_glued(token: str) -> str:
    """Split an upper-case token that OCR glued together around common business words:
    `SANYUSTATIONERYSHOP` -> `SANYU STATIONERY SHOP` (spaced-out header type loses its gaps)."""
    if len(token) < 12 or not token.isalpha() or not token.isupper() or token in _BUSINESS_WORDS:
        return token
    for word in _BUSINESS_WORDS:
        i = token.find(word)
        if i < 0:
            continue
        left, right = token[:i], token[i + len(word):]
        if (left and len(left) < 2) or (right and len(right) < 2):
            continue
        pieces = [_split_glued(left) if left else "", word, _split_glued(right) if right else ""]
        return " ".join(p for p in pieces if p)
    return token


_SUFFIX_FIX_RE = re.compile(r"\b(SDN\.?\s*)(?!BHD\b)[ABDPR8]H[DO0]\b")


def _clean_name(text: str) -> str:
    text = _norm(text)
    text = _NAME_LABEL_RE.sub("", text)
    prev = None
    while prev != text:
        prev = text
        text = _TRAILING_REGNO_RE.sub("", text).strip()
    text = re.sub(r"\s*-\s*$", "", text)
    text = _SUFFIX_FIX_RE.sub(r"\1BHD", text)  # a common OCR slip in the Malaysian company suffix
    text = re.sub(r"(?<=[A-Z])(S/B|SDN\.? BHD)\b", r" \1", text)  # "MARTS/B" -> "MART S/B"
    text = " ".join(_split_glued(t) for t in text.split(" "))
    return _norm(text.strip(" ,;:*=~#"))


def _merchant(rows: list[list[_L]], all_lines: Sequence[_L]) -> tuple[str, list[_L], float, int] | None:
    """(name, lines used, confidence, index of the last row used)."""
    med_h = _median_height(all_lines)
    header = _header_rows(rows)
    candidates = [i for i, row in enumerate(header) if not _junk_name_row(row)]
    found = None
    if candidates:
        found = _merchant_from(header, candidates, med_h)
    if found is None or not _COMPANY_RE.search(found[0].upper()):
        # An explicit label ("Merchant: …", "商户名称：…") when the top rows give no clear name.
        for i, row in enumerate(rows):
            text = _row_text(row)
            if _NAME_LABEL_RE.match(text):
                name = _clean_name(text)
                if _letters(name) >= 2:
                    return name, list(row), round(0.9 * _mean_score(row), 3), i
    return found


def _merchant_from(header: list[list[_L]], candidates: list[int], med_h: float) -> tuple[str, list[_L], float, int] | None:
    start = candidates[0]
    # A company-suffixed row just below beats a bare one-word first row in smaller type (often a
    # branch, a brand or a slogan printed above the name).
    for j in candidates[1:3]:
        up_j = _name_text(header[j])[0].upper()
        up_s = _name_text(header[start])[0].upper()
        if (
            _COMPANY_SUFFIX_RE.search(up_j)
            and not _COMPANY_RE.search(up_s)
            and max(l.h for l in header[start]) < 1.1 * max(l.h for l in header[j])
            and len(up_s.split()) <= 1
        ):
            start = j
            break

    text, used = _name_text(header[start])
    used = list(used)
    name_h = max(l.h for l in used)
    last = start
    for j in range(start + 1, min(start + 3, len(header))):
        row = header[j]
        nxt, kept = _name_text(row)
        if not kept:
            break
        up_n = _clean_name(nxt).upper()
        up_t = text.upper()
        if _is_stop_line(up_n) or _REGNO_RE.match(up_n) or (_junk_name_row(row) and not _COMPANY_SUFFIX_RE.search(up_n)):
            break
        row_h = max(l.h for l in kept)
        gap = min(l.y0 for l in kept) - max(l.y1 for l in used)
        if gap > 1.2 * name_h:
            break
        open_paren = up_t.count("(") > up_t.count(")")
        dangling = bool(re.search(r"(?:&|\bAND|-|,|\bOF|\bTHE)\s*$", up_t)) or open_paren
        suffix_next = bool(_COMPANY_SUFFIX_RE.search(up_n)) and not _COMPANY_SUFFIX_RE.search(up_t)
        big_pair = (
            name_h >= 1.12 * med_h
            and row_h >= 1.05 * med_h
            and row_h >= 0.8 * name_h
            and _digits(up_n) == 0
            and not _looks_address(up_n)
            and not _COMPANY_SUFFIX_RE.search(up_t)
        )
        if (dangling or suffix_next or big_pair) and not (_looks_address(up_n) and not suffix_next and not dangling):
            text = re.sub(r"-\s*$", "", text) + " " + nxt
            used.extend(kept)
            last = j
            if _COMPANY_SUFFIX_RE.search(up_n):
                break
            continue
        break
    name = _clean_name(text)
    if _letters(name) < 2:
        return None
    conf = _mean_score(used)
    if not _COMPANY_RE.search(name.upper()):
        conf *= 0.75
    if start > 0:
        conf *= 0.9
    return name, used, round(conf, 3), last


def _address_row_ok(up: str) -> bool:
    return not _is_stop_line(up) and not _JUNK_RE.fullmatch(up.strip(" .:*-=~#")) and _letters(up) >= 2


def _address(rows: list[list[_L]], after: int) -> tuple[str, list[_L], float] | None:
    # An explicit label ("Address: …", "地址：…") wins.
    for i, row in enumerate(rows):
        text = _row_text(row)
        m = _ADDR_LABEL_RE.match(text)
        if m:
            value = _norm(text[m.end():])
            used = list(row)
            # a wrapped address continues on the next row when that row is not a stop line
            if i + 1 < len(rows):
                nxt = _row_text(rows[i + 1])
                if not _is_stop_line(nxt.upper()) and _looks_address(nxt.upper()) and not find_amounts(nxt):
                    value = value + ("" if _is_cjk(value) else " ") + _norm(nxt)
                    used.extend(rows[i + 1])
            if value:
                return value, used, round(0.9 * _mean_score(used), 3)

    def clean(row: list[_L]) -> list[_L]:
        return [l for l in row if l.score >= 0.6 and (_letters(l.text) or _digits(l.text))]

    start = None
    for i in range(after + 1, min(after + 8, len(rows))):
        up = _row_text(clean(rows[i])).upper()
        if _looks_address(up) and not _is_stop_line(up):
            start = i
            break
        if len(_COLUMN_HEADER_RE.findall(up)) >= 2 or any("." in up[a.start:a.end] for a in find_amounts(up)):
            return None
    if start is None:
        return None
    # Lines just above the first address-looking one belong to it when they read like address
    # lines ("Car Park Office, Basement 1,") or follow the name directly.
    while start - 1 > after:
        up = _row_text(clean(rows[start - 1])).upper()
        if not _address_row_ok(up) or _COMPANY_SUFFIX_RE.search(up) or _REGNO_RE.match(up):
            break
        if not (re.search(r"[,\d]", up) or start - 1 == after + 1):
            break
        start -= 1
    parts: list[str] = []
    used: list[_L] = []
    prev_row = None
    med = _median_height([l for r in rows for l in r])
    for i in range(start, min(start + 7, len(rows))):
        row = clean(rows[i])
        if not row:
            continue
        text = _row_text(row)
        up = text.upper()
        if i > start and not _address_row_ok(up):
            break
        if i > start and ("*" in up or any("." in up[a.start:a.end] for a in find_amounts(up))):
            break
        if prev_row is not None:
            gap = min(l.y0 for l in row) - max(l.y1 for l in prev_row)
            if gap > 1.5 * med:
                break
        if _is_stop_line(up):
            # the first line itself carries a stop word ("Outlet: …"): keep only what precedes it
            m = _STOP_HEADER_RE.search(up)
            if not m or m.start() == 0:
                break
            text = text[: m.start()]
        text = _norm(text)
        if text.count('"') == 1:
            text = text.replace('"', "")
        parts.append(text)
        used.extend(row)
        prev_row = row
    if not parts:
        return None
    joiner = "" if all(_is_cjk(p) for p in parts) else " "
    value = _norm(joiner.join(parts)).strip(" ,;:")
    if _letters(value) < 3:
        return None
    conf = _mean_score(used) * (0.85 if len(parts) >= 2 else 0.7)
    return value, used, round(conf, 3)


# --------------------------------------------------------------------------------------------
# Amount fields


def _skew(lines: Sequence[_L]) -> float:
    """Vertical drift per horizontal pixel (dy/dx) of printed rows, from the pairs of boxes that
    sit side by side: a photographed receipt is rarely square to the camera."""
    slopes = []
    for a in lines:
        if _letters(a.text) < 2:
            continue
        for b in lines:
            if b is a or b.x0 <= a.x1 or not find_amounts(b.text):
                continue
            dy = b.cy - a.cy
            if abs(dy) <= 0.5 * max(a.h, b.h):
                dx = (b.x0 + b.x1) / 2 - (a.x0 + a.x1) / 2
                if dx > 0:
                    slopes.append(dy / dx)
    if len(slopes) < 3:
        return 0.0
    return statistics.median(slopes)


def _row_amounts(label: _L, lines: Sequence[_L], slope: float = 0.0, after_pos: int | None = None) -> list[tuple[float, list[_L]]]:
    """The amounts that may belong to a label, best first: in its own text after the label;
    else the amount boxes on the same row to its right (nearest the row line first, then the
    right-most); else a lone amount on the row just below (narrow receipts)."""
    own = [a for a in find_amounts(label.text) if after_pos is None or a.start >= after_pos]
    if own:
        return [(own[-1].value, [label])]
    found = []
    lcx = (label.x0 + label.x1) / 2
    for other in lines:
        if other is label or other.x0 < label.x0 + 0.3 * (label.x1 - label.x0):
            continue
        ocx = (other.x0 + other.x1) / 2
        dy = abs(other.cy - slope * (ocx - lcx) - label.cy)
        tol = 0.6 * max(label.h, other.h)
        if dy > tol:
            continue
        amts = find_amounts(other.text)
        if not amts:
            continue
        found.append((dy, other.x1, amts[-1].value, other))
    if found:
        min_dy = min(f[0] for f in found)
        near = [f for f in found if f[0] <= min_dy + 0.25 * label.h]
        far = [f for f in found if f not in near]
        near.sort(key=lambda f: -f[1])
        far.sort(key=lambda f: f[0])
        return [(f[2], [label, f[3]]) for f in near + far]
    below = [
        o for o in lines
        if o is not label and 0 <= o.y0 - label.y1 + 0.3 * label.h <= 1.2 * label.h
        and min(o.x1, label.x1) - max(o.x0, label.x0) > 0
    ]
    if below:
        first_y = min(o.y0 for o in below)
        same = [o for o in below if o.y0 - first_y < 0.5 * label.h]
        o = max(same, key=lambda o: min(o.x1, label.x1) - max(o.x0, label.x0))
        amts = find_amounts(o.text)
        if amts and _letters(re.sub(r"RM|MYR|RMB|USD|SGD|EUR|GBP|CNY", "", o.up)) == 0:
            return [(amts[-1].value, [label, o])]
    return []


@dataclass
class _Cand:
    value: float
    lines: list[_L]
    tier: int
    order: float
    in_summary: bool
    height: float
    alt: int  # 0 for the preferred amount of its label, 1.. for the others on the row


def _amount_fields(lines: list[_L]) -> dict[str, tuple]:
    med_h = _median_height(lines)
    slope = _skew(lines)
    ordered = sorted(lines, key=lambda l: (l.cy, l.x0))
    summary_y = None
    for l in ordered:
        if _SUMMARY_RE.search(l.up) and summary_y is None:
            summary_y = l.y0
    totals: list[_Cand] = []
    subtotal = None
    tax = None
    paid: list[tuple[float, list[_L]]] = []
    change: list[tuple[float, list[_L]]] = []
    for l in ordered:
        up = l.up
        in_summary = summary_y is not None and l.y0 >= summary_y - 0.2 * l.h
        m_tot = _TOTAL_RE.search(up)
        is_sub = bool(_SUBTOTAL_RE.search(up))
        is_paid = bool(_PAID_RE.search(up))
        is_change = bool(_CHANGE_RE.search(up))
        if m_tot and not is_sub and not is_paid and not is_change and not _NOT_TOTAL_RE.search(up):
            alts = _row_amounts(l, lines, slope, after_pos=m_tot.start())
            tier = 3 if _TOTAL_STRONG_RE.search(up) else 2
            for k, (value, used) in enumerate(alts[:3]):
                if value != 0:
                    totals.append(_Cand(value, used, tier, l.cy, in_summary, max(x.h for x in used), k))
            continue
        if is_sub:
            alts = _row_amounts(l, lines, slope)
            if alts and alts[0][0] >= 0 and subtotal is None:
                subtotal = (alts[0][0], alts[0][1], 0.8 * _mean_score(alts[0][1]))
            continue
        if is_change:
            alts = _row_amounts(l, lines, slope)
            if alts and alts[0][0] >= 0:
                change.append(alts[0])
            continue
        if is_paid:
            alts = _row_amounts(l, lines, slope)
            if alts and alts[0][0] > 0:
                paid.append(alts[0])
            continue
        m_tax = _TAX_RE.search(up)
        if m_tax and tax is None and not _NOT_TAX_RE.search(up) and not in_summary:
            alts = _row_amounts(l, lines, slope, after_pos=m_tax.start())
            if alts and alts[0][0] >= 0:
                tax = (alts[0][0], alts[0][1], 0.7 * _mean_score(alts[0][1]))
            continue

    out: dict[str, tuple] = {}
    target = None
    if paid and change and paid[0][0] >= change[0][0]:
        target = round(paid[0][0] - change[0][0], 2)
    if totals:
        def matches(c: _Cand) -> bool:
            return target is not None and abs(c.value - target) < 0.005

        def rank(c: _Cand):
            return (matches(c), c.value > 0, not c.in_summary, -c.alt, c.tier, c.height >= 1.3 * med_h, c.order)

        best = max(totals, key=rank)
        value, used = best.value, best.lines
        conf = _mean_score(best.lines) * (0.95 if best.tier == 3 else 0.85)
        if target is not None:
            if matches(best):
                conf = min(1.0, conf + 0.1)
            elif target > 0 and abs(best.value - target) <= 0.1:
                # paid − change disagrees by a rounding step: the amount paid is the rounded total
                value, used = target, best.lines + paid[0][1] + change[0][1]
                conf *= 0.85
            else:
                conf *= 0.8
        if best.in_summary:
            conf *= 0.6
        if best.alt:
            conf *= 0.8
        out["total"] = (value, used, round(conf, 3))
    elif target is not None and target > 0:
        out["total"] = (target, paid[0][1] + change[0][1], 0.4)
    if subtotal is not None:
        out["subtotal"] = subtotal
    if tax is not None:
        total_value = out.get("total", (None,))[0]
        if total_value is None or tax[0] < total_value:
            out["tax"] = tax
    return out


# --------------------------------------------------------------------------------------------
# Currency

_CURRENCY_PATTERNS: list[tuple[str, str]] = [
    (r"\bMYR\b", "MYR"), (r"\bSGD\b|\bS\$", "SGD"), (r"\bHKD\b|\bHK\$", "HKD"), (r"\bAUD\b|\bAU?\$", "AUD"),
    (r"\bCAD\b|\bCA?\$", "CAD"), (r"\bTWD\b|\bNT\$", "TWD"), (r"\bUSD\b|\bUS\$", "USD"), (r"\bCNY\b|\bRMB\b", "CNY"),
    (r"\bEUR\b|€", "EUR"), (r"\bGBP\b|£", "GBP"), (r"\bJPY\b|円", "JPY"), (r"\bKRW\b|₩", "KRW"), (r"\bTHB\b|฿", "THB"),
    (r"\bINR\b|₹", "INR"), (r"\bIDR\b", "IDR"), (r"\bPHP\b|₱", "PHP"), (r"\bVND\b|₫", "VND"), (r"\bCHF\b", "CHF"),
    (r"\bAED\b", "AED"), (r"\bMAD\b|\d\s?DHS?\b", "MAD"),
    (r"\bRM\s?-?\d|\(RM\)|\bRM\b", "MYR"), (r"[¥￥]|\d\s*元|人民币|人民幣", "CNY"),
]
_DOLLAR_COUNTRY = [
    (r"\bSDN\.?\s*BHD\b|\bMALAYSIA\b|\bS/B\b|\bBHD\b", "MYR"),
    (r"\bPTE\.?\s*LTD\b|\bSINGAPORE\b", "SGD"),
    (r"\bHONG\s*KONG\b|香港", "HKD"),
    (r"\bAUSTRALIA\b|\bABN\b", "AUD"),
    (r"\bCANADA\b|\bHST\b", "CAD"),
    (r"\bTAIWAN\b|台灣|台湾", "TWD"),
]
_DOLLARS = {"USD", "SGD", "HKD", "AUD", "CAD", "TWD", "NZD", "MYR"}


def _currency(lines: list[_L], default_currency: str | None) -> tuple[str, list[_L], float] | None:
    counts: dict[str, list[_L]] = {}
    for l in lines:
        up = l.up
        for pat, code in _CURRENCY_PATTERNS:
            if re.search(pat, up):
                counts.setdefault(code, []).append(l)
                if code in ("SGD", "HKD", "AUD", "CAD", "TWD", "USD"):
                    break  # "S$" must not also count as a bare "$"
    if counts:
        code = max(counts, key=lambda c: len(counts[c]))
        return code, counts[code][:3], 0.9
    dollar = [l for l in lines if "$" in l.text]
    if dollar:
        text = " ".join(l.up for l in lines)
        for pat, code in _DOLLAR_COUNTRY:
            if re.search(pat, text):
                return code, dollar[:3], 0.6
        if default_currency and default_currency.upper() in _DOLLARS:
            return default_currency.upper(), dollar[:3], 0.6
        return "USD", dollar[:3], 0.6
    if default_currency:
        return default_currency.upper(), [], 0.5
    return None


# --------------------------------------------------------------------------------------------
# Date field


def _transaction_date(lines: list[_L]) -> tuple[str, list[_L], float] | None:
    best = None
    for l in sorted(lines, key=lambda l: (l.cy, l.x0)):
        up = l.up
        if _is_phone_line(up) and not _DATE_LABEL_RE.search(up) and re.search(r"\b(?:TEL|FAX|PHONE|H/?P)\b", up):
            continue
        found = _date_matches(up)
        if not found:
            continue
        label = bool(_DATE_LABEL_RE.search(up))
        used = [l]
        if not label:
            # "Date" printed in its own box to the left on the same row
            for o in lines:
                if o is not l and o.x1 <= l.x0 + 5 and _same_row(o, l) and _DATE_LABEL_RE.search(o.up):
                    label = True
                    used = [o, l]
                    break
        for _, _, d, strength in found[:1]:
            key = (label, strength)
            if best is None or key > best[0]:
                best = (key, d, used)
    if best is None:
        return None
    (label, strength), d, used = best
    conf = _mean_score(used) * (0.95 if label else 0.8) * (1.0 if strength == 2 else 0.85)
    return d.isoformat(), used, round(conf, 3)


# --------------------------------------------------------------------------------------------
# Items

_QTY_PRICE_RE = re.compile(
    r"(?<![\d.])@?(?P<q>\d{1,3}(?:\.\d{1,3})?)\s*(?:X|×|\*|@|PCS?\s*@|UNITS?\s*@?)\s*(?:RM|\$|¥)?\s*(?P<p>\d+\.\d{2,4})(?!\d)",
    re.IGNORECASE,
)
_QTY_RE = re.compile(
    r"(?:^|\s)(?P<q>\d{1,3})\s*(?:X|×|PCS?|UNITS?)(?:\s|$)|(?:(?<=\s)|(?<=[\u4e00-\u9fff])|^)[X×]\s*(?P<q2>\d{1,3})(?:\s|$)",
    re.IGNORECASE,
)
_ITEM_STOP_RE = re.compile(
    _TOT + r"|SUB\s*[-.]?\s*T[O0][T1]|小计|小計|合计|合計|总计|總計|应付|應付|实付|ROUNDING|\bCASH\b|CHANGE|PAYMENT|TENDER|"
    r"(?:GST|TAX)\s*SUMMARY|ITEM\s*\(S\)|ITEMS?\s*:|QTY\s*\(S\)|NO\.?\s*OF\s*ITEMS|件数|数量\s*[:：]"
)
_ITEM_SKIP_RE = re.compile(r"^(?:DISC|DISCOUNT|PROMO|ITEM\s+PROMO|LESS|SAVINGS?|VOUCHER|COUPON|优惠|折扣)|%|INCLUSIVE|INCL\.|ROUND|\bADJ")
_BODY_START_RE = re.compile(
    r"\b(?:INVOICE|INV|RECEIPT|BILL|CASHIER|TABLE|ORDER|POS|TRANS|SLIP|COUNTER|SALESPERSON|OPERATOR|PAX|SERVER)\b|"
    r"单号|單號|收银|收銀|流水|台号|桌号"
)


def _is_amount_box(l: _L) -> bool:
    amts = find_amounts(l.text)
    if not amts:
        return False
    rest = l.up
    for a in reversed(amts):
        rest = rest[: a.start] + rest[a.end:]
    return _letters(rest) <= 3 and not re.search(r"\b\d+\s*[X×@]", rest)


def _is_desc_box(l: _L) -> bool:
    if _is_amount_box(l) or _letters(l.text) < 2 or l.score < 0.5:
        return False
    if not _is_cjk(l.text) and _letters(l.text) < 3:
        return False
    if _letters(re.sub(r"\d{5,}", "", l.text)) < 3 or (_digits(l.text) > 2 * _letters(l.text) and not _is_cjk(l.text)):
        return False  # an article code, a barcode
    return not re.fullmatch(r"[\W\d]*(?:SR|ZR|ZRL|TX|T|S|X|RM)?[\W\d]*", l.up)


def _items(lines: list[_L], rows: list[list[_L]]) -> tuple[list[dict], list[_L], float] | None:
    # The items run from after the column header row (else after the last invoice/date row of
    # the header) to the first total/payment row after that.
    def is_header(row: list[_L]) -> bool:
        text = _row_text(row)
        return len(_COLUMN_HEADER_RE.findall(text.upper())) >= 2 and _digits(text) == 0

    first_total = next(
        (i for i, row in enumerate(rows) if _TOTAL_RE.search(_row_text(row).upper()) and find_amounts(_row_text(row))),
        len(rows),
    )
    start = next((i + 1 for i, row in enumerate(rows[:first_total]) if is_header(row)), None)
    if start is None:
        for i, row in enumerate(rows[:first_total]):
            up = _row_text(row).upper()
            if _BODY_START_RE.search(up) or _date_matches(up):
                start = i + 1
    if start is None:
        return None
    end = next(
        (i for i in range(start, len(rows)) if _ITEM_STOP_RE.search(_row_text(rows[i]).upper()) and not is_header(rows[i])),
        len(rows),
    )
    items: list[dict] = []
    used: list[_L] = []
    pending: list[_L] = []
    pending_text: list[str] = []
    for row in rows[start:end]:
        amount_boxes = [l for l in row if _is_amount_box(l)]
        desc_boxes = [l for l in row if _is_desc_box(l)]
        row_up = _row_text(row).upper()
        nonzero = [l for l in amount_boxes if abs(find_amounts(l.text)[-1].value) > 0.0001]
        if not nonzero:
            if desc_boxes and not pending:
                pending = desc_boxes
            pending_text.append(row_up)
            continue
        amount_box = max(nonzero, key=lambda l: l.x1)
        amount = find_amounts(amount_box.text)[-1].value
        src = desc_boxes or pending
        desc = _norm(" ".join(l.text for l in src))
        prev = None
        while prev != desc:
            prev = desc
            desc = re.sub(r"^(?:[A-Z]?\d{6,}-?|[A-Z]{1,3}\s*[:.]|SR\b|ZR\b|ZRL\b)\s*", "", desc).strip(" -:*")
        context = " ".join(pending_text + [row_up])
        if amount < 0 and items and (not desc_boxes or _ITEM_SKIP_RE.search(desc.upper())):
            items[-1]["amount"] = round(items[-1]["amount"] + amount, 2)  # a discount line
            used.append(amount_box)
            pending, pending_text = [], []
            continue
        if not src or _letters(desc) < 2 or _ITEM_SKIP_RE.search(desc.upper()):
            pending, pending_text = [], []
            continue
        item: dict = {"description": desc, "amount": round(amount, 2)}
        qty = None
        for m in _QTY_PRICE_RE.finditer(context):
            q, price = float(m.group("q")), float(m.group("p"))
            if q > 0 and abs(q * price - abs(amount)) <= 0.05 + 0.01 * abs(amount):
                qty = q
                break
        if qty is None:
            m = _QTY_RE.search(context)
            if m:
                qty = float(m.group("q") or m.group("q2"))
        if qty is None:
            # a lone small integer between the description and the amount: the quantity column
            desc_x1 = max(l.x1 for l in src)
            for l in row:
                if re.fullmatch(r"\d{1,3}", l.text.strip()) and desc_x1 <= l.x0 < amount_box.x0:
                    qty = float(l.text.strip())
                    break
        if qty and 0 < qty < 1000:
            item["quantity"] = qty
        items.append(item)
        used.extend(src)
        used.append(amount_box)
        pending, pending_text = [], []
    if not items:
        return None
    return items, used, 0.5


# --------------------------------------------------------------------------------------------
# Entry point


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
    if not ls:
        if default_currency:
            pass  # nothing was read: do not claim a currency for an empty document
        return ex

    def put(name: str, value, used: list[_L], conf: float) -> None:
        if isinstance(value, str):
            value = value[: _MAX_LEN.get(name, 200)].strip()
            if not value:
                return
        ex.fields[name] = value
        ex.confidence[name] = max(0.0, min(1.0, round(float(conf), 3)))
        ex.evidence[name] = _evidence(used)

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
    return ex
