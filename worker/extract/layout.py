"""Where a line of text sits on the page: the geometry every extractor reads a layout by, and
what an extractor reports of the lines a field came from (evidence boxes, confidence)."""
from __future__ import annotations

from typing import Iterable


class Boxed:
    """Geometry of an object with a `box` (x0, y0, x1, y1) in page pixels, y downwards."""

    box: tuple[float, float, float, float]

    @property
    def x0(self) -> float:
        return self.box[0]

    @property
    def y0(self) -> float:
        return self.box[1]

    @property
    def x1(self) -> float:
        return self.box[2]

    @property
    def y1(self) -> float:
        return self.box[3]

    @property
    def h(self) -> float:
        return max(1.0, self.box[3] - self.box[1])

    @property
    def w(self) -> float:
        return max(1.0, self.box[2] - self.box[0])

    @property
    def cy(self) -> float:
        return (self.box[1] + self.box[3]) / 2.0

    @property
    def cx(self) -> float:
        return (self.box[0] + self.box[2]) / 2.0


def evidence_boxes(lines: Iterable) -> list[tuple[float, float, float, float, int]]:
    """(x0, y0, x1, y1, 0) of each line a field was read from, once each, as read (a line's
    `orig` box when it was levelled for slant), in stacked-page coordinates."""
    seen, out = set(), []
    for line in lines:
        if line is None or line.idx in seen:
            continue
        seen.add(line.idx)
        b = line.orig or line.box
        out.append((float(b[0]), float(b[1]), float(b[2]), float(b[3]), 0))
    return out


def line_confidence(lines: Iterable, base: float = 0.9) -> float:
    """`base` scaled by the lines' mean OCR score (0.5 when there are none), within 0..1."""
    scores = [line.score for line in lines if line is not None]
    mean = sum(scores) / len(scores) if scores else 0.5
    return round(max(0.0, min(1.0, base * mean)), 3)
