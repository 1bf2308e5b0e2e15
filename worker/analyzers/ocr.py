"""The CPU default: OCR (rapidocr's bundled models) or the PDF text layer, then per-type
field extraction with plain heuristics. No GPU, no network, Chinese and English."""
from __future__ import annotations

import time

from docket import calibration
from docket.pages import PreparedDocument, stacked_lines
from docket.rules import Rule
from worker import ocr
from worker.analyzers import register
from worker.analyzers.base import Analysis

def _ocr_lines(document: PreparedDocument) -> list[ocr.OcrLine]:
    """OCR every prepared page, stacking pages vertically so reading order holds across them."""
    per_page = iter(ocr.recognise_pages([page.image for page in document.pages]))
    return stacked_lines(document.pages, lambda page: next(per_page))


def _text_lines(text: str) -> list[ocr.OcrLine]:
    return [ocr.OcrLine(t.strip(), (0.0, float(i), 0.0, float(i)), 1.0)
            for i, t in enumerate(text.splitlines()) if t.strip()]


@register
class OcrAnalyzer:
    name = "ocr"
    model = "rapidocr-3.10.0/PP-OCR"

    def analyze(self, document: PreparedDocument, rule: Rule) -> Analysis:
        if rule.document_type == "receipt":
            return self._expense(document, rule)
        started = time.perf_counter()
        kind = rule.document_type
        use_text_layer = document.has_text_layer
        lines = _text_lines(document.text_layer) if use_text_layer else _ocr_lines(document)
        read_s = time.perf_counter() - started
        text = "\n".join(line.text for line in lines)

        started = time.perf_counter()
        if kind == "contract":
            from worker.extract.contract import extract_contract

            extraction = extract_contract(text)
        elif kind == "screenshot":
            from worker.extract.screenshot import extract_screenshot

            extraction = extract_screenshot(lines)
        else:
            raise ValueError(f"rule {rule.name} names unknown document type {kind!r}")
        extract_s = time.perf_counter() - started
        source = "text_layer" if use_text_layer else "ocr"
        return Analysis(
            fields=extraction.fields,
            confidence=extraction.confidence,
            evidence={k: [list(b) for b in v] for k, v in extraction.evidence.items()},
            sources={name: source for name in extraction.fields},
            text=text,
            model="pdf-text-layer" if use_text_layer else self.model,
            timings={"read_s": round(read_s, 4), "extract_s": round(extract_s, 4)},
        )

    def _expense(self, document: PreparedDocument, rule: Rule) -> Analysis:
        """Receipts, invoices and tickets: structured data first, then the page."""
        from worker.extract.expense import read_expense

        started = time.perf_counter()
        reading = read_expense(document, ocr.recognise, rule.default_currency)
        extraction = reading.extraction
        model = {"embedded_xml": "embedded-invoice-data", "text_layer": "pdf-text-layer"}.get(reading.read_from,
                                                                                              self.model)
        return Analysis(
            fields=extraction.fields,
            # the readers' scores as the chance each value is right (measured on the dev sets)
            confidence=calibration.calibrate(extraction.fields, extraction.confidence, extraction.sources),
            evidence={k: [list(b) for b in v] for k, v in extraction.evidence.items()},
            sources=extraction.sources,
            text=reading.text,
            model=model,
            timings={"read_s": round(time.perf_counter() - started, 4)},
            extra={"qr": reading.qr} if reading.qr else {},
        )
