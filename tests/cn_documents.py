"""Synthetic Chinese expense documents for tests: VAT invoices (发票) and railway tickets (火车票).

Every renderer takes a seed, draws a page with Pillow and the CJK font WenQuanYi Micro Hei
(Debian `fonts-wqy-microhei`), and returns `(image, truth)` where `truth` uses the extraction's
field names. Content comes from a seeded RNG: company names built from parts, valid 18-character
unified social credit codes (check character by python-stdnum), amounts that add up, and for the
invoices a real QR code (segno) carrying the national payload that matches the printed values.
Layouts follow the real documents (see worker/extract/fapiao.py and train_ticket.py); font size,
a small rotation and noise vary with the seed (`photo=False` gives a clean, upright render;
`photo="hard"` a phone photo: up to 4°, blur, noise, downscaled, JPEG).

    render_vat_invoice(seed, layout="provincial" | "digital") -> (PIL.Image, dict)
    render_train_ticket(seed, layout="paper" | "eticket") -> (PIL.Image, dict)
"""
from __future__ import annotations

import datetime as dt
import io
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
MONO_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")

_font_cache: dict = {}


def have_fonts() -> bool:
    return CJK_FONT.exists()


def _font(size: float, mono: bool = False) -> ImageFont.FreeTypeFont:
    size = max(8, int(round(size)))
    path = MONO_FONT if (mono and MONO_FONT.exists()) else CJK_FONT
    key = (str(path), size)
    if key not in _font_cache:
        _font_cache[key] = ImageFont.truetype(str(path), size)
    return _font_cache[key]


# --------------------------------------------------------------------------------------------
# Content

REGIONS = ["北京", "上海", "天津", "重庆", "深圳市", "广州", "杭州", "苏州市", "成都", "武汉", "南京", "西安",
           "青岛", "厦门", "长沙", "郑州", "合肥", "昆明", "贵阳", "宁波市"]
PROVINCES = [("北京", "11"), ("上海", "31"), ("天津", "12"), ("重庆", "50"), ("江苏", "32"), ("浙江", "33"),
             ("广东", "44"), ("四川", "51"), ("湖北", "42"), ("山东", "37"), ("福建", "35"), ("贵州", "52"),
             ("云南", "53"), ("陕西", "61"), ("安徽", "34"), ("河南", "41")]
CORES = ["华信", "鼎盛", "恒达", "嘉禾", "佳美", "中联", "瑞丰", "海纳", "新元", "博远", "天成", "金鹏", "汇通",
         "锦程", "宏图", "明德", "星河", "安泰", "万象", "启航", "云帆", "正阳", "聚源", "德润"]
TRADES = ["科技", "信息技术", "电子商务", "餐饮管理", "酒店管理", "物流", "建设工程", "商贸", "文化传媒",
          "网络科技", "出行科技", "旅行社", "医药", "电子科技", "供应链管理", "咨询服务"]
SUFFIXES = ["有限公司", "有限公司", "股份有限公司", "有限责任公司"]
ITEMS = [("*运输服务*客运服务费", "次", "免税", 0.0), ("*住宿服务*住宿费", "间", "6%", 0.06),
         ("*餐饮服务*餐饮费", "次", "6%", 0.06), ("*经纪代理服务*代订服务费", "次", "6%", 0.06),
         ("*信息技术服务*软件服务费", "项", "6%", 0.06), ("*计算机配套产品*鼠标", "个", "13%", 0.13),
         ("*办公用品*打印纸", "箱", "13%", 0.13), ("*电子元件*网络变压器", "个", "13%", 0.13),
         ("*运输服务*国内道路旅客运输", "次", "3%", 0.03), ("*现代服务*停车服务费", "次", "3%", 0.03)]
