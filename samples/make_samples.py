"""Regenerate the bundled sample documents (committed, so nobody needs fonts to run the demo).

    .venv/bin/python samples/make_samples.py

Synthetic documents written for Docket: a café receipt (English), a restaurant receipt
(Chinese), a short NDA as a PDF with a text layer, and a chat screenshot containing personal
data. They exist to show the pipeline end to end, not to measure accuracy (see bench/).
"""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"


def font(size: int, cjk: bool = False) -> ImageFont.FreeTypeFont:
    path = CJK_FONT if cjk else LATIN_FONT
    if not Path(path).exists():
        sys.exit(f"missing font {path} (Debian: fonts-wqy-microhei / fonts-dejavu-core)")
    return ImageFont.truetype(path, size)


def render_lines(lines: list[tuple[str, int, str]], width: int, cjk: bool = False, bg="white") -> Image.Image:
    """lines: (text, size, align) top to bottom."""
    height = sum(size + 14 for _, size, _ in lines) + 60
    img = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(img)
    y = 30
    for text, size, align in lines:
        f = font(size, cjk)
        w = draw.textlength(text, font=f)
        x = {"left": 30, "center": (width - w) / 2, "right": width - 30 - w}[align]
        draw.text((x, y), text, fill="black", font=f)
        y += size + 14
    return img


def receipt_lines(merchant: list[str], date: str, items: list[tuple[str, str]], totals: list[tuple[str, str]],
                  width_chars: int = 38) -> list[tuple[str, int, str]]:
    out = [(merchant[0], 30, "center")] + [(m, 20, "center") for m in merchant[1:]]
    out.append(("", 10, "left"))
    out.append((date, 20, "left"))
    for name, amount in items:
        out.append((name.ljust(width_chars - len(amount)) + amount, 20, "left"))
    out.append(("-" * width_chars, 20, "left"))
    for name, amount in totals:
        out.append((name.ljust(width_chars - len(amount)) + amount, 22, "left"))
    out.append(("THANK YOU", 20, "center"))
    return out


def english_receipt() -> Image.Image:
    return render_lines(receipt_lines(
        ["SUNRISE CAFE SDN BHD", "NO. 12, JALAN MERANTI 3,", "47100 PUCHONG, SELANGOR", "TEL: 03-8076 1234"],
        "DATE: 20/11/2026  12:41 PM",
        [("NASI LEMAK AYAM", "18.90"), ("TEH TARIK x2", "7.00"), ("ROTI CANAI", "4.50")],
        [("SUBTOTAL", "30.40"), ("SST 6%", "1.82"), ("TOTAL RM", "32.22")]), 560)


def chinese_receipt() -> Image.Image:
    lines = [("海底捞火锅（望京店）", 32, "center"), ("北京市朝阳区望京街10号", 22, "center"),
             ("电话：010-64701234", 22, "center"), ("", 10, "left"),
             ("日期：2026年11月21日 19:32", 22, "left"),
             ("番茄锅底            38.00", 22, "left"), ("肥牛卷              68.00", 22, "left"),
             ("青岛啤酒 x2         22.00", 22, "left"), ("-" * 30, 22, "left"),
             ("合计：¥128.00", 26, "left"), ("谢谢惠顾", 22, "center")]
    return render_lines(lines, 560, cjk=True)


def screenshot() -> Image.Image:
    lines = [("微信聊天", 26, "center"), ("", 8, "left"),
             ("张伟：你好，发票收到了吗？", 22, "left"),
             ("李娜：收到了，我的手机号是 13812345678", 22, "left"),
             ("李娜：邮箱 lina.work@example.com", 22, "left"),
             ("张伟：好的，周一联系你。", 22, "left")]
    return render_lines(lines, 640, cjk=True, bg=(237, 237, 237))


def pdf_with_text(pages: list[list[str]]) -> bytes:
    """A minimal PDF (Helvetica text, one object per page) with a real text layer."""
    objects: list[bytes] = []
    page_ids = []
    font_id = 3
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(b"")  # pages, filled below
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for lines in pages:
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 740 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_id = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (content_id, font_id))
        page_ids.append(len(objects))
    kids = " ".join(f"{i} 0 R" for i in page_ids).encode()
    objects[1] = b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(page_ids)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


NDA = [[
    "MUTUAL NON-DISCLOSURE AGREEMENT",
    "",
    "This Mutual Non-Disclosure Agreement (the \"Agreement\") is entered into as of March 3, 2026",
    "(the \"Effective Date\") by and between Northwind Traders Inc., a Delaware corporation",
    "(\"Northwind\"), and Contoso Analytics LLC, a California limited liability company (\"Contoso\").",
    "",
    "1. Purpose. The parties wish to evaluate a possible business relationship and may disclose",
    "confidential information to each other for that purpose.",
    "2. Term. This Agreement shall remain in effect for a period of three (3) years from the",
    "Effective Date.",
    "3. Fees. Contoso shall pay Northwind an evaluation fee of USD 25,000.",
    "4. Governing Law. This Agreement shall be governed by and construed in accordance with the",
    "laws of the State of Delaware, without regard to its conflict of laws principles.",
], [
    "5. Liability. Each party shall have unlimited liability for any breach of this Agreement.",
    "",
    "IN WITNESS WHEREOF, the parties have executed this Agreement as of the Effective Date.",
    "Northwind Traders Inc.          Contoso Analytics LLC",
    "By: Jane Smith, CEO             By: Wei Chen, Managing Director",
]]


def main() -> None:
    english_receipt().save(HERE / "receipt-en.png")
    chinese_receipt().save(HERE / "receipt-zh.png")
    screenshot().save(HERE / "screenshot-zh.png")
    (HERE / "contract-en.pdf").write_bytes(pdf_with_text(NDA))
    print("wrote", ", ".join(sorted(p.name for p in HERE.iterdir() if p.suffix in (".png", ".pdf"))))


if __name__ == "__main__":
    main()
