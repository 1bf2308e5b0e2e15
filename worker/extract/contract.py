"""Contract field extraction from a document's full text (PDF text layer or OCR).

Fields (see docs/fields.md): parties, effective_date, jurisdiction, term, term_months, amounts.
English and Chinese. Everything here is a generic heuristic over contract language (preambles,
governing-law clauses, signature blocks, term clauses); a field that cannot be found is absent.

Party names are canonicalised so the same party compares equal however it was typed:
commas dropped, "&" spelt "and", "L.P."/"L.L.C." -> "LP"/"LLC", a trailing "Limited" /
"Incorporated" -> "Ltd." / "Inc.", personal post-nominals (M.D., Ph.D., Esq.) removed, and
names printed in capitals title-cased (e.g. "NIKE, Inc." -> "Nike Inc.").
"""
from __future__ import annotations

import re
from datetime import date

from worker.extract.base import Extraction

# ---------------------------------------------------------------------------------------------
# small text helpers

_ROLE_WORDS = {
    "company", "companies", "employee", "employer", "executive", "recipient", "party", "parties",
    "buyer", "seller", "sellers", "purchaser", "licensor", "licensee", "contractor", "consultant",
    "undersigned", "discloser", "disclosing", "receiving", "customer", "supplier", "vendor", "client",
    "agreement", "the", "counterparty", "associate", "you", "me", "myself", "us", "we", "investor",
    "corporation", "holder", "lender", "borrower", "landlord", "tenant", "name", "title", "date",
    "signature", "witness", "by", "its", "and", "or", "of", "exhibit", "schedule", "section",
}
_CONNECTORS = {"and", "&", "of", "de", "du", "la", "le", "von", "van", "der", "den", "y", "e", "et", "für"}
_SUFFIX_WORDS = (
    r"Inc\.?|Incorporated|Corp\.?|Corporation|L\.?L\.?C\.?|L\.?L\.?P\.?|L\.?P\.?|Ltd\.?|Limited|"
    r"Co\.|Company|plc|P\.?L\.?C\.?|ASA|AG|GmbH|S\.A\.?|N\.V\.?|B\.V\.?|S\.p\.A\.|Pty\.? Ltd\.?|"
    r"Partners|Holdings|Group|Trust|Bank|Fund|Enterprises|Stores"
)
# Title-case or capitals ("Inc." / "INC."), never lowercase ("a Delaware company")
_SUFFIX_RE = "(?:" + _SUFFIX_WORDS + "|" + _SUFFIX_WORDS.upper() + ")"
# a trailing dot that belongs to the name (abbreviations, initials)
_ABBREV_END = re.compile(r"(?:\b(?:Inc|Corp|Co|Ltd|Jr|Sr|Bros|Pty|INC|CORP|CO|LTD|JR|SR)|\b[A-Z]|(?:[A-Z]\.)+[A-Z])\.$")
_POSTNOMINALS = re.compile(r"(?:,?\s+(?:M\.\s?D\.|Ph\.\s?D\.|Esq\.?|J\.\s?D\.|CPA|MBA))+\s*$", re.I)
_ABBREV_BEFORE_DOT = re.compile(
    r"(?:^|[\s,(])(?:Inc|Corp|Co|Ltd|Jr|Sr|Dr|Mr|Mrs|Ms|St|No|Nos|Esq|Bros|Assn|Intl|Pty|"
    r"[A-Z]|(?:[A-Z]\.)+[A-Z]?|[A-Z][a-z]?\.[A-Z][a-z]?|U\.S|S\.A|N\.V|B\.V|L\.P|L\.L\.C)$"
)
_KEEP_UPPER = {"LLC", "LP", "LLP", "PLC", "AG", "NV", "BV", "SA", "USA", "US", "UK", "ASA", "II", "III",
               "IV", "GMBH", "SPA", "NA", "N.A.", "L.P.", "S.A.", "AB", "AS", "SE", "KG"}

_NUM_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "twenty-one": 21, "twenty-four": 24, "thirty": 30, "thirty-six": 36, "forty-eight": 48,
    "sixty": 60, "ninety": 90, "a": 1, "an": 1,
}
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5,
    "6th": 6, "7th": 7, "8th": 8, "9th": 9, "10th": 10,
}
_MONTHS = {
    m: i + 1
    for i, names in enumerate([
        ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
        ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
        ("october", "oct"), ("november", "nov"), ("december", "dec"),
    ])
    for m in names
}
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}


