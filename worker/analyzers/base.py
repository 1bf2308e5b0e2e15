"""The analyzer interface: what the OCR default and the model analyzer both provide."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from docket.rules import Rule
from docket.pages import PreparedDocument


@dataclass
class Analysis:
    fields: dict[str, Any]
    confidence: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, list] = field(default_factory=dict)
    text: str = ""
    # A model may propose a decision; the rule's checks can only make it stricter.
    proposed: str = "approve"
    proposed_reasons: list[dict] = field(default_factory=list)
    model: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # Where each field came from: embedded_xml, qr, text_layer, ocr or model.
    sources: dict[str, str] = field(default_factory=dict)
    # What an analyzer records with the decision beyond the fields (stored as the decision's
    # model_output): a model's raw output, prompt hash, identity and token counts; the OCR
    # analyzer's decoded invoice QR code (`qr`), which policy checks compare with the fields.
    extra: dict[str, Any] = field(default_factory=dict)


class Analyzer(Protocol):
    name: str

    def analyze(self, document: PreparedDocument, rule: Rule) -> Analysis: ...
