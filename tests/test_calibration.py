"""Confidence calibration: the shipped map (docket/calibration.json), how the worker applies it,
and how bench/calibrate.py fits it (isotonic steps shrunk towards what their size supports)."""
from __future__ import annotations

import random

from docket import calibration

MAP = {"groups": {
    "receipt/total/ocr": {"x": [0.0, 0.7, 0.95], "y": [0.2, 0.6, 0.9], "n": [10, 20, 30]},
    "*/total/ocr": {"x": [0.0], "y": [0.5], "n": [60]},
    "*/transaction_date/*": {"x": [0.0, 0.9], "y": [0.3, 0.8], "n": [5, 50]},
}}


def test_step_function_reads_the_step_at_or_below_the_raw_score():
    step = MAP["groups"]["receipt/total/ocr"]
    assert calibration.probability(step, 0.69) == 0.2
    assert calibration.probability(step, 0.7) == 0.6
    assert calibration.probability(step, 0.949) == 0.6
    assert calibration.probability(step, 1.0) == 0.9
    assert calibration.probability({"x": [0.3], "y": [0.4]}, 0.1) == 0.4  # below the first edge


def test_calibrate_uses_the_most_specific_group_and_leaves_exact_sources_alone():
    fields = {"document_kind": "receipt", "total": 12.5, "transaction_date": "2024-01-02", "currency": "MYR",
              "merchant_name": "A"}
    out = calibration.calibrate(
        fields,
        {"total": 0.96, "transaction_date": 0.95, "currency": 1.0, "merchant_name": 0.9},
        {"total": "ocr", "transaction_date": "text_layer", "currency": "qr", "merchant_name": "ocr"},
        MAP)
    assert out["total"] == 0.9                  # receipt/total/ocr
    assert out["transaction_date"] == 0.8       # */transaction_date/* (no source-specific group)
    assert out["currency"] == 1.0               # a verified QR code is exact: not mapped
    assert out["merchant_name"] == 0.9          # no group measured it: the raw score stays
    invoice = calibration.calibrate({**fields, "document_kind": "invoice"}, {"total": 0.96}, {"total": "ocr"}, MAP)
    assert invoice["total"] == 0.5              # another kind: the field's group across kinds


def test_shipped_map_is_monotone_and_never_claims_certainty():
    shipped = calibration.load()
    assert shipped["groups"], "docket/calibration.json is missing: run bench/calibrate.py --write"
    for key, step in shipped["groups"].items():
        assert len(step["x"]) == len(step["y"]) == len(step["n"]) >= 1, key
        assert step["x"] == sorted(step["x"]), key
        assert all(a <= b for a, b in zip(step["y"], step["y"][1:])), key
        # the top step is shrunk by its size: (right + 1) / (n + 2) < 1
        assert all(0.0 < y < 1.0 for y in step["y"]), key
        assert sum(step["n"]) >= 20, key


def test_fitted_steps_are_shrunk_by_their_size_and_stay_monotone():
    from bench.calibrate import _steps, ece, fit, predict

    rng = random.Random(7)
    raw = [rng.random() for _ in range(400)]
    right = [rng.random() < r for r in raw]  # a score that is already a probability
    step = _steps(raw, right)
    assert step["x"] == sorted(step["x"]) and all(a <= b for a, b in zip(step["y"], step["y"][1:]))
    assert sum(step["n"]) == 400
    # the low scores are mostly wrong, the high ones mostly right
    assert calibration.probability(step, 0.05) < 0.3 < 0.7 < calibration.probability(step, 0.97)
    # twenty documents all right at one score: 21/22, not 1.0
    assert _steps([0.9] * 20, [True] * 20)["y"] == [round(21 / 22, 4)]

    # an over-confident reader (says 0.95, right 60% of the time) is pulled down to what it earns
    samples = [{"set": "s", "doc": f"{i:04x}", "kind": "receipt", "field": "total", "source": "ocr",
                "raw": 0.95, "right": i % 5 < 3} for i in range(100)]
    mapping = fit(samples)
    assert abs(predict(mapping, samples[0]) - 0.6) < 0.02
    before = ece([s["raw"] for s in samples], [s["right"] for s in samples])
    after = ece([predict(mapping, s) for s in samples], [s["right"] for s in samples])
    assert before > 0.3 and after < 0.02
    # exact sources are never fitted or mapped
    exact = {**samples[0], "source": "embedded_xml", "raw": 1.0}
    assert "receipt/total/embedded_xml" not in fit([exact] * 30)["groups"]
    assert predict(mapping, exact) == 1.0