PEOPLE = ["王文鑫", "李娜", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄丽", "周杰", "吴敏", "孙强", "郑丽群"]
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ADMIN_CODES = ["110108", "310115", "120116", "500000", "440300", "440106", "330106", "320594", "510107",
               "420112", "370203", "350128", "520000", "530112", "610124", "340202"]

# (station, pinyin) — real stations
STATIONS = [("北京南", "Beijingnan"), ("上海虹桥", "Shanghaihongqiao"), ("南京南", "Nanjingnan"),
            ("杭州东", "Hangzhoudong"), ("广州南", "Guangzhounan"), ("深圳北", "Shenzhenbei"), ("武汉", "Wuhan"),
            ("成都东", "Chengdudong"), ("重庆北", "Chongqingbei"), ("西安北", "Xi'anbei"),
            ("郑州东", "Zhengzhoudong"), ("长沙南", "Changshanan"), ("天津西", "Tianjinxi"), ("济南西", "Jinanxi"),
            ("青岛北", "Qingdaobei"), ("合肥南", "Hefeinan"), ("苏州", "Suzhou"), ("无锡东", "Wuxidong"),
            ("厦门北", "Xiamenbei"), ("福州南", "Fuzhounan"), ("昆明南", "Kunmingnan"), ("贵阳北", "Guiyangbei"),
            ("南昌西", "Nanchangxi"), ("沈阳北", "Shenyangbei"), ("太原南", "Taiyuannan"),
            ("石家庄", "Shijiazhuang"), ("兰州西", "Lanzhouxi"), ("日照西", "Rizhaoxi"), ("宁波", "Ningbo"),
            ("徐州东", "Xuzhoudong")]
SEATS_FAST = ["二等座", "二等座", "二等座", "一等座", "商务座"]
SEATS_SLOW = ["硬座", "硬卧", "软卧", "硬座", "无座"]


def uscc(rng: random.Random) -> str:
    """A valid 18-character unified social credit code (统一社会信用代码)."""
    from stdnum.cn import uscc as _uscc

    head = rng.choice(["91", "91", "91", "92", "12"]) + rng.choice(ADMIN_CODES)
    if rng.random() < 0.5:
        body = "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(7))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(9))
    code = head + body
    return code + _uscc.calc_check_digit(code + "0")


def company(rng: random.Random) -> str:
    region, core, trade, suffix = rng.choice(REGIONS), rng.choice(CORES), rng.choice(TRADES), rng.choice(SUFFIXES)
    r = rng.random()
    if r < 0.2:
        return f"{core}（{region.rstrip('市')}）{trade}{suffix}"  # full-width parentheses, as printed
    if r < 0.3:
        return f"{region}{core}{trade}{suffix}{rng.choice(REGIONS).rstrip('市')}分公司"
    return f"{region}{core}{trade}{suffix}"


_DIGITS = "零壹贰叁肆伍陆柒捌玖"


def amount_in_words(value: float) -> str:
    """价税合计（大写）: 1308.00 → 壹仟叁佰零捌圆整."""
    fen_total = int(round(value * 100))
    yuan, jiao, fen = fen_total // 100, (fen_total // 10) % 10, fen_total % 10
    units = ["", "拾", "佰", "仟"]
    big = ["", "万", "亿"]
    out = ""
    if yuan == 0:
        out = "零"
    group_i = 0
    while yuan > 0:
        group, yuan = yuan % 10000, yuan // 10000
        g = ""
        zero = False
        for i in range(3, -1, -1):
            d = (group // 10 ** i) % 10
            if d == 0:
                zero = bool(g)
            else:
                if zero:
                    g += "零"
                    zero = False
                g += _DIGITS[d] + units[i]
        if g:
            if yuan > 0 and group < 1000:
                g = "零" + g  # 壹拾万零伍圆
            out = g + big[group_i] + out
        group_i += 1
    out += "圆"
    if jiao == 0 and fen == 0:
        return out + "整"
    if jiao:
        out += _DIGITS[jiao] + "角"
    elif fen:
        out += "零"
    if fen:
        out += _DIGITS[fen] + "分"
    return out


def _qr_image(payload: str, size: int) -> Image.Image:
    import segno

    buf = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(buf, kind="png", scale=4, border=1)
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img.resize((size, size), Image.NEAREST)


# --------------------------------------------------------------------------------------------
# Drawing helpers


class _Canvas:
    def __init__(self, w: int, h: int, s: float, bg=(255, 255, 255)):
        self.img = Image.new("RGB", (int(w * s), int(h * s)), bg)
        self.d = ImageDraw.Draw(self.img)
        self.s = s

    def text(self, x, y, text, size, fill=(0, 0, 0), mono=False, anchor="la"):
        self.d.text((x * self.s, y * self.s), text, font=_font(size * self.s, mono), fill=fill, anchor=anchor)

    def vtext(self, x, y, text, size, fill, gap=1.15):
        for i, ch in enumerate(text):
            self.text(x, y + i * size * gap, ch, size, fill)

    def rect(self, x0, y0, x1, y1, color, width=1):
        self.d.rectangle((x0 * self.s, y0 * self.s, x1 * self.s, y1 * self.s), outline=color,
                         width=max(1, int(width * self.s)))

    def line(self, x0, y0, x1, y1, color, width=1):
        self.d.line((x0 * self.s, y0 * self.s, x1 * self.s, y1 * self.s), fill=color, width=max(1, int(width * self.s)))

    def paste(self, im, x, y):
        self.img.paste(im, (int(x * self.s), int(y * self.s)))

    def stamp(self, cx, cy, r, color, text=""):
        s = self.s
        for k in range(3):
            self.d.ellipse(((cx - r - k * 0.4) * s, (cy - r * 0.7 - k * 0.4) * s, (cx + r + k * 0.4) * s,
                            (cy + r * 0.7 + k * 0.4) * s), outline=color, width=max(1, int(1.5 * s)))
        if text:
            self.text(cx, cy, text, r * 0.28, fill=color, anchor="mm")


def _photo(img: Image.Image, rng: random.Random, max_angle: float = 1.5, noise: float = 8.0,
           hard: bool = False) -> Image.Image:
    """A little rotation, blur and sensor noise, as on a scan or a photo. `hard`: up to 4°,
    more blur and noise, a smaller image and JPEG artefacts (a phone photo of a printout)."""
    import numpy as np

    if hard:
        max_angle, noise = 4.0, 14.0
    angle = rng.uniform(-max_angle, max_angle)
    img = img.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(250, 250, 248))
    if hard:
        f = rng.uniform(0.65, 0.85)
        img = img.resize((int(img.width * f), int(img.height * f)), Image.BILINEAR)
        img = img.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.5, 1.0)))
    elif rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.3, 0.8)))
    arr = np.asarray(img).astype(np.int16)
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    arr = arr + nrng.normal(0, noise, arr.shape).astype(np.int16)
    tint = np.array([rng.randint(-12, 0), rng.randint(-12, 0), rng.randint(-20, 0)], dtype=np.int16)
    arr = np.clip(arr + tint, 0, 255).astype(np.uint8)
    img = Image.fromarray(arr)
    if hard:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randint(35, 60))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def _date(rng: random.Random, start: dt.date = dt.date(2018, 1, 1), end: dt.date = dt.date(2025, 6, 30)) -> dt.date:
    return start + dt.timedelta(days=rng.randrange((end - start).days))


