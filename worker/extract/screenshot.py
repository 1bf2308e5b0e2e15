"""Screenshot extraction: the recognised text and the personal data it shows.

Fields (docs/fields.md): ``text`` (lines joined by "\\n", possibly ""), ``personal_data``
(``[{type, value}]``, values masked) and ``personal_data_types`` (sorted distinct types). All
three are always present: for a screenshot "no personal data found" is itself the answer, so
the lists are empty rather than absent. Evidence for ``personal_data`` (and the types) is the
boxes of the lines that contained a finding, as (x0, y0, x1, y1, page) with page 0 (a
screenshot is one image).
"""
from __future__ import annotations

from docket.privacy import REDACT_EVIDENCE, personal_spans_boxes
from worker.extract.base import Extraction
from worker.extract.pii import find_personal_data
from worker.ocr import OcrLine


def extract_screenshot(lines: list[OcrLine]) -> Extraction:
    texts = [line.text for line in lines]
    text = "\n".join(texts)
    # line i covers text[starts[i]:starts[i] + len(texts[i])]; findings never span a newline
    starts, pos = [], 0
    for t in texts:
        starts.append(pos)
        pos += len(t) + 1

    findings = find_personal_data(text)
    personal = []
    hit_lines: list[int] = []
    scores: list[float] = []
    for f in findings:
        personal.append({"type": f["type"], "value": f["value"]})
        start, end = f["span"]
        for i, s in enumerate(starts):
            if s <= start < s + len(texts[i]) + 1 or start <= s < end:
                if i not in hit_lines:
                    hit_lines.append(i)
                scores.append(lines[i].score)
    hit_lines.sort()
    evidence = [(*map(float, lines[i].box), 0) for i in hit_lines]

    ex = Extraction()
    ex.fields["text"] = text
    ex.fields["personal_data"] = personal
    ex.fields["personal_data_types"] = sorted({p["type"] for p in personal})
    if lines:
        ex.confidence["text"] = round(sum(line.score for line in lines) / len(lines), 4)
    # no finding: as sure as the reading; findings: as sure as the weakest line they came from
    pd_conf = round(min(scores), 4) if scores else ex.confidence.get("text", 1.0)
    ex.confidence["personal_data"] = pd_conf
    ex.confidence["personal_data_types"] = pd_conf
    if evidence:
        ex.evidence["personal_data"] = evidence
        ex.evidence["personal_data_types"] = list(evidence)
        # The part of each line the finding takes, for redacted copies of the page (docket/privacy.py).
        ex.evidence[REDACT_EVIDENCE] = personal_spans_boxes(lines, [f["span"] for f in findings])
    return ex
