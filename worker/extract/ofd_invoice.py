"""Fields of a Chinese VAT e-invoice read from the OFD's own data, never from pixels.

An invoice OFD carries its data in up to three places, read in this order of trust:
1. an attached invoice XML (`Doc_0/Attachs/original_invoice.xml`, the 2019 e-invoice schema
   `fp:eInvoice` of the provincial 增值税电子发票; the national 数电 XML names are known too);
2. custom tags (`Doc_0/Tags/CustomTag.xml`): each field points at text objects on the page;
   both the older `eInvoice` layout and the 数电/全电 `ofd:root` layout (flat item columns);
3. `CustomData` entries of OFD.xml (发票号码, 合计金额, 开票日期, the tax ids…).
A field is taken from the first place that has it; where places disagree its confidence drops.
Nothing is guessed: a field that none of them carries is left out.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path
from xml.etree.ElementTree import Element

from docket.errors import DocumentError
from docket.ofd import OfdFile, TaggedValue, local, parse_xml
from worker.extract.base import Extraction

SOURCE = "embedded_xml"
MAX_ITEMS = 50
MAX_DESCRIPTION = 200

# Leaf element names (the e-invoice schemas and the tag files use the same ones) -> our key.
_LEAVES = {
    "InvoiceNo": "invoice_number",
    "EIid": "invoice_number",            # 数电 XML
    "InvoiceNumber": "invoice_number",   # 数电 XML (TaxSupervisionInfo)
    "InvoiceCode": "invoice_code",
    "IssueDate": "transaction_date",
    "IssueTime": "transaction_date",     # 数电 XML
    "SellerName": "merchant_name",
    "SellerTaxID": "seller_tax_id",
    "SellerIdNum": "seller_tax_id",      # 数电 XML
    "SellerAddrTel": "seller_addr_tel",
    "SellerAddr": "merchant_address",
    "BuyerName": "buyer_name",
    "BuyerTaxID": "buyer_tax_id",
    "BuyerIdNum": "buyer_tax_id",        # 数电 XML
    "TaxInclusiveTotalAmount": "total",
    "TotalTax-includedAmount": "total",  # 数电 XML
    "TaxExclusiveTotalAmount": "subtotal",
    "TotalAmWithoutTax": "subtotal",     # 数电 XML
    "TaxTotalAmount": "tax",
    "TotalTaxAm": "tax",                 # 数电 XML
}
# Item columns: leaf name -> item key.
_ITEM_LEAVES = {"Item": "description", "ItemName": "description", "Amount": "amount", "Quantity": "quantity",
                "Specification": None, "MeasurementDimension": None, "Price": None, "TaxScheme": None,
                "TaxAmount": None, "TaxRate": None, "ComTaxAm": None, "UnPrice": None, "Unit": None}
_ITEM_GROUPS = {"GoodsInfo", "IssuItemInformation"}
# OFD.xml CustomData names (compared without spaces and punctuation) -> our key.
_CUSTOM_DATA = {
    "发票号码": "invoice_number", "发票代码": "invoice_code", "开票日期": "transaction_date",
    "合计金额": "subtotal", "合计税额": "tax", "价税合计": "total",
    "购买方名称": "buyer_name", "购买方纳税人识别号": "buyer_tax_id",
    "销售方名称": "merchant_name", "销售方纳税人识别号": "seller_tax_id",
}
_KEY_FIELDS = ("invoice_number", "total", "subtotal")

_DIGITAL_TITLE = re.compile(r"电子发票[（(]([^（()）]{2,24})[）)]")
_OLDER_TITLE = re.compile(r"[\u4e00-\u9fff]{0,8}增值税电子(?:普通|专用)发票(?:[（(]通行费[）)])?")
_DATE = re.compile(r"^(\d{4})\s*[年/.-]?\s*(\d{1,2})\s*[月/.-]?\s*(\d{1,2})\s*日?(?:[\sT]+\d{1,2}:\d{2}(?::\d{2})?.*)?$")
_AMOUNT = re.compile(r"^-?\d+(?:\.\d+)?$")
_TRAILING_PHONE = re.compile(r"[\s,，;；]*(?:电话[:：]?\s*)?(?:\(?\+?\d[\d\- ()]{5,}\d)\s*$")


def read_ofd_invoice(path: Path | str) -> Extraction | None:
    """The invoice fields an OFD's own data carries, or None when it carries none.
    Raises DocumentError for a file that is not a readable OFD."""
    return read_ofd_invoice_and_type(path)[0]


def ofd_invoice_type(path: Path | str) -> str | None:
    """The invoice type printed as the page title, e.g. 电子发票（增值税专用发票） or
    四川增值税电子专用发票 (full-width parentheses), or None."""
    with OfdFile(path) as ofd:
        return _printed_type(ofd)


def read_ofd_invoice_and_type(path: Path | str) -> tuple[Extraction | None, str | None]:
    """Both of the above from one opening of the file."""
    with OfdFile(path) as ofd:
        printed = _printed_type(ofd)
        sources = [s for s in (*_attachment_sources(ofd), *_tag_sources(ofd), _custom_data_source(ofd))
                   if any(s.values.get(k) for k in _KEY_FIELDS)]
    if not sources:
        return None, printed
    return _extraction(sources, printed), printed


class _Source:
    def __init__(self, name: str):
        self.name = name
        self.values: dict[str, list[str]] = {}
        self.items: list[dict[str, str]] = []

    def add(self, key: str, value: str | None) -> None:
        value = (value or "").strip()
        if value:
            self.values.setdefault(key, []).append(value)


def _attachment_sources(ofd: OfdFile) -> list[_Source]:
    sources = []
    for att in ofd.attachments():
        if att.format.lower() != "xml" and not att.entry.lower().endswith(".xml"):
            continue
        try:
            root = parse_xml(ofd.read_attachment(att), att.entry)
        except DocumentError:
            continue   # a broken attachment leaves the tags and CustomData to speak
        source = _Source(f"attachment:{att.entry}")
        leaves: list[tuple[str, str, int]] = []
        _xml_leaves(root, leaves)
        _fill(source, leaves)
        sources.append(source)
    return sources


def _xml_leaves(root: Element, out: list[tuple[str, str, int]]) -> None:
    """(leaf name, text, group number) for every leaf element; items inside a GoodsInfo-like
    group share a group number, other leaves have 0."""
    groups = 0

    def visit(element: Element, group: int, depth: int) -> None:
        nonlocal groups
        if depth > 32 or len(out) > 10_000:
            return
        subs = [e for e in element if local(e.tag)]
        name = local(element.tag)
        if not subs:
            out.append((name, element.text or "", group))
            return
        if name in _ITEM_GROUPS:
            groups += 1
            group = groups
        for sub in subs:
            visit(sub, group, depth + 1)

    for sub in root:
        if local(sub.tag):
            visit(sub, 0, 0)


def _tag_sources(ofd: OfdFile) -> list[_Source]:
    try:
        tags: list[TaggedValue] = ofd.custom_tags()
    except DocumentError:
        return []
    if not tags:
        return []
    group_of: dict[int, int] = {}
    leaves = []
    for tag in tags:
        grouped = len(tag.path) >= 2 and tag.path[-2] in _ITEM_GROUPS
        group = group_of.setdefault(tag.parent, len(group_of) + 1) if grouped else 0
        leaves.append((tag.path[-1], tag.text, group))
    source = _Source("custom_tags")
    _fill(source, leaves)
    return [source]


def _fill(source: _Source, leaves: Iterable[tuple[str, str, int]]) -> None:
    grouped: dict[int, dict[str, str]] = {}
    flat: list[dict[str, str]] = []
    for name, text, group in leaves:
        if name in _LEAVES:
            source.add(_LEAVES[name], text)
        elif name in _ITEM_LEAVES and _ITEM_LEAVES[name]:
            key = _ITEM_LEAVES[name]
            text = (text or "").strip()
            if group:
                grouped.setdefault(group, {}).setdefault(key, text)
            else:
                # 数电 tags list item columns flat: a new item starts at each description, or
                # when the current one already has this column.
                if not flat or (key in flat[-1] and (key == "description" or "description" in flat[-1])):
                    flat.append({})
                flat[-1].setdefault(key, text)
    source.items = list(grouped.values()) or flat


def _custom_data_source(ofd: OfdFile) -> _Source:
    source = _Source("custom_data")
    for name, value in ofd.custom_data.items():
        key = _CUSTOM_DATA.get(re.sub(r"[\s、，,:：()（）]", "", name))
        if key:
            source.add(key, value)
    return source


def _printed_type(ofd: OfdFile) -> str | None:
    try:
        text = ofd.page_text(0)
    except DocumentError:
        return None
    for line in text.splitlines():
        compact = re.sub(r"\s+", "", line)
        match = _DIGITAL_TITLE.search(compact)
        if match:
            return f"电子发票（{match.group(1)}）"
        match = _OLDER_TITLE.search(compact)
        if match:
            return match.group(0).replace("(", "（").replace(")", "）")
    return None


# -- normalising


def _amount(text: str) -> float | None:
    cleaned = re.sub(r"[¥￥,，\s元]|CNY|RMB", "", text)
    if cleaned and set(cleaned) == {"*"}:
        return None
    if not _AMOUNT.match(cleaned):
        return None
    return float(cleaned)


def _tax(text: str) -> float | None:
    cleaned = re.sub(r"[¥￥\s]", "", text)
    if cleaned and set(cleaned) == {"*"}:
        return 0.0   # printed *** : tax-exempt (免税 / 不征税)
    return _amount(text)


def _date(text: str) -> str | None:
    match = _DATE.match(text.strip())
    if not match:
        return None
    try:
        return dt.date(*(int(g) for g in match.groups())).isoformat()
    except ValueError:
        return None


def _tax_id(text: str) -> str | None:
    cleaned = re.sub(r"\s+", "", text).upper()
    return cleaned if re.fullmatch(r"[0-9A-Z]{6,30}", cleaned) else None


def _plain(text: str, limit: int = 500) -> str | None:
    cleaned = "".join(ch for ch in text if ch.isprintable() or ch in " \t\n")
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    return cleaned[:limit] or None


def _address(addr_tel: str) -> str | None:
    """The address part of 地址、电话 (address and phone number written together)."""
    text = _plain(addr_tel)
    if not text:
        return None
    stripped = _TRAILING_PHONE.sub("", text).strip(" ,，;；")
    return stripped or None


_NORMALISE = {
    "invoice_number": lambda t: re.sub(r"\s+", "", t) or None,
    "invoice_code": lambda t: re.sub(r"\s+", "", t) or None,
    "transaction_date": _date,
    "merchant_name": _plain,
    "buyer_name": _plain,
    "merchant_address": _plain,
    "seller_addr_tel": _address,
    "seller_tax_id": _tax_id,
    "buyer_tax_id": _tax_id,
    "total": _amount,
    "subtotal": _amount,
    "tax": _tax,
}


def _extraction(sources: list[_Source], printed: str | None) -> Extraction:
    ex = Extraction()
    for key, normalise in _NORMALISE.items():
        found = []
        for source in sources:
            for raw in source.values.get(key, []):
                value = normalise(raw)
                if value is not None:
                    found.append(value)
                    break
        if not found:
            continue
        field = "merchant_address" if key == "seller_addr_tel" else key
        if field in ex.fields:
            continue
        ex.fields[field] = found[0]
        ex.sources[field] = SOURCE
        ex.confidence[field] = 1.0 if all(v == found[0] for v in found) else 0.6

    if any(k in ex.fields for k in ("total", "subtotal", "tax")):
        ex.fields["currency"] = "CNY"
        ex.sources["currency"] = SOURCE
        ex.confidence["currency"] = 1.0
        total, subtotal, tax = (ex.fields.get(k) for k in ("total", "subtotal", "tax"))
        if None not in (total, subtotal, tax) and abs(subtotal + tax - total) > 0.011:
            for k in ("total", "subtotal", "tax"):
                ex.confidence[k] = min(ex.confidence[k], 0.5)

    kind = _kind(printed, ex.fields)
    if kind:
        ex.fields["document_kind"] = kind
        ex.sources["document_kind"] = SOURCE
        ex.confidence["document_kind"] = 1.0 if printed else 0.8

    for source in sources:
        items = _items(source.items)
        if items:
            ex.fields["items"] = items
            ex.sources["items"] = SOURCE
            ex.confidence["items"] = 1.0
            break
    return ex


def _kind(printed: str | None, fields: dict) -> str | None:
    if printed:
        if "增值税" in printed or printed in ("电子发票（普通发票）", "电子发票（专用发票）"):
            return "vat_invoice"
        return None   # another printed kind (e.g. an e-ticket): not for us to name
    if "invoice_number" in fields and ("tax" in fields or "subtotal" in fields) and "seller_tax_id" in fields:
        return "vat_invoice"
    return None


def _items(raw_items: list[dict[str, str]]) -> list[dict]:
    items = []
    for raw in raw_items:
        description = _plain(raw.get("description") or "", MAX_DESCRIPTION)
        amount = _amount(raw.get("amount") or "")
        if not description or amount is None:
            continue
        item: dict = {"description": description, "amount": amount}
        quantity = _amount(raw.get("quantity") or "")
        if quantity is not None:
            item["quantity"] = quantity
        items.append(item)
        if len(items) >= MAX_ITEMS:
            break
    return items
