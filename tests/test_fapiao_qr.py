"""The QR code on Chinese VAT invoices: payload parsing (which amount each type carries) and
decoding from page images — synthetic pages and the 32 real dev pages (no OCR: fast)."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.cn_documents import have_fonts, render_vat_invoice
from tests.devdata import dev_set
from worker.extract.fapiao_qr import FapiaoQr, decode, parse_payload


def test_older_invoice_payload_carries_the_amount_before_tax():
    qr = parse_payload("01,10,051002200411,19975685,16.89,20230625,53045890331699094305,1FDD,")
    assert isinstance(qr, FapiaoQr)
    assert (qr.invoice_type, qr.invoice_code, qr.invoice_number) == ("10", "051002200411", "19975685")
    assert (qr.amount, qr.amount_kind, qr.subtotal, qr.total) == (16.89, "excl_tax", 16.89, None)
    assert qr.issue_date == "2023-06-25" and qr.check_code == "53045890331699094305"
    assert not qr.fully_digital and qr.type_name == "增值税电子普通发票"


@pytest.mark.parametrize("payload", ["01,31,,23312000000022697648,111598.39,20230531,,A0FF",
                                     "01,31, ,23312000000022697648,111598.39,20230531, ,A0FF"])
def test_fully_digital_payload_carries_the_total(payload):
    qr = parse_payload(payload)
    assert qr.invoice_code is None and qr.check_code is None and qr.fully_digital
    assert (qr.invoice_number, qr.amount_kind, qr.total, qr.subtotal) == ("23312000000022697648", "incl_tax", 111598.39, None)


def test_shenzhen_verify_url_carries_the_total_in_fen():
    qr = parse_payload("https://bcfp.shenzhen.chinatax.gov.cn/verify/scan?hash=018f2d86&bill_num=02730522&total_amount=3720")
    assert (qr.invoice_number, qr.total, qr.invoice_type, qr.issue_date) == ("02730522", 37.2, None, None)


@pytest.mark.parametrize("text", ["", "hello", "https://example.com/?a=1", "01,10,abc", "02,10,1,12345678,1.00,20200101",
                                  "01,1X,051002200411,19975685,16.89,20230625"])
def test_not_an_invoice_payload(text):
    assert parse_payload(text) is None


def test_no_code_on_blank_or_tiny_images():
    assert decode(Image.new("RGB", (400, 300), "white")) is None
    assert decode(Image.new("RGB", (5, 5), "white")) is None


def test_other_qr_codes_are_ignored():

    from tests.cn_documents import _qr_image

    page = Image.new("RGB", (600, 400), "white")
    page.paste(_qr_image("https://example.com/menu", 160), (40, 40))
    assert decode(page) is None


@pytest.mark.skipif(not have_fonts(), reason="fonts-wqy-microhei is not installed")
@pytest.mark.parametrize("layout, seed, photo", [("provincial", 1, True), ("digital", 2, True),
                                                 ("provincial", 3, "hard"), ("digital", 4, "hard")])
def test_decodes_synthetic_pages(layout, seed, photo):
    image, truth = render_vat_invoice(seed, layout, photo=photo)
    qr = decode(image)
    assert qr is not None and qr.raw == truth["qr_payload"]
    assert qr.invoice_number == truth["invoice_number"] and qr.issue_date == truth["transaction_date"]
    if layout == "provincial":
        assert qr.subtotal == truth["subtotal"] and qr.invoice_code == truth["invoice_code"]
    else:
        assert qr.total == truth["total"] and qr.invoice_code is None
    x0, y0, x1, y1 = qr.box
    assert 0 <= x0 < x1 < image.width / 3 and 0 <= y0 < y1 < image.height / 3  # top left, where it is printed


def test_real_dev_pages():
    """30 of the 32 pages show a code (two OFD renders draw none); each agrees with the labels:
    older types carry 合计金额 (before tax), 数电票 and Shenzhen's URL 价税合计."""
    folder = dev_set("cn-fapiao-dev")
    records = [json.loads(l) for l in (folder / "labels.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    found = 0
    for rec in records:
        qr = decode(Image.open(folder / rec["file"]))
        if qr is None:
            continue
        found += 1
        f = rec["fields"]
        assert qr.invoice_number == f["invoice_number"], rec["file"]
        assert qr.issue_date in (None, f["issue_date"])
        assert qr.invoice_code in (None, f.get("invoice_code"))
        want = f["total_amount"] if qr.amount_kind == "incl_tax" else f["amount_excl_tax"]
        assert abs(qr.amount - want) < 0.005, rec["file"]
        if qr.invoice_type == "10":
            assert qr.amount_kind == "excl_tax"
        if qr.invoice_type in ("31", "32"):
            assert qr.amount_kind == "incl_tax"
    assert found >= 30