def _flat(text: str) -> str:
    """Whitespace (newlines included) collapsed to single spaces."""
    return re.sub(r"\s+", " ", text.replace("\ufffe", "-")).strip()


def _cn_number(s: str) -> int | None:
    """'3', '十二', '二十四', '两' -> int."""
    s = s.strip()
    if s.isdigit():
        return int(s)
    if not s or any(ch not in _CN_DIGITS and ch not in "十百" for ch in s):
        return None
    total, cur = 0, 0
    for ch in s:
        if ch in _CN_DIGITS:
            cur = _CN_DIGITS[ch]
        elif ch == "十":
            total += (cur or 1) * 10
            cur = 0
        elif ch == "百":
            total += (cur or 1) * 100
            cur = 0
    return total + cur


def _word_number(s: str) -> int | None:
    s = s.strip().lower()
    if s.isdigit():
        return int(s)
    return _NUM_WORDS.get(s)


# ---------------------------------------------------------------------------------------------
# dates

_MONTH_RE = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
             r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_DATE_PATTERNS = [
    # February 10, 2017 / February 10 2017 / December 11,2014
    (re.compile(rf"\b({_MONTH_RE})\s+(\d{{1,2}})(?:st|nd|rd|th)?\s*,?\s*((?:19|20)\d\d)\b", re.I), "mdy"),
    # 6th day of January, 2012 / 6th of February, 1999 / 5th day of November 2004 / 10 March 2020
    (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:day\s+of\s+|of\s+)?({_MONTH_RE})\s*,?\s*((?:19|20)\d\d)\b",
                re.I), "dmy"),
    # 2023年5月1日
    (re.compile(r"((?:19|20)\d\d)\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日"), "ymd"),
    # 2023-05-01 / 2023/5/1 / 2023.05.01
    (re.compile(r"\b((?:19|20)\d\d)[-/.](\d{1,2})[-/.](\d{1,2})\b"), "ymd"),
    # 04/18/01, 8/11/08, 5/12/2009 (US order: these are English contracts)
    (re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/((?:19|20)?\d\d)(?![\d/])"), "mdy_num"),
]


def _mk_date(y: int, m: int, d: int) -> str | None:
    if y < 100:
        y += 2000 if y < 50 else 1900
    try:
        return date(y, m, d).isoformat()
    except ValueError:
        return None


def _find_dates(s: str) -> list[tuple[int, str]]:
    """All dates in s as (position, ISO), in text order."""
    out = []
    for rx, kind in _DATE_PATTERNS:
        for m in rx.finditer(s):
            g = m.groups()
            if kind == "mdy":
                iso = _mk_date(int(g[2]), _MONTHS[g[0].lower().rstrip(".")], int(g[1]))
            elif kind == "dmy":
                iso = _mk_date(int(g[2]), _MONTHS[g[1].lower().rstrip(".")], int(g[0]))
            elif kind == "ymd":
                iso = _mk_date(int(g[0]), int(g[1]), int(g[2]))
            else:
                iso = _mk_date(int(g[2]), int(g[0]), int(g[1]))
            if iso:
                out.append((m.start(), iso))
    out.sort()
    return out


_EFFECTIVE_CUE = re.compile(
    r"(?:effective\s+(?:as\s+of|on|from)?|dated(?:\s+and\s+effective)?\s*(?:as\s+of|this|on)?|"
    r"made\s+(?:and\s+entered\s+(?:into\s+)?)?(?:as\s+of|this|on)|entered\s+into\s+(?:as\s+of|on(?:\s+this)?)|"
    r"as\s+of|Effective\s+Date\s*[:：]|"
    r"生效日期|签订日期|签署日期|签约日期|订立日期|起生效|自)",
    re.I,
)


