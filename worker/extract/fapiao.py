"""Chinese VAT invoice (增值税发票) fields from OCR lines with boxes.

Covers the printed layouts in use since 2017:
- the provincial (older) layout — 增值税电子普通发票 / 增值税电子专用发票 / 深圳电子普通发票, the paper
  增值税专用/普通发票: 发票代码 + 8-digit 发票号码 top right; a 购买方 block on top and a 销售方 block
  at the bottom, each with `名 称：` / `纳税人识别号：` rows and a vertical 购买方 / 销售方 marker at
  its left edge;
- the fully digital 数电票 (电子发票（增值税专用发票）/（普通发票）): 20-digit 发票号码, no code; the
  buyer block left and the seller block right on the same band, each with `名称：` and
  `统一社会信用代码/纳税人识别号：`, marked by a vertical 购买方信息 / 销售方信息 at its left edge.

Which block a label belongs to is decided by geometry: the nearest 购买方/销售方 marker at its
left (the vertical label at the block's edge), falling back to the two layouts' arrangement
(top/bottom, left/right) when the markers were not read. No company-specific strings. Boxes are
levelled first for a slanted photo (worker.extract.skew); evidence keeps the boxes as read.
The same code reads a PDF's text layer laid out as lines (docket.pages), where values often
come in pieces (`2024` `年04月` `07` `日`).

Fields (all optional): document_kind ("vat_invoice"), merchant_name (the seller's name, 销售方
名称), buyer_name, seller_tax_id, buyer_tax_id (18-character codes checked and OCR confusions
undone), invoice_number, invoice_code, transaction_date (开票日期, ISO), subtotal (合计 金额),
tax (合计 税额; `***`/免税 → 0.0), total (价税合计（小写）), currency ("CNY"),
items ([{description, amount (金额, before tax), quantity?}]).

A decoded QR code (`worker.extract.fapiao_qr.FapiaoQr`) fills or corrects the number, code,
date and the amount it carries (before tax on the older types, incl. tax on 数电票); such
fields get `sources[field] = "qr"`, the rest `"ocr"`.
"""
from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

from stdnum.cn import uscc

from worker.extract.base import Extraction, corroborated
from worker.extract.skew import estimate_slope, level_boxes
from worker.extract.layout import Boxed
from worker.extract.layout import evidence_boxes as _ev
from worker.extract.layout import line_confidence as _conf

__all__ = ["extract_vat_invoice", "uscc_valid", "fix_tax_id"]

Box = tuple[float, float, float, float, int]


# --------------------------------------------------------------------------------------------
# Lines


@dataclass
class _L(Boxed):
    idx: int
    raw: str  # as read, stripped
    t: str  # NFKC, whitespace removed: used for matching and most values
    box: tuple[float, float, float, float]  # levelled for the page's slant (see worker.extract.skew)
    score: float
    orig: tuple[float, float, float, float] | None = None  # as read: used for evidence

    @property
    def row_h(self) -> float:
        """The height of one text row: a vertical label (购买方 written downwards) is tall but
        its characters are as wide as the row is high."""
        return min(self.h, self.w) if self.h > 1.8 * self.w else self.h


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    return re.sub(r"\s+", "", text)


def _lines(raw_lines: Iterable) -> list[_L]:
    out = []
    for i, r in enumerate(raw_lines or []):
        raw = (getattr(r, "text", "") or "").strip()
        t = _norm(raw)
        if not t:
            continue
        box = tuple(float(v) for v in getattr(r, "box", (0, 0, 0, 0)))
        out.append(_L(i, raw, t, box, float(getattr(r, "score", 1.0) or 0.0), box))
    for l, lev in zip(out, level_boxes([l.box for l in out], estimate_slope([l.box for l in out]))):
        l.box = lev
    return out


def _same_row(a: _L, b: _L, tol: float = 0.5) -> bool:
    ha, hb = a.row_h, b.row_h
    return abs(a.cy - b.cy) <= tol * max(ha, hb) and min(a.y1, b.y1) > max(a.y0, b.y0)


def _right_of(anchor: _L, ls: Sequence[_L], pred=None, max_gap: float | None = None) -> list[_L]:
    """Lines on the anchor's row to its right, nearest first."""
    gap = max_gap if max_gap is not None else 12 * anchor.row_h
    out = [l for l in ls if l is not anchor and _same_row(anchor, l) and l.x0 >= anchor.x1 - 1.5 * anchor.row_h
           and l.x1 > anchor.x1 + anchor.row_h and l.x0 - anchor.x1 <= gap and (pred is None or pred(l))]
    return sorted(out, key=lambda l: l.x0)


