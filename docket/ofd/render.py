"""Drawing a page with Pillow: text at its glyph positions in one CJK font, paths, images,
templates and annotations."""
from __future__ import annotations

import io
import math
import threading
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from xml.etree.ElementTree import Element

from PIL import Image, ImageDraw, ImageFont

from docket.errors import DocumentError
from docket.ofd import limits
from docket.ofd.archive import _Archive
from docket.ofd.geometry import Affine, _apply, _clean, _compose, _deltas, _flatten, _float, _object_transform
from docket.ofd.limits import _corrupt
from docket.ofd.model import _Page, _Resources
from docket.ofd.xmlsafe import child, child_text, children, local

CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",        # Debian fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",          # Debian fonts-wqy-zenhei
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian fonts-noto-cjk
)
_IMAGE_FORMATS = ["PNG", "JPEG", "BMP", "TIFF", "GIF"]


class _PageSource(Protocol):
    """What the painter needs of an opened OFD (docket.ofd.document.OfdFile, which imports
    this module, so it is described here rather than imported)."""

    _archive: _Archive

    def _walk(self, page: _Page, visit: Callable[[Element, Affine, bool, _Resources], None]) -> None: ...


class _Painter:
    def __init__(self, ofd: _PageSource, image: Image.Image, scale: float):
        self.ofd = ofd
        self.image = image
        self.draw = ImageDraw.Draw(image, "RGBA")
        self.scale = scale
        self.points = 0
        self.font_path = cjk_font_path()

    def paint(self, page: _Page) -> None:
        with _FONT_LOCK:   # the cached FreeType faces are shared between threads
            self.ofd._walk(page, self.visit)

    def visit(self, obj: Element, transform: Affine, from_template: bool, res: _Resources) -> None:
        if (obj.get("Visible") or "true").lower() == "false":
            return
        t = _compose(transform, _object_transform(obj))
        t = (t[0] * self.scale, t[1] * self.scale, t[2] * self.scale, t[3] * self.scale,
             t[4] * self.scale, t[5] * self.scale)
        name = local(obj.tag)
        try:
            if name == "TextObject":
                self.text(obj, t, res)
            elif name == "PathObject":
                self.path(obj, t, res)
            elif name == "ImageObject":
                self.picture(obj, t, res)
        except DocumentError:
            raise
        except (ValueError, OverflowError, ZeroDivisionError, OSError, MemoryError):
            pass   # one undrawable object must not cost the page

    def _params(self, obj: Element, res: _Resources) -> dict:
        """Line width and colours from the object, falling back to its DrawParam chain."""
        params: dict = {}
        chain, seen = [], set()
        ref = (obj.get("DrawParam") or "").strip()
        while ref and ref not in seen and len(seen) < 16:
            seen.add(ref)
            dp = res.draw_params.get(ref)
            if dp is None:
                break
            chain.append(dp)
            ref = (dp.get("Relative") or "").strip()
        for source in [obj, *chain]:
            if "line_width" not in params and source.get("LineWidth"):
                params["line_width"] = _float(source.get("LineWidth"), 0.353)
            for key, tag in (("fill", "FillColor"), ("stroke", "StrokeColor")):
                el = child(source, tag)
                if key not in params and el is not None:
                    params[key] = _color(el, res)
        return params

    def text(self, obj: Element, t: Affine, res: _Resources) -> None:
        params = self._params(obj, res)
        fill_flag = (obj.get("Fill") or "true").lower() != "false"
        stroke_flag = (obj.get("Stroke") or "false").lower() == "true"
        if not fill_flag and not stroke_flag:
            return   # invisible text (e.g. the text layer over a scanned image)
        color = params.get("fill", (0, 0, 0, 255)) if fill_flag else params.get("stroke", (0, 0, 0, 255))
        alpha = obj.get("Alpha")
        if alpha is not None:
            color = (*color[:3], int(min(255, max(0, _float(alpha, 255)))))
        if color[3] == 0:
            return
        size_mm = _float(obj.get("Size"), 3.5)
        det = math.sqrt(abs(t[0] * t[3] - t[1] * t[2]))
        px = size_mm * det
        if not 1 <= px <= 2000 or self.font_path is None:
            return
        font = _font(self.font_path, int(round(px)))
        x = y = 0.0
        for code in children(obj, "TextCode"):
            text = _clean(code.text)
            x = _float(code.get("X"), x)
            y = _float(code.get("Y"), y)
            if not text:
                continue
            dx = _deltas(code.get("DeltaX"), len(text) - 1)
            dy = _deltas(code.get("DeltaY"), len(text) - 1)
            cx, cy = x, y
            for i, char in enumerate(text):
                self.points += 1
                if self.points > limits.MAX_PATH_POINTS:
                    return
                if not char.isspace():
                    gx, gy = _apply(t, cx, cy)
                    self.draw.text((gx, gy), char, font=font, fill=color, anchor="ls")
                if i < len(dx):
                    cx += dx[i]
                else:
                    cx += font.getlength(char) / max(det, 1e-6)
                if i < len(dy):
                    cy += dy[i]
            x, y = cx, cy

    def path(self, obj: Element, t: Affine, res: _Resources) -> None:
        params = self._params(obj, res)
        data = child_text(obj, "AbbreviatedData")
        if not data:
            return
        subpaths = _flatten(data, limits.MAX_PATH_POINTS - self.points)
        self.points += sum(len(s) for s in subpaths)
        if self.points > limits.MAX_PATH_POINTS:
            raise _corrupt(f"An OFD page draws more than {limits.MAX_PATH_POINTS} path points.")
        alpha = obj.get("Alpha")
        det = math.sqrt(abs(t[0] * t[3] - t[1] * t[2]))
        if (obj.get("Fill") or "false").lower() == "true" and "fill" in params:
            color = params["fill"]   # a path's fill colour defaults to transparent (GB/T 33190)
            if alpha is not None:
                color = (*color[:3], int(min(255, max(0, _float(alpha, 255)))))
            for sub in subpaths:
                if len(sub) >= 3:
                    self.draw.polygon([_apply(t, px, py) for px, py in sub], fill=color)
        if (obj.get("Stroke") or "true").lower() != "false":
            color = params.get("stroke", (0, 0, 0, 255))
            if alpha is not None:
                color = (*color[:3], int(min(255, max(0, _float(alpha, 255)))))
            width = max(1, min(200, round(params.get("line_width", 0.353) * det)))
            for sub in subpaths:
                if len(sub) >= 2:
                    self.draw.line([_apply(t, px, py) for px, py in sub], fill=color, width=width,
                                   joint="curve" if width > 2 else None)

    def picture(self, obj: Element, t: Affine, res: _Resources) -> None:
        media = res.media.get((obj.get("ResourceID") or "").strip())
        if media is None:
            return
        fmt, entry = media
        data = self.ofd._archive.read(entry)
        if fmt in ("GBIG2", "JBIG2", "JB2") or data[:8] == b"\x97JB2\r\n\x1a\n":
            return   # JBIG2 (some QR codes): Pillow cannot decode it
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                with Image.open(io.BytesIO(data), formats=_IMAGE_FORMATS) as src:
                    if src.width * src.height > limits.MAX_IMAGE_PIXELS:
                        return
                    src.load()
                    picture = src.convert("RGBA")
            except (Image.UnidentifiedImageError, Image.DecompressionBombError,
                    Image.DecompressionBombWarning, OSError, SyntaxError, ValueError, EOFError):
                return
        corners = [_apply(t, cx, cy) for cx, cy in ((0, 0), (1, 0), (0, 1), (1, 1))]
        xs = [c[0] for c in corners]
        ys = [c[1] for c in corners]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        w, h = round(x1 - x0), round(y1 - y0)
        if w < 1 or h < 1 or w > 4 * self.image.width or h > 4 * self.image.height:
            return
        if t[0] < 0:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if t[3] < 0:
            picture = picture.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        picture = picture.resize((w, h), Image.Resampling.LANCZOS)
        alpha = obj.get("Alpha")
        if alpha is not None:
            factor = min(255, max(0, _float(alpha, 255))) / 255
            picture.putalpha(picture.getchannel("A").point(lambda v: int(v * factor)))
        self.image.paste(picture, (round(x0), round(y0)), picture)


