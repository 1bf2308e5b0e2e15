"""Dates: parsing every date in a text (day-first numeric, ISO, month names in several
languages, 年月日, compact ddmmyyyy) with `parse_date` / `_date_matches`, and picking a
document's transaction date from its OCR lines."""
from __future__ import annotations

import datetime as _dt
import re

from worker.extract.receipt.lines import _L, _mean_score, _same_row
from worker.extract.receipt.text import _is_phone_line, _norm


# --------------------------------------------------------------------------------------------
# Parsing

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
# Date field

_DATE_LABEL_RE = re.compile(r"DATE|\bDT\b|TARIKH|日期|時間|时间|交易时间|DATUM|FECHA|\bLE\b")


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