def _row_after(anchor: _L, ls: Sequence[_L], label_end: int | None = None) -> tuple[str, list[_L]]:
    """The anchor's text after its label plus the text of the boxes to its right on the same row
    (a value printed, or laid out in a PDF's text layer, in pieces: `2024` `年04月` `07` `日`)."""
    own = anchor.t[label_end:] if label_end is not None else ""
    right = sorted((l for l in ls if l is not anchor and _same_row(anchor, l) and l.x0 > anchor.x0
                    and l.x1 > anchor.x1 + 1 and l.x0 - anchor.x1 <= 10 * anchor.row_h), key=lambda l: l.x0)
    out, used, last_x1 = own, [anchor], anchor.x1
    for l in right:
        if l.x0 - last_x1 > 4 * anchor.row_h:
            break
        out += l.t
        used.append(l)
        last_x1 = max(last_x1, l.x1)
    return out, used


def _labelled_digits(anchor: _L, label_end: int, ls: Sequence[_L], pattern: str) -> tuple[str, list[_L]] | None:
    """A number printed after a label (发票号码 / 发票代码): in the label's own box, else the
    box to its right on the row nearest the label's height (not one that is another label)."""
    rx = re.compile(r"(?<!\d)(" + pattern + r")(?!\d)")
    own = anchor.t[label_end:].replace("O", "0")
    m = rx.search(own)
    if m:
        return m.group(1), [anchor]
    _, used = _row_after(anchor, ls, label_end)
    best = None
    for l in used[1:]:
        if re.search(r"代码|号码|日期|校验", l.t):
            continue
        m = rx.search(l.t.replace("O", "0"))
        if m and (best is None or abs(l.cy - anchor.cy) < abs(best[1].cy - anchor.cy)):
            best = (m.group(1), l)
    return (best[0], [anchor, best[1]]) if best else None




# --------------------------------------------------------------------------------------------
# Values

_AMOUNT_RE = re.compile(r"(?<![\d.])-?\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?(?![\d])|(?<![\d.])-?\d+\.\d{1,2}(?![\d])")
_STARS_RE = re.compile(r"^[*※xX×]{2,}$")
# OCR confusions between characters of a tax id (both directions are tried)
_CONFUSABLE = {
    "0": "DOQ", "D": "0", "O": "0", "Q": "0", "1": "IL7T", "I": "1", "L": "1", "T": "1", "7": "1",
    "2": "Z", "Z": "2", "5": "S", "S": "5", "8": "B", "B": "8", "6": "G", "G": "6", "U": "V", "V": "U",
    "4": "A", "A": "4",
}


def uscc_valid(code: str) -> bool:
    """True for an 18-character unified social credit code (统一社会信用代码) with a valid check
    character (GB 32100-2015)."""
    # python-stdnum would also accept lower case and separators: an OCR'd code must be exact.
    return code.isascii() and code.isalnum() and code == code.upper() and uscc.is_valid(code)


def fix_tax_id(code: str) -> tuple[str, bool]:
    """(code, valid): an 18-character code is checked against its check character and, when it
    fails, the single OCR confusion (0/O/D, 1/I, 2/Z, 5/S, 8/B…) that makes it valid is undone
    if exactly one does. 15- and 20-character (older) tax ids have no check: returned as read."""
    code = re.sub(r"[^0-9A-Za-z]", "", code).upper()
    if len(code) != 18:
        return code, False
    if uscc_valid(code):
        return code, True
    fixes = set()
    for i, c in enumerate(code):
        for alt in _CONFUSABLE.get(c, ""):
            cand = code[:i] + alt + code[i + 1:]
            if uscc_valid(cand):
                fixes.add(cand)
    if len(fixes) == 1:
        return fixes.pop(), True
    return code, False


_TAXID_TOKEN_RE = re.compile(r"(?<![0-9A-Z])[0-9A-Z]{15,20}(?![0-9A-Z])")


def _tax_id_in(text: str) -> str | None:
    """The tax id in a text (after its label): the 18-character code preferred."""
    up = re.sub(r"[^0-9A-Za-z]", "", text).upper()
    if not up:
        return None
    # the label may be glued in front ("识别号91320594MA1MFD7F31"): try the tail first
    for n in (18, 20, 15):
        if len(up) >= n:
            tail = up[-n:]
            if n == 18 and (uscc_valid(tail) or (tail[:2].isdigit() and sum(c.isdigit() for c in tail) >= 10)):
                return tail
    m = _TAXID_TOKEN_RE.findall(up)
    if m:
        return max(m, key=lambda s: (len(s) == 18, len(s)))
    return None


def _amount_in(text: str) -> float | None:
    t = text.replace("O", "0").replace("o", "0") if re.search(r"\d", text) else text
    found = _AMOUNT_RE.findall(t)
    if not found:
        return None
    try:
        return round(float(found[-1].replace(",", "")), 2)
    except ValueError:
        return None


