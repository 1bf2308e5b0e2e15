"""The parties: the issuer (seller block, footer legal line, From block, letterhead) and the
customer (`buyer_name`)."""
from __future__ import annotations

import re

from worker.extract.invoice.blocks import _Block, _join_name
from worker.extract.invoice.labels import (_BUYER_RE, _clean_name, _ends_legal, _first_segment, _has_legal,
                                           _is_address, _is_block_label, _is_contact, _ITEM_HEADER_HIT, _LEGAL_LONG,
                                           _name_like, _SALUTATION_RE, _SEPARATOR, _TITLE_RE)
from worker.extract.invoice.layout import _Doc
from worker.extract.invoice.lines import _digits, _fold, _IL, _letters
from worker.extract.receipt.text import _norm

_FOOTER_LEGAL_RE = re.compile(
    r"\b(?:UST-?ID\w*|UST\.?-?ID\.?-?NR|USt|VAT|TVA|STEUER-?NR|STEUERNUMMER|HRB|HRA|AMTSGERICHT|REGISTERGERICHT|"
    r"HANDELSREGISTER\w*|GESCHAFTSFUHR\w*|VORSTAND|REGISTERED|COMPANY\s*(?:NO|NUMBER|REG\w*)|REG\.?\s*NO|SIRET|SIREN|RCS|"
    r"CAPITAL|EIN|ABN|IBAN|BIC|SWIFT)\b",
    re.IGNORECASE,
)
_BANKISH_RE = re.compile(r"^(?:BANK|BANQUE|KREDITINSTITUT|IBAN|BIC|SWIFT|ACCOUNT|KONTO|SPARKASSE|VOLKSBANK|RAIFFEISEN)\b")
_LEAD_LEGAL_NAME_RE = re.compile(
    r"^(?P<name>[^:|·•;]{2,70}?(?:(?:\s|^)(?:" + _LEGAL_LONG + r")|\s(?:AG|KG|UG|SE|SA|BV|NV)|&\s*CO\.?\s*KG))(?=$|[\s,.;|·•)])",
    re.IGNORECASE,
)


_MORE_LEGAL_RE = re.compile(r"^(?:\s*(?:&\s*CO\.?\s*KG|" + _LEGAL_LONG + r"|KG|AG)(?=$|[\s,.;|·•)]))+\.?", re.IGNORECASE)


def _extend_legal(text: str, end: int) -> str:
    """The name up to its legal form, with the legal form's further words ("Pty Ltd",
    "GmbH & Co. KG") and its abbreviation dot ("Inc.")."""
    m = _MORE_LEGAL_RE.match(text[end:])
    if m:
        end += m.end()
    elif text[end:end + 1] == "." and (end + 1 == len(text) or text[end + 1] in " ,;"):
        end += 1
    return text[:end]


def _footer_issuer(doc: _Doc) -> tuple[str, list[_IL], float] | None:
    """The company in a page's footer with its legal details (register, VAT id, management):
    the invoice's issuer. A bank named there is not."""
    best = None
    for l in doc.ls:
        height = max(1.0, l.page_bottom - l.page_top)
        if l.y0 < l.page_bottom - 0.16 * height:
            continue
        f = l.fold
        if _BANKISH_RE.match(f) or _is_block_label(f, _BUYER_RE):
            continue
        m = _LEAD_LEGAL_NAME_RE.match(l.text)
        weak = False
        if m:
            name = _first_segment(_extend_legal(l.text, m.end("name")))
        else:
            # "Studio Juniper · 12 Main Street · Company No. 1234": a trading name without a
            # legal form, in a footer line that gives the legal details
            parts = re.split(_SEPARATOR, l.text)
            if len(parts) < 2 or ":" in parts[0] or not _FOOTER_LEGAL_RE.search(l.text):
                continue
            name = _clean_name(parts[0])
            if _digits(name) or _is_contact(_fold(name)) or _letters(name) < 4 or len(name.split()) > 6:
                continue
            weak = True
        if _letters(name) < 3 or re.search(r"\b(?:BANK|BANQUE|SPARKASSE)\b", _fold(name)):
            continue
        # legal details on this line or on the footer rows around it
        near = [o for o in doc.ls if o.page == l.page and abs(o.cy - l.cy) <= 4.5 * max(l.h, doc.med_h)]
        addressed = False
        if not any(_FOOTER_LEGAL_RE.search(o.text) for o in near):
            # "Atlassian Pty Ltd, Level 6, 341 George St, Sydney": a company with a legal form and
            # its address on one footer line, the way issuers sign their documents
            rest = l.text[len(name):] if l.text.startswith(name) else ""
            if weak or not re.match(r"^\.?\s*[,|·•–-]", rest) or not _is_address(_fold(rest)):
                continue
            addressed = True
        key = (not weak and not addressed, not weak, l.page == 0, -l.y0)
        if best is None or key > best[0]:
            best = (key, name, [l])
    if best is None:
        return None
    return best[1], best[2], 0.75 if best[0][0] else 0.7 if best[0][1] else 0.6


