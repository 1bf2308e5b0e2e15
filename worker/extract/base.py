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
    `qr` (a printed QR code), `text_layer` (a PDF's text), `ocr` or `model`.
    """

    fields: dict[str, Any] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, list[tuple[float, float, float, float, int]]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