_DATE_RE = re.compile(r"((?:19|20)\d{2})年(\d{1,2})月(\d{1,2})日?")
_DATE_ALT_RE = re.compile(r"((?:19|20)\d{2})[-./](\d{1,2})[-./](\d{1,2})")


def _date_in(text: str) -> str | None:
    for rx in (_DATE_RE, _DATE_ALT_RE):
        m = rx.search(text)
        if m:
            try:
                return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
            except ValueError:
                continue
    return None


def _clean_name(text: str) -> str:
    """A company name as printed: whitespace removed, stray punctuation at the ends dropped,
    parentheses full-width (Chinese names print （）; the OCR often returns ASCII ones)."""
    text = _norm(text).strip(":;,.、|·-_")
    text = text.replace("(", "（").replace(")", "）")
    return text


# --------------------------------------------------------------------------------------------
# Blocks: which lines belong to the buyer (购买方) and which to the seller (销售方)

_BUYER_MARK_RE = re.compile(r"^(?:(?=.*[购买])[购买方信息]{1,5}|[\u4e00-\u9fff]?(?:买方|购买)[\u4e00-\u9fff]{0,3})$")
_SELLER_MARK_RE = re.compile(r"^(?:(?=.*[销售])[销售方信息]{1,5}|[\u4e00-\u9fff]?(?:售方|销售)[\u4e00-\u9fff]{0,3})$")
_ROLE_PREFIX_RE = re.compile(r"^(购买方|购方|买方|销售方|销方|售方|购(?=名称)|销(?=名称))")
_NAME_LABEL_RE = re.compile(r"^(?:购买方|购方|买方|销售方|销方|售方|购|销)?(?:名称|名?称|名.(?=[:：]))[:;：]?")
_TAXID_LABEL_RE = re.compile(r"纳税人识别号|识别号|统一社会信用代码|信用代码|税号")
_OTHER_LABEL_RE = re.compile(r"^(?:地址|电话|开户行|账号|电子支付|备注|密码|收款人|复核|开票人)")


def _markers(ls: Sequence[_L]) -> list[tuple[str, _L]]:
    out = []
    for l in ls:
        if _BUYER_MARK_RE.match(l.t):
            out.append(("buyer", l))
        elif _SELLER_MARK_RE.match(l.t):
            out.append(("seller", l))
    return out


def _role_by_marker(anchor: _L, markers: list[tuple[str, _L]]) -> str | None:
    """The role of the nearest block marker to the anchor's left (vertical labels at each
    block's left edge): horizontal gap plus twice the vertical gap."""
    best = None
    for role, m in markers:
        if m.x0 > anchor.x0 + 0.5 * anchor.row_h:
            continue
        dx = max(0.0, anchor.x0 - m.x1)
        dy = max(0.0, m.y0 - anchor.cy, anchor.cy - m.y1)
        if dy > max(2.0 * anchor.row_h, 0.5 * m.h):
            continue  # a marker spans its own block: this one is another block's
        d = dx + 2.0 * dy
        if best is None or d < best[0]:
            best = (d, role)
    if best is None or best[0] > 40 * anchor.row_h:
        return None
    return best[1]


def _explicit_role(text: str) -> str | None:
    m = _ROLE_PREFIX_RE.match(text)
    if not m:
        return None
    return "buyer" if m.group(1) in ("购买方", "购方", "买方", "购") else "seller"


def _assign_roles(anchors: list[_L], markers, ref_y: float | None, page_w: float) -> dict[int, str]:
    """Role per anchor (by index in `anchors`): explicit prefix, else marker, else layout."""
    roles: dict[int, str] = {}
    for i, a in enumerate(anchors):
        r = _explicit_role(a.t) or _role_by_marker(a, markers)
        if r:
            roles[i] = r
    rest = [i for i in range(len(anchors)) if i not in roles]
    if not rest:
        return roles
    if len(anchors) >= 2:
        # two blocks: side by side (数电票) or one above the other (older layout)
        pairs = sorted(range(len(anchors)), key=lambda i: (anchors[i].cy, anchors[i].x0))
        a, b = anchors[pairs[0]], anchors[pairs[-1]]
        if _same_row(a, b, 1.0):
            order = sorted(range(len(anchors)), key=lambda i: anchors[i].x0)
        else:
            order = pairs
        for i in rest:
            roles[i] = "buyer" if i == order[0] else ("seller" if i == order[-1] else roles.get(i, "buyer"))
        return roles
    i = rest[0]
    a = anchors[i]
    if ref_y is not None and a.cy > ref_y:
        roles[i] = "seller"  # below the items table: the older layout's seller block
    elif a.x0 > 0.4 * page_w:
        roles[i] = "seller"  # right half of the header band: 数电票 seller
    else:
        roles[i] = "buyer"
    return roles


