"""Amounts: the document's decimal mark decided once from all its numbers, amounts read with it,
and `parse_amount`."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from worker.extract.invoice.lines import _IL
from worker.extract.receipt.amounts import find_amounts
from worker.extract.receipt.dates import _date_matches
from worker.extract.receipt.text import _norm

_DATE_SPAN_FILL = " "


def _blank_dates(text: str) -> str:
    out = text
    for s, e, _, _ in _date_matches(text.upper()):
        out = out[:s] + _DATE_SPAN_FILL * (e - s) + out[e:]
    return out


_NUM_TOKEN_RE = re.compile(r"(?<![\w.,])\d[\d.,']*\d(?![\w])")


def _decimal_comma(lines: Sequence[_IL]) -> bool:
    """True when the document writes amounts with a decimal comma (1.234,56 / 12,50)."""
    comma = point = 0
    for l in lines:
        for m in _NUM_TOKEN_RE.finditer(_blank_dates(l.text)):
            tok = m.group(0).rstrip(".,")
            if re.search(r",\d{2}$", tok) and not re.search(r"\.\d{1,2},", tok):
                comma += 1
            elif re.search(r"\.\d{2}$", tok):
                point += 1
    return comma > point


_CUR_AFTER = r"\s?(?:€|EUR|CHF|£|GBP|USD|\$)"


def _to_point_decimals(text: str, eu: bool) -> str:
    """Rewrite a text's amounts so that the receipt parser (`find_amounts`, point decimals,
    comma thousands) reads them: 1.234,56 -> 1234.56 in a decimal-comma document, 1'234.56 ->
    1234.56, and "1 234,56 €" (space thousands, next to a currency mark) -> 1234.56."""
    text = re.sub(r"(?<=\d)'(?=\d{3}\b)", "", text)  # Swiss thousands
    if eu:
        def space_groups(m: re.Match) -> str:
            return m.group(0).replace(" ", "")

        text = re.sub(r"(?<![\d.,])\d{1,3}(?: \d{3})+,\d{2}(?=" + _CUR_AFTER + r")", space_groups, text)
        text = re.sub(r"([€$£]|EUR|CHF|GBP|USD)( ?)(\d{1,3}(?: \d{3})+,\d{2})(?!\d)",
                      lambda m: m.group(1) + m.group(2) + m.group(3).replace(" ", ""), text)

        def point_form(m: re.Match) -> str:
            return m.group(1).replace(".", "") + "." + m.group(2)

        text = re.sub(r"(?<![\d.,])(\d{1,3}(?:\.\d{3})+|\d+),(\d{2})(?![\d,]|\.\d)", point_form, text)
    else:
        text = re.sub(r"([€$£]|EUR|CHF|GBP|USD)( ?)(\d{1,3}(?: \d{3})+\.\d{2})(?!\d)",
                      lambda m: m.group(1) + m.group(2) + m.group(3).replace(" ", ","), text)
    return text


@dataclass(frozen=True)
class _Amt:
    value: float
    start: int
    end: int
    has_cur: bool


def _amounts(text: str, eu: bool) -> list[_Amt]:
    rewritten = _to_point_decimals(_norm(text), eu)
    out = []
    for a in find_amounts(rewritten):
        value = a.value
        # an accounting negative: (1,234.56)
        if a.start > 0 and rewritten[a.start - 1] == "(" and rewritten[a.end:a.end + 1] == ")":
            value = -abs(value)
        out.append(_Amt(value, a.start, a.end, a.has_cur))
    return out


def parse_amount(text: str) -> float | None:
    """The last money amount in a text, in either notation: `1.234,56 €`, `$1,234.56`,
    `12,50`, `CHF 1'234.50`, `(99.00)`; None when there is none."""
    t = _norm(text)
    eu = bool(re.search(r"\d,\d{2}(?!\d)", t)) and not re.search(r"\d\.\d{2}(?!\d)(?!.*,\d{2})", t)
    found = _amounts(t, eu)
    return found[-1].value if found else None
