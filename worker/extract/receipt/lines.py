"""OCR lines and their layout: the normalised line (`_L`), grouping lines into printed rows,
row text, evidence boxes, mean OCR score and median line height, plus the pattern of an item
table's column header row (where a receipt's header ends and its body begins)."""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from typing import Iterable, Sequence
from worker.extract.layout import Boxed


@dataclass
class _L(Boxed):
    """One OCR line, with its text normalised for matching (NFKC, upper-case)."""

    idx: int
    text: str  # NFKC, whitespace collapsed (case kept: used for output)
    up: str  # upper-cased `text`, used for matching
    box: tuple[float, float, float, float]
    score: float

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


def _median_height(lines: Sequence[_L]) -> float:
    return statistics.median([l.h for l in lines]) if lines else 1.0


_COLUMN_HEADER_RE = re.compile(r"\b(?:DESCRIPTION|DESC|ITEM|ITEMS|QTY|QUANTITY|U/?P|PRICE|AMOUNT|AMT)\b|品名|商品|数量|數量|单价|單價|金额|金額")
