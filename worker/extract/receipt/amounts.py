"""Money amounts: parsing amounts out of a text (`find_amounts`), the total/subtotal/tax/paid/
change keyword patterns, matching a label to its amount on a (possibly skewed) row, and choosing
the total, subtotal and tax of a receipt."""
from __future__ import annotations

import functools
import re
import statistics
from dataclasses import dataclass
from typing import Sequence

from worker.extract.receipt.dates import _iter_date_spans
from worker.extract.receipt.lines import _L, _mean_score, _median_height
from worker.extract.receipt.text import _letters, _norm


# --------------------------------------------------------------------------------------------
# Parsing

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
