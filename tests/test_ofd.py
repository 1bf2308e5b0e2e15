"""OFD (GB/T 33190) e-invoices: detection, structure, invoice data, rendering, and hostile
archives. Unit tests build small OFDs here; two real ones come from tests/data, all six from
../shared/data."""
from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from docket import ofd
from docket.documents import inspect
from docket.errors import DocumentError
from tests.devdata import REPO_DATA, dev_set, labels
from worker.extract.ofd_invoice import ofd_invoice_type, read_ofd_invoice, read_ofd_invoice_and_type

NS = 'xmlns:ofd="http://www.ofdspec.org/2016"'
REPO_FAPIAO = REPO_DATA / "cn-fapiao-dev"  # two real OFDs (tests/data/README.md); all six in ../shared/data


def ofd_xml(doc_root: str = "Doc_0/Document.xml", custom: str = "") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD {NS} DocType="OFD" Version="1.1"><ofd:DocBody>'
            f'<ofd:DocInfo><ofd:DocID>x</ofd:DocID><ofd:CustomDatas>{custom}</ofd:CustomDatas></ofd:DocInfo>'
            f'<ofd:DocRoot>{doc_root}</ofd:DocRoot></ofd:DocBody></ofd:OFD>')


def document_xml(pages: list[str], attachments: bool = True, tags: bool = True) -> str:
    page_list = "".join(f'<ofd:Page ID="{i + 1}" BaseLoc="{loc}"/>' for i, loc in enumerate(pages))
    return (f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document {NS}><ofd:CommonData>'
            '<ofd:MaxUnitID>200</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 210 140</ofd:PhysicalBox>'
            '</ofd:PageArea><ofd:PublicRes>PublicRes.xml</ofd:PublicRes>'
            '<ofd:TemplatePage ID="2" BaseLoc="Tpls/Tpl_0/Content.xml"/></ofd:CommonData>'
            f'<ofd:Pages>{page_list}</ofd:Pages>'
            + ('<ofd:Attachments>Attachs/Attachments.xml</ofd:Attachments>' if attachments else "")
            + ('<ofd:CustomTags>Tags/CustomTags.xml</ofd:CustomTags>' if tags else "")
            + '</ofd:Document>')


def text_object(oid: int, x: float, y: float, text: str, size: float = 3.175, font: int = 3) -> str:
    width = size * len(text)
    return (f'<ofd:TextObject ID="{oid}" Boundary="{x} {y} {width + 2} {size + 2}" Font="{font}" Size="{size}">'
            f'<ofd:TextCode X="0" Y="{size}" DeltaX="g {max(len(text) - 1, 1)} {size}">{text}</ofd:TextCode>'
            '</ofd:TextObject>')


PAGE = (f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page {NS}><ofd:Template TemplateID="2" ZOrder="Background"/>'
        '<ofd:Content><ofd:Layer ID="100">'
        + text_object(10, 40, 20, "测试商贸有限公司")
        + text_object(11, 160, 10, "00012345")
        + text_object(12, 160, 15, "2024年03月05日")
        + text_object(13, 40, 30, "91310000MA1FL0001X", size=4)
        + text_object(14, 150, 95, "¥")
        + text_object(15, 154, 95, "106.00")
        + text_object(16, 10, 60, "*餐饮服务*餐费")
        + text_object(17, 130, 60, "100.00")
        + text_object(18, 40, 45, "买方科技有限公司")
        + '<ofd:PathObject ID="19" Boundary="5 5 200 130" LineWidth="0.5">'
          '<ofd:StrokeColor Value="128 0 0"/><ofd:AbbreviatedData>M 0 0 L 200 0 L 200 130 L 0 130 C'
          '</ofd:AbbreviatedData></ofd:PathObject>'
        + '</ofd:Layer></ofd:Content></ofd:Page>')

