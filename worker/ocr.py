"""Optical character recognition with the models shipped inside the rapidocr wheel.

One engine per process: loading the ONNX sessions costs about a second, so it is built
lazily and reused by every job the process runs.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

_engine = None
_engine_lock = threading.Lock()


@dataclass(frozen=True)
class OcrLine:
    """One recognised text line: its text, axis-aligned box (x0, y0, x1, y1) and score."""

    text: str
    box: tuple[float, float, float, float]
    score: float


def _get_engine():
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr import RapidOCR

            # Warning level: rapidocr logs every call at INFO, which drowns worker logs.
            _engine = RapidOCR(params={"Global.log_level": "warning"})
        return _engine


def recognise(image: Image.Image) -> list[OcrLine]:
    """Read the text lines of an RGB image, in rapidocr's order (top to bottom, roughly)."""
    result = _get_engine()(np.asarray(image.convert("RGB"))[:, :, ::-1])  # rapidocr wants BGR
    if result.txts is None:
        return []
    lines = []
    for text, quad, score in zip(result.txts, result.boxes, result.scores):
        xs = [float(p[0]) for p in quad]
        ys = [float(p[1]) for p in quad]
        lines.append(OcrLine(text=text, box=(min(xs), min(ys), max(xs), max(ys)), score=float(score)))
    return lines
