"""Optical character recognition with the models shipped inside the rapidocr wheel.

One engine per process: loading the ONNX sessions costs about a second, so it is built
lazily and reused by every job the process runs.
"""
from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from docket.pages import TextLine

_engine = None
_engine_lock = threading.Lock()


# One recognised line: text, axis-aligned box (x0, y0, x1, y1), score — the same shape as a
# PDF's positioned text-layer lines, so extractors read either.
OcrLine = TextLine


def _get_engine():
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr import RapidOCR

            # Warning level: rapidocr logs every call at INFO, which drowns worker logs.
            _engine = RapidOCR(params={"Global.log_level": "warning"})
        return _engine


# rapidocr's detector scales the shorter side in steps of 32 px and fails (ResizeImgError) on a
# page a few pixels thin (a 1x40000 px image, a 14400x1 pt PDF page): such pages are padded.
MIN_SIDE = 32


def _padded(image: Image.Image) -> Image.Image:
    if min(image.size) >= MIN_SIDE:
        return image
    canvas = Image.new("RGB", (max(image.width, MIN_SIDE), max(image.height, MIN_SIDE)), "white")
    canvas.paste(image, (0, 0))
    return canvas


def recognise(image: Image.Image) -> list[OcrLine]:
    """Read the text lines of an RGB image, in rapidocr's order (top to bottom, roughly)."""
    image = _padded(image.convert("RGB"))
    result = _get_engine()(np.asarray(image)[:, :, ::-1])  # rapidocr wants BGR
    if result.txts is None:
        return []
    lines = []
    for text, quad, score in zip(result.txts, result.boxes, result.scores):
        xs = [float(p[0]) for p in quad]
        ys = [float(p[1]) for p in quad]
        lines.append(OcrLine(text=text, box=(min(xs), min(ys), max(xs), max(ys)), score=float(score)))
    return lines
