"""Optical character recognition with the models shipped inside the rapidocr wheel.

One engine per process: loading the ONNX sessions costs about a second, so it is built
lazily and reused by every job the process runs. Its settings are `DOCKET_OCR_*`
(docket/config.py `OcrSettings`, measured in issue 24):

- intra-op threads per process: the cores divided by the worker's concurrency, so a busy
  worker does not run more inference threads than there are cores;
- the direction classifier (0°/180° per text line) runs only on the lines that need it
  (`classifier="auto"`): lines read with a score under `classifier_below`, or standing
  upright (vertical text, which rapidocr turns by 90°). A line the classifier turns is read
  again and the better reading kept. A page upside down reads poorly everywhere, so all its
  lines are turned; an ordinary receipt skips the classifier altogether;
- pages of a multi-page document are read in parallel by a small pool (one single-threaded
  engine per pool thread), results in page order; a single page goes to the main engine.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
from PIL import Image

from docket.config import OcrSettings
from docket.pages import TextLine

_engine = None
_engine_lock = threading.Lock()
_settings: OcrSettings | None = None
_pool: ThreadPoolExecutor | None = None
_pool_engines = threading.local()

# rapidocr's own floor for a line's score (Global.text_score): lines under it are dropped, after
# the classifier gate has had its chance to read them the right way up.
TEXT_SCORE = 0.5


# One recognised line: text, axis-aligned box (x0, y0, x1, y1), score — the same shape as a
# PDF's positioned text-layer lines, so extractors read either.
OcrLine = TextLine


def settings() -> OcrSettings:
    global _settings
    if _settings is None:
        _settings = OcrSettings.from_env()
    return _settings


def configure(new: OcrSettings | None) -> None:
    """Use these settings from now on (None: read the environment again); engines are rebuilt."""
    global _settings, _engine, _pool
    with _engine_lock:
        _settings, _engine = new, None
        if _pool is not None:
            _pool.shutdown(wait=True)
            _pool = None


def intra_threads(config: OcrSettings) -> int:
    """Inference threads per engine: the setting, or the cores this process may use divided by
    the worker's concurrency (set by `docket worker`, see docket/cli.py)."""
    if config.threads:
        return config.threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        concurrency = int(os.environ.get("DOCKET_WORKER_CONCURRENCY") or 1)
    except ValueError:
        concurrency = 1
    return max(1, cores // max(1, concurrency))


def engine_params(config: OcrSettings, threads: int) -> dict:
    """rapidocr 3.10 parameters (its config.yaml) for these settings."""
    params = {
        # Warning level: rapidocr logs every call at INFO, which drowns worker logs.
        "Global.log_level": "warning",
        # The classifier is run by `recognise` (gated), and the score floor applied after it.
        "Global.use_cls": config.classifier == "always",
        "Global.text_score": TEXT_SCORE if config.classifier == "always" else 0.0,
        "Det.limit_side_len": config.det_limit_side,
        "Det.limit_type": config.det_limit_type,
        "Rec.rec_batch_num": config.rec_batch,
        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }
    if config.engine == "openvino":
        from pathlib import Path

        import rapidocr
        from rapidocr import EngineType

        models = Path(rapidocr.__file__).parent / "models"
        params.update({
            "EngineConfig.openvino.inference_num_threads": threads,
            # No pinning: several worker processes (and other services) share the cores, and
            # OpenVINO would pin each process's threads to the same first cores.
            "EngineConfig.openvino.enable_cpu_pinning": False,
            "EngineConfig.openvino.performance_hint": "LATENCY",
            "Det.engine_type": EngineType.OPENVINO, "Det.model_path": str(models / "PP-OCRv6_det_small.onnx"),
            "Rec.engine_type": EngineType.OPENVINO, "Rec.model_path": str(models / "PP-OCRv6_rec_small.onnx"),
            "Cls.engine_type": EngineType.OPENVINO,
            "Cls.model_path": str(models / "ch_ppocr_mobile_v2.0_cls_mobile.onnx"),
        })
    return params


def build_engine(config: OcrSettings, threads: int | None = None):
    from rapidocr import RapidOCR

    return RapidOCR(params=engine_params(config, intra_threads(config) if threads is None else threads))


def _get_engine():
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = build_engine(settings())
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


def needs_classifier(quad, score: float, below: float) -> bool:
    """A line worth the direction classifier: read poorly, or standing upright (rapidocr turns a
    crop by 90° when it is 1.5 times taller than wide, and only the classifier knows which way)."""
    if score < below:
        return True
    width = float(np.linalg.norm(np.asarray(quad[0]) - np.asarray(quad[1])))
    height = float(np.linalg.norm(np.asarray(quad[0]) - np.asarray(quad[3])))
    return height >= 1.5 * width


def _classify_and_reread(engine, bgr: np.ndarray, quads, texts: list, scores: list, below: float) -> None:
    """Run the direction classifier on the lines that need it; read again those it turns and
    keep whichever reading scores higher (in place)."""
    from rapidocr.ch_ppocr_rec import TextRecInput
    from rapidocr.utils.process_img import get_rotate_crop_image

    chosen = [i for i, (quad, score) in enumerate(zip(quads, scores)) if needs_classifier(quad, score, below)]
    if not chosen:
        return
    crops = [get_rotate_crop_image(bgr, np.asarray(quads[i], dtype=np.float32).copy()) for i in chosen]
    classified = engine._load_cls_model()(crops)
    cls_thresh = engine.cfg.Cls.cls_thresh
    turned = [(i, img) for i, img, (label, score) in zip(chosen, classified.img_list, classified.cls_res)
              if "180" in label and score > cls_thresh]
    if not turned:
        return
    again = engine._load_rec_model()(TextRecInput(img=[img for _, img in turned]))
    for (i, _), text, score in zip(turned, again.txts or (), again.scores or ()):
        if float(score) > scores[i]:
            texts[i], scores[i] = text, float(score)


def _recognise_with(engine, config: OcrSettings, image: Image.Image) -> list[OcrLine]:
    image = _padded(image.convert("RGB"))
    bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])  # rapidocr wants BGR
    result = engine(bgr)
    if result.txts is None:
        return []
    quads = [np.asarray(q) for q in result.boxes]
    texts, scores = list(result.txts), [float(s) for s in result.scores]
    if config.classifier == "auto":
        _classify_and_reread(engine, bgr, quads, texts, scores, config.classifier_below)
    lines = []
    for text, quad, score in zip(texts, quads, scores):
        if score < TEXT_SCORE:
            continue
        xs = [float(p[0]) for p in quad]
        ys = [float(p[1]) for p in quad]
        lines.append(OcrLine(text=text, box=(min(xs), min(ys), max(xs), max(ys)), score=score))
    return lines


