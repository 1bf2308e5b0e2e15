"""Merchant name and address: the header rows of a receipt, junk and stop lines (phone, tax
registration, stamps), company-name cleaning, and the address block below the name."""
from __future__ import annotations

import re
from typing import Sequence

from worker.extract.receipt.amounts import find_amounts
from worker.extract.receipt.dates import _date_matches
from worker.extract.receipt.lines import _COLUMN_HEADER_RE, _L, _mean_score, _median_height, _row_text
from worker.extract.receipt.text import _digits, _is_cjk, _is_phone_line, _letters, _norm


# --------------------------------------------------------------------------------------------
# Keyword patterns

_STOP_HEADER_RE = re.compile(
    r"\b(?:TEL|TELE|TELEPHONE|PHONE|PH|FAX|H/?P|HP|MOBILE|WHATSAPPS?|HOTLINE|CARELINE|OUTLET|EMAIL|E-MAIL|WEBSITE|"
    r"GST|SST|VAT|TIN|ABN|BRN|NPWP|CO\.?\s*REG|CO\.?\s*NO|COMPANY\s*(?:REG|NO)|REG\.?\s*NO|ROC|"
    r"INVOICE|RECEIPT|BILL|CASHIER|TABLE|DATE|TIME|ORDER|SHOPPING\s+HOURS|OPENING|OPEN)\b"
    r"|WWW\.|HTTPS?:|@|\.COM\b|电话|電話|传真|傳真|税号|稅號|手机|手機|网址|網址|发票|發票|收银|收銀|单号|單號|日期|时间|時間"
)
_REGNO_RE = re.compile(r"^\(?\s*(?:CO\.?\s*(?:REG|NO)\.?|COMPANY\s*NO\.?|ROC)?\s*[:.]?\s*[A-Z]{0,2}\d{4,}[\s-]*[A-Z]?\s*\)?\.?$")
_TRAILING_REGNO_RE = re.compile(r"\s*[\[(]\s*(?:CO\.?\s*(?:REG\.?|NO\.?)\s*:?\s*)?\d{3,}[\s-]*[A-Z]{0,2}\s*[\])]?\s*$")
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
_HOUSE_NO_RE = re.compile(
    r"^(?:NO\b|NO\.|NO:|LOT\b|[A-Z]?-?\d+[A-Z]?(?:-\d+)*[A-Z]?\s*[,.]|\d+[A-Z]?\s+(?:JALAN|JLN|LORONG|LRG)\b)"
)
_BUILDING_RE = re.compile(
    r"\b(?:WISMA|MENARA|KOMPLEKS|COMPLEX|BANGUNAN|GEDUNG|PLAZA|MALL|TOWER|BUILDING|BLDG|ARCADE|SQUARE|PUSAT)\b"
)
_ADDR_LABEL_RE = re.compile(r"^(?:ADDRESS|ADDR|ALAMAT|地址|店址)\s*[:：]?\s*", re.IGNORECASE)
_NAME_LABEL_RE = re.compile(r"^(?:MERCHANT(?:\s+NAME)?|STORE(?:\s+NAME)?|SHOP(?:\s+NAME)?|商户名称|商戶名稱|商户|商戶|店名|商家)\s*[:：]\s*", re.IGNORECASE)


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
# Merchant name

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


_SB_FIX_RE = re.compile(r"(?<=\s)(?!S/B)[S5]/[B8]\.?$")


def _clean_name(text: str) -> str:
    text = _norm(text)
    text = _NAME_LABEL_RE.sub("", text)
    prev = None
    while prev != text:
        prev = text
        text = _TRAILING_REGNO_RE.sub("", text).strip()
    text = re.sub(r"\s*-\s*$", "", text)
    text = _SUFFIX_FIX_RE.sub(r"\1BHD", text)  # a common OCR slip in the Malaysian company suffix
    text = _SB_FIX_RE.sub("S/B", text)  # `S/B` (Sdn Bhd) read as `5/8`
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


