"""China Railway ticket extraction: hand-built lines, the dev photos' own OCR lines (another
OCR engine's output, kept in their labels), synthetic tickets and one real photo through OCR."""
from __future__ import annotations

import pytest
from PIL import Image

from tests.cn_documents import have_fonts, render_train_ticket
from tests.devdata import REPO_DATA, labels
from worker.extract.kind import classify
from worker.extract.train_ticket import extract_train_ticket
from worker.ocr import OcrLine


def L(text, x0, y0, x1, y1, score=0.99):
    return OcrLine(text, (float(x0), float(y0), float(x1), float(y1)), score)


PAPER = [
    L("E052103", 215, 109, 753, 238), L("检票:A10", 1794, 150, 2200, 250),
    L("北京南站", 340, 219, 958, 392), L("G1234", 1059, 233, 1489, 371), L("上海虹桥站", 1580, 218, 2300, 410),
    L("Beijingnan", 439, 372, 809, 478), L("Shanghaihongqiao", 1639, 378, 2225, 496),
    L("2024年03月05日08:05开", 249, 473, 1369, 605), L("05车12F号", 1547, 488, 2018, 609),
    L("￥553.0元", 268, 604, 652, 723), L("网", 1090, 588, 1215, 709), L("二等座", 1698, 592, 2010, 714),
    L("限乘当日当次车", 258, 715, 927, 837), L("1101011990****1234张三", 250, 927, 1465, 1078),
    L("买票请到12306 发货请到95306", 498, 1081, 1593, 1195), L("中国铁路祝您旅途愉快", 638, 1178, 1451, 1294),
    L("21010000490718E052103 北京南售", 276, 1319, 1583, 1447),
]

ETICKET = [
    L("电子发票（铁路电子客票）", 600, 40, 1300, 100),
    L("发票号码：24329116804000515620", 1200, 120, 1700, 150), L("开票日期：2024年11月20日", 1200, 160, 1600, 190),
    L("南京南站", 200, 260, 420, 310), L("G7237", 700, 262, 860, 310), L("上海虹桥", 1100, 260, 1330, 310),
    L("Nanjingnan", 210, 320, 400, 350), L("2024年11月16日", 200, 380, 470, 420), L("08:35开", 480, 380, 600, 420),
    L("05车无座", 760, 380, 930, 420), L("二等座", 1110, 380, 1230, 420), L("票价：", 200, 440, 290, 480),
    L("￥139.50", 295, 440, 430, 480), L("3201061990****1234 李四", 200, 500, 640, 540),
    L("电子客票号：6910853014111690437672024", 200, 560, 860, 590),
    L("购买方名称：某某科技有限公司", 200, 610, 700, 640), L("统一社会信用代码：91330106MA2AXKD427", 200, 650, 800, 680),
]


def test_paper_ticket():
    ex = extract_train_ticket(PAPER)
    f = ex.fields
    assert f["document_kind"] == "train_ticket"
    assert f["travel"] == {"from": "北京南站", "to": "上海虹桥站", "train_number": "G1234", "seat_class": "二等座",
                           "departure": "2024-03-05T08:05"}
    assert (f["transaction_date"], f["total"], f["currency"]) == ("2024-03-05", 553.0, "CNY")
    assert f["merchant_name"] == "中国铁路"  # the issuer: a ticket's seller is the railway
    assert f["invoice_number"] == "E052103"  # the red ticket number, not the 检票 gate
    assert set(ex.sources.values()) == {"ocr"}
    assert all(len(b) == 5 and b[4] == 0 for boxes in ex.evidence.values() for b in boxes)
    assert ex.evidence["total"][0][:4] == (268.0, 604.0, 652.0, 723.0)
    assert classify(PAPER) == "train_ticket"


def test_eticket_travel_date_not_issue_date_and_station_suffix():
    f = extract_train_ticket(ETICKET).fields
    assert f["transaction_date"] == "2024-11-16"  # travel, not 开票日期
    assert f["travel"]["departure"] == "2024-11-16T08:35"  # date and time in separate boxes
    assert f["travel"]["to"] == "上海虹桥站"  # the OCR lost 站: put back, so stations compare equal
    assert f["travel"]["seat_class"] == "二等座"  # the class, not 无座 (the seat)
    assert f["invoice_number"] == "24329116804000515620"
    assert f["total"] == 139.5
    assert classify(ETICKET) == "train_ticket"  # although it says 发票 and 购买方
    plain = extract_train_ticket(ETICKET, keep_station_suffix=False).fields["travel"]
    assert (plain["from"], plain["to"]) == ("南京南", "上海虹桥")


def test_slanted_photo():
    slope = 0.05  # about 3°
    tilted = [OcrLine(l.text, (l.box[0], l.box[1] + slope * l.box[0], l.box[2], l.box[3] + slope * l.box[2]), l.score)
              for l in PAPER]
    assert extract_train_ticket(tilted).fields == extract_train_ticket(PAPER).fields


def test_nothing_read():
    assert extract_train_ticket([]).fields == {}


# The dev set's two labelled tickets, carried in the repository (tests/data/README.md): both labels
# (with their OCR lines), the first ticket's photo.
TICKETS = REPO_DATA / "cn-train-tickets-dev"


def _assert_matches_labels(fields: dict, labels: dict) -> None:
    t = fields["travel"]
    assert fields["transaction_date"] == labels["date_iso"]
    assert abs(fields["total"] - labels["price"]) < 0.005
    assert (t["from"], t["to"]) == (labels["starting_station"], labels["destination_station"])
    assert t["train_number"] == labels["train_num"] and t["seat_class"] == labels["ticket_grade"]
    assert fields["invoice_number"] == labels["ticket_num"]
    assert fields["currency"] == "CNY"


def test_dev_tickets_from_their_labelled_lines():
    """The labels keep the source's own OCR lines (PaddleOCR, full-width colon in 18：41)."""
    records = labels(TICKETS)
    assert len(records) == 2
    for rec in records:
        lines = [OcrLine(l["text"], tuple(l["box"]), 1.0) for l in rec["lines"]]
        assert classify(lines) == "train_ticket"
        _assert_matches_labels(extract_train_ticket(lines).fields, rec["fields"])


@pytest.mark.timeout(300)
def test_dev_ticket_photo_through_ocr():
    from worker.ocr import recognise

    rec = labels(TICKETS)[0]
    lines = recognise(Image.open(TICKETS / rec["file"]).convert("RGB"))
    assert classify(lines) == "train_ticket"
    _assert_matches_labels(extract_train_ticket(lines).fields, rec["fields"])


@pytest.mark.skipif(not have_fonts(), reason="fonts-wqy-microhei is not installed")
@pytest.mark.parametrize("layout, seed", [("paper", 21), ("eticket", 22)])
def test_synthetic_ticket_through_ocr(layout, seed):
    from worker.ocr import recognise

    image, truth = render_train_ticket(seed, layout)
    lines = recognise(image)
    assert classify(lines) == "train_ticket"
    f = extract_train_ticket(lines).fields
    for name in ("transaction_date", "total", "currency", "merchant_name", "invoice_number", "document_kind"):
        assert f.get(name) == truth[name], name
    assert f["travel"] == truth["travel"]