def _name_value(anchor: _L, ls: Sequence[_L]) -> tuple[str, list[_L]] | None:
    if anchor.t == "名":
        # the label's first character alone (`名      称：…` printed apart, 称 misread): the
        # value follows the next box's colon on the same row
        right = _right_of(anchor, ls, max_gap=10 * anchor.row_h)
        if not right or not re.match(r"^.{0,2}[:：]", right[0].t):
            return None
        rest = re.sub(r"^.{0,2}?[:：]", "", right[0].t, count=1)
        used = [anchor, right[0]]
        if len(rest) < 2 and len(right) > 1:
            rest = right[1].t
            used.append(right[1])
        name = _clean_name(rest)
        return (name, used) if len(name) >= 2 and re.search(r"[\u4e00-\u9fffA-Za-z]", name) else None
    m = _NAME_LABEL_RE.match(anchor.t)
    rest = anchor.t[m.end():] if m else ""
    used = [anchor]
    if len(rest) < 2:
        right = _right_of(anchor, ls, lambda l: not _OTHER_LABEL_RE.match(l.t) and not _markers([l])
                          and re.search(r"[\u4e00-\u9fffA-Za-z]", l.t) is not None, max_gap=6 * anchor.row_h)
        if not right:
            return None
        rest = right[0].t
        used.append(right[0])
    else:
        # a box that ran on into the next column (`… 有限公司 密`): drop the stray label
        tail = re.search(r"\s+(密码区|密码|密|码|区|备注|备|注)\s*$", unicodedata.normalize("NFKC", anchor.raw))
        if tail and rest.endswith(tail.group(1)):
            rest = rest[: -len(tail.group(1))]
    name = _clean_name(rest)
    if len(name) < 2 or not re.search(r"[\u4e00-\u9fffA-Za-z]", name):
        return None
    return name, used


def _taxid_value(anchor: _L, ls: Sequence[_L]) -> tuple[str, list[_L], bool] | None:
    m = list(_TAXID_LABEL_RE.finditer(anchor.t))
    rest = anchor.t[m[-1].end():] if m else anchor.t
    used = [anchor]
    code = _tax_id_in(rest) if rest else None
    if code is None:
        right = _right_of(anchor, ls, lambda l: _tax_id_in(l.t) is not None, max_gap=6 * anchor.row_h)
        if not right:
            return None
        code = _tax_id_in(right[0].t)
        used.append(right[0])
    code, ok = fix_tax_id(code)
    return code, used, ok


# --------------------------------------------------------------------------------------------
# The items table and its totals


def _merge_row_labels(ls: Sequence[_L]) -> list[tuple[str, tuple[float, float, float, float], list[_L]]]:
    """Header cells of a row: single characters printed apart (`金  额`) joined up."""
    cells: list[tuple[str, tuple[float, float, float, float], list[_L]]] = []
    for l in sorted(ls, key=lambda l: l.x0):
        if cells:
            text, (x0, y0, x1, y1), members = cells[-1]
            if len(text) == 1 and len(l.t) == 1 and l.x0 - x1 < 3.0 * l.row_h and re.match(r"[\u4e00-\u9fff]", l.t):
                cells[-1] = (text + l.t, (x0, min(y0, l.y0), l.x1, max(y1, l.y1)), members + [l])
                continue
        cells.append((l.t, l.box, [l]))
    return cells


_MAX_QUANTITY = 100000  # the expense schema's limit for items[].quantity; larger ones are left out


@dataclass
class _Table:
    header_y: float | None  # bottom of the header row (None: no header read)
    sum_y0: float | None  # the 合计 row, if found
    sum_y1: float | None
    cols: dict[str, float]  # header word → x centre
    name_x1: float | None  # right edge of the name column (left edge of 规格型号 or 单位)
    sum_row: list[_L]


_YEN_CELL_RE = re.compile(r"^[¥Y羊V半]")


def _header_word(text: str) -> str | None:
    """Which column a header cell names, tolerating one misread character (金颜, 税制, 故量)."""
    if re.search(r"项目名称|货物|服务名称", text):
        return None
    if "规格" in text or "型号" in text:
        return "规格型号"
    if "率" in text:
        return "税率"
    if text.startswith("金"):
        return "金额"
    if text.startswith("税") or (text.endswith("额") and len(text) <= 3):
        return "税额"
    if "量" in text or text.startswith("数"):
        return "数量"
    if "价" in text:
        return "单价"
    if text.startswith("单") or text.endswith("位"):
        return "单位"
    return None


