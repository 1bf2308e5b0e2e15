"""Confidence that means probability: a reader's raw score for a field, mapped to the chance that
the value is right, as measured on the development sets.

The readers score each field from the evidence they have (label strength, amounts that add up,
the recogniser's own scores, a value printed twice). Those scores rank values well but are not
probabilities: a receipt total scored 0.95 was right far less often than 95% of the time. The map
here is learned from labelled documents by ``bench/calibrate.py`` (isotonic regression of "was
the value right" on the raw score, per document kind, field and source, with every step shrunk
towards what its sample size can support) and shipped as data beside this module
(``calibration.json``). Values from a document's own data or a verified QR code are exact and are
not mapped; fields the map has no measurement for keep their raw score.
"""
from __future__ import annotations

import bisect
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

#: Sources that are exact by construction (the e-invoice's XML, a QR code whose digits check).
EXACT_SOURCES = frozenset({"embedded_xml", "qr"})
MAP_PATH = Path(__file__).with_name("calibration.json")


def group_keys(kind: str | None, field: str, source: str | None) -> tuple[str, ...]:
    """The groups a field's score is looked up in, most specific first: the document kind's own
    measurement for this source, else the field's across kinds for this source, else the field's."""
    return (f"{kind or 'other'}/{field}/{source or 'ocr'}", f"*/{field}/{source or 'ocr'}", f"*/{field}/*")


@lru_cache(maxsize=4)
def load(path: str | None = None) -> dict[str, Any]:
    """The shipped map (or another file, e.g. a rebuild under test); an empty map without one."""
    file = Path(path) if path else MAP_PATH
    if not file.is_file():
        return {"groups": {}}
    return json.loads(file.read_text(encoding="utf-8"))


def probability(step: Mapping[str, Any], raw: float) -> float:
    """The calibrated probability of one group's step function at raw score ``raw``: the value of
    the last step whose lower edge is at or below it (below the first step: the first step)."""
    edges, values = step["x"], step["y"]
    i = bisect.bisect_right(edges, raw) - 1
    return float(values[max(i, 0)])


def calibrate(fields: Mapping[str, Any], confidence: Mapping[str, float], sources: Mapping[str, str],
              calibration: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Every field's confidence as a calibrated probability (see the module docstring)."""
    groups = (calibration if calibration is not None else load())["groups"]
    kind = fields.get("document_kind")
    out: dict[str, float] = {}
    for name, raw in confidence.items():
        source = sources.get(name)
        if source in EXACT_SOURCES or not isinstance(raw, (int, float)):
            out[name] = raw
            continue
        step = next((groups[k] for k in group_keys(kind, name, source) if k in groups), None)
        out[name] = round(probability(step, float(raw)), 4) if step else raw
    return out
