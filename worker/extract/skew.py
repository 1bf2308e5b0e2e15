"""The slant of a photographed or scanned page, from its OCR boxes alone.

OCR lines come as axis-aligned boxes, so a page photographed 2° off level puts the right end of
a table row a row-height lower than its left end, and "same row" tests fail. Boxes that sit on
one printed row agree on one slope; boxes on different rows give slopes that scatter. The most
common slope between pairs of comparable boxes side by side is the page's slant.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

__all__ = ["estimate_slope", "level_boxes"]

_MAX_SLOPE = 0.09  # about 5°
_BIN = 0.002


def estimate_slope(boxes: Sequence[tuple[float, float, float, float]]) -> float:
    """dy/dx of the printed rows (positive: rows run downhill to the right); 0.0 when the boxes
    do not say (too few, or no clear peak)."""
    items = []
    for b in boxes:
        x0, y0, x1, y1 = (float(v) for v in b[:4])
        h, w = y1 - y0, x1 - x0
        if h <= 0 or w <= 0:
            continue
        items.append(((x0 + x1) / 2, (y0 + y1) / 2, h, w))
    if len(items) < 4:
        return 0.0
    # pairs are only looked for among boxes close enough in height to share a row at 5°
    items.sort(key=lambda t: t[1])
    width = max(t[0] + t[3] / 2 for t in items) - min(t[0] - t[3] / 2 for t in items)
    tallest = max(t[2] for t in items)
    reach = _MAX_SLOPE * width + tallest
    votes: Counter = Counter()
    slopes: list[tuple[int, float]] = []
    for i, (xa0, ya0, ha0, _) in enumerate(items):
        for xb0, yb0, hb0, _ in items[i + 1:]:
            if yb0 - ya0 > reach:
                break
            (xa, ya, ha), (xb, yb, hb) = sorted(((xa0, ya0, ha0), (xb0, yb0, hb0)))
            dx = xb - xa
            hmax = max(ha, hb)
            if dx < 3 * hmax or max(ha, hb) > 2.0 * min(ha, hb):
                continue
            dy = yb - ya
            if abs(dy) > _MAX_SLOPE * dx + 0.5 * hmax:
                continue
            s = dy / dx
            if abs(s) > _MAX_SLOPE:
                continue
            k = round(s / _BIN)
            votes[k] += 1
            slopes.append((k, s))
    if not votes:
        return 0.0
    # the densest window of three bins
    best_k, best_n = 0, 0
    for k in votes:
        n = votes[k - 1] + votes[k] + votes[k + 1]
        if n > best_n:
            best_k, best_n = k, n
    if best_n < 3:
        return 0.0
    near = [s for k, s in slopes if abs(k - best_k) <= 1]
    near.sort()
    slope = near[len(near) // 2]
    return slope if abs(slope) >= 0.004 else 0.0


def level_boxes(boxes: Sequence[tuple[float, float, float, float]], slope: float | None = None
                ) -> list[tuple[float, float, float, float]]:
    """The boxes with each one's vertical position corrected for the slant (shifted by
    -slope × its centre's x), so that boxes on one printed row line up again; and each box's
    height less what the slant added to it (a slanted line's upright box is taller by about
    |slope| × its width), so that neighbouring rows do not overlap."""
    if slope is None:
        slope = estimate_slope(boxes)
    if not slope:
        return [tuple(float(v) for v in b[:4]) for b in boxes]
    out = []
    for b in boxes:
        x0, y0, x1, y1 = (float(v) for v in b[:4])
        dy = slope * (x0 + x1) / 2
        h = y1 - y0
        shrink = min(abs(slope) * (x1 - x0), 0.65 * h) / 2
        out.append((x0, y0 - dy + shrink, x1, y1 - dy - shrink))
    return out