def _money(v: float) -> str:
    return f"{v:.2f}"


# --------------------------------------------------------------------------------------------
# VAT invoices


def _invoice_content(rng: random.Random, digital: bool) -> dict:
    n_items = rng.choice([1, 1, 1, 2, 2, 3])
    items = []
    exempt = (not digital) and rng.random() < 0.3
    for _ in range(n_items):
        name, unit, rate_txt, rate = rng.choice(ITEMS)
        if exempt:
            name, unit, rate_txt, rate = ITEMS[0]
        qty = rng.choice([1, 1, 1, 2, 3, 5, 10, 120])
        amount = round(rng.uniform(8, 30000 if digital else 2000), 2)
        price = amount / qty
        tax = round(amount * rate, 2)
        items.append({"description": name, "unit": unit, "quantity": float(qty), "price": price, "amount": amount,
                      "rate": rate_txt, "tax": tax, "exempt": rate == 0.0 and rate_txt == "免税"})
    subtotal = round(sum(i["amount"] for i in items), 2)
    tax = round(sum(i["tax"] for i in items), 2)
    return {
        "buyer": company(rng), "seller": company(rng), "buyer_id": uscc(rng), "seller_id": uscc(rng),
        "date": _date(rng, dt.date(2018, 1, 1) if not digital else dt.date(2022, 1, 1)), "items": items,
        "subtotal": subtotal, "tax": tax, "total": round(subtotal + tax, 2),
        "all_exempt": all(i["exempt"] for i in items),
    }


