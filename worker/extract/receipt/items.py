"""Line items: the item block between the header and the totals, each row's description,
amount and quantity, discounts folded into the item above."""
from __future__ import annotations

import re

from worker.extract.receipt.amounts import _TOT, _TOTAL_RE, find_amounts
from worker.extract.receipt.dates import _date_matches
from worker.extract.receipt.lines import _COLUMN_HEADER_RE, _L, _row_text
from worker.extract.receipt.text import _digits, _is_cjk, _letters, _norm


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