TEMPLATE = (f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page {NS}><ofd:Content><ofd:Layer ID="50">'
            + text_object(51, 60, 5, "上海增值税电子普通发票", size=6)
            + '<ofd:PathObject ID="52" Boundary="60 13 90 2"><ofd:AbbreviatedData>M 0 0 L 90 0 M 0 1 L 90 1'
              '</ofd:AbbreviatedData></ofd:PathObject>'
            + '</ofd:Layer></ofd:Content></ofd:Page>')

INVOICE_XML = ('<?xml version="1.0" encoding="utf-8"?><eInvoice xmlns:fp="http://www.edrm.org.cn/schema/e-invoice/2019">'
               '<fp:InvoiceCode>031001900111</fp:InvoiceCode><fp:InvoiceNo>00012345</fp:InvoiceNo>'
               '<fp:IssueDate>2024年03月05日</fp:IssueDate>'
               '<fp:Buyer><fp:BuyerName>买方科技有限公司</fp:BuyerName><fp:BuyerTaxID>91310000MA1FL0002Y</fp:BuyerTaxID></fp:Buyer>'
               '<fp:Seller><fp:SellerName>测试商贸有限公司</fp:SellerName><fp:SellerTaxID>91310000MA1FL0001X</fp:SellerTaxID>'
               '<fp:SellerAddrTel>上海市黄浦区南京东路1号 021-12345678</fp:SellerAddrTel></fp:Seller>'
               '<fp:TaxInclusiveTotalAmount>106.00</fp:TaxInclusiveTotalAmount>'
               '<fp:TaxTotalAmount>6.00</fp:TaxTotalAmount><fp:TaxExclusiveTotalAmount>100.00</fp:TaxExclusiveTotalAmount>'
               '<fp:GoodsInfos><fp:GoodsInfo><fp:Item>*餐饮服务*餐费</fp:Item><fp:Quantity>1</fp:Quantity>'
               '<fp:Amount>100.00</fp:Amount><fp:TaxAmount>6.00</fp:TaxAmount></fp:GoodsInfo></fp:GoodsInfos></eInvoice>')

# A producer bug seen in real invoices: an empty prefix and an undeclared ofd: prefix.
BROKEN_TAGS = ('<?xml version="1.0" encoding="UTF-8"?><:eInvoice xmlns:="">'
               '<InvoiceNo><ofd:ObjectRef PageRef="1">11</ofd:ObjectRef></InvoiceNo>'
               '<IssueDate><ofd:ObjectRef PageRef="1">12</ofd:ObjectRef></IssueDate>'
               '<Seller><SellerName><ofd:ObjectRef PageRef="1">10</ofd:ObjectRef></SellerName>'
               '<SellerTaxID><ofd:ObjectRef PageRef="1">13</ofd:ObjectRef></SellerTaxID></Seller>'
               '<Buyer><BuyerName><ofd:ObjectRef PageRef="1">18</ofd:ObjectRef></BuyerName></Buyer>'
               '<TaxInclusiveTotalAmount><ofd:ObjectRef PageRef="1">14</ofd:ObjectRef>'
               '<ofd:ObjectRef PageRef="1">15</ofd:ObjectRef></TaxInclusiveTotalAmount>'
               '<Item><ofd:ObjectRef PageRef="1">16</ofd:ObjectRef></Item>'
               '<Amount><ofd:ObjectRef PageRef="1">17</ofd:ObjectRef></Amount></:eInvoice>')


