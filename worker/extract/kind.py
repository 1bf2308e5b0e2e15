"""What kind of expense document a page is, from its OCR text alone.

`classify(lines) -> "train_ticket" | "vat_invoice" | "invoice" | "receipt" | "other"`.

Signals are counted, not single words, so that one stray word does not decide:
- train_ticket: China Railway vocabulary (中国铁路, 车次, 检票, seat classes 二等座/硬卧…,
  `18:41开`, `08车06F号`, 限乘当日当次车, 12306, 铁路电子客票) — two distinct signals. Checked first:
  the railway e-invoice (电子发票（铁路电子客票）) also prints 发票 and 购买方.
- vat_invoice: 发票 plus two of the VAT invoice's labels (价税合计, 购买方, 销售方, 纳税人识别号,
  统一社会信用代码, 发票代码, 发票号码, 开票日期, 税额, 密码区, （小写）, 名称：, 规格型号, 监制章), or four
  of them without 发票 (a blurred title).
- invoice: a Latin-script invoice title (INVOICE, Rechnung and its compounds, Facture, Factura…)
  plus something only invoices print (bill-to / due date / payment terms / IBAN / Käufer /
  USt-IdNr…). "TAX INVOICE" at the top of a till receipt alone is not enough.
- other: nothing legible, or no digit anywhere (an expense document always prints amounts).
- receipt: everything else.
"""
from __future__ import annotations

import re
import unicodedata

__all__ = ["classify", "KINDS"]

KINDS = ("receipt", "vat_invoice", "train_ticket", "invoice", "other")

_TRAIN_SIGNALS = [
    re.compile(r"中国铁路|铁路电子客票|铁路客票|中铁快运"),
    re.compile(r"车次"),
    re.compile(r"检票|检票口|候车"),
    re.compile(r"二等座|一等座|商务座|特等座|硬座|软座|硬卧|软卧|动卧|高级软卧|无座|新空调"),
    re.compile(r"\d{1,2}[:：]\d{2}开"),
    re.compile(r"\d{1,2}车\d{1,3}[A-F]?[号號]|\d{1,2}车(?:无座|\d{1,3}[上中下]铺)"),
    re.compile(r"限乘当日当次车|仅供报销使用|报销凭证|12306|95306"),
    re.compile(r"(?<![A-Z0-9])[GDCZTKYLS]\d{1,4}(?![0-9])次?.*站|站.*(?<![A-Z0-9])[GDCZTKYLS]\d{1,4}(?![0-9])"),
    re.compile(r"票价|始发|终到|席别|乘车"),
]
_VAT_SIGNALS = [
    re.compile(r"价税合计"),
    re.compile(r"购买方|购方|买方"),
    re.compile(r"销售方|销方"),
    re.compile(r"纳税人识别号|统一社会信用代码"),
    re.compile(r"发票代码"),
    re.compile(r"发票号码"),
    re.compile(r"开票日期"),
    re.compile(r"税额|税率"),
    re.compile(r"密码区|校验码|开票人"),
    re.compile(r"[（(]?小写[)）]|[（(]大写[)）]"),
    re.compile(r"名称[:：]|识别号|信用代码"),
    re.compile(r"规格型号|项目名称|货物或应税劳务"),
    re.compile(r"发票监制|监制章"),
]
# matched on the text with whitespace removed, upper-cased: titles come spaced out
# (`K O S T E N R E C H N U N G`) and German ones compounded (Handelsrechnung, Beitragsrechnung)
_INVOICE_TITLE = re.compile(r"INVOICE|RECHNUNG|FACTURE|FACTURA|FATTURA|FACTUUR|FAKTURA|NOTAFISCAL")
_INVOICE_ONLY = re.compile(
    r"BILL(?:ED)?TO|INVOICETO|SHIPTO|SOLDTO|DUEDATE|PAYMENTTERMS|PAYMENTDUE|TERMSOFPAYMENT|PAYABLE(?:BY|WITHIN)|"
    r"IBAN|SWIFT|PURCHASEORDER|P\.?O\.?(?:NO|NUMBER)|CUSTOMER(?:NO|NUMBER|ID)|SUPPLIER|"
    r"RECHNUNGS(?:NUMMER|DATUM|EMPF|W[ÄA]HRUNG)|KUNDEN-?N(?:R|UMMER)|ZAHLUNGSZIEL|ZAHLBAR|F[ÄA]LLIG|LEISTUNGS(?:DATUM|"
    r"ZEITRAUM|EMPF)|ABRECHNUNGSZEITRAUM|LIEFERSCHEIN|BESTELL-?N|UST\.?-?ID|STEUERNUMMER|STEUER-NR|K[ÄA]UFER|"
    r"[ÉE]CH[ÉE]ANCE|CONDITIONSDE(?:PAIEMENT|R[ÈE]GLEMENT)|FACTUR[ÉE][ÀA]|ADRESSEDEFACTURATION|N°TVA|SIRET|"
    r"FECHADEVENCIMIENTO|SCADENZA|PARTITAIVA"
)


def _texts(lines) -> list[str]:
    out = []
    for l in lines or []:
        t = getattr(l, "text", l)
        if isinstance(t, str) and t.strip():
            out.append(unicodedata.normalize("NFKC", t).strip())
    return out


def classify(lines, qr=None) -> str:
    """The document kind of OCR lines (objects with `.text`, or plain strings).

    `qr` (optional): the page's decoded invoice QR code (`fapiao_qr.decode`). A tax-bureau QR
    makes the page a VAT invoice even when its text says too little (a PDF text layer whose
    labels are unmapped glyphs); a railway e-ticket's code (type 51) makes it a train ticket.
    """
    texts = _texts(lines)
    flat = "".join(re.sub(r"\s+", "", t) for t in texts)
    # railway signals line by line (`.` stops at a line's end): a train number and a station
    # count only on one line, not anywhere in the document
    by_line = "\n".join(re.sub(r"\s+", "", t) for t in texts)
    train = sum(1 for rx in _TRAIN_SIGNALS if rx.search(by_line))
    if qr is not None:
        if getattr(qr, "invoice_type", None) == "51" or train >= 2:
            return "train_ticket"
        return "vat_invoice"
    if len(flat) < 8 or not re.search(r"\d", flat):
        return "other"
    if train >= 2:
        return "train_ticket"
    vat = sum(1 for rx in _VAT_SIGNALS if rx.search(flat))
    if (("发票" in flat or "發票" in flat) and vat >= 2) or vat >= 4:
        return "vat_invoice"
    upper = flat.upper()
    if _INVOICE_TITLE.search(upper) and _INVOICE_ONLY.search(upper):
        return "invoice"
    return "receipt"
