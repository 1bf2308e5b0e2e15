"""What every field extractor returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Extraction:
    """Fields found in a document.

    `fields` holds only what was found (a missing field is absent, never None or "");
    `confidence` is 0..1 per field where the extractor can tell; `evidence` maps a field to
    the OCR boxes (x0, y0, x1, y1, page) it was read from, so a reviewer can see where;
    `sources` says where each field came from: `embedded_xml` (an e-invoice's own data),
    `qr` (a printed QR code), `text_layer` (a PDF's text), `ocr` or `model`; `notes` names, per
    field, the evidence that confirmed it or the lack of it (e.g. `arithmetic`: net + tax = total
    on the page, `repeated`: printed again elsewhere, `label_strong` / `label` / `layout`: how it
    was found, `guess`: implied, not printed), for calibrating confidences.
    """

    fields: dict[str, Any] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, list[tuple[float, float, float, float, int]]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def put(self, name: str, value: Any, confidence: float, evidence: list, *, max_len: int = 200,
            source: str | None = None, notes: list[str] | None = None) -> None:
        """Record a field read from the page: text cut to `max_len` and stripped (nothing is
        recorded when none is left), the confidence clamped to 0..1."""
        if isinstance(value, str):
            value = value[:max_len].strip()
            if not value:
                return
        self.fields[name] = value
        self.confidence[name] = max(0.0, min(1.0, round(float(confidence), 3)))
        self.evidence[name] = evidence
        if source is not None:
            self.sources[name] = source
        if notes:
            self.notes[name] = list(dict.fromkeys(notes))


def corroborated(confidence: float, support: float) -> float:
    """A value's confidence once an independent reading agrees with it (amounts read from other
    lines that add up to a total): 1 - (1 - p)(1 - q), never lower than it was, at most 0.99
    (agreement is strong evidence, not certainty)."""
    return min(0.99, max(confidence, 1 - (1 - confidence) * (1 - support)))