def ofd_files(pages: int = 1, attachment: bool = True, tags: bool = True) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {
        "OFD.xml": ofd_xml(custom='<ofd:CustomData Name="发票号码">00012345</ofd:CustomData>'),
        "Doc_0/Document.xml": document_xml([f"Pages/Page_{i}/Content.xml" for i in range(pages)], attachment, tags),
        "Doc_0/PublicRes.xml": (f'<?xml version="1.0" encoding="UTF-8"?><ofd:Res {NS} BaseLoc="Res"><ofd:Fonts>'
                                '<ofd:Font ID="3" FontName="宋体" FamilyName="宋体"/></ofd:Fonts></ofd:Res>'),
        "Doc_0/Tpls/Tpl_0/Content.xml": TEMPLATE,
    }
    for i in range(pages):
        files[f"Doc_0/Pages/Page_{i}/Content.xml"] = PAGE
    if attachment:
        files["Doc_0/Attachs/Attachments.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><ofd:Attachments {NS}><ofd:Attachment ID="101" '
            'Name="original_invoice" Format="xml"><ofd:FileLoc>original_invoice.xml</ofd:FileLoc>'
            '</ofd:Attachment></ofd:Attachments>')
        files["Doc_0/Attachs/original_invoice.xml"] = INVOICE_XML
    if tags:
        files["Doc_0/Tags/CustomTags.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?><ofd:CustomTags {NS}>'
                                              '<ofd:CustomTag><ofd:FileLoc>CustomTag.xml</ofd:FileLoc></ofd:CustomTag>'
                                              '</ofd:CustomTags>')
        files["Doc_0/Tags/CustomTag.xml"] = BROKEN_TAGS
    return files


