"""Contract field extraction: hand-written snippets (English, Chinese) and the contracts-dev set."""
from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium

from tests.devdata import dev_set, labels
from worker.extract.contract import canonical_party, extract_contract

# Measured on contracts-dev when this was written (per-key exact match after upper-casing over all
# 20 documents, a missing label and a missing prediction counting as a match; party as set F1):
# effective_date 0.75, jurisdiction 1.00, party 1.00, term 0.95. The floors sit a little below.
FLOORS = {"effective_date": 0.70, "jurisdiction": 0.90, "party": 0.90, "term": 0.85}

ENGLISH = """MUTUAL NON-DISCLOSURE AGREEMENT
This Mutual Non-Disclosure Agreement (the "Agreement") is made and entered into as of March 3, 2021
(the "Effective Date") by and between ACME WIDGETS, INC., a Delaware corporation having its principal
place of business at 1 Main Street, Dover, DE 19901 ("Acme"), and Smith & Jones Holdings, L.P., a
Texas limited partnership ("Recipient").
1. Fees. Recipient shall pay Acme a one-time fee of $12,500, and up to USD 150,000 in expenses.
2. Notices. Either party may terminate discussions on thirty (30) days' prior written notice.
3. Term. This Agreement shall expire eighteen (18) months from the Effective Date.
4. Governing Law. This Agreement shall be governed by and construed in accordance with the laws of
England and Wales, without regard to its conflict of laws rules.
"""

CHINESE = """技术服务合同
甲方（委托方）：北京星辰科技有限公司
地址：北京市海淀区中关村大街1号
乙方：上海云帆信息技术有限公司
签订日期：2023年5月8日
第一条 服务费用为人民币50万元，分两期支付。
第五条 本合同有效期为三年，自双方签字盖章之日起生效。提前三十日书面通知可解除本合同。
第九条 本合同适用中华人民共和国法律。
"""


def test_english_snippet_fields():
    f = extract_contract(ENGLISH).fields
    assert f["parties"] == ["Acme Widgets Inc.", "Smith and Jones Holdings LP"]
    assert f["effective_date"] == "2021-03-03"
    assert f["jurisdiction"] == "England and Wales"
    assert f["term"] == "18 months"  # the agreement's term, not the 30-day notice period
    assert f["term_months"] == 18
    assert {"value": 12500, "currency": "USD"} in f["amounts"]
    assert {"value": 150000, "currency": "USD"} in f["amounts"]


def test_chinese_snippet_fields():
    f = extract_contract(CHINESE).fields
    assert f["parties"] == ["北京星辰科技有限公司", "上海云帆信息技术有限公司"]
    assert f["effective_date"] == "2023-05-08"
    assert f["jurisdiction"] == "中华人民共和国"
    assert f["term"] == "3 years"
    assert f["term_months"] == 36
    assert f["amounts"] == [{"value": 500000, "currency": "CNY"}]


def test_state_law_and_ordinal_date_and_anniversary_term():
    text = (
        "CONFIDENTIALITY AGREEMENT\nThis Agreement is made as of the 5th day of November 2004 by and "
        "between Richard Roe (\"Consultant\") and Haynes Wire Company, an Indiana corporation (\"Buyer\").\n"
        "For a period of six (6) months from the Effective Date, Consultant will provide services.\n"
        "The obligations set forth in this Agreement shall continue until the second anniversary of the "
        "Effective Date.\nThis Agreement shall be construed and enforced in accordance with, and governed "
        "by, the laws of the Commonwealth of Massachusetts.\n"
    )
    f = extract_contract(text).fields
    assert f["parties"] == ["Richard Roe", "Haynes Wire Company"]
    assert f["effective_date"] == "2004-11-05"
    assert f["jurisdiction"] == "Massachusetts"
    assert f["term"] == "2 years" and f["term_months"] == 24


def test_incorporation_state_is_not_the_governing_law():
    text = (
        "This Agreement is entered into between Foo Corp., a company organized under the laws of the State "
        "of Nevada (\"Foo\"), and Bar LLC (\"Bar\").\nThis Agreement shall be governed by the laws of the "
        "State of New York.\n"
    )
    assert extract_contract(text).fields["jurisdiction"] == "New York"


def test_missing_fields_are_absent():
    ex = extract_contract("Meeting notes. We talked about the weather and nothing else.")
    for key in ("effective_date", "jurisdiction", "term", "term_months", "amounts"):
        assert key not in ex.fields
    assert extract_contract("").fields == {}


def test_canonical_party_names():
    assert canonical_party("NIKE, Inc.") == "NIKE Inc."
    assert canonical_party("ALTIMO HOLDINGS & INVESTMENTS LIMITED") == "Altimo Holdings and Investments Ltd."
    assert canonical_party("Leonard Green & Partners, L.P.") == "Leonard Green and Partners LP"
    assert canonical_party("Maher Albitar, M.D.") == "Maher Albitar"
    assert canonical_party("Escalade, Incorporated") == "Escalade Inc."


def _score(gold, pred) -> float:
    if isinstance(gold, list) or isinstance(pred, list):
        g = {x.upper() for x in gold or []}
        p = {x.upper() for x in pred or []}
        if not g and not p:
            return 1.0
        return 2 * len(g & p) / (len(g) + len(p))
    return float((gold.upper() if gold else None) == (pred.upper() if pred else None))


def test_contracts_dev_accuracy_does_not_regress():
    contracts_dev = dev_set("contracts-dev")
    totals = {k: 0.0 for k in FLOORS}
    rows = labels(contracts_dev)
    assert len(rows) == 20
    misses = []
    for row in rows:
        doc = pdfium.PdfDocument(str(contracts_dev / row["file"]))
        try:
            text = "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
        finally:
            doc.close()
        fields = extract_contract(text).fields
        pred = {"effective_date": fields.get("effective_date"), "jurisdiction": fields.get("jurisdiction"),
                "party": fields.get("parties"), "term": fields.get("term")}
        for key in FLOORS:
            s = _score(row["fields"].get(key), pred[key])
            totals[key] += s
            if s < 1:
                misses.append(f"{Path(row['file']).name} {key}: gold={row['fields'].get(key)!r} got={pred[key]!r}")
    accuracy = {k: v / len(rows) for k, v in totals.items()}
    low = {k: round(a, 3) for k, a in accuracy.items() if a < FLOORS[k]}
    assert not low, f"accuracy below floor {FLOORS}: {low}\nmisses:\n" + "\n".join(misses)