def _suffix_row_follows(row: list[_L], above: list[_L], name_h: float) -> bool:
    """Whether `row`, just below the lines `above`, is the last row of a wrapped company name:
    it carries the company suffix, in the same type, with no gap."""
    text, kept = _name_text(row)
    if not kept:
        return False
    up = _clean_name(text).upper()
    row_h = max(l.h for l in kept)
    gap = min(l.y0 for l in kept) - max(l.y1 for l in above)
    return (
        bool(_COMPANY_SUFFIX_RE.search(up))
        and not _is_stop_line(up)
        and not _ADDR_START_RE.match(up)
        and 0.8 * name_h <= row_h <= 1.25 * name_h
        and gap <= 1.2 * name_h
    )


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
        # a long name wraps over three rows of the same type, the company suffix on the last
        wraps_to_suffix = (
            j + 1 < min(start + 3, len(header))
            and not _COMPANY_SUFFIX_RE.search(up_t)
            and not _COMPANY_SUFFIX_RE.search(up_n)
            and _digits(up_n) == 0
            and not _looks_address(up_n)
            and 0.8 * name_h <= row_h <= 1.25 * name_h
            and _suffix_row_follows(header[j + 1], kept, name_h)
        )
        if (dangling or suffix_next or big_pair or wraps_to_suffix) and not (_looks_address(up_n) and not suffix_next and not dangling):
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


# --------------------------------------------------------------------------------------------
# Address

_GLUED_POSTCODE_RE = re.compile(r"(?<![\w-])(\d{5,6})(?=[A-Za-z]{2,})")
_GLUED_ABBREV_RE = re.compile(r"\b(JLN|TMN|LRG|KPG|BDR)(?=[A-Z]{3,}\b)", re.IGNORECASE)
_GLUED_CAMEL_RE = re.compile(r"(?:(?<=[a-z]{2})|(?<=\d))(?=[A-Z][a-z]{2,})")
_NUMBER_PERIOD_RE = re.compile(r"(?<=\d)\.(?= [A-Za-z0-9])")
_PERIOD_SEPARATOR_RE = re.compile(r"(\b(?:\d+[A-Za-z]?|[A-Za-z]{4,}))\.(?= [A-Za-z0-9])")
_GLUED_NO_RE = re.compile(r"\b(NO)(?=\d)", re.IGNORECASE)
_ABBREV_IL_RE = re.compile(r"\b(?:J[Ii1|]N|B[Ii1|]K)\b(?=\.?\s+\w)", re.IGNORECASE)


def _fix_address_ocr(text: str) -> str:
    """Undo OCR slips that a printed address line does not have.

    The recogniser drops the gap between words set in narrow receipt type: a postcode glued to
    its town (`57000KL`), a street abbreviation glued to its name (`TMNPUSAT`), a word glued to
    the next one in mixed-case type (`U3Shah`, `BulohSeksyen`: an upper-case letter that starts a
    lower-case word), the house number glued to `NO` (`NO290`). It reads the `L` of the street
    abbreviations `JLN`, `BLK` as `I` (`JIN`, `BIK`). And it reads a comma after a number as a full
    stop (`NO. 33. JALAN`): an address separates its parts with commas, a full stop follows an
    abbreviation, not a number; an address with no comma at all but full stops after its words
    (`TAMAN SERDANG RAYA. 43300 SERI KEMBANGAN. SELANGOR`) had its commas all read that way.
    """
    text = _GLUED_POSTCODE_RE.sub(r"\1 ", text)
    text = _GLUED_NO_RE.sub(r"\1 ", text)
    text = _ABBREV_IL_RE.sub(lambda m: m.group(0)[0] + ("l" if m.group(0)[1] == "i" or m.group(0)[2].islower() else "L") + m.group(0)[2], text)
    text = _GLUED_ABBREV_RE.sub(r"\1 ", text)
    if any(c.islower() for c in text):
        text = _GLUED_CAMEL_RE.sub(" ", text)
    if "," not in text and len(_PERIOD_SEPARATOR_RE.findall(text)) >= 2:
        # no comma at all, but full stops between the parts: every comma was read as a full stop
        text = _PERIOD_SEPARATOR_RE.sub(r"\1,", text)
    text = _NUMBER_PERIOD_RE.sub(",", text)
    return text


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
    # lines ("Car Park Office, Basement 1,") or follow the name directly. An address that starts
    # with its house or lot number ("NO 2, JALAN …") starts there: a plain line between it and the
    # name is a tagline ("MACHINERY & TOOLS"), unless it names a building ("WISMA …").
    numbered = bool(_HOUSE_NO_RE.match(_row_text(clean(rows[start])).upper()))
    while start - 1 > after:
        up = _row_text(clean(rows[start - 1])).upper()
        if not _address_row_ok(up) or _COMPANY_SUFFIX_RE.search(up) or _REGNO_RE.match(up):
            break
        follows_name = start - 1 == after + 1 and (not numbered or _looks_address(up) or _BUILDING_RE.search(up))
        if not (re.search(r"[,\d]", up) or follows_name):
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
    if joiner:
        value = _fix_address_ocr(value)
    if _letters(value) < 3:
        return None
    conf = _mean_score(used) * (0.85 if len(parts) >= 2 else 0.7)
    return value, used, round(conf, 3)