def _truth(c: dict, number: str, code: str | None, payload: str) -> dict:
    t = {
        "document_kind": "vat_invoice",
        "merchant_name": c["seller"], "buyer_name": c["buyer"],
        "seller_tax_id": c["seller_id"], "buyer_tax_id": c["buyer_id"],
        "invoice_number": number, "transaction_date": c["date"].isoformat(),
        "subtotal": c["subtotal"], "tax": c["tax"], "total": c["total"], "currency": "CNY",
        "items": [{"description": i["description"], "amount": i["amount"]} for i in c["items"]],
        "qr_payload": payload,
    }
    if code:
        t["invoice_code"] = code
    return t


def render_vat_invoice(seed: int, layout: str = "provincial", photo: bool | str = True) -> tuple[Image.Image, dict]:
    """A VAT e-invoice page: `provincial` (增值税电子普通发票 with 发票代码; buyer block on top, seller
    block at the bottom) or `digital` (数电票 电子发票（增值税专用发票/普通发票）; buyer left, seller right)."""
    if layout not in ("provincial", "digital"):
        raise ValueError(layout)
    rng = random.Random(seed)
    digital = layout == "digital"
    c = _invoice_content(rng, digital)
    s = rng.uniform(1.0, 1.45)
    ink = rng.choice([(140, 80, 40), (150, 30, 30), (120, 60, 30)])  # the form's printed colour
    black = (20, 20, 20)
    fs = rng.uniform(0.92, 1.12)  # text size factor
    if digital:
        return _render_digital(rng, c, s, ink, black, fs, photo)
    return _render_provincial(rng, c, s, ink, black, fs, photo)


def _items_table(cv: _Canvas, c: dict, top: float, bottom: float, x0: float, x1: float, cols: list, ink, black, fs,
                 header_name: str, stars: bool) -> None:
    """Header, item rows and the 合计 row between `top` and `bottom` (the 合计 row sits at the bottom)."""
    w = x1 - x0
    cx = {k: x0 + f * w for k, f in cols}
    hdr = {"name": header_name, "spec": "规格型号", "unit": "单位", "qty": "数 量", "price": "单 价",
           "amount": "金 额", "rate": "税率" if "征收率" not in header_name else "税率/征收率", "tax": "税 额"}
    for k, label in hdr.items():
        cv.text(cx[k], top + 4, label, 15 * fs, ink, anchor="ma")
    y = top + 26
    for it in c["items"]:
        cv.text(x0 + 6, y, it["description"], 14 * fs, black)
        cv.text(cx["unit"], y, it["unit"], 14 * fs, black, anchor="ma")
        q = it["quantity"]
        cv.text(cx["qty"] + 30, y, f"{q:g}", 14 * fs, black, anchor="ra")
        cv.text(cx["price"] + 38, y, f"{it['price']:.8g}", 14 * fs, black, anchor="ra")
        cv.text(cx["amount"] + 45, y, _money(it["amount"]), 14 * fs, black, anchor="ra")
        cv.text(cx["rate"], y, it["rate"], 14 * fs, black, anchor="ma")
        cv.text(cx["tax"] + 45, y, "***" if (stars and it["exempt"]) else _money(it["tax"]), 14 * fs, black, anchor="ra")
        y += 24
    sy = bottom - 26
    cv.text(x0 + 0.09 * w, sy, "合", 15 * fs, ink)
    cv.text(x0 + 0.16 * w, sy, "计", 15 * fs, ink)
    cv.text(cx["amount"] + 45, sy, "¥" + _money(c["subtotal"]), 15 * fs, black, anchor="ra")
    tax_txt = "***" if (stars and c["all_exempt"]) else "¥" + _money(c["tax"])
    cv.text(cx["tax"] + 45, sy, tax_txt, 15 * fs, black, anchor="ra")