def _effective_date(text: str) -> tuple[str, float] | None:
    flat = _flat(text)
    head = flat[:3000]
    dates = _find_dates(head)
    # 1. a date right after an "effective / dated / made as of" cue in the opening part
    for cue in _EFFECTIVE_CUE.finditer(head):
        for pos, iso in dates:
            if cue.end() <= pos <= cue.end() + 40:
                return iso, 0.9
        # Chinese: 自2023年5月1日起生效 (date before the cue)
        if cue.group(0) == "起生效":
            before = [iso for pos, iso in dates if cue.start() - 25 <= pos < cue.start()]
            if before:
                return before[-1], 0.9
    # 2. a letter agreement: a date standing on its own line near the top
    for line in text.splitlines()[:25]:
        line_s = line.strip()
        ds = _find_dates(line_s)
        if ds and len(line_s) <= 30 and ds[0][0] <= 2:
            return ds[0][1], 0.6
    # 3. signature-block dates ("Date: 8/11/08"): the latest one
    sig = []
    for m in re.finditer(r"(?:\bDated?\b|日期)\s*[:：]?\s*([^\n]{0,40})", text, re.I):
        ds = _find_dates(m.group(1))
        if ds and ds[0][0] <= 2:
            sig.append(ds[0][1])
    if sig:
        return max(sig), 0.5
    return None


# ---------------------------------------------------------------------------------------------
# jurisdiction

_US_STATES = [
    "Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut", "Delaware",
    "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky",
    "Louisiana", "Maine", "Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi",
    "Missouri", "Montana", "Nebraska", "Nevada", "New Hampshire", "New Jersey", "New Mexico",
    "New York", "North Carolina", "North Dakota", "Ohio", "Oklahoma", "Oregon", "Pennsylvania",
    "Rhode Island", "South Carolina", "South Dakota", "Tennessee", "Texas", "Utah", "Vermont",
    "Virginia", "Washington", "West Virginia", "Wisconsin", "Wyoming", "District of Columbia",
    "Puerto Rico",
]
_REGIONS = [
    "England and Wales", "England & Wales", "England", "Scotland", "Northern Ireland", "Wales",
    "United Kingdom", "Ireland", "Republic of Ireland", "United States of America", "United States",
    "Canada", "Ontario", "Quebec", "British Columbia", "Alberta", "Australia", "New South Wales",
    "Victoria", "New Zealand", "Singapore", "Hong Kong", "Hong Kong SAR", "Japan", "Korea",
    "Republic of Korea", "People's Republic of China", "People’s Republic of China", "PRC", "China",
    "Taiwan", "India", "Germany", "France", "Switzerland", "Netherlands", "The Netherlands",
    "Belgium", "Luxembourg", "Spain", "Portugal", "Italy", "Austria", "Sweden", "Norway",
    "Denmark", "Finland", "Israel", "Cayman Islands", "British Virgin Islands", "Bermuda",
    "Russian Federation", "Russia", "Ukraine", "Brazil", "Mexico", "South Africa",
    "United Arab Emirates", "Dubai", "Qatar", "Saudi Arabia", "Malaysia", "Thailand", "Indonesia",
    "Philippines", "Vietnam", "Poland", "Czech Republic", "Hungary", "Greece", "Turkey",
]
_PLACES = sorted(set(_US_STATES + _REGIONS), key=len, reverse=True)
_PLACE_ALT = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in _PLACES)
_LAWS_OF = re.compile(
    rf"\blaws?\s+(?:of|in)\s+(?:the\s+)?(?:(?:State|Commonwealth|Province|Republic|Kingdom)\s+of\s+)?"
    rf"(?:the\s+)?({_PLACE_ALT})\b"
    rf"|\b({_PLACE_ALT})\s+law\b",
    re.I,
)
_LAWS_OF_GENERIC = re.compile(
    r"\blaws?\s+of\s+(?:the\s+)?(?:State|Commonwealth|Province)\s+of\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)")
_GOVERNING_CUE = re.compile(r"govern|constru|interpret|enforced|choice\s+of\s+law|applicable\s+law", re.I)
_GOVERNING_NEAR = re.compile(r"(?:in\s+accordance\s+with|subject\s+to|under)\s+(?:the\s+)?(?:internal\s+|substantive\s+)?$",
                             re.I)
_CN_JURIS = [
    re.compile(r"适用(?:于)?\s*([\u4e00-\u9fff（）()]{2,20}?)\s*(?:的)?(?:现行)?(?:法律|法规)"),
    re.compile(r"受\s*([\u4e00-\u9fff（）()]{2,20}?)\s*(?:的)?法律(?:的)?管辖"),
    re.compile(r"(?:管辖法律|适用法律)\s*[:：为是]\s*([\u4e00-\u9fff（）()]{2,20}?)(?:的)?(?:法律|$|[，。；,;\s])"),
    re.compile(r"依据?\s*([\u4e00-\u9fff（）()]{2,20}?)\s*(?:的)?法律(?:进行)?解释"),
]