def _table(ls: Sequence[_L]) -> _Table | None:
    header_line = None
    for l in ls:
        if re.search(r"项目名称|货物或应税劳务|服务名称|规格型号", l.t):
            header_line = l
            break
    cols: dict[str, float] = {}
    name_x1 = header_y = None
    if header_line is not None:
        row = [l for l in ls if _same_row(header_line, l, 0.6)]
        for text, box, _ in _merge_row_labels(row):
            w = _header_word(text)
            if w and w not in cols:
                cols[w] = (box[0] + box[2]) / 2.0
        if "税率" in cols and "金额" in cols and "税额" not in cols:
            cols["税额"] = cols["税率"] + (cols["税率"] - cols["金额"])  # the last column, not read
        # the name column ends where the next header cell starts (规格型号 on most layouts)
        right = sorted((l for l in row if l.x0 > header_line.x1 - 2), key=lambda l: l.x0)
        if re.search(r"项目名称|货物或应税劳务|服务名称", header_line.t) and right:
            name_x1 = right[0].x0
        header_y = max(l.y1 for l in row)
    # the 合计 row: a 合计 (or 合 … 计) label below the header, not 价税合计
    sum_row: list[_L] = []
    for l in ls:
        if (header_y is not None and l.cy <= header_y) or "价税" in l.t or "大写" in l.t:
            continue
        if re.fullmatch(r"合计|合|合[\s]*计[:]?", l.t):
            sum_row = [o for o in ls if o is l or _same_row(l, o, 0.7)]
            break
    if not sum_row:
        # 合计 not read: the row of ¥ amounts (or ***) just above 价税合计
        big = next((l for l in ls if "价税合计" in l.t or "大写" in l.t), None)
        if big is not None:
            cells = [l for l in ls if l.cy < big.cy - 0.5 * big.row_h and (header_y is None or l.cy > header_y)
                     and ((_YEN_CELL_RE.match(l.t) and _amount_in(l.t) is not None) or _STARS_RE.match(l.t))]
            if cells:
                lowest = max(cells, key=lambda l: l.cy)
                if big.cy - lowest.cy < 4 * big.row_h:
                    sum_row = [l for l in cells if _same_row(lowest, l, 0.7)]
    if header_line is None and not sum_row:
        return None
    if not sum_row:
        return _Table(header_y, None, None, cols, name_x1, [])
    return _Table(header_y, min(l.y0 for l in sum_row), max(l.y1 for l in sum_row), cols, name_x1, sum_row)


def _column_of(l: _L, cols: dict[str, float]) -> str | None:
    if not cols:
        return None
    return min(cols, key=lambda k: abs(cols[k] - l.cx))


def _sum_amounts(tab: _Table) -> dict[str, tuple[float, list[_L]]]:
    """subtotal / tax from the 合计 row: by the column each amount sits under, else by order."""
    out: dict[str, tuple[float, list[_L]]] = {}
    cells = [l for l in tab.sum_row if _amount_in(l.t) is not None or _STARS_RE.match(l.t)]
    cells.sort(key=lambda l: l.x0)
    if not cells:
        return out
    amount_cols = {k: v for k, v in tab.cols.items() if k in ("金额", "税额")}
    if len(amount_cols) == 2:
        for l in cells:
            col = _column_of(l, amount_cols)
            key = "subtotal" if col == "金额" else "tax"
            value = 0.0 if _STARS_RE.match(l.t) else _amount_in(l.t)
            if key not in out and value is not None:
                out[key] = (value, [l])
        return out
    values = [(0.0 if _STARS_RE.match(l.t) else _amount_in(l.t), l) for l in cells]
    if len(values) >= 2:
        out["subtotal"] = (values[0][0], [values[0][1]])
        out["tax"] = (values[-1][0], [values[-1][1]])
    elif not _STARS_RE.match(values[0][1].t):
        out["subtotal"] = (values[0][0], [values[0][1]])
    return out