def write_zip(path: Path, files: dict[str, str | bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data.encode("utf-8") if isinstance(data, str) else data)
    return path


@pytest.fixture
def sample(tmp_path) -> Path:
    return write_zip(tmp_path / "invoice.ofd", ofd_files())


def dark_fraction(img: Image.Image) -> float:
    gray = img.convert("L")
    hist = gray.histogram()
    return sum(hist[:128]) / (gray.width * gray.height)


# -- structure and data ---------------------------------------------------------------------


def test_detection(sample, tmp_path):
    assert ofd.looks_like_ofd(sample)
    plain = write_zip(tmp_path / "plain.zip", {"readme.txt": "hello"})
    assert not ofd.looks_like_ofd(plain)
    png = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(png)
    assert not ofd.looks_like_ofd(png)
    truncated = tmp_path / "cut.ofd"
    truncated.write_bytes(sample.read_bytes()[:200])
    assert not ofd.looks_like_ofd(truncated)
    assert not ofd.looks_like_ofd(tmp_path / "missing.ofd")


def test_pages_text_attachments_and_tags(sample):
    assert ofd.page_count(sample) == 1
    with ofd.OfdFile(sample) as doc:
        assert doc.page_size(0) == (210.0, 140.0)
        objects = doc.text_objects(0)
        seller = next(o for o in objects if o.id == "10")
        assert seller.text == "测试商贸有限公司" and not seller.from_template
        assert (seller.x0, seller.y0) == (40.0, 20.0) and seller.x1 > seller.x0
        assert any(o.from_template and "增值税电子普通发票" in o.text for o in objects)
        assert "上海增值税电子普通发票" in doc.page_text(0)
        assert doc.custom_data == {"发票号码": "00012345"}
        [att] = doc.attachments()
        assert (att.name, att.format, att.entry) == ("original_invoice", "xml", "Doc_0/Attachs/original_invoice.xml")
        assert doc.read_attachment(att).decode("utf-8") == INVOICE_XML
        # the broken tag file is repaired, and its references resolve to the page's text objects
        tags = {"/".join(t.path): t.text for t in doc.custom_tags()}
    assert tags["Seller/SellerName"] == "测试商贸有限公司"
    assert tags["TaxInclusiveTotalAmount"] == "¥106.00"
    assert ofd.attachments(sample) == {"Doc_0/Attachs/original_invoice.xml": INVOICE_XML.encode("utf-8")}


def test_invoice_from_embedded_xml(sample):
    ex, printed = read_ofd_invoice_and_type(sample)
    assert printed == "上海增值税电子普通发票"
    assert ex.fields == {
        "document_kind": "vat_invoice", "invoice_number": "00012345", "invoice_code": "031001900111",
        "transaction_date": "2024-03-05", "merchant_name": "测试商贸有限公司", "merchant_address": "上海市黄浦区南京东路1号",
        "seller_tax_id": "91310000MA1FL0001X", "buyer_name": "买方科技有限公司", "buyer_tax_id": "91310000MA1FL0002Y",
        "total": 106.0, "subtotal": 100.0, "tax": 6.0, "currency": "CNY",
        "items": [{"description": "*餐饮服务*餐费", "amount": 100.0, "quantity": 1.0}],
    }
    assert set(ex.sources.values()) == {"embedded_xml"} and set(ex.sources) == set(ex.fields)
    assert all(c == 1.0 for c in ex.confidence.values())


def test_invoice_from_tags_alone(tmp_path):
    path = write_zip(tmp_path / "tags.ofd", ofd_files(attachment=False))
    ex = read_ofd_invoice(path)
    assert ex.fields["merchant_name"] == "测试商贸有限公司"
    assert ex.fields["total"] == 106.0 and ex.fields["currency"] == "CNY"
    assert ex.fields["transaction_date"] == "2024-03-05"
    assert ex.fields["items"] == [{"description": "*餐饮服务*餐费", "amount": 100.0}]
    assert "invoice_code" not in ex.fields and "tax" not in ex.fields   # not in the data: not guessed


def test_no_invoice_data_is_none(tmp_path):
    path = write_zip(tmp_path / "plain.ofd", {**ofd_files(attachment=False, tags=False), "OFD.xml": ofd_xml()})
    assert read_ofd_invoice(path) is None


def test_render_draws_text_and_lines(sample):
    if ofd.cjk_font_path() is None:
        pytest.skip("no CJK font (Debian fonts-wqy-microhei)")
    img = ofd.render_page(sample, 0, max_side=1000)
    assert img.mode == "RGB" and img.size == (1000, 667)
    assert dark_fraction(img) > 0.003
    # the title, drawn from the template, lands in its box
    title = img.crop((int(60 * 1000 / 210), int(5 * 1000 / 210), int(130 * 1000 / 210), int(13 * 1000 / 210)))
    assert dark_fraction(title) > 0.02


def test_document_inspect_accepts_ofd(sample, tmp_path):
    info = inspect(sample, max_pixels=10**8, max_pages=5)
    assert (info.mime_type, info.page_count) == ("application/ofd", 1)
    three = write_zip(tmp_path / "three.ofd", ofd_files(pages=3))
    with pytest.raises(DocumentError) as err:
        inspect(three, max_pixels=10**8, max_pages=2)
    assert err.value.code == "too_many_pages"
    plain = write_zip(tmp_path / "plain.zip", {"a.txt": "hello"})
    with pytest.raises(DocumentError) as err:
        inspect(plain, max_pixels=10**8, max_pages=5)
    assert err.value.code == "unsupported_type"


# -- hostile archives ------------------------------------------------------------------------


def assert_refused(path: Path, words: str, code: str = "corrupt_document") -> DocumentError:
    with pytest.raises(DocumentError) as err:
        with ofd.OfdFile(path) as doc:
            for i in range(doc.page_count()):
                doc.render(i, 200)
                doc.custom_tags()
    assert err.value.code == code, err.value.detail
    assert re.search(words, err.value.detail, re.I), err.value.detail
    return err.value


@pytest.mark.timeout(60)
def test_zip_bomb_entry(tmp_path):
    files = ofd_files()
    files["Doc_0/Res/zeros.png"] = b"\x00" * (8 << 20)   # 8 MiB of zeros squeeze ~1000:1
    path = write_zip(tmp_path / "bomb.ofd", files)
    assert path.stat().st_size < 100_000
    assert_refused(path, "ZIP bomb")
    with pytest.raises(DocumentError) as err:
        inspect(path, max_pixels=10**8, max_pages=5)
    assert err.value.code == "corrupt_document"


def test_total_size_and_entry_count_limits(tmp_path, monkeypatch):
    path = write_zip(tmp_path / "many.ofd", {**ofd_files(), **{f"Doc_0/Res/{i}.bin": b"x" for i in range(40)}})
    monkeypatch.setattr(ofd.limits, "MAX_ENTRIES", 30)
    assert_refused(path, "files; the limit is 30")
    monkeypatch.setattr(ofd.limits, "MAX_ENTRIES", 5_000)
    monkeypatch.setattr(ofd.limits, "MAX_TOTAL_BYTES", 2_000)
    assert_refused(path, "expand to more than 2000 bytes")


def test_part_over_the_size_limit(tmp_path, monkeypatch):
    path = write_zip(tmp_path / "big.ofd", {**ofd_files(), "Doc_0/Attachs/original_invoice.xml": "<a>" + "x" * 5000 + "</a>"})
    monkeypatch.setattr(ofd.limits, "MAX_PART_BYTES", 1000)
    with ofd.OfdFile(path) as doc:
        [att] = doc.attachments()
        with pytest.raises(DocumentError, match="limit is 1000"):
            doc.read_attachment(att)


def test_part_that_lies_about_its_size(tmp_path):
    """An entry whose headers declare 100 bytes but which inflates to 200 KB is cut off and refused."""
    name = b"Doc_0/Attachs/original_invoice.xml"
    path = write_zip(tmp_path / "liar.ofd", {**ofd_files(), name.decode(): "<a>" + "x" * 200_000 + "</a>"})
    data = bytearray(path.read_bytes())
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        while at >= 0:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at:name_at + len(name)] == name:
                data[at + size_at:at + size_at + 4] = (100).to_bytes(4, "little")
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
    with ofd.OfdFile(path) as doc:
        [att] = doc.attachments()
        assert att.size == 100
        with pytest.raises(DocumentError, match="cannot be read"):
            doc.read_attachment(att)