def _render_provincial(rng, c, s, ink, black, fs, photo):
    prov, pcode = rng.choice(PROVINCES)
    code = "0" + pcode + "00" + f"{c['date'].year % 100:02d}" + rng.choice(["001", "002", "003", "004"]) + "11"
    number = f"{rng.randrange(10 ** 8):08d}"
    check = "".join(rng.choice("0123456789") for _ in range(20))
    payload = f"01,10,{code},{number},{_money(c['subtotal']).rstrip('0').rstrip('.') if rng.random() < 0.3 else _money(c['subtotal'])}," \
              f"{c['date']:%Y%m%d},{check},{rng.randrange(65536):04X},"
    cv = _Canvas(1240, 830, s)
    cv.paste(_qr_image(payload, int(118 * s)), 40, 22)
    cv.text(600, 34, f"{prov}增值税电子普通发票", 30 * fs, ink, anchor="ma")
    cv.line(380, 98, 820, 98, ink, 2)
    cv.line(380, 103, 820, 103, ink, 1)
    cv.stamp(600, 110, 58, (210, 40, 40), "国家税务总局")
    rx = 880
    cv.text(rx, 34, "发票代码：", 15 * fs, ink)
    cv.text(rx + 78 * fs, 34, code, 15 * fs, black)
    cv.text(rx, 68, "发票号码：", 15 * fs, ink)
    cv.text(rx + 78 * fs, 68, number, 15 * fs, black)
    cv.text(rx, 102, "开票日期：", 15 * fs, ink)
    cv.text(rx + 78 * fs, 102, f"{c['date'].year}年{c['date'].month:02d}月{c['date'].day:02d}日", 15 * fs, black)
    cv.text(rx, 136, "校 验 码：", 15 * fs, ink)
    cv.text(rx + 78 * fs, 136, " ".join(check[i:i + 5] for i in range(0, 20, 5)), 14 * fs, black)
    cv.text(30, 150, "机器编号：", 14 * fs, ink)
    cv.text(30 + 72 * fs, 150, "".join(rng.choice("0123456789") for _ in range(12)), 14 * fs, black)
    # frame
    L, R, T, B = 25, 1215, 175, 735
    cv.rect(L, T, R, B, ink, 1.5)
    buyer_b, items_b, total_b = 300, 568, 610
    for y in (buyer_b, items_b, total_b):
        cv.line(L, y, R, y, ink, 1)
    cv.line(70, T, 70, buyer_b, ink)
    cv.line(70, total_b, 70, B, ink)
    cv.line(700, T, 700, buyer_b, ink)
    cv.line(745, T, 745, buyer_b, ink)
    cv.line(700, total_b, 700, B, ink)
    cv.line(745, total_b, 745, B, ink)
    cv.line(300, items_b, 300, total_b, ink)

    def party(top, marker, name, tid):
        cv.vtext(38, top + 12, marker, 17 * fs, ink, gap=1.6)
        cv.text(80, top + 6, "名", 15 * fs, ink)
        cv.text(170, top + 6, "称：", 15 * fs, ink)
        cv.text(205, top + 6, name, 15 * fs, black)
        cv.text(80, top + 34, "纳税人识别号：", 15 * fs, ink)
        cv.text(80 + 112 * fs, top + 32, tid, 19 * fs, black, mono=True)
        cv.text(80, top + 64, "地 址、电 话：", 15 * fs, ink)
        if rng.random() < 0.6:
            cv.text(80 + 110 * fs, top + 66, f"{rng.choice(REGIONS)}{rng.choice(CORES)}路{rng.randint(1, 999)}号 "
                                             f"0{rng.randint(10, 999)}-{rng.randint(1000000, 99999999)}", 12 * fs, black)
        cv.text(80, top + 94, "开户行及账号：", 15 * fs, ink)

    party(T, "购买方", c["buyer"], c["buyer_id"])
    cv.vtext(712, T + 20, "密码区", 16 * fs, ink, gap=1.8)
    for i in range(4):
        cv.text(760, T + 10 + i * 27, "".join(rng.choice("0123456789<>+-*/") for _ in range(28)), 19 * fs, black, mono=True)
    cols = [("name", 0.12), ("spec", 0.30), ("unit", 0.43), ("qty", 0.51), ("price", 0.60), ("amount", 0.73),
            ("rate", 0.835), ("tax", 0.93)]
    _items_table(cv, c, buyer_b, items_b, L, R, cols, ink, black, fs, "货物或应税劳务、服务名称", stars=True)
    cv.text(100, total_b - 34, "价税合计（大写）", 15 * fs, ink)
    cv.text(320, total_b - 34, "⊗ " + amount_in_words(c["total"]), 15 * fs, black)
    cv.text(900, total_b - 34, "（小写）", 15 * fs, ink)
    cv.text(900 + 62 * fs, total_b - 36, "¥" + _money(c["total"]), 17 * fs, black)
    party(total_b, "销售方", c["seller"], c["seller_id"])
    cv.vtext(712, total_b + 25, "备注", 16 * fs, ink, gap=3.0)
    cv.text(60, B + 10, f"收款人：{rng.choice(PEOPLE)}", 15 * fs, ink)
    cv.text(380, B + 10, f"复核：{rng.choice(PEOPLE)}", 15 * fs, ink)
    cv.text(640, B + 10, f"开票人：{rng.choice(PEOPLE)}", 15 * fs, ink)
    cv.text(880, B + 10, "销售方：(章)", 15 * fs, ink)
    img = cv.img
    if photo:
        img = _photo(img, rng, hard=photo == "hard")
    return img, _truth(c, number, code, payload)