def _items(ls: Sequence[_L], tab: _Table) -> tuple[list[dict], list[_L]] | None:
    """Item rows between the header and 合计: each 金额 cell is an item; its name is the block of
    name-column lines on its row, a block starting at a `*category*` line (names wrap over
    several lines, above or below the amount's row)."""
    if tab.sum_y0 is None or tab.header_y is None or "金额" not in tab.cols:
        return None
    body = [l for l in ls if tab.header_y - 2 < l.cy < tab.sum_y0]
    if not body:
        return None
    cols = tab.cols
    name_x1 = tab.name_x1
    if name_x1 is None:
        firsts = [v for k, v in cols.items() if k in ("单位", "数量")]
        name_x1 = min(firsts) - 20 if firsts else min(cols.values()) - 20
    # numbers are right-aligned in their cells, so a wide 金额 cell's number can sit nearer the
    # 税率 header than its own: compare only with the columns that hold amounts
    num_cols = {k: v for k, v in cols.items() if k in ("数量", "单价", "金额", "税额")}
    amounts = sorted((l for l in body if _amount_in(l.t) is not None and l.x0 > name_x1
                      and _column_of(l, num_cols) == "金额"), key=lambda l: l.cy)
    if not amounts:
        return None
    def on_row(a: _L, b: _L) -> bool:
        return abs(a.cy - b.cy) <= 0.6 * min(a.row_h, b.row_h) + 2

    # name-column lines top to bottom, the boxes of one line left to right
    name_rows: list[list[_L]] = []
    for l in sorted((l for l in body if l.cx < name_x1 and not (l.x0 > name_x1 - 2 * l.row_h and _amount_in(l.t))),
                    key=lambda l: l.cy):
        if name_rows and on_row(l, name_rows[-1][0]):
            name_rows[-1].append(l)
        else:
            name_rows.append([l])
    names = [l for row in name_rows for l in sorted(row, key=lambda l: l.x0)]

    blocks: list[list[_L]] = []
    for l in names:
        starts = l.t.startswith("*") or not blocks
        if (not starts and not on_row(l, blocks[-1][-1]) and any(on_row(l, a) for a in amounts)
                and any(on_row(o, a) for o in blocks[-1] for a in amounts)):
            starts = True  # an uncategorised name on its own amount row, below another item's
        if starts:
            blocks.append([l])
        else:
            blocks[-1].append(l)  # a wrapped line, or a second box on the same line
    items: list[dict] = []
    used: list[_L] = []
    taken: set[int] = set()
    for block in blocks:
        amt = next((a for a in amounts if a.idx not in taken and any(on_row(a, o) for o in block)), None)
        if amt is None:
            continue
        taken.add(amt.idx)
        desc = "".join(o.t for o in block)
        item: dict = {"description": desc[:200], "amount": _amount_in(amt.t)}
        for o in body:
            if on_row(o, amt) and "数量" in num_cols and _column_of(o, num_cols) == "数量" and o.x0 > name_x1 \
                    and re.fullmatch(r"\d+(?:\.\d+)?", o.t):
                q = float(o.t)
                if 0 < q <= _MAX_QUANTITY:
                    item["quantity"] = q
                break
        items.append(item)
        used.extend(block + [amt])
    items = [i for i in items if i["description"] and i["amount"] is not None]
    return (items, used) if items else None


# --------------------------------------------------------------------------------------------
# Entry point