@pytest.mark.parametrize("name", ["../evil.xml", "/etc/passwd", "Doc_0/../../x.xml", "C:/windows/x.xml"])
def test_traversal_names_are_refused(tmp_path, name):
    path = write_zip(tmp_path / "trav.ofd", {**ofd_files(), name: "<x/>"})
    assert_refused(path, "unsafe file name")


def test_references_out_of_the_archive_are_refused(tmp_path):
    files = ofd_files()
    files["Doc_0/Document.xml"] = document_xml(["../../../etc/passwd"])
    assert_refused(write_zip(tmp_path / "ref.ofd", files), "outside the archive")


def test_missing_parts(tmp_path):
    files = ofd_files()
    del files["Doc_0/Document.xml"]
    assert_refused(write_zip(tmp_path / "nodoc.ofd", files), "no readable document")
    files = ofd_files()
    del files["Doc_0/Pages/Page_0/Content.xml"]
    assert_refused(write_zip(tmp_path / "nopage.ofd", files), "content file is missing")
    files = ofd_files()
    del files["OFD.xml"]
    assert_refused(write_zip(tmp_path / "noofd.ofd", files), "no OFD.xml")
    files = ofd_files()
    files["Doc_0/Document.xml"] = document_xml([])
    assert_refused(write_zip(tmp_path / "nopages.ofd", files), "no pages")
    not_zip = tmp_path / "garbage.ofd"
    not_zip.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    assert_refused(not_zip, "not a readable ZIP")


def test_huge_page_count(tmp_path, monkeypatch):
    files = ofd_files()
    files["Doc_0/Document.xml"] = document_xml(["Pages/Page_0/Content.xml"] * 12_000)
    path = write_zip(tmp_path / "pages.ofd", files)
    assert_refused(path, "more than 10000 pages", code="too_many_pages")
    with pytest.raises(DocumentError) as err:
        inspect(path, max_pixels=10**8, max_pages=50)
    assert err.value.code == "too_many_pages"