def _canonical_place(raw: str) -> str:
    raw = _flat(raw)
    for p in _PLACES:
        if re.fullmatch(re.escape(p).replace(r"\ ", r"\s+"), raw, re.I):
            return p.replace(" & ", " and ").replace("’", "'")
    return raw


def _jurisdiction(text: str) -> tuple[str, float] | None:
    flat = _flat(text)
    # Chinese governing-law clauses
    for rx in _CN_JURIS:
        m = rx.search(flat)
        if m:
            place = m.group(1).strip("（）() ")
            place = re.sub(r"^(?:中国|我国)$", "中华人民共和国", place)
            if place and place not in {"本合同", "本协议", "有关", "相关", "现行"}:
                return place, 0.85
    best = None
    for m in _LAWS_OF.finditer(flat):
        place = m.group(1) or m.group(2)
        ctx = flat[max(0, m.start() - 250):m.start()]
        # the sentence the match sits in, up to the match
        sent = re.split(r"(?<=[a-z\)])[.;:]\s+(?=[A-Z(])|\(\w{1,4}\)\s", ctx)[-1]
        if re.search(r"organi[sz]ed|incorporated|formed|existing|violation|securities|permitted\s+by|"
                     r"felony|crime|convict|statute", sent, re.I):
            score = 0
        elif _GOVERNING_CUE.search(sent) or _GOVERNING_NEAR.search(sent):
            score = 2
        else:
            score = 1
        if score and (best is None or score > best[0]):
            best = (score, _canonical_place(place))
            if score == 2:
                break
    if best:
        return best[1], 0.9 if best[0] == 2 else 0.5
    for m in _LAWS_OF_GENERIC.finditer(flat):
        ctx = flat[max(0, m.start() - 200):m.start()]
        if _GOVERNING_CUE.search(ctx):
            return m.group(1), 0.5
    return None


# ---------------------------------------------------------------------------------------------
# term

_UNIT_RE = r"(years?|months?|weeks?|days?)"
_NUM_RE = r"(\d{1,3}|" + "|".join(sorted((k for k in _NUM_WORDS if len(k) > 2), key=len, reverse=True)) + r")"
_DURATION = re.compile(rf"\b{_NUM_RE}(?:\s*\(\s*\d{{1,3}}\s*\))?[\s-]+(?:calendar\s+)?{_UNIT_RE}\b", re.I)
_ANNIVERSARY = re.compile(r"\b(" + "|".join(_ORDINALS) + r")(?:\s*\(\s*\d+(?:st|nd|rd|th)?\s*\))?\s+anniversary\b", re.I)
_TERM_STRONG = re.compile(
    r"\b(?:expire|expiration|terminate|termination\s+date|continue|remain\s+in\s+(?:full\s+)?(?:force|effect)|"
    r"in\s+effect\s+for|survive)", re.I)
_TERM_SUBJECT = re.compile(r"\b(?:this\s+(?:letter\s+)?agreement|obligations|hereunder|hereof)\b", re.I)
_TERM_WORD = re.compile(r"\b(?i:(?:the\s+)?term\s+of\s+this\s+(?:letter\s+)?agreement)\b|\bTerm\b\.?\s*(?:[:.]|shall|will|is)")
_TERM_EXCLUDE = re.compile(r"\bnotice\b|employment|non-?compet|solicit|hire|standstill|arbitrat|\bcure\b", re.I)
_FROM_REF = re.compile(
    r"^\s*(?:from|after|following|of)\s+(?:the\s+)?(?:effective\s+date|date\s+(?:hereof|of\s+this|first)|"
    r"execution|signing|commencement|later\s+of|earlier\s+of)", re.I)
_CN_TERM = [
    re.compile(r"(?:有效期|期限|合同期|服务期|租赁期)(?:限)?(?:为|是|：|:|共|自[^，。；]{0,30}?起)\s*"
               r"([0-9一二两三四五六七八九十百]+)\s*(个月|年|月|日|天|周)"),
    re.compile(r"(?:有效期|期限)[^。；\n]{0,40}?(?:为期|共计|共)\s*([0-9一二两三四五六七八九十百]+)\s*(个月|年|月|日|天|周)"),
]


def _unit_name(unit: str, n: int) -> str:
    unit = unit.lower().rstrip("s")
    return f"{n} {unit}" + ("s" if n != 1 else "")