def _render_digital(rng, c, s, ink, black, fs, photo):
    special = rng.random() < 0.6
    kind = "31" if special else "32"
    title = "电子发票（增值税专用发票）" if special else "电子发票（普通发票）"
    number = f"{c['date'].year % 100:02d}" + rng.choice(["11", "31", "32", "44", "51", "12"]) + \
        "".join(rng.choice("0123456789") for _ in range(16))
    payload = f"01,{kind},{rng.choice(['', ' '])},{number},{_money(c['total'])},{c['date']:%Y%m%d},,{rng.randrange(65536):04X}"
    cv = _Canvas(1400, 930, s)
    cv.paste(_qr_image(payload, int(120 * s)), 35, 30)
    cv.text(620, 40, title, 34 * fs, ink, anchor="ma")
    cv.line(400, 100, 840, 100, ink, 2)
    cv.line(400, 105, 840, 105, ink, 1)
    cv.stamp(620, 112, 62, (210, 40, 40), "全国统一发票监制章")
    cv.text(1030, 60, "发票号码：", 16 * fs, ink)
    cv.text(1030 + 82 * fs, 60, number, 16 * fs, black)
    cv.text(1030, 96, "开票日期：", 16 * fs, ink)
    cv.text(1030 + 82 * fs, 96, f"{c['date'].year}年{c['date'].month:02d}月{c['date'].day:02d}日", 16 * fs, black)
    L, R, T, B = 30, 1370, 195, 825
    cv.rect(L, T, R, B, ink, 1.5)
    band_b, items_b, total_b = 340, 640, 685
    for y in (band_b, items_b, total_b):
        cv.line(L, y, R, y, ink)
    mid = 700
    cv.line(70, T, 70, band_b, ink)
    cv.line(mid, T, mid, band_b, ink)
    cv.line(mid + 40, T, mid + 40, band_b, ink)
    cv.line(370, items_b, 370, total_b, ink)
    cv.vtext(42, T + 12, "购买方信息", 17 * fs, ink, gap=1.45)
    cv.vtext(mid + 12, T + 12, "销售方信息", 17 * fs, ink, gap=1.45)
    for x, name, tid in ((80, c["buyer"], c["buyer_id"]), (mid + 50, c["seller"], c["seller_id"])):
        cv.text(x, T + 28, "名称：", 16 * fs, ink)
        cv.text(x + 50 * fs, T + 28, name, 16 * fs, black)
        cv.text(x, T + 92, "统一社会信用代码/纳税人识别号：", 14 * fs, ink)
        cv.text(x + 225 * fs, T + 88, tid, 19 * fs, black, mono=True)
    cols = [("name", 0.09), ("spec", 0.22), ("unit", 0.34), ("qty", 0.45), ("price", 0.56), ("amount", 0.685),
            ("rate", 0.79), ("tax", 0.92)]
    _items_table(cv, c, band_b, items_b, L, R, cols, ink, black, fs, "项目名称", stars=False)
    cv.text(110, total_b - 34, "价税合计（大写）", 16 * fs, ink)
    cv.text(390, total_b - 34, "⊗" + amount_in_words(c["total"]), 16 * fs, black)
    cv.text(960, total_b - 34, "（小写）", 16 * fs, ink)
    cv.text(960 + 64 * fs, total_b - 37, "¥" + _money(c["total"]), 19 * fs, black)
    cv.vtext(42, total_b + 30, "备注", 16 * fs, ink, gap=2.5)
    cv.text(130, B + 30, f"开票人：{rng.choice(PEOPLE)}", 16 * fs, ink)
    img = cv.img
    if photo:
        img = _photo(img, rng, hard=photo == "hard")
    return img, _truth(c, number, None, payload)