_NOT_LETTERHEAD_RE = re.compile(r"\b(?:PAGE|SEITE|DATE|DATUM|INVOICE|RECHNUNG|FACTURE|ORIGINAL|COPY|KOPIE|DUPLICATE|PAID|DRAFT)\b")
_GLUED_TITLE_RE = re.compile(r"\s*(?:TAX\s*|COMMERCIAL\s*)?(?:INVOICE|RECHNUNG|FACTURE)\s*$")


def _letterhead(doc: _Doc, excluded: set[int], buyer_names: set[str]) -> tuple[str, list[_IL], float] | None:
    """The prominent name at the top of the first page, above or beside the document title."""
    page = doc.page0
    if not page:
        return None
    extent = max(1.0, doc.p0_bottom - doc.p0_top, 1.5 * doc.width)
    limit = min(doc.p0_top + 0.34 * extent, doc.header_limit)
    titles = [l for l in page if _TITLE_RE.match(l.fold) and l.y0 < doc.p0_top + 0.45 * extent and _letters(l.fold) <= 40]
    title = max(titles, key=lambda l: (round(l.h / doc.med_h, 1), -l.y0)) if titles else None
    first_block_y = min((l.y0 for l in page if (_is_block_label(l.fold, _BUYER_RE)) and l.idx in excluded),
                        default=None)
    cands = []
    for l in page:
        if l.y0 >= limit - 0.3 * l.h or l.idx in excluded or (title is not None and l is title):
            continue
        f = l.fold
        if _TITLE_RE.match(f) and _letters(f) <= 25 or _ITEM_HEADER_HIT(f) >= 1 and len(f.split()) <= 2:
            continue
        glued = _GLUED_TITLE_RE.search(f)
        if glued and _letters(f[:glued.start()]) >= 3:
            # OCR ran the name into the title beside it ("Acme CorpINVOICE")
            l = _IL(l.idx, l.text[:glued.start()], l.up[:glued.start()], l.box, l.score, fold=f[:glued.start()],
                    page=l.page, obox=l.obox, page_top=l.page_top, page_bottom=l.page_bottom)
            f = l.fold
        if not _name_like(l) or _SALUTATION_RE.match(f) and not _has_legal(l.text):
            continue
        if _NOT_LETTERHEAD_RE.search(f) and not _has_legal(l.text):
            continue
        if re.search(r"\b(?:STYLESHEET|XML|ZUGFERD|FACTUR-X|XRECHNUNG|BEISPIEL|EXAMPLE|SAMPLE)\b", f):
            continue
        name = _first_segment(l.text)
        if _letters(name) < 2 or len(name) > 80:
            continue
        used = [l]
        if name == _clean_name(l.text):
            name, used = _join_name(doc, l, page)
            up = doc.above(l, 1.0)
            if (up is not None and up.idx not in excluded and _name_like(up) and ":" not in up.text
                    and _ends_legal(name) and not _has_legal(up.text) and len(up.text.split()) <= 4
                    and 0.6 * l.h <= up.h <= 1.4 * l.h and up.fold.strip() not in _fold(name)
                    and not _TITLE_RE.match(up.fold) and not _SALUTATION_RE.match(up.fold)):
                name, used = _norm(_clean_name(up.text) + " " + name), [up] + used
        s = min(l.h / doc.med_h, 2.0)
        if _has_legal(name):
            s += 2.2
        if title is not None:
            s += 1.0 if l.cy <= title.y1 + 0.3 * title.h else -1.0
        if first_block_y is not None and l.y0 > first_block_y:
            s -= 1.0
        if _fold(name) in buyer_names:
            s -= 3.0
        if ":" in l.text:
            s -= 1.0
        if _digits(name):
            s -= 0.7
        cands.append([s, l, name, used])
    if not cands:
        return None
    top = sorted(cands, key=lambda c: (c[1].y0, c[1].x0))
    for rank, c in enumerate(top[:2]):
        c[0] += 0.8 if rank == 0 else 0.3
    s, l, name, used = max(cands, key=lambda c: c[0])
    # a logo word ("cloudmesh") over the name spelled out ("Cloudmesh Networks, Inc."): the name
    short = _fold(name)
    fuller = [c for c in cands if c[2] != name and re.search(r"\b" + re.escape(short) + r"\b", _fold(c[2]))
              and c[0] >= s - 2.0]
    if fuller:
        s, l, name, used = max(fuller, key=lambda c: c[0])
    conf = 0.55 + min(0.3, 0.1 * s)
    return name, used, conf


