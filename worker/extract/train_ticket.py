"""China Railway ticket fields from OCR lines with boxes.

Layouts: the paper ticket (blue magnetic or red, incl. the 报销凭证 printed for an e-ticket) and the
railway e-invoice (电子发票（铁路电子客票）, 2024–). Both print, in this order:
    [ticket number, red, top left]            [检票口 …]
    <from station>   <train number>   <to station>
    <pinyin>                          <pinyin>
    YYYY年MM月DD日HH:MM开       NN车NNX号      <seat class>
    ￥NN.N元 (e-invoice: 票价:￥NN.NN)
    <masked id number + passenger name>
    … (paper: 14-digit serial + ticket number, selling station 售; e-invoice: 电子客票号, buyer)

Fields: document_kind ("train_ticket"), travel {from, to, train_number, seat_class, departure},
transaction_date (the travel date, ISO; not the e-invoice's 开票日期), total, currency ("CNY"),
merchant_name ("中国铁路": the issuer/seller, not a station), invoice_number (the e-invoice's
发票号码, else the red ticket number such as "C028237" / "Z12E045678", else the 电子客票号).

Stations are given as printed on the ticket, with their 站 suffix ("日照西站", as the dev labels
have them); a station read without it gets it back, so the same station always compares equal
(`keep_station_suffix=False` drops it instead). The seat class is the base
class (`新空调硬座` → 硬座). The passenger is not extracted.
"""
from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

from worker.extract.base import Extraction
from worker.extract.skew import estimate_slope, level_boxes
from worker.extract.layout import Boxed
from worker.extract.layout import evidence_boxes as _ev
from worker.extract.layout import line_confidence as _conf

__all__ = ["extract_train_ticket", "ISSUER"]

ISSUER = "中国铁路"


@dataclass
class _L(Boxed):
    idx: int
    t: str  # NFKC, whitespace removed
    box: tuple[float, float, float, float]  # levelled for the page's slant (see worker.extract.skew)
    score: float
    orig: tuple[float, float, float, float] | None = None  # as read: used for evidence

def _lines(raw_lines: Iterable) -> list[_L]:
    out = []
    for i, r in enumerate(raw_lines or []):
        t = unicodedata.normalize("NFKC", getattr(r, "text", "") or "")
        t = re.sub(r"\s+", "", t)
        if not t:
            continue
        box = tuple(float(v) for v in getattr(r, "box", (0, 0, 0, 0)))
        out.append(_L(i, t, box, float(getattr(r, "score", 1.0) or 0.0), box))
    for l, lev in zip(out, level_boxes([l.box for l in out], estimate_slope([l.box for l in out]))):
        l.box = lev
    return out


def _same_row(a: _L, b: _L, tol: float = 0.6) -> bool:
    return abs(a.cy - b.cy) <= tol * max(a.h, b.h)




# --------------------------------------------------------------------------------------------
# Patterns

_TRAIN_RE = re.compile(r"^(?:车次[:]?)?([GDCZTKYLS]\d{1,4}|\d{4})次?$")
_STATION_RE = re.compile(r"^([\u4e00-\u9fff]{1,10})站$")
_BARE_NAME_RE = re.compile(r"^[\u4e00-\u9fff]{2,8}$")
_NOT_STATION_RE = re.compile(r"售|票|铁路|中国|网|检|座|卧|车|开|限乘|旅途|报销|凭证|购买|电子|乘客|日期|已检|仅供|客票|发票|号")
_SEAT_CLASSES = ["高级软卧", "商务座", "特等座", "一等座", "二等座", "一等卧", "二等卧", "动卧", "软卧", "硬卧",
                 "软座", "硬座", "无座"]
_SEAT_RE = re.compile("|".join(_SEAT_CLASSES))
_DEPART_RE = re.compile(r"((?:19|20)\d{2})年(\d{1,2})月(\d{1,2})日(?:[^\d]{0,3})?(\d{1,2})[:：.](\d{2})(?:开)?")
_DATE_RE = re.compile(r"((?:19|20)\d{2})年(\d{1,2})月(\d{1,2})日")
# ¥57.0元, 票价:¥139.50, 57.0元; a ¥ misread as Y/羊/半 counts only before a decimal amount
_PRICE_RE = re.compile(r"(?:[¥￥]|票价[:]?[¥￥Y]?)(\d{1,5}(?:\.\d{1,2})?)(?:元)?|(\d{1,5}\.\d{1,2})元"
                       r"|^[Y羊半](\d{1,5}\.\d{1,2})元?$")
