"""The model analyzer's field confidence (issue 20): the probability the model gave to each
value's tokens, recorded during greedy, grammar-constrained decoding (worker/vlm/confidence.py);
on a tiny random-weight model and on hand-made token streams."""
from __future__ import annotations

import json
import math

import pytest

from docket.rules import default_rules_dir, load_rules
from tests.model_support import documents, settings, tiny_models  # noqa: F401  (fixture)
from worker.vlm.confidence import field_confidence, value_spans

ANSWER = '{"fields": {"total": 12.5, "merchant_name": "Kedai \\"Maju\\"", "items": [{"a": 1}]}, "decision": "approve", "reasons": []}'


def test_value_spans_cover_each_top_level_value():
    spans = value_spans(ANSWER)
    assert {k: ANSWER[a:b] for k, (a, b) in spans.items()} == {
        "total": "12.5", "merchant_name": '"Kedai \\"Maju\\""', "items": '[{"a": 1}]'}
    assert value_spans('{"fields": {"total": 1') == {} and value_spans("not json") == {}
    assert value_spans('{"decision": "approve"}') == {}


def test_confidence_is_the_product_of_the_value_tokens_probabilities():
    # One character per token: the probability of "12.5" is that of its four tokens.
    tokens = list(range(len(ANSWER)))
    probabilities = [1.0] * len(ANSWER)
    start = ANSWER.index("12.5")
    probabilities[start + 1] = 0.5   # the model hesitated on the "2"
    probabilities[start + 3] = 0.8   # and on the "5"
    probabilities[ANSWER.index("Kedai")] = 0.9
    decode = lambda ids: "".join(ANSWER[i] for i in ids)  # noqa: E731
    confidence = field_confidence(ANSWER, tokens, probabilities, decode)
    assert confidence == {"total": 0.4, "merchant_name": 0.9, "items": 1.0}
    # Multi-character tokens: one token writes `": 12` (key end and value start), it counts.
    chunks = ['{"fields": {"total', '": 12', ".5", ', "x": 1}}']
    text = "".join(chunks)
    conf = field_confidence(text, [0, 1, 2, 3], [1.0, 0.6, 0.5, 0.1], lambda ids: "".join(chunks[i] for i in ids))
    assert conf == {"total": 0.3, "x": 0.1}
    assert field_confidence(text, [0, 1], [1.0], lambda ids: "") == {}  # no probabilities recorded: none


def test_tiny_model_answers_carry_a_confidence_per_field(tiny_models):
    from worker.vlm.engine import Engine, interpret

    rule = load_rules(default_rules_dir())["expense_policy"]
    engine = Engine.load(settings(tiny_models["glm46v"]))
    requests = [engine.prepare(d, rule) for d in documents()[:2]]
    batched = engine.run(requests)
    for request, result in zip(requests, batched):
        assert len(result.token_probabilities) == len(result.token_ids) > 0
        assert all(0.0 < p <= 1.0 for p in result.token_probabilities)
        fields = interpret(result, request, rule, 320)["fields"]
        confidence = engine.field_confidence(result)
        assert set(fields) <= set(confidence), (fields, confidence)
        assert all(0.0 <= v <= 1.0 for v in confidence.values())
        # The value's tokens' product, checked against the recorded probabilities.
        answer = json.loads(result.text, strict=False)
        assert set(confidence) == set(answer["fields"])
    # The same document alone gets the same confidences (greedy; padding does not move them much).
    alone = engine.run(requests[:1])[0]
    assert alone.token_ids == batched[0].token_ids
    for name, value in engine.field_confidence(alone).items():
        assert math.isclose(value, engine.field_confidence(batched[0])[name], abs_tol=0.02)
