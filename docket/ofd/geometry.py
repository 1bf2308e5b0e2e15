"""Geometry and small attribute parsers: affine transforms, boxes, number lists, glyph deltas,
TextCode cleaning and path flattening (lines, Béziers, arcs)."""
from __future__ import annotations

import math
import re
from xml.etree.ElementTree import Element

Affine = tuple[float, float, float, float, float, float]   # x' = a*x + c*y + e, y' = b*x + d*y + f
_IDENTITY: Affine = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _float(value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        return default
    return number if math.isfinite(number) else default


def _numbers(value: str | None, count: int) -> tuple[float, ...] | None:
    if not value:
        return None
    try:
        numbers = tuple(float(p) for p in value.replace(",", " ").split()[:count])
    except ValueError:
        return None
    if len(numbers) < count or not all(math.isfinite(n) for n in numbers):
        return None
    return numbers


def _box(value: str | None) -> tuple[float, float, float, float] | None:
    numbers = _numbers(value, 4)
    if numbers is None or numbers[2] <= 0 or numbers[3] <= 0 or max(abs(n) for n in numbers) > 1e5:
        return None
    return numbers  # type: ignore[return-value]


def _object_transform(obj: Element) -> Affine:
    """Object space to its parent: the CTM, then a move to the Boundary's origin."""
    box = _numbers(obj.get("Boundary"), 4) or (0.0, 0.0, 0.0, 0.0)
    a, b, c, d, e, f = _numbers(obj.get("CTM"), 6) or _IDENTITY
    return (a, b, c, d, e + box[0], f + box[1])


def _compose(outer: Affine, inner: Affine) -> Affine:
    """Apply `inner` first, then `outer`."""
    A, B, C, D, E, F = outer
    a, b, c, d, e, f = inner
    return (A * a + C * b, B * a + D * b, A * c + C * d, B * c + D * d, A * e + C * f + E, B * e + D * f + F)


def _apply(t: Affine, x: float, y: float) -> tuple[float, float]:
    return (t[0] * x + t[2] * y + t[4], t[1] * x + t[3] * y + t[5])


def _transform_rect(t: Affine, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = box
    corners = [_apply(t, cx, cy) for cx, cy in ((x, y), (x + w, y), (x, y + h), (x + w, y + h))]
    return (min(c[0] for c in corners), min(c[1] for c in corners),
            max(c[0] for c in corners), max(c[1] for c in corners))


def _deltas(value: str | None, limit: int) -> list[float]:
    """A DeltaX/DeltaY list, `g <count> <value>` expanded, never longer than `limit`."""
    if not value or limit <= 0:
        return []
    tokens = value.split()
    out: list[float] = []
    i = 0
    while i < len(tokens) and len(out) < limit:
        token = tokens[i]
        try:
            if token == "g" and i + 2 < len(tokens):
                count = int(float(tokens[i + 1]))
                out.extend([float(tokens[i + 2])] * max(0, min(count, limit - len(out))))
                i += 3
                continue
            out.append(float(token))
        except (ValueError, OverflowError):
            pass
        i += 1
    return [v if math.isfinite(v) else 0.0 for v in out]


def _clean(text: str | None) -> str:
    """A TextCode's text: line breaks with the indentation around them (pretty-printed XML)
    removed, other control characters dropped, tabs as spaces."""
    if not text:
        return ""
    if "\n" in text or "\r" in text:
        text = _LINE_BREAK.sub("", text)
    return "".join(" " if ch == "\t" else ch for ch in text
                   if ch == "\t" or not (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0))


_LINE_BREAK = re.compile(r"[ \t]*[\r\n]+[ \t]*")
_PATH_TOKEN = re.compile(r"[A-Za-z]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_ARITY = {"S": 2, "M": 2, "L": 2, "Q": 4, "B": 6, "A": 7, "C": 0}


def _flatten(data: str, budget: int) -> list[list[tuple[float, float]]]:
    """AbbreviatedData (S/M/L/Q/B/A/C commands) as polylines in object space."""
    tokens = _PATH_TOKEN.findall(data)
    subpaths: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    pos = (0.0, 0.0)
    start = pos
    i = 0
    used = 0
    while i < len(tokens) and used < budget:
        cmd = tokens[i].upper()
        i += 1
        if cmd not in _ARITY:
            continue
        n = _ARITY[cmd]
        try:
            args = [float(v) for v in tokens[i:i + n]]
        except ValueError:
            break
        if len(args) < n or not all(math.isfinite(a) for a in args):
            break
        i += n
        if cmd in ("S", "M"):
            if len(current) > 1:
                subpaths.append(current)
            pos = start = (args[0], args[1])
            current = [pos]
            continue
        if not current:
            current = [pos]
        if cmd == "L":
            points = [(args[0], args[1])]
        elif cmd == "Q":
            points = _bezier([pos, (args[0], args[1]), (args[2], args[3])])
        elif cmd == "B":
            points = _bezier([pos, (args[0], args[1]), (args[2], args[3]), (args[4], args[5])])
        elif cmd == "A":
            points = _arc(pos, *args)
        else:   # C: close
            points = [start]
        current.extend(points)
        used += len(points)
        pos = current[-1]
    if len(current) > 1:
        subpaths.append(current)
    return subpaths


def _bezier(ctrl: list[tuple[float, float]], steps: int = 12) -> list[tuple[float, float]]:
    out = []
    for s in range(1, steps + 1):
        t = s / steps
        pts = ctrl
        while len(pts) > 1:
            pts = [((1 - t) * p[0] + t * q[0], (1 - t) * p[1] + t * q[1]) for p, q in zip(pts, pts[1:])]
        out.append(pts[0])
    return out


def _arc(p0: tuple[float, float], rx: float, ry: float, angle: float, large: float, sweep: float,
         x: float, y: float) -> list[tuple[float, float]]:
    """An SVG-style elliptical arc from p0 to (x, y), as points."""
    x0, y0 = p0
    rx, ry = abs(rx), abs(ry)
    if rx < 1e-9 or ry < 1e-9 or (x0 == x and y0 == y):
        return [(x, y)]
    phi = math.radians(angle)
    cos, sin = math.cos(phi), math.sin(phi)
    dx, dy = (x0 - x) / 2, (y0 - y) / 2
    x1p, y1p = cos * dx + sin * dy, -sin * dx + cos * dy
    lam = (x1p / rx) ** 2 + (y1p / ry) ** 2
    if lam > 1:
        rx, ry = rx * math.sqrt(lam), ry * math.sqrt(lam)
    num = rx * rx * ry * ry - rx * rx * y1p * y1p - ry * ry * x1p * x1p
    den = rx * rx * y1p * y1p + ry * ry * x1p * x1p
    coef = math.sqrt(max(0.0, num / den)) if den else 0.0
    if bool(large) == bool(sweep):
        coef = -coef
    cxp, cyp = coef * rx * y1p / ry, -coef * ry * x1p / rx
    cx = cos * cxp - sin * cyp + (x0 + x) / 2
    cy = sin * cxp + cos * cyp + (y0 + y) / 2

    def angle_of(ux: float, uy: float) -> float:
        return math.atan2(uy, ux)

    t1 = angle_of((x1p - cxp) / rx, (y1p - cyp) / ry)
    t2 = angle_of((-x1p - cxp) / rx, (-y1p - cyp) / ry)
    delta = t2 - t1
    if sweep and delta < 0:
        delta += 2 * math.pi
    elif not sweep and delta > 0:
        delta -= 2 * math.pi
    steps = max(4, min(64, int(abs(delta) / (math.pi / 16)) + 1))
    out = []
    for s in range(1, steps + 1):
        th = t1 + delta * s / steps
        ex, ey = rx * math.cos(th), ry * math.sin(th)
        out.append((cos * ex - sin * ey + cx, sin * ex + cos * ey + cy))
    return out
