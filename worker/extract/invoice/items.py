"""Line items: the rows of the item table above the totals."""
from __future__ import annotations

import re

from worker.extract.invoice.labels import _ITEM_HEADER_HIT
from worker.extract.invoice.layout import _Doc
from worker.extract.invoice.lines import _fold, _IL, _letters
from worker.extract.invoice.totals import _classify, _PAID_RE
from worker.extract.receipt.lines import _row_text
from worker.extract.receipt.text import _norm

_MAX_ITEMS = 50


def _items(doc: _Doc, totals_y: float | None) -> tuple[list[dict], list[_IL]] | None:
    headers = [i for i, row in enumerate(doc.rows) if _ITEM_HEADER_HIT(_fold(_row_text(row))) >= 2]
    if not headers:
        return None
    items: list[dict] = []
    used: list[_IL] = []
    for hi, h in enumerate(headers):
        header_row = doc.rows[h]
        amount_x1 = max(l.x1 for l in header_row)
        stop = headers[hi + 1] if hi + 1 < len(headers) else len(doc.rows)
        pending: list[str] = []
        for row in doc.rows[h + 1:stop]:
            text = _row_text(row)
            f = _fold(text)
            if totals_y is not None and row[0].cy >= totals_y - 0.3 * row[0].h:
                break
            if _classify(f) and _classify(f)[0] in ("net", "gross", "due", "net_weak", "tax") and doc.amounts(text):
                break
            if _PAID_RE.search(f) and doc.amounts(text):
                break
            last = max(row, key=lambda l: l.x1)
            amts = doc.amounts(last.text)
            if not amts or last.x1 < amount_x1 - 0.12 * doc.width:
                desc = " ".join(l.text for l in row if _letters(l.fold) >= 3 and not doc.amounts(l.text))
                if desc and not re.search(r"[:：]", desc) and len(pending) < 2:
                    pending.append(desc)
                continue
            desc_parts = []
            for l in row:
                if l is last:
                    rest = l.text[: amts[0].start] if len(amts) else l.text
                    rest = re.sub(r"[\d.,%€$£\s]+$", "", rest)
                    if _letters(rest) >= 3:
                        desc_parts.append(rest)
                    continue
                if _letters(l.fold) >= 3 and not re.fullmatch(r"[\d.,%€$£\s-]+", l.text):
                    desc_parts.append(l.text)
            desc = _norm(" ".join(desc_parts))
            desc = re.sub(r"^\d{1,3}\s+(?=[A-Za-z])", "", desc)  # a position number
            desc = re.sub(r"(?:\s+[\d.,]+(?:\s*[A-Za-z]{1,5}\.?)?)+$", "", desc).strip()
            if _letters(desc) < 3 and pending:
                desc = pending[-1]
            pending = []
            if _letters(desc) < 3:
                continue
            items.append({"description": desc[:200], "amount": round(amts[-1].value, 2)})
            used.extend(row)
            if len(items) >= _MAX_ITEMS:
                return items, used
    return (items, used) if items else None
