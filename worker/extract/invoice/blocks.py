"""Party blocks: the lines under a Seller / Bill to / From… label (or a window address), and
the name each block gives."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from worker.extract.invoice.labels import (_BILLING_RE, _BUYER_RE, _clean_name, _ends_legal, _first_segment,
                                           _has_legal, _is_block_label, _is_contact, _ITEM_HEADER_HIT,
                                           _KEY_BOX_RE, _NAME_KEY_RE, _name_like, _PAYEE_RE,
                                           _SALUTATION_ONLY_RE, _SALUTATION_RE, _SELLER_RE, _SEPARATOR,
                                           _TOTALS_ANY_RE)
from worker.extract.invoice.layout import _Doc
from worker.extract.invoice.lines import _digits, _fold, _IL, _letters
from worker.extract.receipt.dates import _date_matches
from worker.extract.receipt.text import _norm


@dataclass
class _Block:
    kind: str  # "seller", "buyer", "payee", "recipient"
    label: _IL | None
    billing: bool
    lines: list[_IL] = field(default_factory=list)
    name: tuple[str, list[_IL]] | None = None


def _block_lines(doc: _Doc, label: _IL, inline_rest: str) -> list[_IL]:
    """The lines of the block a label heads: the rows below it, in its column (from the label's
    left edge to the next box on its row), until another party label or a wide gap."""
    h = max(label.h, doc.med_h)
    col_x0 = label.x0 - 1.5 * h
    right_boxes = [o for o in doc.right_of(label) if _letters(o.fold) >= 2]
    col_x1 = right_boxes[0].x0 - 0.5 * h if right_boxes and not inline_rest else doc.right + 1
    if inline_rest:
        # "Bill to: ACME" — the block continues under the value as well as under the label
        col_x1 = doc.right + 1
        nxt = [o for o in doc.right_of(label) if o.x0 > label.x1 + 4 * h]
        if nxt:
            col_x1 = nxt[0].x0 - 0.5 * h
    out: list[_IL] = []
    last_y = label.y1
    for l in doc.by_y:
        if l is label or l.cy <= label.cy + 0.45 * label.h or l.page != label.page:
            continue
        if not (col_x0 <= l.x0 < col_x1):
            continue
        if l.y0 - last_y > 3.2 * h:
            break
        f = l.fold
        if (_is_block_label(f, _BUYER_RE) or _is_block_label(f, _SELLER_RE)) and l.y0 > label.y1:
            break
        if _TOTALS_ANY_RE.search(f) and doc.amounts(l.text):
            break
        if _ITEM_HEADER_HIT(f) >= 2:
            break
        out.append(l)
        last_y = max(last_y, l.y1)
        if len(out) >= 14:
            break
    return out


def _join_name(doc: _Doc, first: _IL, pool: Sequence[_IL], text: str | None = None,
               legal_join: bool = True) -> tuple[str, list[_IL]]:
    """A name printed over two lines: a salutation line ("Herrn") and the name under it, or a
    name whose legal form is on the next line ("MVM Musterhafter" / "… Musterstadt a.G.")."""
    text = _clean_name(text if text is not None else first.text)
    used = [first]
    nxt = None
    for o in sorted(pool, key=lambda o: o.y0):
        if o is first or o.y0 < first.y1 - 0.3 * first.h:
            continue
        if abs(o.x0 - first.x0) <= 1.2 * max(first.h, doc.med_h) and o.y0 - first.y1 <= 1.0 * max(first.h, doc.med_h):
            nxt = o
        break
    if nxt is not None and _name_like(nxt) and 0.6 * first.h <= nxt.h <= 1.6 * first.h:
        ntext = _clean_name(nxt.text)
        if _SALUTATION_ONLY_RE.match(_fold(text)) or (legal_join and _ends_legal(ntext) and not _has_legal(text)
                                                      and len(text.split()) <= 4):
            return _norm(text + " " + ntext), used + [nxt]
    return text, used


def _block_name(doc: _Doc, block_lines: list[_IL], label: _IL, inline: str,
                legal_join: bool = True) -> tuple[str, list[_IL]] | None:
    """A block's name: its inline value ("Bill to: ACME"), the value of a "Name:" row, else its
    first name-like line (skipping numbers, ids and contact rows)."""
    if inline and _letters(inline) >= 2 and not _is_contact(_fold(inline)) and not _date_matches(_fold(inline)):
        if _SALUTATION_ONLY_RE.match(_fold(inline)) and block_lines and _name_like(block_lines[0]):
            return _norm(_clean_name(inline) + " " + _clean_name(block_lines[0].text)), [label, block_lines[0]]
        return _clean_name(inline), [label]
    # a value box to the right of the label on its row
    for o in doc.right_of(label)[:1]:
        if o.x0 - label.x1 < 6 * doc.med_h and _name_like(o) and not _KEY_BOX_RE.match(o.fold):
            if not (_is_block_label(o.fold, _BUYER_RE) or _is_block_label(o.fold, _SELLER_RE)):
                return _join_name(doc, o, doc.ls, legal_join=legal_join)
    keyed_rows: set[int] = set()
    for l in block_lines:
        m = _NAME_KEY_RE.match(l.fold)
        if m:
            value = m.group("rest").strip()
            if value and _letters(value) >= 2:
                return _clean_name(l.text[len(l.text) - len(value):]), [l]
            vals = [o for o in doc.right_of(l) if _letters(o.fold) >= 2]
            if vals:
                v = vals[0]
                above = doc.above(v)
                text = _clean_name(v.text)
                used = [l, v]
                # a name over two lines whose first line has no key of its own ("MVM Musterhafter"
                # over "Name: … a.G."), or a salutation over the name ("Herrn" over "Name: Max …")
                if above is not None and _name_like(above) and not doc.left_of(above) and above.y0 > label.y0:
                    atext = _clean_name(above.text)
                    if (legal_join and _ends_legal(text) and not _has_legal(atext)) or _SALUTATION_ONLY_RE.match(above.fold):
                        return _norm(atext + " " + text), [above, l, v]
                return text, used
    for l in block_lines:
        if l.idx in keyed_rows:
            continue
        key = _KEY_BOX_RE.match(l.fold) or re.match(r"^[A-Z][A-Z .'/()&-]{1,30}\s*[:：]", l.fold)
        if key:
            for o in doc.right_of(l):
                keyed_rows.add(o.idx)
            continue
        # the value of a key box on the left of this row belongs to that key
        if any(_KEY_BOX_RE.match(o.fold) for o in doc.left_of(l)):
            continue
        if _name_like(l):
            return _join_name(doc, l, block_lines, legal_join=legal_join)
    return None


def _party_blocks(doc: _Doc) -> list[_Block]:
    blocks: list[_Block] = []
    for l in doc.by_y:
        f = l.fold
        for kind, rx in (("seller", _SELLER_RE), ("buyer", _BUYER_RE), ("payee", _PAYEE_RE)):
            m = rx.match(f)
            if not m or not _is_block_label(f, rx):
                continue
            label = m.group("label")
            if kind == "seller" and label == "FROM" and not m.group("colon") and _digits(f):
                continue
            bare = kind == "buyer" and label in ("TO", "AN") and not m.group("colon")
            if bare and (m.group("rest").strip() or l.page != 0 or l.y0 > doc.header_limit or doc.left_of(l)):
                continue  # a bare "To" / "An" is a label only alone on its line, at the head of a block
            rest = m.group("rest").strip()
            inline = l.text[len(l.text) - len(rest):] if rest else ""
            b = _Block(kind, l, bool(_BILLING_RE.search(label)) if kind == "buyer" else False)
            b.lines = _block_lines(doc, l, inline)
            b.name = _block_name(doc, b.lines, l, inline, legal_join=kind != "buyer")
            if bare and (b.name is None or len(b.lines) < 2):
                continue
            blocks.append(b)
            break
    taken = {x.idx for b in blocks for x in b.lines + [b.label] if x is not None}
    # a letter's return line (the sender in small print, name · street · town) over the
    # recipient's address, which has no label
    for l in doc.page0:
        if l.idx in taken or l.h > 1.3 * doc.med_h or l.y0 > doc.header_limit or ":" in l.text:
            continue
        parts = [p for p in re.split(_SEPARATOR + r"|,\s+", l.text) if p.strip()]
        if len(parts) < 2 or not any(_digits(p) and _letters(p) for p in parts[1:]) or _digits(parts[0]):
            continue
        if l.h > 0.92 * doc.med_h and len(parts) < 3:
            continue
        block = []
        last = l
        for o in doc.by_y:
            if o.page != 0 or o.y0 <= last.y0 + 0.3 * last.h or abs(o.x0 - l.x0) > 1.5 * doc.med_h:
                continue
            if o.y0 - last.y1 > 1.6 * max(o.h, doc.med_h):
                break
            if _is_block_label(o.fold, _BUYER_RE) or _is_block_label(o.fold, _SELLER_RE):
                break
            block.append(o)
            last = o
            if len(block) >= 6:
                break
        if not block or not _name_like(block[0]) and not _SALUTATION_RE.match(block[0].fold):
            continue
        sender = _Block("sender", l, False, [l])
        sender.name = (_first_segment(l.text), [l])
        recipient = _Block("recipient", None, True, block)
        recipient.name = _join_name(doc, block[0], block, legal_join=False)
        blocks.extend([sender, recipient])
        taken.update(x.idx for x in block + [l])
        break
    # an unlabelled recipient (window-envelope address): it opens with a salutation
    for l in doc.page0:
        if l.idx in taken or not _SALUTATION_RE.match(l.fold) or not re.match(r"^\w+\.?(?:\s+[A-Z]|$)", l.fold):
            continue  # "Herrn", "Mr John Smith", "M. Dupont"; not "M 5", not "Dr.-Ing."
        if l.y0 > doc.header_limit or re.search(r"GEEHRT|DEAR|CHER|CHERE|LIEBE", l.fold):
            continue
        block = [l]
        last = l
        for o in doc.by_y:
            if o.page != l.page or o.y0 <= last.y0 or abs(o.x0 - l.x0) > 1.5 * doc.med_h:
                continue
            if o.y0 - last.y1 > 1.6 * max(l.h, doc.med_h):
                break
            block.append(o)
            last = o
        b = _Block("recipient", None, True, block)
        b.name = _join_name(doc, l, block, legal_join=False)
        blocks.append(b)
        taken.update(x.idx for x in block)
    return blocks
