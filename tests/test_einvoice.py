"""European e-invoices (CII: ZUGFeRD 1.0/2.x, Factur-X, XRechnung; UBL 2.1 Invoice/CreditNote):
sniffing, reading the XML, finding it inside a PDF, and refusing hostile XML. Unit tests use small
documents written here; one real hybrid comes from tests/data, all 15 from ../shared/data/zugferd-dev."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from docket.documents import inspect, sniff
from docket.errors import DocumentError
from docket.pdfium_lock import PDFIUM
from tests.devdata import REPO_DATA, dev_set, labels
from worker.extract.einvoice import (looks_like_xml_invoice, pdf_invoice_xml, read_pdf_invoice, read_xml_invoice,
                                     xml_invoice_info)

REPO_ZUGFERD = REPO_DATA / "zugferd-dev"  # one real hybrid (tests/data/README.md); all 15 in ../shared/data

CII = """<?xml version="1.0" encoding="UTF-8"?>
<!-- a licence comment long enough to push the root element past the first KiB: {pad} -->
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext>
    <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>RE-2024-0042</ram:ID><ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">20240229</udt:DateTimeString></ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:AssociatedDocumentLineDocument><ram:LineID>1</ram:LineID></ram:AssociatedDocumentLineDocument>
      <ram:SpecifiedTradeProduct><ram:Name>Beratung
        (Stunden)</ram:Name></ram:SpecifiedTradeProduct>
      <ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode="HUR">2</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>
      <ram:SpecifiedLineTradeSettlement>
        <ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>200.00</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>
      </ram:SpecifiedLineTradeSettlement>
    </ram:IncludedSupplyChainTradeLineItem>
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:AssociatedDocumentLineDocument><ram:IncludedNote><ram:Content>Nur ein Hinweis</ram:Content></ram:IncludedNote></ram:AssociatedDocumentLineDocument>
    </ram:IncludedSupplyChainTradeLineItem>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:SellerTradeParty>
        <ram:Name>Beispiel  GmbH</ram:Name>
        <ram:PostalTradeAddress><ram:PostcodeCode>10115</ram:PostcodeCode><ram:LineOne>Hauptstr. 1</ram:LineOne>
          <ram:CityName>Berlin</ram:CityName><ram:CountryID>DE</ram:CountryID></ram:PostalTradeAddress>
        <ram:SpecifiedTaxRegistration><ram:ID schemeID="FC">12/345/67890</ram:ID></ram:SpecifiedTaxRegistration>
        <ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">DE999999999</ram:ID></ram:SpecifiedTaxRegistration>
      </ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>Kunde AG</ram:Name></ram:BuyerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:TaxCurrencyCode>CHF</ram:TaxCurrencyCode>
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
        <ram:LineTotalAmount>200.00</ram:LineTotalAmount>
        <ram:TaxBasisTotalAmount>200.00</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="CHF">37.10</ram:TaxTotalAmount>
        <ram:TaxTotalAmount currencyID="EUR">38.00</ram:TaxTotalAmount>
        <ram:GrandTotalAmount>238.00</ram:GrandTotalAmount>
        <ram:TotalPrepaidAmount>100.00</ram:TotalPrepaidAmount>
        <ram:DuePayableAmount>138.00</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
""".replace("{pad}", "x" * 2000).encode("utf-8")

ZUGFERD_1 = b"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryDocument xmlns:rsm="urn:ferd:CrossIndustryDocument:invoice:1p0"
  xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12"
  xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15">
  <rsm:SpecifiedExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>
    <ram:ID>urn:ferd:CrossIndustryDocument:invoice:1p0:comfort</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:SpecifiedExchangedDocumentContext>
  <rsm:HeaderExchangedDocument><ram:ID>K-77</ram:ID><ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">20131231</udt:DateTimeString></ram:IssueDateTime>
  </rsm:HeaderExchangedDocument>
  <rsm:SpecifiedSupplyChainTradeTransaction>
    <ram:ApplicableSupplyChainTradeAgreement>
      <ram:SellerTradeParty><ram:Name>Alt Lieferant KG</ram:Name></ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>Alt Kunde</ram:Name></ram:BuyerTradeParty>
    </ram:ApplicableSupplyChainTradeAgreement>
    <ram:ApplicableSupplyChainTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradeSettlementMonetarySummation>
        <ram:TaxBasisTotalAmount currencyID="EUR">-7.67</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="EUR">-1.12</ram:TaxTotalAmount>
        <ram:GrandTotalAmount currencyID="EUR">-8.79</ram:GrandTotalAmount>
        <ram:DuePayableAmount currencyID="EUR">0.00</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementMonetarySummation>
    </ram:ApplicableSupplyChainTradeSettlement>
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:SpecifiedSupplyChainTradeDelivery><ram:BilledQuantity unitCode="C62">-1.0000</ram:BilledQuantity></ram:SpecifiedSupplyChainTradeDelivery>
      <ram:SpecifiedSupplyChainTradeSettlement><ram:SpecifiedTradeSettlementMonetarySummation>
        <ram:LineTotalAmount currencyID="EUR">-7.67</ram:LineTotalAmount></ram:SpecifiedTradeSettlementMonetarySummation>
      </ram:SpecifiedSupplyChainTradeSettlement>
      <ram:SpecifiedTradeProduct><ram:Name>Gutschrift Joghurt</ram:Name></ram:SpecifiedTradeProduct>
    </ram:IncludedSupplyChainTradeLineItem>
  </rsm:SpecifiedSupplyChainTradeTransaction>
</rsm:CrossIndustryDocument>
"""