def extract_vat_invoice(lines: list, qr=None) -> Extraction:
    """Fields of a Chinese VAT invoice from OCR lines (objects with `text`, `box`, `score`).

    `qr`: the invoice's decoded QR code (`fapiao_qr.decode(first page image)`), or None.
    Evidence boxes are (x0, y0, x1, y1, 0) in the lines' coordinates (pages stacked, as the
    OCR analyzer does), like the receipt extractor's.
    """
    ls = _lines(lines)
    ex = Extraction()

    def put(name: str, value, used: Iterable[_L | None], conf: float, source: str = "ocr",
            extra_boxes: list[Box] | None = None) -> None:
        if value is None or value == "" or value == []:
            return
        ex.fields[name] = value
        ex.confidence[name] = round(max(0.0, min(1.0, float(conf))), 3)
        ex.evidence[name] = _ev(used) + list(extra_boxes or [])
        ex.sources[name] = source

    if not ls and qr is None:
        return ex
    ex.fields["document_kind"] = "vat_invoice"
    ex.confidence["document_kind"] = 0.9
    ex.evidence["document_kind"] = []
    ex.sources["document_kind"] = "ocr"

    page_w = max((l.x1 for l in ls), default=1.0)
    tab = _table(ls)
    ref_y = tab.sum_y1 if tab and tab.sum_y1 is not None else None
    # the seller block of the older layout sits below 价税合计; use that row when it is lower
    for l in ls:
        if "价税合计" in l.t and (ref_y is None or l.cy > ref_y):
            ref_y = l.cy
    markers = _markers(ls)

    # ---- names and tax ids of both parties
    name_anchors = [l for l in ls if (_NAME_LABEL_RE.match(l.t) or l.t == "名")
                    and not re.search(r"项目名称|服务名称|货物", l.t)]
    name_anchors = [l for l in name_anchors if (tab is None or tab.header_y is None or l.cy < tab.header_y - 1
                                                or (ref_y is not None and l.cy > ref_y))]
    roles = _assign_roles(name_anchors, markers, ref_y, page_w)
    found: dict[str, tuple[str, list[_L], float]] = {}
    for i, a in enumerate(name_anchors):
        got = _name_value(a, ls)
        if not got:
            continue
        role = roles.get(i)
        name, used = got
        conf = _conf(used, 0.92 if a.t != "名" else 0.85)  # a full label first
        if role and (role not in found or found[role][2] < conf):
            found[role] = (name, used, conf)
    if "seller" in found:
        put("merchant_name", found["seller"][0], found["seller"][1], found["seller"][2])
    if "buyer" in found:
        put("buyer_name", found["buyer"][0], found["buyer"][1], found["buyer"][2])

    tax_anchors = [l for l in ls if _TAXID_LABEL_RE.search(l.t)]
    troles = _assign_roles(tax_anchors, markers, ref_y, page_w)
    tfound: dict[str, tuple[str, list[_L], float]] = {}
    for i, a in enumerate(tax_anchors):
        got = _taxid_value(a, ls)
        if not got:
            continue
        code, used, ok = got
        role = troles.get(i)
        conf = _conf(used, 0.97 if ok else 0.6)
        if role and (role not in tfound or tfound[role][2] < conf):
            tfound[role] = (code, used, conf)
    missing = [r for r in ("seller", "buyer") if r not in tfound]
    if missing:
        # labels not read: valid 18-character codes in the parties' blocks (not in the items
        # table, not in a seal below the form), placed like the labelled ones would be
        taken = {v[0] for v in tfound.values()}
        loose = []
        for l in ls:
            if tab is not None and tab.header_y is not None and ref_y is not None and tab.header_y - 1 < l.cy < ref_y:
                continue
            for tok in _TAXID_TOKEN_RE.findall(re.sub(r"[^0-9A-Za-z]", "", l.t.split(":")[-1]).upper()):
                code, ok = fix_tax_id(tok)
                if ok and code not in taken:
                    loose.append((l, code))
                    break
        if loose:
            lroles = _assign_roles([l for l, _ in loose], markers, ref_y, page_w)
            for i, (l, code) in enumerate(loose):
                role = lroles.get(i)
                if role in missing and role not in tfound:
                    tfound[role] = (code, [l], _conf([l], 0.75))
    for role in ("seller", "buyer"):
        if role in tfound:
            put(f"{role}_tax_id", tfound[role][0], tfound[role][1], tfound[role][2])

    # ---- number, code, date (top right)
    number = code = date = None
    for l in ls:
        t = l.t
        if number is None:
            m = re.search(r"发票号码|票号码|^号码", t)
            if m:
                number = _labelled_digits(l, m.end(), ls, r"\d{20}|\d{8}")
        if code is None:
            m = re.search(r"发票代码|票代码|^代码", t)
            if m:
                code = _labelled_digits(l, m.end(), ls, r"\d{12}|\d{10}")
        if date is None:
            m = re.search(r"开票日期", t)
            if m:
                text, used = _row_after(l, ls, m.end())
                d = _date_in(text)
                if d is None:
                    mm = re.search(r"((?:19|20)\d{2})\D{0,3}(\d{1,2})\D{0,3}(\d{1,2})", text)
                    if mm:
                        try:
                            d = _dt.date(*(int(g) for g in mm.groups())).isoformat()
                        except ValueError:
                            d = None
                if d:
                    date = (d, used)
    if number is None:
        # paper invoices print the number as `No 12345678` at the top right
        for l in ls:
            m = re.fullmatch(r"N[oO0º°][.:：]?(\d{8})", l.t)
            if m and (tab is None or tab.header_y is None or l.cy < tab.header_y):
                number = (m.group(1), [l])
                break
    if date is None:
        # no label read: the first full date on the page above the items table
        for l in sorted(ls, key=lambda l: (l.cy, l.x0)):
            if tab is not None and tab.header_y is not None and l.cy > tab.header_y:
                break
            d = _date_in(l.t)
            if d:
                date = (d, [l])
                break

    qr_box = [(*qr.box, 0)] if qr is not None and getattr(qr, "box", None) else []

    def put_checked(name: str, ocr_val, qr_val, conf_ocr: float) -> None:
        """A field the QR also carries: the QR's value wins (the OCR one is evidence)."""
        if qr_val:
            agree = ocr_val is not None and ocr_val[0] == qr_val
            used = ocr_val[1] if agree else []
            put(name, qr_val, used, 0.99 if agree else 0.95, "qr", [] if agree else qr_box)
        elif ocr_val is not None:
            put(name, ocr_val[0], ocr_val[1], conf_ocr)

    put_checked("invoice_number", number, getattr(qr, "invoice_number", None), _conf(number[1], 0.95) if number else 0)
    put_checked("invoice_code", code, getattr(qr, "invoice_code", None), _conf(code[1], 0.95) if code else 0)
    put_checked("transaction_date", date, getattr(qr, "issue_date", None), _conf(date[1], 0.95) if date else 0)

    # ---- amounts
    total = None
    for l in ls:
        if "小写" in l.t or re.search(r"价税合计.*[¥Y]", l.t):
            tail = l.t.split("小写")[-1]
            v = _amount_in(tail)
            if v is not None:
                total = (v, [l])
                break
            right = _right_of(l, ls, lambda o: _amount_in(o.t) is not None)
            if right:
                total = (_amount_in(right[0].t), [l, right[0]])
                break
    if total is None:
        for l in ls:
            if "价税合计" in l.t:
                right = _right_of(l, ls, lambda o: _amount_in(o.t) is not None and "¥" in o.t, max_gap=60 * l.row_h)
                if right:
                    total = (_amount_in(right[-1].t), [l, right[-1]])
                    break
    total_guessed = False
    if total is None:
        # no label read: 价税合计 is the largest ¥ amount an invoice prints
        yen = [(v, l) for l in ls if "¥" in l.t and (v := _amount_in(l.t.split("¥")[-1])) is not None]
        if yen:
            v, l = max(yen, key=lambda p: (p[0], p[1].cy))
            total, total_guessed = (v, [l]), True
    sums = _sum_amounts(tab) if tab is not None and tab.sum_row else {}
    subtotal = sums.get("subtotal")
    tax = sums.get("tax")
    src = {"total": "ocr", "subtotal": "ocr", "tax": "ocr"}
    conf = {
        "total": _conf(total[1], 0.6 if total_guessed else 0.93) if total else 0.0,
        "subtotal": _conf(subtotal[1], 0.9) if subtotal else 0.0,
        "tax": _conf(tax[1], 0.9) if tax else 0.0,
    }
    extra: dict[str, list[Box]] = {"total": [], "subtotal": [], "tax": []}

    qr_amount = getattr(qr, "amount", None) if qr is not None else None
    qr_kind = getattr(qr, "amount_kind", None) if qr is not None else None
    if qr_amount is not None and qr_kind in ("excl_tax", "incl_tax"):
        key = "subtotal" if qr_kind == "excl_tax" else "total"
        cur = total if key == "total" else subtotal
        if cur is None or abs(cur[0] - qr_amount) > 0.005:
            cur = (qr_amount, [])
            extra[key] = qr_box
            conf[key] = 0.95
        else:
            conf[key] = 0.99
        src[key] = "qr"
        if key == "total":
            total = cur
        else:
            subtotal = cur

    def close(a: float, b: float) -> bool:
        return abs(a - b) < 0.011

    if total_guessed and src["total"] != "qr" and subtotal and (
            (tax and not close(subtotal[0] + tax[0], total[0])) or total[0] < subtotal[0] - 0.005):
        total = None  # the guess was a 合计 cell: derive the total below
    # arithmetic: subtotal + tax = total; repair the one that disagrees when the QR vouches for another
    if total and subtotal and tax and not close(subtotal[0] + tax[0], total[0]):
        if src["total"] == "qr" or src["subtotal"] == "qr":
            derived = round(total[0] - subtotal[0], 2)
            if derived >= 0:
                tax = (derived, tax[1])
                conf["tax"] = 0.7
                src["tax"] = "ocr"
        for k in ("total", "subtotal", "tax"):
            if src[k] != "qr":
                conf[k] = min(conf[k], 0.6)
    elif total and subtotal and tax and src["total"] != "qr":
        # three amounts read apart that add up: independent evidence for the total (as receipts)
        conf["total"] = corroborated(conf["total"], min(conf["subtotal"], conf["tax"]))
    if total and subtotal and not tax:
        d = round(total[0] - subtotal[0], 2)
        if d >= 0:
            tax = (d, [])
            conf["tax"] = 0.7
    elif total and tax and not subtotal:
        d = round(total[0] - tax[0], 2)
        if d >= 0:
            subtotal = (d, [])
            conf["subtotal"] = 0.7
    elif subtotal and tax and not total:
        total = (round(subtotal[0] + tax[0], 2), [])
        conf["total"] = 0.7
    for k, v in (("subtotal", subtotal), ("tax", tax), ("total", total)):
        if v is not None:
            put(k, round(float(v[0]), 2), v[1], conf[k], src[k], extra[k])

    # ---- currency: the invoice is in yuan (¥ / 元 / 圆 printed beside the totals)
    cur_lines = [l for l in ls if "¥" in l.t or "圆" in l.t or "元" in l.t]
    if cur_lines or "total" in ex.fields:
        put("currency", "CNY", cur_lines[:1], 0.99 if cur_lines else 0.9)

    # ---- items
    if tab is not None:
        got = _items(ls, tab)
        if got:
            items, used = got
            c = 0.6
            if "subtotal" in ex.fields and close(sum(i["amount"] for i in items), ex.fields["subtotal"]):
                c = 0.9
            put("items", items[:50], used, c)
    return ex