def _term(text: str) -> tuple[str, int | None, float] | None:
    flat = _flat(text)
    for rx in _CN_TERM:
        m = rx.search(flat)
        if m:
            n = _cn_number(m.group(1))
            if n:
                unit = {"年": "year", "个月": "month", "月": "month", "日": "day", "天": "day", "周": "week"}[m.group(2)]
                return _unit_name(unit, n), _months(unit, n), 0.85
    sentences = re.split(r"(?<=[a-z\)\d])[.;:]\s+(?=\(?[A-Z0-9])", flat)
    candidates = []  # (priority, order, term)
    for order, sent in enumerate(sentences):
        if len(sent) > 1500:
            continue
        found = []
        for m in _ANNIVERSARY.finditer(sent):
            found.append((m.start(), _ORDINALS[m.group(1).lower()], "year", True))
        for m in _DURATION.finditer(sent):
            n = _word_number(m.group(1))
            if n:
                anchored = bool(_FROM_REF.match(sent[m.end():m.end() + 60]))
                found.append((m.start(), n, m.group(2), anchored))
        if not found:
            continue
        found.sort()
        strong = _TERM_STRONG.search(sent) and _TERM_SUBJECT.search(sent)
        excluded = _TERM_EXCLUDE.search(sent)
        if strong and not excluded:
            for pos, n, unit, anchored in found:
                if anchored or "anniversary" in sent[pos:pos + 40].lower():
                    candidates.append((0, order, n, unit))
                    break
            else:
                if _TERM_WORD.search(sent):
                    candidates.append((1, order, found[0][1], found[0][2]))
        elif _TERM_WORD.search(sent) and not excluded:
            candidates.append((1, order, found[0][1], found[0][2]))
        elif not excluded and re.search(r"\bperiod\s+of\b", sent, re.I) and \
                re.search(r"\bthis\s+agreement|\bobligations?\b|confidential|disclos|circumvent", sent, re.I):
            for pos, n, unit, anchored in found:
                if anchored and re.search(r"period\s+of\s*$", sent[max(0, pos - 15):pos], re.I):
                    candidates.append((2, order, n, unit))
                    break
    candidates = [c for c in candidates if not c[3].lower().startswith(("day", "week")) or c[0] < 2]
    if not candidates:
        return None
    pri, _, n, unit = min(candidates)
    unit = unit.lower().rstrip("s")
    return _unit_name(unit, n), _months(unit, n), (0.8, 0.6, 0.4)[pri]


def _months(unit: str, n: int) -> int | None:
    unit = unit.rstrip("s")
    if unit == "year":
        return n * 12
    if unit == "month":
        return n
    return None


# ---------------------------------------------------------------------------------------------
# amounts

_CUR_SYMBOLS = {"US$": "USD", "$": "USD", "€": "EUR", "£": "GBP", "¥": "CNY", "￥": "CNY", "RMB": "CNY",
                "HK$": "HKD", "S$": "SGD", "A$": "AUD", "C$": "CAD", "RM": "MYR", "₹": "INR", "₩": "KRW"}
_CUR_CODES = {"USD", "EUR", "GBP", "CNY", "RMB", "HKD", "SGD", "JPY", "AUD", "CAD", "CHF", "MYR", "INR",
              "KRW", "TWD", "NZD", "SEK", "NOK", "DKK"}
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "mm": 1e6, "m": 1e6, "bn": 1e9, "k": 1e3,
          "万": 1e4, "亿": 1e8, "千": 1e3, "百万": 1e6}
_NUM = r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_AMOUNT_PATTERNS = [
    # $1,000,000 / US$ 5 million / € 430 / RMB 100,000
    re.compile(r"(US\$|HK\$|S\$|A\$|C\$|\$|€|£|¥|￥|₹|₩|\b(?:" + "|".join(sorted(_CUR_CODES)) + r")\b)\s?"
               + _NUM + r"(?:\s*(thousand|million|billion|mm|bn|万|亿)\b)?", re.I),
    # 100,000 USD / 5 million dollars / 100万元 / 人民币100万元
    re.compile(r"(人民币|美元|港币|欧元)?\s*" + _NUM + r"\s*(thousand|million|billion|万|亿|千)?\s*"
               r"(元|美元|港元|港币|欧元|英镑|dollars|euros|pounds|\b(?:" + "|".join(sorted(_CUR_CODES)) + r")\b)", re.I),
]
_CN_CUR = {"人民币": "CNY", "元": "CNY", "美元": "USD", "港币": "HKD", "港元": "HKD", "欧元": "EUR", "英镑": "GBP",
           "dollars": "USD", "euros": "EUR", "pounds": "GBP"}


