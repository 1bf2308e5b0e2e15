"""The QR code printed on Chinese VAT invoices (发票二维码), decoded with zxing-cpp.

National payload (every province, paper and electronic, and the fully digital 数电票):

    01,<type>,<invoice code>,<invoice number>,<amount>,<YYYYMMDD>,<check code>,<crc>[,]

- `type`: `01` 增值税专用发票, `04` 增值税普通发票, `10` 增值税电子普通发票, `08` 增值税电子专用发票,
  `11` 卷式, `14` 通行费… (the older invoices, with a 10/12-digit code and an 8-digit number);
  `31` 电子发票（增值税专用发票）and `32` 电子发票（普通发票）: the fully digital 数电票 (全电),
  whose code and check code are empty (or a blank) and whose number has 20 digits.
- `amount`: which amount it is depends on the type (checked on the 30 readable dev invoices
  against their printed 合计金额 and 价税合计):
  * older types: the amount **before tax** (合计金额, `amount_excl_tax`): 23 of 23 type-10
    invoices, 11 of them with tax > 0, so the QR amount differs from the printed total.
    Types 01/04/08/11/14 use the same national scheme (none readable in the dev set).
  * `31`/`32` (数电票): the amount **including tax** (价税合计, `total_amount`): 5 of 5 type-31
    invoices, all with tax > 0. Type 32 is taken to follow type 31 (not in the dev set).

Shenzhen's blockchain e-invoices (深圳电子普通发票) carry a verification URL instead:
`https://bcfp.shenzhen.chinatax.gov.cn/verify/scan?hash=…&bill_num=<number>&total_amount=<cents>`,
whose `total_amount` is the total including tax in fen (3720 = ¥37.20): 2 of 2 in the dev set.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from PIL import Image

__all__ = ["FapiaoQr", "decode", "parse_payload"]

# Types whose QR amount includes tax: 数电票 (31/32, checked on the dev set) and, unverified, the
# e-tickets that print only a fare (51 铁路电子客票, 61 航空运输电子客票行程单). The rest: before tax.
_INCL_TAX_TYPES = frozenset({"31", "32", "51", "61"})

_TYPE_NAMES = {
    "01": "增值税专用发票",
    "02": "货物运输业增值税专用发票",
    "03": "机动车销售统一发票",
    "04": "增值税普通发票",
    "08": "增值税电子专用发票",
    "10": "增值税电子普通发票",
    "11": "增值税普通发票（卷式）",
    "14": "增值税电子普通发票（通行费）",
    "15": "二手车销售统一发票",
    "31": "电子发票（增值税专用发票）",
    "32": "电子发票（普通发票）",
    "51": "电子发票（铁路电子客票）",
    "61": "电子发票（航空运输电子客票行程单）",
}


@dataclass(frozen=True)
class FapiaoQr:
    """What an invoice's QR code says.

    `amount` is the QR's own amount and `amount_kind` says which one it is: `"excl_tax"`
    (合计金额, the older invoice types) or `"incl_tax"` (价税合计: 数电票 and Shenzhen's URL).
    `subtotal` / `total` give it under the matching name (None for the other one).
    `box` is where the code was found on the decoded image, (x0, y0, x1, y1), or None.
    """

    raw: str
    invoice_type: str | None  # "10", "31"… (None for the Shenzhen URL)
    invoice_code: str | None  # None on 数电票 and on the Shenzhen URL
    invoice_number: str | None
    amount: float | None
    amount_kind: str | None  # "excl_tax" | "incl_tax"
    issue_date: str | None  # ISO YYYY-MM-DD
    check_code: str | None
    box: tuple[float, float, float, float] | None = None

    @property
    def fully_digital(self) -> bool:
        return self.invoice_type in _INCL_TAX_TYPES

    @property
    def type_name(self) -> str | None:
        return _TYPE_NAMES.get(self.invoice_type or "")

    @property
    def total(self) -> float | None:
        return self.amount if self.amount_kind == "incl_tax" else None

    @property
    def subtotal(self) -> float | None:
        return self.amount if self.amount_kind == "excl_tax" else None


def _amount(text: str) -> float | None:
    text = (text or "").strip().replace(",", "")
    if not re.fullmatch(r"-?\d+(?:\.\d+)?", text):
        return None
    return round(float(text), 2)


def _date(text: str) -> str | None:
    text = (text or "").strip()
    m = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", text)
    if not m:
        return None
    try:
        return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return None


def parse_payload(text: str, box: tuple[float, float, float, float] | None = None) -> FapiaoQr | None:
    """Read an invoice QR payload (national comma format or Shenzhen's verify URL); None when
    the text is neither."""
    text = (text or "").strip()
    if not text:
        return None
    if text.lower().startswith(("http://", "https://")):
        try:
            url = urlparse(text)
        except ValueError:
            return None
        q = {k.lower(): v[0] for k, v in parse_qs(url.query).items() if v}
        number = q.get("bill_num") or q.get("billnum") or q.get("fphm")
        if not number or not re.fullmatch(r"\d{8,20}", number.strip()):
            return None
        cents = q.get("total_amount")
        amount = round(int(cents) / 100.0, 2) if cents and cents.strip().isdigit() else None
        return FapiaoQr(raw=text, invoice_type=None, invoice_code=None, invoice_number=number.strip(),
                        amount=amount, amount_kind="incl_tax" if amount is not None else None,
                        issue_date=None, check_code=None, box=box)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) < 6 or parts[0] != "01" or not re.fullmatch(r"\d{2}", parts[1]):
        return None
    kind = parts[1]
    code = parts[2] if re.fullmatch(r"\d{10,12}", parts[2]) else None
    number = parts[3] if re.fullmatch(r"\d{8,20}", parts[3]) else None
    if number is None:
        return None
    amount = _amount(parts[4])
    check = parts[6] if len(parts) > 6 and parts[6] else None
    return FapiaoQr(
        raw=text,
        invoice_type=kind,
        invoice_code=code,
        invoice_number=number,
        amount=amount,
        amount_kind=None if amount is None else ("incl_tax" if kind in _INCL_TAX_TYPES else "excl_tax"),
        issue_date=_date(parts[5]),
        check_code=check,
        box=box,
    )


def _read(image: Image.Image, binarizer=None) -> list[tuple[str, tuple[float, float, float, float]]]:
    import zxingcpp

    kwargs = {"formats": zxingcpp.BarcodeFormat.QRCode}
    if binarizer is not None:
        kwargs["binarizer"] = getattr(zxingcpp.Binarizer, binarizer)
    out = []
    for bc in zxingcpp.read_barcodes(image, **kwargs):
        p = bc.position
        xs = [p.top_left.x, p.top_right.x, p.bottom_left.x, p.bottom_right.x]
        ys = [p.top_left.y, p.top_right.y, p.bottom_left.y, p.bottom_right.y]
        out.append((bc.text, (float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys)))))
    return out


def _first(found, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> FapiaoQr | None:
    for text, (x0, y0, x1, y1) in found:
        qr = parse_payload(text, (x0 / scale + dx, y0 / scale + dy, x1 / scale + dx, y1 / scale + dy))
        if qr is not None:
            return qr
    return None


def decode(image: Image.Image) -> FapiaoQr | None:
    """Find and read an invoice QR code on a page image; None when there is none (or none that
    is an invoice's). Box coordinates refer to `image`.

    The whole page first (30 of the 32 dev pages; the other two are OFD renders that draw no
    code). Then the top-left quarter, where every layout prints the code, enlarged — 2× and
    sharpened, with zxing's local and then a fixed threshold, and 3× — which reads small,
    blurred codes in photos (on 40 synthetic phone photos of invoices, 4° tilt, blur, JPEG:
    35 from the whole page, 39 with these); last the whole page thresholded in grey.
    A page without a code costs about 0.8 s at 3300×2200 px (one with a code 0.02–0.2 s).
    """
    if image is None or image.width < 21 or image.height < 21:
        return None
    rgb = image.convert("RGB")
    qr = _first(_read(rgb))
    if qr:
        return qr
    w, h = rgb.size
    quarter = rgb.crop((0, 0, max(21, w // 2), max(21, h // 2)))
    from PIL import ImageFilter

    for scale, sharpen, binarizers in ((2, True, (None, "FixedThreshold")), (3, False, (None,))):
        if max(quarter.size) * scale > 6000:
            continue
        big = quarter.resize((quarter.width * scale, quarter.height * scale), Image.LANCZOS)
        if sharpen:
            big = big.filter(ImageFilter.SHARPEN)
        for b in binarizers:
            qr = _first(_read(big, b), scale=scale)
            if qr:
                return qr
    grey = rgb.convert("L").point(lambda v: 255 if v > 140 else 0)
    return _first(_read(grey))