_FONT_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def cjk_font_path() -> str | None:
    """The CJK font used for all text (Debian's fonts-wqy-microhei, or another CJK font)."""
    for candidate in CJK_FONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return None


@lru_cache(maxsize=64)
def _font(path: str, size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, max(1, size_px))


def _color(element: Element, res: _Resources) -> tuple[int, int, int, int]:
    values = []
    for token in (element.get("Value") or "").split():
        try:
            values.append(int(token[1:], 16) if token.startswith("#") else float(token))
        except ValueError:
            return (0, 0, 0, 255)
    kind = res.color_spaces.get((element.get("ColorSpace") or "").strip(), "RGB")
    alpha = int(min(255, max(0, _float(element.get("Alpha"), 255))))
    if kind == "GRAY" and values:
        g = int(min(255, max(0, values[0])))
        return (g, g, g, alpha)
    if kind == "CMYK" and len(values) >= 4:
        c, m, y, k = (min(255, max(0, v)) / 255 for v in values[:4])
        return (int(255 * (1 - c) * (1 - k)), int(255 * (1 - m) * (1 - k)), int(255 * (1 - y) * (1 - k)), alpha)
    if len(values) >= 3:
        r, g, b = (int(min(255, max(0, v))) for v in values[:3])
        return (r, g, b, alpha)
    return (0, 0, 0, alpha)