def recognise(image: Image.Image) -> list[OcrLine]:
    """Read the text lines of an RGB image, in rapidocr's order (top to bottom, roughly)."""
    return _recognise_with(_get_engine(), settings(), image)


def page_threads(config: OcrSettings) -> int:
    return config.page_threads or intra_threads(config)


def _pool_recognise(image: Image.Image) -> list[OcrLine]:
    config = settings()
    built = getattr(_pool_engines, "built", None)
    if built is None or built[0] is not config:
        # One engine per pool thread, each single-threaded: the pool's width is the parallelism,
        # and the thread counts do not multiply.
        built = _pool_engines.built = (config, build_engine(config, threads=1))
    return _recognise_with(built[1], config, image)


def recognise_pages(images: Sequence[Image.Image]) -> list[list[OcrLine]]:
    """Each page's lines, in page order. A single page (or a worker with no core to spare) is
    read by the main engine; several pages are read in parallel, first page first."""
    global _pool
    width = min(page_threads(settings()), len(images))
    if width <= 1:
        return [recognise(image) for image in images]
    with _engine_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=page_threads(settings()), thread_name_prefix="ocr-page")
        pool = _pool
    return list(pool.map(_pool_recognise, images))


# Readers that take a `recognise` callable (worker/extract/expense.py) read all pages at once
# through this when it is there.
recognise.pages = recognise_pages  # type: ignore[attr-defined]