UBL = """<?xml version="1.0" encoding="UTF-8"?>
<{root} xmlns="urn:oasis:names:specification:ubl:schema:xsd:{root}-2"
  xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0</cbc:CustomizationID>
  <cbc:ID>UBL-{root}-1</cbc:ID>
  <cbc:IssueDate>2025-01-31</cbc:IssueDate>
  <cbc:{root}TypeCode>{code}</cbc:{root}TypeCode>
  <cbc:DocumentCurrencyCode>SEK</cbc:DocumentCurrencyCode>
  <cac:AccountingSupplierParty><cac:Party>
    <cac:PartyName><cbc:Name>Handelsname</cbc:Name></cac:PartyName>
    <cac:PostalAddress><cbc:StreetName>Storgatan 1</cbc:StreetName><cbc:CityName>Stockholm</cbc:CityName>
      <cbc:PostalZone>111 22</cbc:PostalZone><cac:Country><cbc:IdentificationCode>SE</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
    <cac:PartyTaxScheme><cbc:CompanyID>5560000000</cbc:CompanyID><cac:TaxScheme><cbc:ID>TAX</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
    <cac:PartyTaxScheme><cbc:CompanyID>SE556000000001</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
    <cac:PartyLegalEntity><cbc:RegistrationName>Leverantör AB</cbc:RegistrationName></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party>
    <cac:PartyName><cbc:Name>Köpare</cbc:Name></cac:PartyName>
    <cac:PartyTaxScheme><cbc:CompanyID>SE559999999901</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
  </cac:Party></cac:AccountingCustomerParty>
  <cac:TaxTotal><cbc:TaxAmount currencyID="SEK">250.00</cbc:TaxAmount></cac:TaxTotal>
  <cac:TaxTotal><cbc:TaxAmount currencyID="EUR">21.90</cbc:TaxAmount></cac:TaxTotal>
  <cac:LegalMonetaryTotal>
    <cbc:LineExtensionAmount currencyID="SEK">1000.00</cbc:LineExtensionAmount>
    <cbc:TaxExclusiveAmount currencyID="SEK">1000.00</cbc:TaxExclusiveAmount>
    <cbc:TaxInclusiveAmount currencyID="SEK">1250.00</cbc:TaxInclusiveAmount>
    <cbc:PayableAmount currencyID="SEK">1250.00</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
  <cac:{root}Line><cbc:ID>1</cbc:ID><cbc:{qty} unitCode="EA">4</cbc:{qty}>
    <cbc:LineExtensionAmount currencyID="SEK">1000.00</cbc:LineExtensionAmount>
    <cac:Item><cbc:Description>A long text</cbc:Description><cbc:Name>Kontorsstol</cbc:Name></cac:Item></cac:{root}Line>
</{root}>
"""
UBL_INVOICE = UBL.format(root="Invoice", code="380", qty="InvoicedQuantity").encode("utf-8")
UBL_CREDIT = UBL.format(root="CreditNote", code="381", qty="CreditedQuantity").encode("utf-8")

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100">&lol2;</rsm:CrossIndustryInvoice>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>&xxe;</ID></Invoice>
"""
NOT_AN_INVOICE = b'<?xml version="1.0"?><order xmlns="urn:example:orders"><id>1</id></order>'


# -- sniffing ---------------------------------------------------------------------------------


def test_sniffing():
    assert looks_like_xml_invoice(CII[:65536]) and looks_like_xml_invoice(ZUGFERD_1)
    assert looks_like_xml_invoice(UBL_INVOICE) and looks_like_xml_invoice(UBL_CREDIT)
    assert looks_like_xml_invoice(b"\xef\xbb\xbf" + UBL_INVOICE)
    assert looks_like_xml_invoice(UBL_INVOICE.decode("utf-8").encode("utf-16"))
    assert looks_like_xml_invoice(BILLION_LAUGHS)   # the root decides; parsing refuses it later
    assert not looks_like_xml_invoice(CII[:1024])   # the root is past the first KiB
    assert not looks_like_xml_invoice(NOT_AN_INVOICE)
    assert not looks_like_xml_invoice(b'<Invoice xmlns="urn:example:not-ubl"/>')
    assert not looks_like_xml_invoice(b"<html><body>Invoice</body></html>")
    assert not looks_like_xml_invoice(b"just some words, not a document\n")
    assert not looks_like_xml_invoice(b"%PDF-1.7\n")
    assert sniff(UBL_INVOICE[:1024]) == "application/xml"
    assert sniff(NOT_AN_INVOICE) is None


# -- reading ----------------------------------------------------------------------------------


def test_cii_2x():
    ex = read_xml_invoice(CII)
    assert ex.fields == {
        "document_kind": "invoice", "invoice_number": "RE-2024-0042", "transaction_date": "2024-02-29",
        "merchant_name": "Beispiel GmbH", "merchant_address": "Hauptstr. 1, 10115 Berlin, DE",
        "seller_tax_id": "DE999999999", "buyer_name": "Kunde AG", "currency": "EUR",
        "subtotal": 200.0, "tax": 38.0, "total": 238.0,   # VAT in the invoice currency; total incl. VAT
        "items": [{"description": "Beratung (Stunden)", "amount": 200.0, "quantity": 2.0}],
    }
    assert set(ex.sources.values()) == {"embedded_xml"} and set(ex.sources) == set(ex.fields)
    info = xml_invoice_info(CII)
    assert (info.syntax, info.type_code, info.profile) == ("CII", "380", "urn:cen.eu:en16931:2017")
    assert (info.due_payable, info.prepaid) == (138.0, 100.0)


def test_zugferd_1_correction():
    ex = read_xml_invoice(ZUGFERD_1)
    assert ex.fields["invoice_number"] == "K-77" and ex.fields["transaction_date"] == "2013-12-31"
    assert ex.fields["merchant_name"] == "Alt Lieferant KG" and ex.fields["buyer_name"] == "Alt Kunde"
    assert (ex.fields["total"], ex.fields["subtotal"], ex.fields["tax"]) == (-8.79, -7.67, -1.12)
    assert ex.fields["items"] == [{"description": "Gutschrift Joghurt", "amount": -7.67, "quantity": -1.0}]
    assert "seller_tax_id" not in ex.fields and "merchant_address" not in ex.fields
    assert xml_invoice_info(ZUGFERD_1).due_payable == 0.0


@pytest.mark.parametrize("data,code", [(UBL_INVOICE, "380"), (UBL_CREDIT, "381")])
def test_ubl(data, code):
    ex = read_xml_invoice(data)
    root = "Invoice" if code == "380" else "CreditNote"
    assert ex.fields == {
        "document_kind": "invoice", "invoice_number": f"UBL-{root}-1", "transaction_date": "2025-01-31",
        "merchant_name": "Leverantör AB", "merchant_address": "Storgatan 1, 111 22 Stockholm, SE",
        "seller_tax_id": "SE556000000001", "buyer_name": "Köpare", "buyer_tax_id": "SE559999999901",
        "currency": "SEK", "subtotal": 1000.0, "tax": 250.0, "total": 1250.0,
        "items": [{"description": "Kontorsstol", "amount": 1000.0, "quantity": 4.0}],
    }
    info = xml_invoice_info(data)
    assert (info.syntax, info.root, info.type_code) == ("UBL", root, code)


def test_hostile_and_foreign_xml():
    assert read_xml_invoice(NOT_AN_INVOICE) is None
    assert read_xml_invoice(b"") is None
    for hostile in (BILLION_LAUGHS, EXTERNAL_ENTITY):
        with pytest.raises(DocumentError, match="DTD or entity") as err:
            read_xml_invoice(hostile)
        assert err.value.code == "corrupt_document"
    with pytest.raises(DocumentError, match="not well-formed"):
        read_xml_invoice(UBL_INVOICE[:700])


def test_items_are_capped_and_cleaned():
    line = ('<cac:InvoiceLine><cbc:InvoicedQuantity>1</cbc:InvoicedQuantity><cbc:LineExtensionAmount currencyID="SEK">'
            '1.00</cbc:LineExtensionAmount><cac:Item><cbc:Name>' + "Stol\u0085 " * 100 + '</cbc:Name></cac:Item></cac:InvoiceLine>')
    data = UBL_INVOICE.decode("utf-8").replace("</Invoice>", line * 80 + "</Invoice>").encode("utf-8")
    items = read_xml_invoice(data).fields["items"]
    assert len(items) == 50
    assert all(len(i["description"]) <= 200 and "\u0085" not in i["description"] for i in items)


# -- documents.inspect --------------------------------------------------------------------------


def test_inspect_accepts_invoice_xml_only(tmp_path):
    for name, data in (("cii.xml", CII), ("z1.xml", ZUGFERD_1), ("ubl.bin", UBL_INVOICE), ("cn", UBL_CREDIT)):
        path = tmp_path / name
        path.write_bytes(data)
        info = inspect(path, max_pixels=10**6, max_pages=1)
        assert (info.mime_type, info.page_count) == ("application/xml", 1)
    cases = {"order.xml": (NOT_AN_INVOICE, "unsupported_type"), "lol.xml": (BILLION_LAUGHS, "corrupt_document"),
             "xxe.xml": (EXTERNAL_ENTITY, "corrupt_document"), "cut.xml": (UBL_INVOICE[:700], "corrupt_document")}
    for name, (data, code) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DocumentError) as err:
            inspect(path, max_pixels=10**6, max_pages=1)
        assert err.value.code == code, name


# -- PDF hybrids ------------------------------------------------------------------------------


def make_pdf(path: Path, attachments: dict[str, bytes]) -> Path:
    import pypdfium2 as pdfium

    with PDFIUM:   # PDFium is not thread-safe: hold the project's lock while building too
        pdf = pdfium.PdfDocument.new()
        try:
            pdf.new_page(595, 842).close()
            for name, data in attachments.items():
                pdf.new_attachment(name).set_data(data)
            buf = io.BytesIO()
            pdf.save(buf)
        finally:
            pdf.close()
    path.write_bytes(buf.getvalue())
    return path


def test_pdf_attachment_lookup(tmp_path):
    hybrid = make_pdf(tmp_path / "fx.pdf", {"notes.txt": b"hello", "factur-x.xml": CII})
    assert pdf_invoice_xml(hybrid) == CII
    assert read_pdf_invoice(hybrid).fields["invoice_number"] == "RE-2024-0042"
    # the prescribed name wins over another attached invoice XML
    both = make_pdf(tmp_path / "both.pdf", {"copy.xml": UBL_INVOICE, "ZUGFeRD-invoice.xml": ZUGFERD_1})
    assert pdf_invoice_xml(both) == ZUGFERD_1
    odd_name = make_pdf(tmp_path / "odd.pdf", {"order.xml": NOT_AN_INVOICE, "rechnung_123.xml": UBL_INVOICE})
    assert pdf_invoice_xml(odd_name) == UBL_INVOICE
    # a prescribed name holding something else is not taken for an invoice
    assert pdf_invoice_xml(make_pdf(tmp_path / "fake.pdf", {"factur-x.xml": NOT_AN_INVOICE})) is None
    assert pdf_invoice_xml(make_pdf(tmp_path / "none.pdf", {})) is None
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF")
    with pytest.raises(DocumentError) as err:
        pdf_invoice_xml(broken)
    assert err.value.code == "corrupt_document"


# -- the real hybrids ---------------------------------------------------------------------------


def assert_every_labelled_field(folder: Path, rows: list[dict]) -> None:
    checks = {"seller_name": "merchant_name", "buyer_name": "buyer_name", "issue_date": "transaction_date",
              "grand_total": "total", "currency": "currency", "invoice_number": "invoice_number", "tax_total": "tax",
              "net_total": "subtotal"}
    misses = []
    for row in rows:
        path = folder / row["file"]
        xml = pdf_invoice_xml(path)
        assert xml is not None, row["file"]
        ex = read_xml_invoice(xml)
        for label, field in checks.items():
            want, got = row["fields"][label], ex.fields.get(field)
            if isinstance(want, float):
                ok = got is not None and abs(got - want) < 0.006
            else:
                ok = got is not None and re.sub(r"\s+", " ", str(got)).strip() == re.sub(r"\s+", " ", str(want)).strip()
            if not ok:
                misses.append((row["file"], label, want, got))
        info = xml_invoice_info(xml)
        assert info.type_code == row["fields"]["type_code"]
        assert abs(info.due_payable - row["fields"]["due_payable"]) < 0.006
        assert ex.fields["document_kind"] == "invoice"
    assert not misses


def test_repo_zugferd_pdf():
    rows = labels(REPO_ZUGFERD)
    assert len(rows) == 1
    assert_every_labelled_field(REPO_ZUGFERD, rows)


def test_real_zugferd_pdfs():
    folder = dev_set("zugferd-dev")
    rows = labels(folder)
    assert len(rows) == 15
    assert_every_labelled_field(folder, rows)
