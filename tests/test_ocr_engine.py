"""The OCR engine's settings (DOCKET_OCR_*), the direction-classifier gate and multi-page reading
(worker/ocr.py, issue 24). One engine per setting, built once for the module."""
from __future__ import annotations

from datetime import date
from unittest import mock

import pytest
from click.testing import CliRunner
from PIL import Image

from docket.config import OcrSettings, Settings
from tests.documents import receipt_image
from worker import ocr


@pytest.fixture(scope="module", autouse=True)
def _restore_engine():
    yield
    ocr.configure(None)


def test_settings_are_read_and_bad_values_stop_the_start(monkeypatch):
    for name in ("DOCKET_OCR_ENGINE", "DOCKET_OCR_THREADS", "DOCKET_OCR_PAGE_THREADS", "DOCKET_OCR_DET_LIMIT_SIDE",
                 "DOCKET_OCR_DET_LIMIT_TYPE", "DOCKET_OCR_CLASSIFIER", "DOCKET_OCR_CLASSIFIER_BELOW",
                 "DOCKET_OCR_REC_BATCH"):
        monkeypatch.delenv(name, raising=False)
    assert Settings.from_env().ocr == OcrSettings()
    monkeypatch.setenv("DOCKET_OCR_THREADS", "3")
    monkeypatch.setenv("DOCKET_OCR_PAGE_THREADS", "2")
    monkeypatch.setenv("DOCKET_OCR_DET_LIMIT_SIDE", "960")
    monkeypatch.setenv("DOCKET_OCR_DET_LIMIT_TYPE", "MAX")
    monkeypatch.setenv("DOCKET_OCR_CLASSIFIER", "never")
    monkeypatch.setenv("DOCKET_OCR_CLASSIFIER_BELOW", "0.8")
    monkeypatch.setenv("DOCKET_OCR_REC_BATCH", "12")
    read = Settings.from_env().ocr
    assert (read.threads, read.page_threads, read.det_limit_side, read.det_limit_type, read.classifier,
            read.classifier_below, read.rec_batch) == (3, 2, 960, "max", "never", 0.8, 12)
    params = ocr.engine_params(read, ocr.intra_threads(read))
    assert params["Det.limit_side_len"] == 960 and params["Det.limit_type"] == "max"
    assert params["Rec.rec_batch_num"] == 12 and params["EngineConfig.onnxruntime.intra_op_num_threads"] == 3
    assert params["Global.use_cls"] is False
    assert "Det.engine_type" not in ocr.engine_params(OcrSettings(engine="onnxruntime"), 1)
    from rapidocr import EngineType

    openvino = ocr.engine_params(OcrSettings(), 1)  # the default engine
    assert openvino["Det.engine_type"] == openvino["Rec.engine_type"] == EngineType.OPENVINO
    assert openvino["EngineConfig.openvino.inference_num_threads"] == 1

    bad = [("DOCKET_OCR_ENGINE", "tensorflow"), ("DOCKET_OCR_THREADS", "two"), ("DOCKET_OCR_THREADS", "-1"),
           ("DOCKET_OCR_DET_LIMIT_SIDE", "10"), ("DOCKET_OCR_DET_LIMIT_TYPE", "middle"),
           ("DOCKET_OCR_CLASSIFIER", "sometimes"), ("DOCKET_OCR_CLASSIFIER_BELOW", "1.5"),
           ("DOCKET_OCR_REC_BATCH", "0")]
    for name, value in bad:
        with monkeypatch.context() as m:
            m.setenv(name, value)
            with pytest.raises(ValueError, match=name):
                Settings.from_env()
    # At start: `docket worker` reads the settings before anything else and refuses to run.
    from docket.cli import main

    monkeypatch.setenv("DOCKET_OCR_CLASSIFIER", "sometimes")
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code != 0 and "DOCKET_OCR_CLASSIFIER" in str(result.exception)


def test_worker_threads_divide_the_cores_by_concurrency(monkeypatch):
    monkeypatch.setattr(ocr.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setenv("DOCKET_WORKER_CONCURRENCY", "2")
    assert ocr.intra_threads(OcrSettings()) == 2
    monkeypatch.setenv("DOCKET_WORKER_CONCURRENCY", "8")
    assert ocr.intra_threads(OcrSettings()) == 1
    assert ocr.intra_threads(OcrSettings(threads=3)) == 3
    monkeypatch.delenv("DOCKET_WORKER_CONCURRENCY")
    assert ocr.intra_threads(OcrSettings()) == 4 == ocr.page_threads(OcrSettings())


@pytest.fixture
def classifier_calls():
    from rapidocr.ch_ppocr_cls import TextClassifier

    calls: list[int] = []
    original = TextClassifier.__call__

    def spy(self, images):
        calls.append(len(images))
        return original(self, images)

    with mock.patch.object(TextClassifier, "__call__", spy):
        yield calls


def test_classifier_runs_only_when_a_page_needs_it(classifier_calls):
    page = receipt_image(date(2024, 3, 5))
    ocr.configure(OcrSettings(threads=1, classifier="auto"))
    upright = ocr.recognise(page)
    assert classifier_calls == []  # a clean upright page: every line reads well, no classifier
    texts = [line.text for line in upright]
    assert "KEDAI BUKU MAJU SDN BHD" in texts and "TOTAL RM" in texts and "32.50" in texts

    upside_down = ocr.recognise(page.rotate(180))
    assert classifier_calls and classifier_calls[0] >= 5  # the poorly read lines went to the classifier
    turned = [line.text for line in upside_down]
    for text in ("KEDAI BUKU MAJU SDN BHD", "50400 KUALA LUMPUR", "TOTAL RM", "32.50", "THANK YOU"):
        assert text in turned

    # Without the classifier the same page does not read: the gate is what reads it.
    classifier_calls.clear()
    ocr.configure(OcrSettings(threads=1, classifier="never"))
    unread = [line.text for line in ocr.recognise(page.rotate(180))]
    assert classifier_calls == [] and "KEDAI BUKU MAJU SDN BHD" not in unread

    # "always": rapidocr runs the classifier on every line itself.
    ocr.configure(OcrSettings(threads=1, classifier="always"))
    assert [line.text for line in ocr.recognise(page)] == texts
    assert classifier_calls and classifier_calls[0] == len(texts)


def test_pages_read_in_parallel_keep_their_order():
    pages = [receipt_image(date(2024, 1, day), total=f"{day}.25", merchant=f"SHOP NUMBER {day}") for day in (1, 2)]
    pages.insert(1, Image.new("RGB", (200, 120), "white"))  # a blank page keeps its place too
    ocr.configure(OcrSettings(threads=1, page_threads=2))
    seen = []
    real = ocr._pool_recognise
    with mock.patch.object(ocr, "_pool_recognise", lambda image: seen.append(image) or real(image)):
        parallel = ocr.recognise_pages(pages)
        assert len(seen) == 3 and seen[0] is pages[0]  # the pool read them, first page first
        assert parallel[1] == []
        assert [p[0].text for p in parallel if p] == ["SHOP NUMBER 1", "SHOP NUMBER 2"]
        assert "1.25" in [line.text for line in parallel[0]] and "2.25" in [line.text for line in parallel[2]]
        # a single page never goes to the pool
        seen.clear()
        single = ocr.recognise_pages(pages[2:])
        assert seen == [] and [line.text for line in single[0]] == [line.text for line in parallel[2]]
