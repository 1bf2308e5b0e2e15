"""How sure the model was of each value it wrote: the probability of the value's tokens.

During greedy decoding a logits processor placed after the grammar's (:class:`TokenProbabilities`)
records, at every step and for every row, the probability of the token that greedy decoding then
picks (the largest), among the tokens the grammar allows: one softmax per step, a few floats per
row kept, nothing like `output_scores` (the whole vocabulary per step). A field's confidence is
the product of the probabilities of the tokens that wrote its value (:func:`field_confidence`):
the probability the model gave to exactly that value, so one hesitant digit of a total is enough
to make the total uncertain. Tokens forced by the grammar (quotes, keys) have probability 1.

This measures the model's own hesitation, not its calibration: a model can be sure and wrong.
Calibrating against the dev sets (agreement with OCR, arithmetic) is a later step.
"""
from __future__ import annotations

import json
import math
from json.decoder import scanstring
from typing import Any, Callable


class TokenProbabilities:
    """A logits processor that records, per row, the largest probability at each step (greedy
    decoding picks that token). Put it last, after the grammar's mask."""

    def __init__(self):
        self.steps: list[list[float]] = []

    def __call__(self, input_ids, scores):
        import torch

        top = torch.softmax(scores.float(), dim=-1).max(dim=-1).values
        self.steps.append(top.tolist())
        return scores

    def row(self, index: int, length: int) -> list[float]:
        return [step[index] for step in self.steps[:length]]


_WS = " \t\n\r"


def _ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _members(text: str, i: int):
    """(key, start, end) of each member of the JSON object starting at text[i] == "{"."""
    decoder = json.JSONDecoder(strict=False)
    if text[i] != "{":
        raise ValueError("not an object")
    i = _ws(text, i + 1)
    if text[i] == "}":
        return
    while True:
        if text[i] != '"':
            raise ValueError("expected a key")
        key, i = scanstring(text, i + 1, False)
        i = _ws(text, i)
        if text[i] != ":":
            raise ValueError("expected ':'")
        start = _ws(text, i + 1)
        _, end = decoder.raw_decode(text, start)
        yield key, start, end
        i = _ws(text, end)
        if text[i] == ",":
            i = _ws(text, i + 1)
            continue
        if text[i] == "}":
            return
        raise ValueError("expected ',' or '}'")


def value_spans(text: str) -> dict[str, tuple[int, int]]:
    """Character spans of each top-level value of the answer's ``fields`` object ({} if the
    answer does not parse)."""
    try:
        for key, start, _ in _members(text, _ws(text, 0)):
            if key == "fields":
                return {name: (a, b) for name, a, b in _members(text, start)}
    except (ValueError, IndexError):
        pass
    return {}


def field_confidence(text: str, tokens: list[int], probabilities: list[float],
                     decode: Callable[[list[int]], str]) -> dict[str, float]:
    """Per top-level field of the answer: the product of the probabilities of the tokens that
    wrote its value (a token straddling the value's first or last character counts)."""
    if not tokens or len(probabilities) < len(tokens):
        return {}
    spans = value_spans(text)
    lengths: dict[int, int] = {0: 0}

    def length(k: int) -> int:  # characters decoded from the first k tokens
        if k not in lengths:
            lengths[k] = len(decode(tokens[:k]))
        return lengths[k]

    def first_reaching(chars: int) -> int:  # smallest k with length(k + 1) >= chars
        lo, hi = 0, len(tokens) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if length(mid + 1) >= chars:
                hi = mid
            else:
                lo = mid + 1
        return lo

    out: dict[str, float] = {}
    for name, (a, b) in spans.items():
        first, last = first_reaching(a + 1), first_reaching(b)
        if last < first:
            continue
        logp = sum(math.log(max(p, 1e-12)) for p in probabilities[first:last + 1])
        out[name] = round(min(1.0, max(0.0, math.exp(logp))), 3)
    return out


def confidence_of(result: Any, decode: Callable[[list[int]], str]) -> dict[str, float]:
    """:func:`field_confidence` for an engine Result (empty when no probabilities were recorded)."""
    probabilities = getattr(result, "token_probabilities", None) or []
    try:
        return field_confidence(result.text, list(result.token_ids), probabilities, decode)
    except Exception:  # never fail an analysis over its confidences: no confidence is "uncertain"
        return {}