def _amounts(text: str) -> list[dict]:
    flat = _flat(text)
    out: list[dict] = []
    seen = set()
    taken: list[tuple[int, int]] = []
    for i, rx in enumerate(_AMOUNT_PATTERNS):
        for m in rx.finditer(flat):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            if i == 0:
                sym, num, scale = m.group(1), m.group(2), m.group(3)
                cur = _CUR_SYMBOLS.get(sym.upper(), sym.upper())
                cur = "CNY" if cur == "RMB" else cur
                if flat[m.end():m.end() + 1] == "%":
                    continue
            else:
                pre, num, scale, post = m.groups()
                cur = _CN_CUR.get(pre or "", None) or _CN_CUR.get(post.lower(), None) or post.upper()
                cur = "CNY" if cur == "RMB" else cur
            try:
                value = float(num.replace(",", ""))
            except ValueError:
                continue
            if scale:
                value *= _SCALE[scale.lower()]
            value = round(value, 2)
            if value <= 0:
                continue
            taken.append((m.start(), m.end()))
            key = (value, cur)
            if key not in seen:
                seen.add(key)
                out.append({"value": int(value) if value == int(value) else value, "currency": cur})
    return out


# ---------------------------------------------------------------------------------------------
# parties

_ROLE_PAREN = "\u27e8R\u27e9"  # stands in for a parenthetical that defined a role: (the "Company")
_PREAMBLE_KEY = re.compile(r"\b(?:by\s+and\s+between|by\s+and\s+among|between|among|PARTIES\s*:)\s*", re.I)
_PREAMBLE_STOP = re.compile(
    r"\b(?:WHEREAS|RECITALS?|Recitals?|BACKGROUND|Background|W\s*I\s*T\s*N\s*E\s*S\s*S\s*E\s*T\s*H|"
    r"NOW,?\s+THEREFORE|[Hh]ereinafter|[Cc]ollectively|[Ii]ndividually|[Ee]ach\s+of|regarding|"
    r"with\s+respect\s+to|in\s+connection\s+with|for\s+the\s+purpose|pursuant\s+to|who\s+agree|"
    r"[Tt]he\s+parties|[Ww]itnesseth)\b"
)
_CORP_NAME = re.compile(
    r"((?:[A-Z0-9][\w¢’'\-\.&/]*|“[A-Z][\w\-]*”?)(?:,?\s+(?:(?:[A-Z0-9“][\w¢’'\-\.&/”]*)|and|&|of|de|du))*"
    r",?\s+" + _SUFFIX_RE + r")(?![\w])"
)
_PERSON = re.compile(r"^(?:[A-Z][a-zA-Z’'\-]+\.?|[A-Z]\.)(?:\s+(?:[A-Z][a-zA-Z’'\-]+\.?|[A-Z]\.)){1,4}$")


def _strip_parentheticals(s: str) -> str:
    """Replace (… "Role" …) by a marker, drop other parentheticals (balanced, one level deep)."""
    out, depth, buf = [], 0, []
    for ch in s:
        if ch in "(（":
            depth += 1
            if depth == 1:
                buf = []
                continue
        elif ch in ")）" and depth:
            depth -= 1
            if depth == 0:
                inner = "".join(buf)
                out.append(f" {_ROLE_PAREN} " if re.search(r"[“\"”「]", inner) else " ")
                continue
        if depth:
            buf.append(ch)
        else:
            out.append(ch)
    return "".join(out)


def _sentence_end(s: str) -> int:
    """Index of the first sentence-ending '.', ';' or ':' that is not an abbreviation's dot."""
    for m in re.finditer(r"[.;:](?=\s|$)", s):
        if m.group(0) == "." and _ABBREV_BEFORE_DOT.search(s[:m.start()]):
            continue
        return m.start()
    return len(s)


