"""The documents expense claims are made of, through the whole service: OFD and ZUGFeRD
originals read from their own data, VAT invoices from the page with their QR code, `sources`
on every field, and the invoice checks (tax-id check digits, QR agreement, the same invoice
claimed twice)."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from docket import invoice_facts
from docket.pages import text_layer_is_garbage
from tests.conftest import DOCKET, ROOT, base_env
from tests.devdata import REPO_DATA, dev_set, record
from worker.extract.category import categorize

# Real originals the repository carries (tests/data/README.md): a 全电 OFD read through its invoice
# tags, a provincial OFD with its invoice XML, a ZUGFeRD PDF; the VAT-invoice PDFs of the dev set
# state no licence, so that one is read from ../shared/data only.
REPO_FAPIAO = REPO_DATA / "cn-fapiao-dev"
REPO_ZUGFERD = REPO_DATA / "zugferd-dev"
OFD = REPO_FAPIAO / "files" / "renoyuan__25924000000001260164.ofd"
OFD_WITH_XML = REPO_FAPIAO / "files" / "renoyuan__00008006.ofd"
ZUGFERD = REPO_ZUGFERD / "files" / "EN16931_OEPNV.pdf"
FAPIAO_PDF = "files/mxvc__27086599.pdf"


def analyze(tmp_path, files) -> dict[str, dict]:
    result = subprocess.run([DOCKET, "analyze", *map(str, files), "--rule", "expense_policy", "--json"],
                            env=base_env(tmp_path / "data"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = {json.loads(line)["file"].rsplit("/", 1)[-1]: json.loads(line) for line in result.stdout.splitlines()}
    assert len(out) == len(files), result.stderr[-3000:]
    for doc in out.values():
        assert doc["status"] == "succeeded" and doc["decision"] in ("approve", "needs_review", "reject"), doc
    return out


def test_docket_analyze_reads_ofd_and_zugferd_originals(tmp_path):
    out = analyze(tmp_path, [OFD, ZUGFERD])

    ofd = out[OFD.name]
    truth = record(REPO_FAPIAO, OFD.name)["fields"]
    fields = ofd["fields"]
    assert fields["merchant_name"] == truth["seller_name"] and fields["buyer_name"] == truth["buyer_name"]
    assert fields["total"] == truth["total_amount"] and fields["transaction_date"] == truth["issue_date"]
    assert fields["invoice_number"] == truth["invoice_number"] and fields["currency"] == "CNY"
    assert fields["document_kind"] == "vat_invoice"
    assert ofd["sources"]["merchant_name"] == "embedded_xml" and ofd["sources"]["total"] == "embedded_xml"

    zug = out[ZUGFERD.name]
    truth = record(REPO_ZUGFERD, ZUGFERD.name)["fields"]
    assert zug["fields"]["merchant_name"] == truth["seller_name"] and zug["fields"]["total"] == truth["grand_total"]
    assert zug["fields"]["currency"] == truth["currency"] and zug["fields"]["document_kind"] == "invoice"
    assert zug["sources"]["total"] == "embedded_xml"


def test_docket_analyze_reads_fapiao_pdf_text_layer_and_qr(tmp_path):
    folder = dev_set("cn-fapiao-dev")
    pdf = analyze(tmp_path, [folder / FAPIAO_PDF])[FAPIAO_PDF.rsplit("/", 1)[-1]]
    truth = record(folder, FAPIAO_PDF.rsplit("/", 1)[-1])["fields"]
    assert pdf["fields"]["merchant_name"] == truth["seller_name"] and pdf["fields"]["total"] == truth["total_amount"]
    assert pdf["fields"]["seller_tax_id"] == truth["seller_tax_id"]
    assert pdf["sources"]["merchant_name"] == "text_layer"  # the PDF's own (sound) text
    assert pdf["sources"]["invoice_number"] == "qr"  # confirmed by the printed QR code
    assert pdf["fields"]["expense_category"] == "transport"  # *运输服务*… on the item line
    # The Chinese invoices are in CNY and the shipped policy's limits in MYR: converted at the
    # invoice's date (the ECB history shipped with Docket), so no person is needed for that.
    assert pdf["converted"]["currency"] == "MYR" and pdf["converted"]["source"] == "ecb"
    assert pdf["converted"]["amount"] == round(truth["total_amount"] * pdf["converted"]["rate"], 2)
    assert not any(r["check"] == "foreign_currency" for r in pdf["reasons"])


def test_the_same_invoice_claimed_twice_goes_to_review(server):
    data = OFD_WITH_XML.read_bytes()
    first_id = server.http.post(f"{server.url}/v1/jobs", files={"file": ("inv.ofd", data)},
                                data={"rule": "expense_policy"}, timeout=30).json()["id"]
    first = server.wait_job(first_id)
    assert first["status"] == "succeeded" and first["document"]["mime_type"] == "application/ofd"
    assert first["sources"]["invoice_number"] == "embedded_xml"
    assert not any(r["check"] == "duplicate_invoice" for r in first["reasons"])
    # Rules that read history are never answered from the decision cache: it is analysed again.
    again = server.wait_job(server.http.post(f"{server.url}/v1/jobs", files={"file": ("copy.ofd", data)},
                                             data={"rule": "expense_policy"}, timeout=30).json()["id"])
    assert again["cached_from"] is None
    dup = [r for r in again["reasons"] if r["check"] == "duplicate_invoice"]
    assert dup and dup[0]["outcome"] == "needs_review" and first_id in dup[0]["message"]
    assert again["decision"] != "approve"  # (a 2022 invoice is also out of the claim window: reject)
    page = server.http.get(f"{server.url}/v1/jobs/{first_id}/pages/1", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"] == "image/png"


# Real unified social credit codes of public companies' invoices (from the dev set's labels).
VALID_USCC = "91320594MA1MFD7F31"


def test_invalid_tax_ids_by_check_digit():
    assert invoice_facts.invalid_tax_ids({"seller_tax_id": VALID_USCC}) == []
    broken = VALID_USCC[:-1] + ("0" if VALID_USCC[-1] != "0" else "1")
    assert invoice_facts.invalid_tax_ids({"seller_tax_id": VALID_USCC, "buyer_tax_id": broken}) == [broken]
    # Older 15/20-character numbers and foreign VAT ids carry no such check digit: not judged.
    assert invoice_facts.invalid_tax_ids({"seller_tax_id": "510124MA6794X98", "buyer_tax_id": "DE123456789"}) == []


def test_qr_mismatches_compare_what_both_carry():
    qr = {"invoice_number": "27086599", "invoice_code": "032002100611", "date": "2022-08-30", "amount": 15.94,
          "amount_field": "subtotal"}
    printed = {"invoice_number": "27086599", "invoice_code": "032002100611", "transaction_date": "2022-08-30",
               "subtotal": 15.94, "total": 15.94}
    assert invoice_facts.qr_mismatches(printed, qr) == []
    assert invoice_facts.qr_mismatches({**printed, "subtotal": 115.94, "transaction_date": "2022-08-31"}, qr) == [
        "transaction_date", "subtotal"]
    assert invoice_facts.qr_mismatches({"total": 1.0}, None) == []
    assert invoice_facts.qr_mismatches({}, qr) == []  # nothing printed read: nothing to compare


def test_garbage_text_layers_are_noticed():
    assert not text_layer_is_garbage("Rechnung Nr. 471102\nGesamtbetrag 529,87 EUR\nMusterlieferant GmbH " * 3)
    assert not text_layer_is_garbage("购买方 名称：中铁文化旅游投资集团有限公司 价税合计（小写）¥15.94 " * 3)
    # A broken font encoding: control characters where the labels should be.
    assert text_layer_is_garbage("\x01\x02\x03 \x04\x05 91520000MA6DKWDM90 \x06\x07\x08\x0e\x0f 2022 " * 5)
    # Glyphs mapped to the wrong letters: consonant soup strewn one or two at a time.
    assert text_layer_is_garbage("SStesg g gg g eg Rr tt sk d ff g h jj k l Bcdfg hjk lmnp qrst " * 4)


def test_expense_categories():
    assert categorize({"document_kind": "train_ticket"}) == "travel"
    assert categorize({"items": [{"description": "*住宿服务*住宿费", "amount": 300.0}]}) == "lodging"
    assert categorize({"items": [{"description": "*餐饮服务*餐费", "amount": 80.0}]}) == "meals"
    assert categorize({"items": [{"description": "*经营租赁*通行费", "amount": 20.0}]}) == "transport"
    assert categorize({"merchant_name": "Grand Hotel Berlin"}) == "lodging"
    assert categorize({"merchant_name": "ACME Widgets"}) == "other"


def test_thin_pages_render_for_people(tmp_path):
    # XML e-invoices have no page: people see their text drawn on one.
    from docket.pages import _text_page

    page = _text_page("SellerTradeParty: 上海慧梓电子科技有限公司\nGrandTotalAmount: 111598.39", 2560)
    assert isinstance(page, Image.Image) and page.getbbox() is not None
    dark = int((np.asarray(page.convert("L")) < 128).sum())
    assert dark > 200  # the text is drawn (CJK included), not a blank page


@pytest.mark.parametrize("fields,expected", [
    ({"seller_tax_id": "91320594MA1MFD7F31", "invoice_number": "27086599"}, "91320594MA1MFD7F31|27086599"),
    ({"merchant_name": "中国铁路", "invoice_number": "Z12E045678"}, "中国铁路|Z12E045678"),
    ({"merchant_name": "Shop"}, None),
])
def test_invoice_identity(fields, expected):
    from db.review_queue import invoice_key

    assert invoice_key(fields) == expected


def test_pdf_invoices_are_read_as_invoices_in_their_own_currency(tmp_path):
    # Generic PDF invoices (no embedded XML) go to the invoice extractor, page by page: the
    # issuer from the letterhead, the currency printed (never the deployment's MYR default).
    from docket.pages import prepare
    from tests.invoice_documents import synthetic_invoice
    from worker import ocr
    from worker.extract.expense import read_expense

    right = 0
    for seed in range(200, 210):
        invoice = synthetic_invoice(seed)
        path = tmp_path / f"{seed}.pdf"
        path.write_bytes(invoice.pdf)
        reading = read_expense(prepare(path, "application/pdf", max_side=2560, max_pages=10), ocr.recognise, "MYR")
        fields = reading.extraction.fields
        assert reading.read_from == "text_layer" and fields["document_kind"] == "invoice"
        assert reading.extraction.sources["total"] == "text_layer"
        right += sum(fields.get(k) == invoice.truth.get(k) for k in ("merchant_name", "total", "currency",
                                                                        "transaction_date"))
    assert right >= 38, right  # of 40
