"""Where a line of text sits on the page: the geometry every extractor reads a layout by."""
from __future__ import annotations


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