def canonical_party(name: str) -> str:
    """A party name in canonical form (see module docstring)."""
    s = _flat(name)
    s = s.strip(" ,;:-")
    s = _POSTNOMINALS.sub("", s)
    letters = [c for c in s if c.isalpha() and c.isascii()]
    shouting = bool(letters) and all(c.isupper() for c in letters) and len(letters) > 3
    s = re.sub(r"\s*&\s*", " and ", s)
    s = re.sub(r"\bL\.\s?L\.\s?C\.?", "LLC", s)
    s = re.sub(r"\bL\.\s?L\.\s?P\.?", "LLP", s)
    s = re.sub(r"\bL\.\s?P\.?(?=\s|$)", "LP", s)
    s = s.replace(",", " ")
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\bLimited$", "Ltd.", s, flags=re.I)
    s = re.sub(r"\bIncorporated$", "Inc.", s, flags=re.I)
    s = re.sub(r"\b(Inc|Ltd|Corp|Co)$", r"\1.", s, flags=re.I)
    if shouting:
        words = []
        for w in s.split(" "):
            core = w.strip("“”\"'.,")
            words.append(w if core.upper() in _KEEP_UPPER or len(core) <= 1 or w == "and" else w.title())
        s = " ".join(words)
        s = re.sub(r"(\d)([A-Z])", lambda m: m.group(1) + m.group(2).lower(), s)
    return s


def _valid_name(name: str) -> bool:
    if not name or len(name) > 90 or len(name.split()) > 10:
        return False
    words = [w.strip("“”\"'.,:;()").lower() for w in name.split()]
    if all(w in _ROLE_WORDS or not w for w in words):
        return False
    if not re.search(r"[A-Z0-9\u4e00-\u9fff]", name[:3]):
        return False
    if re.search(r"\d{3,}", name) and not re.search(_SUFFIX_RE, name):
        return False  # addresses, numbers
    return bool(re.search(r"[A-Za-z\u4e00-\u9fff]{2}", name))


def _name_prefix(piece: str) -> str:
    """The leading run of name-like tokens of piece (stops at the first lowercase word)."""
    piece = re.sub(r"^[\s,;:]*(?:(?:and|&)\s+)?", "", piece)
    toks = piece.split()
    kept: list[str] = []
    for tok in toks:
        core = tok.strip(",;:")
        if not core:
            break
        first = core[0]
        if first.isupper() or first.isdigit() or first in "“\"'":
            kept.append(tok)
        elif core.lower() in _CONNECTORS and kept:
            kept.append(tok)
        else:
            break
        if tok.endswith((";", ":")):
            break
    while kept and kept[-1].strip(",").lower() in _CONNECTORS:
        kept.pop()
    return " ".join(kept).rstrip(",;: ")


def _split_and(name: str) -> list[str]:
    """'High Speed Net Solutions and R. J. Seifert Enterprises' -> two names; keeps 'Sears, Roebuck and Co.'."""
    parts = re.split(r"\s+and\s+", name)
    if len(parts) != 2:
        return [name]
    left, right = parts
    caps = lambda s: len([w for w in s.split() if w[:1].isupper() or w[:1].isdigit()])
    if caps(left) >= 2 and caps(right) >= 2 and not re.match(_SUFFIX_RE + r"$", right.strip(), re.I) \
            and "," not in left:
        return [left, right]
    return [name]


def _preamble_parties(text: str) -> list[str]:
    head = text[:4000]
    for key in list(_PREAMBLE_KEY.finditer(head))[:6]:
        window = _flat(head[key.end():key.end() + 1500])
        window = _strip_parentheticals(window)
        stop = _PREAMBLE_STOP.search(window)
        if stop:
            window = window[:stop.start()]
        # end of the sentence, but a role marker followed by '.' also ends it
        window = window[:_sentence_end(window) + 1]
        pieces = window.split(_ROLE_PAREN)
        names: list[str] = []
        for i, piece in enumerate(pieces):
            if i > 0 and re.match(r"^\s*[.;:]", piece):
                break
            name = _name_prefix(piece)
            cands = _split_and(name) if _ROLE_PAREN not in window or i == len(pieces) - 1 else [name]
            for c in cands:
                c = c.strip(" ,")
                if c.endswith(".") and not _ABBREV_END.search(c):
                    c = c.rstrip(".")
                if _valid_name(c):
                    names.append(c)
        if names:
            return names
    return []