_RED_CODE_RE = re.compile(r"^[A-Z](?:\d{2}[A-Z])?\d{6}$")
_SERIAL_RE = re.compile(r"\d{10,}([A-Z](?:\d{2}[A-Z])?\d{6})")


def _mkdate(y, m, d) -> _dt.date | None:
    try:
        return _dt.date(int(y), int(m), int(d))
    except ValueError:
        return None


def _rows(ls: Sequence[_L]) -> list[list[_L]]:
    rows: list[list[_L]] = []
    for l in sorted(ls, key=lambda l: (l.cy, l.x0)):
        for r in rows[-3:]:
            if any(_same_row(l, o, 0.45) for o in r):
                r.append(l)
                break
        else:
            rows.append([l])
    for r in rows:
        r.sort(key=lambda l: l.x0)
    return rows


def _station_name(l: _L) -> str | None:
    m = _STATION_RE.match(l.t)
    name = m.group(1) if m else (l.t if _BARE_NAME_RE.match(l.t) else None)
    if not name or _NOT_STATION_RE.search(name):
        return None
    return name + "站"


# --------------------------------------------------------------------------------------------
# Entry point


def extract_train_ticket(lines: list, keep_station_suffix: bool = True) -> Extraction:
    """Extract a China Railway ticket's fields from OCR lines (objects with text/box/score).

    Stations come with their 站 suffix, as printed and as the dev labels have them
    (`日照西站`); `keep_station_suffix=False` gives the bare names (`日照西`)."""
    ls = _lines(lines)
    ex = Extraction()
    if not ls:
        return ex

    def put(name: str, value, used: Iterable[_L | None], conf: float) -> None:
        if value is None or value == "":
            return
        ex.fields[name] = value
        ex.confidence[name] = conf
        ex.evidence[name] = _ev(used)
        ex.sources[name] = "ocr"

    put("document_kind", "train_ticket", [], 0.9)
    travel: dict = {}
    travel_ev: list[_L] = []
    travel_conf: list[float] = []

    # ---- departure (date + time + 开), and the travel date
    depart = None
    for l in ls:
        if "开票" in l.t:
            continue
        m = _DEPART_RE.search(l.t)
        if m:
            d = _mkdate(m.group(1), m.group(2), m.group(3))
            hh, mm = int(m.group(4)), int(m.group(5))
            if d and hh < 24 and mm < 60:
                depart = (d, f"{hh:02d}:{mm:02d}", [l])
                break
    if depart is None:
        # date and time in separate boxes of one row
        for row in _rows(ls):
            text = "".join(l.t for l in row if "开票" not in l.t)
            m = _DEPART_RE.search(text)
            if m:
                d = _mkdate(m.group(1), m.group(2), m.group(3))
                hh, mm = int(m.group(4)), int(m.group(5))
                if d and hh < 24 and mm < 60:
                    depart = (d, f"{hh:02d}:{mm:02d}", row)
                    break
    date_line = None
    if depart:
        d, hm, used = depart
        put("transaction_date", d.isoformat(), used, _conf(used, 0.95))
        travel["departure"] = f"{d.isoformat()}T{hm}"
        travel_ev.extend(used)
        date_line = used[0]
    else:
        for l in ls:
            if "开票" in l.t:
                continue
            m = _DATE_RE.search(l.t)
            d = _mkdate(*m.groups()) if m else None
            if d:
                put("transaction_date", d.isoformat(), [l], _conf([l], 0.8))
                date_line = l
                break

    # ---- train number and stations: one row, from | train | to
    trains = [l for l in ls if _TRAIN_RE.match(l.t)]
    if date_line is not None:
        above = [l for l in trains if l.cy < date_line.cy]
        trains = above or trains
    # a letter-prefixed number beats a 4-digit one; the top-most of those first
    trains.sort(key=lambda l: (not l.t.lstrip("车次:")[0].isalpha(), l.cy))
    train = trains[0] if trains else None
    stations = [(l, _station_name(l)) for l in ls]
    stations = [(l, n) for l, n in stations if n]
    if date_line is not None:
        stations = [(l, n) for l, n in stations if l.cy < date_line.cy] or stations
    frm = to = None
    if train is not None:
        row = [(l, n) for l, n in stations if _same_row(l, train, 1.2)]
        left = [(l, n) for l, n in row if l.cx < train.cx]
        right = [(l, n) for l, n in row if l.cx > train.cx]
        # a bare Chinese word beside the train number is a station only when nothing better is there
        left.sort(key=lambda p: (not p[0].t.endswith("站"), train.x0 - p[0].x1))
        right.sort(key=lambda p: (not p[0].t.endswith("站"), p[0].x0 - train.x1))
        frm = left[0] if left else None
        to = right[0] if right else None
    if frm is None or to is None:
        proper = [(l, n) for l, n in stations if l.t.endswith("站")]
        for i, (a, na) in enumerate(proper):
            partner = [(b, nb) for b, nb in proper[i + 1:] if _same_row(a, b, 1.2)]
            if partner:
                b, nb = partner[0]
                pair = sorted([(a, na), (b, nb)], key=lambda p: p[0].cx)
                frm, to = frm or pair[0], to or pair[1]
                break
    if train is not None:
        tn = _TRAIN_RE.match(train.t).group(1)
        travel["train_number"] = tn
        travel_ev.append(train)
        travel_conf.append(train.score)
    if frm is not None and to is not None and frm[0] is not to[0]:
        travel["from"], travel["to"] = frm[1], to[1]
        if not keep_station_suffix:
            travel["from"], travel["to"] = frm[1][:-1], to[1][:-1]
        travel_ev.extend([frm[0], to[0]])
        travel_conf.extend([frm[0].score, to[0].score])

    # ---- seat class
    seat = None
    for l in sorted(ls, key=lambda l: (l.cy, l.x0)):
        for m in _SEAT_RE.finditer(l.t):
            if m.group(0) == "无座" and seat is not None:
                continue
            if seat is None or seat[0] == "无座":
                seat = (m.group(0), l)
    if seat:
        travel["seat_class"] = seat[0]
        travel_ev.append(seat[1])
        travel_conf.append(seat[1].score)
    if travel:
        order = ["from", "to", "train_number", "seat_class", "departure"]
        put("travel", {k: travel[k] for k in order if k in travel}, travel_ev,
            round(0.9 * (sum(travel_conf) / len(travel_conf) if travel_conf else 0.9), 3))

    # ---- price
    price = None
    labelled = [l for l in ls if "票价" in l.t]
    for l in labelled + [l for l in ls if l not in labelled]:
        if "开票" in l.t or _DATE_RE.search(l.t) or _RED_CODE_RE.match(l.t):
            continue
        m = _PRICE_RE.search(l.t.replace(",", ""))
        if not m:
            if l in labelled:
                right = [o for o in ls if o is not l and _same_row(l, o) and o.x0 >= l.x1 - 5
                         and re.fullmatch(r"[¥￥Y]?\d{1,5}(?:\.\d{1,2})?元?", o.t)]
                if right:
                    v = float(re.sub(r"[^\d.]", "", right[0].t))
                    price = (v, [l, right[0]])
                    break
            continue
        v = float(m.group(1) or m.group(2) or m.group(3))
        if 0 < v < 100000:
            price = (v, [l])
            break
    if price:
        put("total", round(price[0], 2), price[1], _conf(price[1], 0.93))
        put("currency", "CNY", price[1], 0.99)
    elif any("中国铁路" in l.t or "12306" in l.t for l in ls):
        put("currency", "CNY", [], 0.8)

    # ---- issuer
    issuer_line = next((l for l in ls if "中国铁路" in l.t), None)
    put("merchant_name", ISSUER, [issuer_line] if issuer_line else [], 0.8)

    # ---- ticket / invoice number
    number = None
    for l in ls:
        m = re.search(r"发票号码[:]?(\d{8,20})", l.t)
        if m:
            number = (m.group(1), [l])
            break
    if number is None:
        codes = [l for l in ls if _RED_CODE_RE.match(l.t)]
        if train is not None:
            codes = [l for l in codes if l.cy < train.cy + train.h] or codes
        codes.sort(key=lambda l: (l.cy, l.x0))
        if codes:
            number = (codes[0].t, [codes[0]])
    if number is None:
        for l in ls:
            m = _SERIAL_RE.search(l.t)
            if m:
                number = (m.group(1), [l])
                break
    if number is None:
        for l in ls:
            m = re.search(r"电子客票号?[:]?(\d{10,})", l.t)
            if m:
                number = (m.group(1), [l])
                break
    if number:
        put("invoice_number", number[0], number[1], _conf(number[1], 0.9))
    return ex