_FREE_MAIL = {"GMAIL", "GOOGLEMAIL", "OUTLOOK", "HOTMAIL", "LIVE", "YAHOO", "GMX", "WEB", "ICLOUD", "ME", "MAIL", "AOL",
              "PROTONMAIL", "T-ONLINE", "FREENET", "ORANGE", "FREE", "WANADOO", "LAPOSTE", "QQ", "163", "126", "EXAMPLE"}


def _domain_issuer(doc: _Doc, head: tuple[str, list[_IL], float], excluded: set[int]) -> tuple | None:
    """Unlabelled parties side by side at the top: the one whose name the footer's e-mail or web
    domain spells ("info@cronus.com" under "CRONUS DE") is the issuer, when the letterhead chosen
    is not."""
    stems = set()
    for l in doc.ls:
        height = max(1.0, l.page_bottom - l.page_top)
        if l.y0 < l.page_bottom - 0.25 * height:
            continue
        for m in re.finditer(r"(?:@|WWW\.)([A-Z0-9-]{4,})\.[A-Z]{2,}", l.fold):
            if m.group(1) not in _FREE_MAIL:
                stems.add(m.group(1).replace("-", ""))
    if not stems or any(stem in _fold(head[0]).replace(" ", "") for stem in stems):
        return None
    page = doc.page0
    limit = doc.p0_top + 0.3 * max(1.0, doc.p0_bottom - doc.p0_top)
    named = [l for l in page if l.y0 < limit and l.idx not in excluded and _name_like(l)
             and any(stem in l.fold.replace(" ", "") for stem in stems)]
    if len(named) != 1:
        return None
    return _clean_name(named[0].text), [named[0]], 0.7


_STRONG_SELLER_RE = re.compile(r"SELLER|SOLD\s*BY|ISSUE|BILL(?:ED)?\s*FROM|INVOICE\s*FROM|VERKAUFER|RECHNUNGSSTELLER|VENDEUR|EMETTEUR")


def _issuer(doc: _Doc, blocks: list[_Block]) -> tuple[str, list[_IL], float] | None:
    """The invoice's issuer: a block labelled as the seller's (Seller, Sold by, Verkäufer,
    Rechnungssteller, Vendeur…), else the company in the footer with its legal details, else a
    block labelled From / Supplier / Lieferant…, else the return line over a letter's address,
    else the letterhead, else who is to be paid."""
    sellers = [b for b in blocks if b.kind == "seller" and b.name]
    strong = [b for b in sellers if _STRONG_SELLER_RE.search(b.label.fold)]
    if strong:
        b = min(strong, key=lambda b: (b.label.page, b.label.y0))
        return b.name[0], b.name[1], 0.9
    footer = _footer_issuer(doc)
    if footer:
        return footer
    if sellers:
        b = min(sellers, key=lambda b: (b.label.page, b.label.y0))
        return b.name[0], b.name[1], 0.85
    senders = [b for b in blocks if b.kind == "sender" and b.name and _letters(b.name[0]) >= 3
               and not re.match(r"(?:INH|INHABER|OWNER|PROP|PROPRIETOR)\b", _fold(b.name[0]))]
    excluded: set[int] = set()
    buyer_names: set[str] = set()
    for b in blocks:
        if b.kind in ("buyer", "recipient"):
            excluded.update(x.idx for x in b.lines)
            if b.label is not None:
                excluded.add(b.label.idx)
            if b.name:
                buyer_names.add(_fold(b.name[0]))
            buyer_names.update(_fold(x.text) for x in b.lines[:2])
    head = _letterhead(doc, excluded, buyer_names)
    if senders:
        sender = senders[0].name
        # the return line names the sender; a letterhead in larger type that says otherwise wins
        if head and max(l.h for l in head[1]) >= 1.25 * doc.med_h:
            a, b = _fold(head[0]), _fold(sender[0])
            if a not in b and b not in a:
                return head
        return sender[0], sender[1], 0.8
    if head:
        return _domain_issuer(doc, head, excluded) or head
    payees = [b for b in blocks if b.kind == "payee" and b.name]
    if payees:
        return payees[0].name[0], payees[0].name[1], 0.5
    return None


def _buyer(blocks: list[_Block]) -> tuple[str, list[_IL], float] | None:
    cands = [b for b in blocks if b.kind in ("buyer", "recipient") and b.name]
    if not cands:
        return None

    def rank(b: _Block):
        return (b.kind == "buyer", b.billing, -(b.label or b.lines[0]).page, -(b.label or b.lines[0]).y0)

    b = max(cands, key=rank)
    return b.name[0], b.name[1], 0.8 if b.kind == "buyer" else 0.6
