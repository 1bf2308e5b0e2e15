"""`_Doc`: one invoice's lines with the layout questions the field finders ask (rows, what
lies right of or below a line, where the header ends)."""
from __future__ import annotations

import statistics

from worker.extract.invoice.amounts import _amounts, _decimal_comma
from worker.extract.invoice.labels import _ITEM_HEADER_HIT
from worker.extract.invoice.lines import _fold, _IL, _letters, _same_row
from worker.extract.receipt.lines import _row_text, _rows


class _Doc:
    """The lines of one invoice with the layout questions the field finders ask."""

    def __init__(self, ls: list[_IL]):
        self.ls = ls
        self.by_y = sorted(ls, key=lambda l: (l.cy, l.x0))
        self.med_h = statistics.median([l.h for l in ls]) if ls else 10.0
        self.right = max((l.x1 for l in ls), default=1.0)
        self.left = min((l.x0 for l in ls), default=0.0)
        self.width = max(1.0, self.right - self.left)
        self.rows = _rows(ls)
        self.eu = _decimal_comma(ls)
        self.page0 = [l for l in ls if l.page == 0]
        self.p0_top = min((l.y0 for l in self.page0), default=0.0)
        self.p0_bottom = max((l.y1 for l in self.page0), default=1.0)
        self.header_limit = _header_limit(self)

    def right_of(self, l: _IL) -> list[_IL]:
        """The boxes on l's printed row to its right, nearest first."""
        out = [o for o in self.ls if o is not l and o.x0 >= l.x1 - 0.3 * l.h and _same_row(o, l)]
        return sorted(out, key=lambda o: o.x0)

    def left_of(self, l: _IL) -> list[_IL]:
        out = [o for o in self.ls if o is not l and o.x0 < l.x0 and (o.x0 + o.x1) / 2 < l.x0 and _same_row(o, l)]
        return sorted(out, key=lambda o: -o.x1)

    def below(self, l: _IL, max_gap: float = 2.5) -> _IL | None:
        """The nearest box under l that shares its column (horizontal overlap), within a gap."""
        best = None
        for o in self.ls:
            if o is l or o.y0 < l.y1 - 0.3 * l.h or o.y0 - l.y1 > max_gap * max(l.h, self.med_h):
                continue
            overlap = min(o.x1, l.x1) - max(o.x0, l.x0)
            if overlap <= 0:
                continue
            if best is None or o.y0 < best.y0:
                best = o
        return best

    def above(self, l: _IL, max_gap: float = 1.6) -> _IL | None:
        best = None
        for o in self.ls:
            if o is l or o.y1 > l.y0 + 0.3 * l.h or l.y0 - o.y1 > max_gap * max(l.h, self.med_h):
                continue
            if abs(o.x0 - l.x0) > 1.5 * max(l.h, self.med_h):
                continue
            if best is None or o.y1 > best.y1:
                best = o
        return best

    def label_over(self, l: _IL) -> _IL | None:
        """The label printed over a value (a header row over a row of values)."""
        best = None
        for o in self.ls:
            if o is l or o.y1 > l.y0 + 0.2 * l.h or l.y0 - o.y1 > 2.2 * max(l.h, self.med_h):
                continue
            if min(o.x1, l.x1) - max(o.x0, l.x0) <= 0 or _letters(o.fold) < 3:
                continue
            if best is None or o.y1 > best.y1:
                best = o
        return best

    def amounts(self, text: str) -> list:
        return _amounts(text, self.eu)


def _header_limit(doc: _Doc) -> float:
    """Where the first page's header (parties, references, dates) ends: at the item table's
    header row, else 45% down the page (its height guessed from the text's width)."""
    for row in doc.rows:
        if row[0].page == 0 and _ITEM_HEADER_HIT(_fold(_row_text(row))) >= 2:
            return row[0].y0
    est = max(doc.p0_bottom - doc.p0_top, 1.5 * doc.width)
    return doc.p0_top + 0.45 * est