def test_entity_expansion_is_refused(tmp_path):
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            f'<ofd:OFD {NS}><ofd:DocBody><ofd:DocRoot>&lol2;</ofd:DocRoot></ofd:DocBody></ofd:OFD>')
    assert_refused(write_zip(tmp_path / "lol.ofd", {**ofd_files(), "OFD.xml": bomb}), "DTD or entity")
    external = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                '<eInvoice><InvoiceNo>&e;</InvoiceNo></eInvoice>')
    files = {**ofd_files(tags=False), "Doc_0/Attachs/original_invoice.xml": external}
    # a hostile attachment is skipped: the invoice data then comes from elsewhere, never from the entity
    ex = read_ofd_invoice(write_zip(tmp_path / "ext.ofd", files))
    assert ex.fields["invoice_number"] == "00012345" and "root:" not in json.dumps(ex.fields)


def test_garbage_content_and_extreme_geometry(tmp_path):
    files = ofd_files()
    files["Doc_0/Pages/Page_0/Content.xml"] = "<not xml"
    assert_refused(write_zip(tmp_path / "bad.ofd", files), "not well-formed")

    page = (f'<ofd:Page {NS}><ofd:Area><ofd:PhysicalBox>0 0 1 40000</ofd:PhysicalBox></ofd:Area><ofd:Content>'
            '<ofd:Layer ID="1">'
            '<ofd:TextObject ID="2" Boundary="0 0 1 1" Size="1e300"><ofd:TextCode X="0" Y="1" DeltaX="g 999999999 1">'
            + "字" * 2000 + '</ofd:TextCode></ofd:TextObject>'
            '<ofd:TextObject ID="3" Boundary="0 0 1 1" Size="3" CTM="nan 0 0 1 0 0"><ofd:TextCode X="0" Y="1">x</ofd:TextCode></ofd:TextObject>'
            '<ofd:PathObject ID="4" Boundary="0 0 1 1"><ofd:AbbreviatedData>M 0 0 '
            + "B 1 1 2 2 3 3 " * 50_000 + 'A 5 5 0 1 1 1e308 1e308</ofd:AbbreviatedData></ofd:PathObject>'
            '<ofd:ImageObject ID="5" ResourceID="999" Boundary="0 0 1 1"/>'
            + '<ofd:PageBlock>' * 200 + '</ofd:PageBlock>' * 200
            + '</ofd:Layer></ofd:Content></ofd:Page>')
    files = ofd_files()
    files["Doc_0/Pages/Page_0/Content.xml"] = page
    path = write_zip(tmp_path / "odd.ofd", files)
    with pytest.raises(DocumentError, match="path points"):
        ofd.render_page(path, 0, 800)
    files["Doc_0/Pages/Page_0/Content.xml"] = page.replace("B 1 1 2 2 3 3 " * 50_000, "L 1 1 ")
    img = ofd.render_page(write_zip(tmp_path / "odd2.ofd", files), 0, 800)
    assert img.size == (1, 800)
    with pytest.raises(DocumentError, match="no page 3"):
        ofd.render_page(path, 2, 800)


# -- the real OFDs ---------------------------------------------------------------------------


def ofd_labels(folder: Path) -> list[dict]:
    return [r for r in labels(folder) if r["original_file"].endswith(".ofd")]


LABEL_TO_FIELD = {"invoice_number": "invoice_number", "invoice_code": "invoice_code", "issue_date": "transaction_date",
                  "seller_name": "merchant_name", "buyer_name": "buyer_name", "seller_tax_id": "seller_tax_id",
                  "buyer_tax_id": "buyer_tax_id", "total_amount": "total", "amount_excl_tax": "subtotal",
                  "tax_amount": "tax"}


