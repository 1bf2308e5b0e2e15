"""Lines of the page as the invoice reader sees them (`_IL`: text, box, page, folded text),
pages flattened, evidence boxes, and small counts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from worker.extract.receipt.lines import _L, _evidence
from worker.extract.receipt.text import _fold_accents, _norm


@dataclass
class _IL(_L):
    """A line of an invoice: the receipt `_L` (box shifted onto one tall canvas when the
    invoice has several pages) plus its accent-folded upper-case text, page and own box."""

    fold: str = ""
    page: int = 0
    obox: tuple = ()
    page_top: float = 0.0
    page_bottom: float = 0.0

    @property
    def w(self) -> float:
        return max(1.0, self.box[2] - self.box[0])


def _fold(text: str) -> str:
    return _fold_accents(_norm(text)).upper()


def _as_pages(lines: Any) -> list[list]:
    items = list(lines or [])
    if items and all(isinstance(p, (list, tuple)) and not hasattr(p, "text") for p in items):
        return [list(p) for p in items]
    return [items]


def _prepare(lines: Any) -> list[_IL]:
    out: list[_IL] = []
    offset = 0.0
    idx = 0
    for page_no, page in enumerate(_as_pages(lines)):
        page_lines: list[_IL] = []
        bottom = 0.0
        for raw in page:
            text = _norm(getattr(raw, "text", "") or "")
            idx += 1
            try:
                box = tuple(float(v) for v in getattr(raw, "box", None) or ())
            except (TypeError, ValueError):
                continue
            if not text or len(box) != 4:
                continue
            bottom = max(bottom, box[3])
            shifted = (box[0], box[1] + offset, box[2], box[3] + offset)
            page_lines.append(_IL(idx - 1, text, text.upper(), shifted, float(getattr(raw, "score", 1.0) or 0.0),
                                  fold=_fold(text), page=page_no, obox=box))
        top = min((l.y0 for l in page_lines), default=offset)
        for l in page_lines:
            l.page_top, l.page_bottom = top, offset + bottom
        out.extend(page_lines)
        offset += bottom + 200.0
    return out


def _ev(lines: Iterable[_IL]) -> list[tuple[float, float, float, float, int]]:
    seen: set[int] = set()
    out = []
    for l in lines:
        if l is None or l.idx in seen:
            continue
        seen.add(l.idx)
        if l.page == 0 and l.obox == l.box:
            out.extend(_evidence([l]))  # the receipt extractor's shape
        else:
            out.append((float(l.obox[0]), float(l.obox[1]), float(l.obox[2]), float(l.obox[3]), l.page))
    return out


def _same_row(a: _L, b: _L, tol: float = 0.5) -> bool:
    return abs(a.cy - b.cy) <= tol * max(a.h, b.h) and min(a.y1, b.y1) - max(a.y0, b.y0) > 0


def _letters(s: str) -> int:
    return sum(1 for c in s if c.isalpha())


def _digits(s: str) -> int:
    return sum(1 for c in s if c.isdigit())