# --------------------------------------------------------------------------------------------
# Railway tickets


def _ticket_content(rng: random.Random, eticket: bool) -> dict:
    (a, pa), (b, pb) = rng.sample(STATIONS, 2)
    fast = rng.random() < 0.75
    if fast:
        train = rng.choice("GGGDDC") + str(rng.randint(1, 9999) if rng.random() < 0.5 else rng.randint(1, 999))
        seat = rng.choice(SEATS_FAST)
        price = round(rng.randint(100, 18000) / 2) / 10 if not eticket else round(rng.uniform(20, 1800), 1)
    else:
        train = rng.choice(["K", "T", "Z", ""]) + str(rng.randint(1, 9999) if rng.random() < 0.6 else rng.randint(1000, 8999))
        if not train[0].isalpha():
            train = str(rng.randint(1000, 8999))
        seat = rng.choice(SEATS_SLOW)
        price = round(rng.randint(50, 6000) / 2) / 10
    day = _date(rng, dt.date(2015, 1, 1) if not eticket else dt.date(2024, 1, 1), dt.date(2025, 12, 31))
    hh, mm = rng.randint(5, 22), rng.choice(range(0, 60))
    car, row = rng.randint(1, 16), rng.randint(1, 20)
    seat_no = f"{car:02d}车无座" if seat == "无座" else (
        f"{car:02d}车{row:03d}号{rng.choice('上中下')}铺" if "卧" in seat else f"{car:02d}车{row:02d}{rng.choice('ABCDF')}号")
    return {"from": a, "from_py": pa, "to": b, "to_py": pb, "train": train, "seat": seat, "seat_no": seat_no,
            "price": price, "day": day, "time": f"{hh:02d}:{mm:02d}"}