def assert_every_labelled_field(folder: Path, rows: list[dict]) -> None:
    misses = []
    for row in rows:
        path = folder / row["original_file"]
        assert ofd.looks_like_ofd(path) and ofd.page_count(path) == 1
        ex, printed = read_ofd_invoice_and_type(path)
        for label, want in row["fields"].items():
            got = printed if label == "invoice_type" else ex.fields.get(LABEL_TO_FIELD.get(label, label))
            if label in ("total_amount", "amount_excl_tax", "tax_amount"):
                ok = got is not None and abs(got - want) < 0.006
            else:
                ok = got is not None and re.sub(r"\s", "", str(got)) == re.sub(r"\s", "", str(want))
            if not ok:
                misses.append((row["original_file"], label, want, got))
        assert ex.fields["currency"] == "CNY" and ex.fields["document_kind"] == "vat_invoice"
        assert set(ex.sources.values()) == {"embedded_xml"}
        items = ex.fields.get("items", [])
        assert len(items) <= 50 and all(len(i["description"]) <= 200 for i in items)
    assert not misses


def assert_renders_with_seller_drawn(path: Path, seller: str, printed_type: str) -> None:
    """The seller's name box holds drawn glyphs (it is a text object, found through the custom tags)."""
    with ofd.OfdFile(path) as doc:
        box_of = next(o for o in doc.text_objects(0) if o.text == seller)
        img = doc.render(0, 1200)
        scale = 1200 / doc.page_size(0)[0]
    box = img.crop((int(box_of.x0 * scale), int(box_of.y0 * scale), int(box_of.x1 * scale), int(box_of.y1 * scale)))
    assert dark_fraction(box) > 0.05
    assert ofd_invoice_type(path) == printed_type
    buf = io.BytesIO()
    img.save(buf, "PNG")
    assert len(buf.getvalue()) > 20_000


def test_repo_ofds_every_labelled_field():
    """The two OFDs the repository carries: invoice XML (provincial) and invoice tags (全电)."""
    rows = ofd_labels(REPO_FAPIAO)
    assert len(rows) == 2
    assert_every_labelled_field(REPO_FAPIAO, rows)


def test_repo_ofd_renders_with_chinese_text():
    if ofd.cjk_font_path() is None:
        pytest.skip("no CJK font (Debian fonts-wqy-microhei)")
    for row in ofd_labels(REPO_FAPIAO):
        path = REPO_FAPIAO / row["original_file"]
        img = ofd.render_page(path, 0, max_side=1200)
        assert img.mode == "RGB" and max(img.size) == 1200
        assert dark_fraction(img) > 0.01, row["original_file"]
        assert inspect(path, max_pixels=10**8, max_pages=5).mime_type == "application/ofd"
    assert_renders_with_seller_drawn(REPO_FAPIAO / "files" / "renoyuan__00008006.ofd",
                                     "独山县城南网格刘梦阳通讯店", "贵州增值税电子专用发票")


def test_real_ofds_every_labelled_field():
    folder = dev_set("cn-fapiao-dev")
    rows = ofd_labels(folder)
    assert len(rows) == 6
    assert_every_labelled_field(folder, rows)


def test_real_ofd_renders_with_chinese_text(tmp_path):
    folder = dev_set("cn-fapiao-dev")
    if ofd.cjk_font_path() is None:
        pytest.skip("no CJK font (Debian fonts-wqy-microhei)")
    for row in ofd_labels(folder):
        path = folder / row["original_file"]
        img = ofd.render_page(path, 0, max_side=1200)
        assert img.mode == "RGB" and max(img.size) == 1200
        assert dark_fraction(img) > 0.01, row["original_file"]
        assert inspect(path, max_pixels=10**8, max_pages=5).mime_type == "application/ofd"
    assert_renders_with_seller_drawn(folder / "files" / "swpudp__18925756.ofd",
                                     "四川万长亚建设工程有限公司", "四川增值税电子专用发票")
