"""Document kind from OCR text (worker.extract.kind.classify): hand-made lines, fast."""
from __future__ import annotations

import pytest

from worker.extract.kind import KINDS, classify
from worker.ocr import OcrLine


def lines(*texts):
    return [OcrLine(t, (0.0, 30.0 * i, 300.0, 30.0 * i + 24), 0.99) for i, t in enumerate(texts)]


VAT_OLD = lines("江苏增值税电子普通发票", "发票代码：032002100611", "发票号码：27086599", "开票日期：2022年08月30日",
                "名称：某某科技有限公司", "纳税人识别号：91320594MA1MFD7F31", "价税合计（大写）", "(小写)¥15.94")
VAT_DIGITAL = lines("电子发票（普通发票）", "发票号码：24312000000012345678", "购买方信息", "销售方信息",
                    "名称：某某科技有限公司", "统一社会信用代码/纳税人识别号：91320594MA1MFD7F31", "项目名称", "合计",
                    "¥100.00", "价税合计（大写）", "(小写)¥106.00")
VAT_BLURRED_TITLE = lines("电了发杂(普通发杂)", "开票日期：2023年12月21日", "名称:某某科技有限公司", "规格型号",
                          "价税合计(大写)", "(小写)¥25774.35")
PAPER_TICKET = lines("C028237", "日照西站", "D1692", "青岛北站", "2019年04月21日18:41开", "08车06F号", "¥57.0元",
                     "二等座", "限乘当日当次车", "中国铁路祝您旅途愉快")
RAIL_EINVOICE = lines("电子发票（铁路电子客票）", "发票号码：24329116804000515620", "开票日期：2024年11月20日",
                      "南京南站", "G7237", "上海虹桥站", "2024年11月16日 08:35开", "05车12F号", "二等座", "票价：￥139.50",
                      "购买方名称：某某科技有限公司", "统一社会信用代码：91330106MA2AXKD427")
ENGLISH_INVOICE = lines("ACME Widgets Ltd", "INVOICE", "Invoice No: INV-2024-0042", "Bill To:", "Jane Doe",
                        "Due Date: 30/04/2024", "Total USD 1,250.00")
GERMAN_INVOICE = lines("Musterfirma GmbH", "Rechnung", "Rechnungsnummer: 471102", "Rechnungsdatum: 05.03.2024",
                       "Gesamtbetrag 529,00 EUR", "IBAN DE02 1203 0000 0000 2020 51")
FRENCH_INVOICE = lines("Société Exemple SARL", "FACTURE N° 2024-17", "Date d'échéance : 15/04/2024",
                       "Total TTC 240,00 €")
TILL_TAX_INVOICE = lines("KEDAI BUKU MAJU SDN BHD", "GST REG NO: 001234567890", "TAX INVOICE", "Invoice No: 12345",
                         "Date: 25/12/2018 10:15", "NOTEBOOK A5 12.50", "TOTAL RM 34.50", "CASH RM 50.00", "CHANGE 15.50")
CN_RECEIPT = lines("全家便利店", "上海市徐汇区漕溪北路88号", "2023-05-04 12:30", "饭团 8.50", "合计 ¥8.50",
                   "如需发票请扫码", "谢谢惠顾")


@pytest.mark.parametrize("doc, kind", [
    (VAT_OLD, "vat_invoice"), (VAT_DIGITAL, "vat_invoice"), (VAT_BLURRED_TITLE, "vat_invoice"),
    (PAPER_TICKET, "train_ticket"), (RAIL_EINVOICE, "train_ticket"),
    (ENGLISH_INVOICE, "invoice"), (GERMAN_INVOICE, "invoice"), (FRENCH_INVOICE, "invoice"),
    (TILL_TAX_INVOICE, "receipt"), (CN_RECEIPT, "receipt"),
    ([], "other"), (lines("Hello"), "other"), (lines("THANK YOU FOR VISITING", "SEE YOU AGAIN SOON"), "other"),
])
def test_classify(doc, kind):
    assert classify(doc) == kind
    assert kind in KINDS


def test_plain_strings_work_too():
    assert classify(["中国铁路祝您旅途愉快", "G124", "二等座", "2015年07月10日12:21开"]) == "train_ticket"


def test_a_railway_company_on_a_vat_invoice_is_not_a_ticket():
    doc = lines("四川增值税电子普通发票", "发票代码：051002100211", "开票日期：2022年08月25日",
                "名称：中铁文化旅游投资集团有限公司", "纳税人识别号：91520000MA6DKWDM90",
                "*运输服务*铁路旅客运输服务", "价税合计（大写）", "(小写)¥759.00")
    assert classify(doc) == "vat_invoice"


def test_an_invoice_qr_decides_when_the_text_cannot():
    from worker.extract.fapiao_qr import parse_payload

    qr = parse_payload("01,10,051002100211,04868861,759,20220825,03363566567257437392,A2D5,")
    garbled = lines("", "051002100211", "04868861", " 2022年08月25日", "*住宿服务*住宿费", "¥759.00")
    assert classify(garbled) == "receipt"
    assert classify(garbled, qr=qr) == "vat_invoice"
    assert classify(PAPER_TICKET, qr=parse_payload("01,51,,24329116804000515620,139.50,20241120,,AB12")) == "train_ticket"