def render_train_ticket(seed: int, layout: str = "paper", photo: bool | str = True) -> tuple[Image.Image, dict]:
    """A China Railway ticket: `paper` (the blue ticket / 报销凭证, red ticket number top left) or
    `eticket` (电子发票（铁路电子客票）, with 发票号码, 开票日期 after the trip and 票价)."""
    if layout not in ("paper", "eticket"):
        raise ValueError(layout)
    rng = random.Random(seed)
    eticket = layout == "eticket"
    t = _ticket_content(rng, eticket)
    s = rng.uniform(0.9, 1.4)
    fs = rng.uniform(0.9, 1.1)
    black, red = (25, 25, 30), (200, 40, 40)
    if rng.random() < 0.5:
        red_code = rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + f"{rng.randrange(10 ** 6):06d}"
    else:
        red_code = "Z" + f"{rng.randint(10, 99)}" + rng.choice("ABCDEFGHJK") + f"{rng.randrange(10 ** 6):06d}"
    if eticket:
        cv = _Canvas(1400, 860, s, bg=(255, 255, 255))
        number = f"{t['day'].year % 100:02d}" + "".join(rng.choice("0123456789") for _ in range(18))
        issued = t["day"] + dt.timedelta(days=rng.randint(0, 20))
        payload = f"01,51,,{number},{_money(t['price'])},{issued:%Y%m%d},,{rng.randrange(65536):04X}"
        cv.paste(_qr_image(payload, int(110 * s)), 40, 30)
        cv.text(700, 50, "电子发票（铁路电子客票）", 34 * fs, (150, 60, 40), anchor="ma")
        cv.text(1010, 120, f"发票号码：{number}", 17 * fs, black)
        cv.text(1010, 152, f"开票日期：{issued.year}年{issued.month:02d}月{issued.day:02d}日", 17 * fs, black)
        top = 220
        cv.text(160, top, t["from"] + "站", 34 * fs, black)
        cv.text(630, top + 4, t["train"], 32 * fs, black, mono=True)
        cv.text(980, top, t["to"] + "站", 34 * fs, black)
        cv.text(170, top + 52, t["from_py"], 20 * fs, black)
        cv.text(990, top + 52, t["to_py"], 20 * fs, black)
        cv.text(160, top + 110, f"{t['day'].year}年{t['day'].month:02d}月{t['day'].day:02d}日 {t['time']}开", 24 * fs, black)
        cv.text(680, top + 110, t["seat_no"], 24 * fs, black)
        cv.text(1000, top + 110, t["seat"], 24 * fs, black)
        cv.text(160, top + 170, f"票价：￥{t['price']:.2f}", 24 * fs, black)
        cv.text(160, top + 230, f"{rng.randint(110000, 659999)}{rng.randint(1960, 2005)}****{rng.randint(1000, 9999)} "
                                f"{rng.choice(PEOPLE)}", 22 * fs, black)
        cv.text(160, top + 290, f"电子客票号：{''.join(rng.choice('0123456789') for _ in range(25))}", 18 * fs, black)
        cv.text(160, top + 340, f"购买方名称：{company(rng)}", 18 * fs, black)
        cv.text(160, top + 380, f"统一社会信用代码：{uscc(rng)}", 18 * fs, black)
        cv.line(40, top + 440, 1360, top + 440, (120, 120, 120))
        cv.text(160, top + 460, "买票请到12306 发货请到95306", 18 * fs, black)
        inv = number
    else:
        bg = rng.choice([(170, 205, 230), (235, 205, 205), (210, 225, 240)])
        cv = _Canvas(1280, 820, s, bg=bg)
        cv.text(90, 60, red_code, 40 * fs, red, mono=True)
        if rng.random() < 0.6:
            cv.text(960, 60, f"检票:{rng.choice('ABC')}{rng.randint(1, 30)}", 28 * fs, black)
        top = 160
        cv.text(110, top, t["from"] + "站", 52 * fs, black)
        cv.text(560, top + 8, t["train"], 48 * fs, black, mono=True)
        cv.line(540, top + 75, 760, top + 75, black, 3)
        cv.line(740, top + 65, 760, top + 75, black, 3)
        cv.text(830, top, t["to"] + "站", 52 * fs, black)
        cv.text(140, top + 80, t["from_py"], 28 * fs, black)
        cv.text(860, top + 80, t["to_py"], 28 * fs, black)
        cv.text(100, top + 150, f"{t['day'].year}年{t['day'].month:02d}月{t['day'].day:02d}日{t['time']}开", 36 * fs, black)
        cv.text(780, top + 150, t["seat_no"], 36 * fs, black)
        cv.text(100, top + 220, f"￥{t['price']:.1f}元", 36 * fs, black)
        if rng.random() < 0.5:
            cv.text(560, top + 220, "网", 36 * fs, black)
        cv.text(860, top + 220, t["seat"], 36 * fs, black)
        cv.text(100, top + 290, rng.choice(["限乘当日当次车", "仅供报销使用", "限乘当日当次车"]), 30 * fs, black)
        cv.text(100, top + 380, f"{rng.randint(110000, 659999)}{rng.randint(1960, 2005)}****{rng.randint(1000, 9999)}"
                                f"{rng.choice(PEOPLE)}", 34 * fs, black)
        cv.rect(260, top + 440, 900, top + 540, black, 1)
        cv.text(580, top + 455, "买票请到12306 发货请到95306", 24 * fs, black, anchor="ma")
        cv.text(580, top + 495, "中国铁路祝您旅途愉快", 26 * fs, black, anchor="ma")
        cv.text(110, top + 570, f"{''.join(rng.choice('0123456789') for _ in range(14))}{red_code} "
                                f"{rng.choice(STATIONS)[0]}售", 28 * fs, black, mono=False)
        inv = red_code
    img = cv.img
    if photo:
        img = _photo(img, rng, max_angle=2.0, noise=10.0, hard=photo == "hard")
    truth = {
        "document_kind": "train_ticket",
        "travel": {"from": t["from"] + "站", "to": t["to"] + "站", "train_number": t["train"], "seat_class": t["seat"],
                   "departure": f"{t['day'].isoformat()}T{t['time']}"},
        "transaction_date": t["day"].isoformat(), "total": float(t["price"]), "currency": "CNY",
        "merchant_name": "中国铁路", "invoice_number": inv,
    }
    return img, truth