def _intro_company(text: str) -> str | None:
    """First company-like name in the opening (employment letters: 'my employment with X, Inc.')."""
    head = _flat(text[:2500])
    for m in re.finditer(r"\b(?:employment\s+with|associate\s+of|employee\s+of|In\s+order\s+for|"
                         r"engaged\s+by|consultant\s+to)\s+", head, re.I):
        name = _name_prefix(head[m.end():m.end() + 150])
        cm = _CORP_NAME.match(name)
        if cm and _valid_name(cm.group(1)):
            return cm.group(1)
    return None


def _signature_parties(text: str) -> tuple[list[str], list[str]]:
    """(companies, individuals) named in signature blocks."""
    lines = [ln.strip() for ln in text.splitlines()]
    companies: list[str] = []
    people: list[str] = []
    for i, ln in enumerate(lines):
        if re.match(r"^By\b\s*:?", ln, re.I):
            for j in range(i - 1, max(-1, i - 4), -1):
                prev = lines[j]
                if not prev or prev[0].islower() or re.match(
                        r"^(?:very truly|sincerely|accepted|agreed|acknowledged|date|in witness|title|name)", prev, re.I):
                    continue
                m = _CORP_NAME.search(prev)
                if m and _valid_name(m.group(1)):
                    companies.append(m.group(1))
                    break
        for m in re.finditer(r"/s/\s*([^/\n]+?)(?=\s{2,}|\s+By\b|\s*/s/|\s*$|\s+\d)", ln):
            before = ln[:m.start()].rstrip()
            if re.search(r"\bBy\s*:?$", before, re.I):
                continue
            if i > 0 and re.match(r"^(?:witness|attest)", lines[i - 1], re.I):
                continue
            if i > 0 and _CORP_NAME.search(lines[i - 1]) and not before:
                continue  # someone signing for the company on the line above
            name = m.group(1).strip(" ,")
            # a printed name under "Signature" is more complete than the /s/ form
            if i + 2 < len(lines) and re.match(r"^signature$", lines[i + 1], re.I) and _PERSON.match(lines[i + 2]):
                name = lines[i + 2]
            if _PERSON.match(name) and _valid_name(name):
                people.append(name)
    return companies, people


def _cn_parties(text: str) -> list[str]:
    out = []
    seen_roles = set()
    for m in re.finditer(r"([甲乙丙丁])\s*方\s*(?:[（(][^）)\n]{0,20}[）)])?\s*[:：]\s*([^\n，,。；;（(]{2,60})", text):
        role, name = m.group(1), m.group(2).strip()
        name = re.split(r"\s{2,}|\s+(?:地址|住所|法定代表人|联系人|电话)", name)[0].strip()
        if role in seen_roles or not name or name.startswith(("_", "＿")):
            continue
        seen_roles.add(role)
        out.append(name)
    return out


def _parties(text: str) -> tuple[list[str], float] | None:
    cn = _cn_parties(text)
    if cn:
        return cn, 0.85
    names = _preamble_parties(text)
    conf = 0.8
    if len(names) < 2:
        intro = _intro_company(text)
        if intro and not names:
            names.append(intro)
        companies, people = _signature_parties(text)
        for c in companies:
            names.append(c)
        keys = {canonical_party(n).upper() for n in names}
        if len(keys) < 2:
            names.extend(people)
        conf = 0.6
    out, seen = [], set()
    for n in names:
        c = canonical_party(n)
        key = re.sub(r"[^\w]", "", c.upper())
        if key and key not in seen and _valid_name(c):
            seen.add(key)
            out.append(c)
    return (out, conf) if out else None


# ---------------------------------------------------------------------------------------------


def extract_contract(text: str) -> Extraction:
    """Fields of a contract from its full text; fields that cannot be found are absent."""
    ex = Extraction()
    if not text or not text.strip():
        return ex
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufffe", "-")
    parties = _parties(text)
    if parties:
        ex.fields["parties"], ex.confidence["parties"] = parties
    eff = _effective_date(text)
    if eff:
        ex.fields["effective_date"], ex.confidence["effective_date"] = eff
    juris = _jurisdiction(text)
    if juris:
        ex.fields["jurisdiction"], ex.confidence["jurisdiction"] = juris
    term = _term(text)
    if term:
        term_s, months, conf = term
        ex.fields["term"] = term_s
        ex.confidence["term"] = conf
        if months is not None:
            ex.fields["term_months"] = months
            ex.confidence["term_months"] = conf
    amounts = _amounts(text)
    if amounts:
        ex.fields["amounts"] = amounts
        ex.confidence["amounts"] = 0.7
    return ex
