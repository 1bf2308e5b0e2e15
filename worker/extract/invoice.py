"""Generic (non-Chinese) invoice fields read from the page: positioned text lines from a PDF's
text layer or from OCR (`docket.pages.TextLine` / `worker.ocr.OcrLine`).

Pure Python heuristics over labels and layout, in English, German and French; no model and no
rule for a particular issuer. What differs from a till receipt:

- the issuer is one of several parties on the page. It is the block labelled Seller / Sold by
  / Verkäufer / Rechnungssteller / Vendeur…, else the company named in the footer with its
  legal details (VAT id, register, management), else the block labelled From / Supplier /
  Lieferant / Fournisseur…, else the sender's return line over a letter's window address, else
  the letterhead: the prominent line at the top, above or beside the document title (a legal
  form counts for much). Blocks labelled Bill to / Ship to / Customer / Kunde /
  Rechnungsempfänger / Client / Guest / Sold to…, the window address under a return line, and
  an unlabelled recipient block that opens with a salutation (Herrn, Mr, Madame…) are the
  customer's: they give `buyer_name` (the block's first line) and never the issuer;
- numbers may be European (1.234,56): the document's decimal mark is decided once from all its
  numbers, and amounts are read with it;
- totals come from labelled rows (net, tax, gross, amount due) checked against each other
  (net + tax = gross), else from a totals table whose header names the columns and whose value
  row adds up;
- the issue date is the date labelled as the invoice's (Invoice date, Rechnungsdatum, Date de
  facture, "Rechnung Nr. … vom …"), never a due, delivery, order or period date; numeric dates
  are day-first unless the document shows month-first dates (or is a US-dollar invoice and
  shows nothing either way);
- the currency is what the document prints ($ alone is USD unless it names another dollar);
  `default_currency` only when nothing is printed.

`extract_invoice(lines, default_currency, source=...)` accepts one page's lines, or a list of
pages (each a list of lines): the totals of a multi-page invoice are often on its last page.
Evidence boxes are (x0, y0, x1, y1, page) in that page's own pixels. `looks_like_invoice(lines)`
tells an invoice from a till receipt that also prints "TAX INVOICE".

Helpers reused from the receipt extractor (imported, not copied): `find_amounts` (after the
document's amounts are rewritten to point decimals), `_date_matches` (dates, on accent-folded
text so that "März", "août", "décembre" read), `_currency` (marks and codes), `_rows`,
`_row_text`, `_evidence`, `_norm`, `_fold_accents`.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from worker.extract.base import Extraction
from worker.extract.receipt.amounts import find_amounts
from worker.extract.receipt.currency import _currency
from worker.extract.receipt.dates import _date_matches
from worker.extract.receipt.lines import _L, _evidence, _row_text, _rows
from worker.extract.receipt.text import _fold_accents, _norm

__all__ = ["extract_invoice", "looks_like_invoice", "parse_amount"]

_MAX_ITEMS = 50
_MAX_LEN = {"merchant_name": 200, "buyer_name": 200, "invoice_number": 64}


# --------------------------------------------------------------------------------------------
# Lines


@dataclass
class _IL(_L):
    """A line of an invoice: the receipt `_L` (box shifted onto one tall canvas when the
    invoice has several pages) plus its accent-folded upper-case text, page and own box."""

    fold: str = ""
    page: int = 0
    obox: tuple = ()
    page_top: float = 0.0
    page_bottom: float = 0.0

    @property
    def w(self) -> float:
        return max(1.0, self.box[2] - self.box[0])


def _fold(text: str) -> str:
    return _fold_accents(_norm(text)).upper()


def _as_pages(lines: Any) -> list[list]:
    items = list(lines or [])
    if items and all(isinstance(p, (list, tuple)) and not hasattr(p, "text") for p in items):
        return [list(p) for p in items]
    return [items]


def _prepare(lines: Any) -> list[_IL]:
    out: list[_IL] = []
    offset = 0.0
    idx = 0
    for page_no, page in enumerate(_as_pages(lines)):
        page_lines: list[_IL] = []
        bottom = 0.0
        for raw in page:
            text = _norm(getattr(raw, "text", "") or "")
            idx += 1
            try:
                box = tuple(float(v) for v in getattr(raw, "box", None) or ())
            except (TypeError, ValueError):
                continue
            if not text or len(box) != 4:
                continue
            bottom = max(bottom, box[3])
            shifted = (box[0], box[1] + offset, box[2], box[3] + offset)
            page_lines.append(_IL(idx - 1, text, text.upper(), shifted, float(getattr(raw, "score", 1.0) or 0.0),
                                  fold=_fold(text), page=page_no, obox=box))
        top = min((l.y0 for l in page_lines), default=offset)
        for l in page_lines:
            l.page_top, l.page_bottom = top, offset + bottom
        out.extend(page_lines)
        offset += bottom + 200.0
    return out


def _ev(lines: Iterable[_IL]) -> list[tuple[float, float, float, float, int]]:
    seen: set[int] = set()
    out = []
    for l in lines:
        if l is None or l.idx in seen:
            continue
        seen.add(l.idx)
        if l.page == 0 and l.obox == l.box:
            out.extend(_evidence([l]))  # the receipt extractor's shape
        else:
            out.append((float(l.obox[0]), float(l.obox[1]), float(l.obox[2]), float(l.obox[3]), l.page))
    return out


def _same_row(a: _L, b: _L, tol: float = 0.5) -> bool:
    return abs(a.cy - b.cy) <= tol * max(a.h, b.h) and min(a.y1, b.y1) - max(a.y0, b.y0) > 0


def _letters(s: str) -> int:
    return sum(1 for c in s if c.isalpha())


def _digits(s: str) -> int:
    return sum(1 for c in s if c.isdigit())


class _Doc:
    """The lines of one invoice with the layout questions the field finders ask."""

    def __init__(self, ls: list[_IL]):
        self.ls = ls
        self.by_y = sorted(ls, key=lambda l: (l.cy, l.x0))
        self.med_h = statistics.median([l.h for l in ls]) if ls else 10.0
        self.right = max((l.x1 for l in ls), default=1.0)
        self.left = min((l.x0 for l in ls), default=0.0)
        self.width = max(1.0, self.right - self.left)
        self.rows = _rows(ls)
        self.eu = _decimal_comma(ls)
        self.page0 = [l for l in ls if l.page == 0]
        self.p0_top = min((l.y0 for l in self.page0), default=0.0)
        self.p0_bottom = max((l.y1 for l in self.page0), default=1.0)
        self.header_limit = _header_limit(self)

    def right_of(self, l: _IL) -> list[_IL]:
        """The boxes on l's printed row to its right, nearest first."""
        out = [o for o in self.ls if o is not l and o.x0 >= l.x1 - 0.3 * l.h and _same_row(o, l)]
        return sorted(out, key=lambda o: o.x0)

    def left_of(self, l: _IL) -> list[_IL]:
        out = [o for o in self.ls if o is not l and o.x0 < l.x0 and (o.x0 + o.x1) / 2 < l.x0 and _same_row(o, l)]
        return sorted(out, key=lambda o: -o.x1)

    def below(self, l: _IL, max_gap: float = 2.5) -> _IL | None:
        """The nearest box under l that shares its column (horizontal overlap), within a gap."""
        best = None
        for o in self.ls:
            if o is l or o.y0 < l.y1 - 0.3 * l.h or o.y0 - l.y1 > max_gap * max(l.h, self.med_h):
                continue
            overlap = min(o.x1, l.x1) - max(o.x0, l.x0)
            if overlap <= 0:
                continue
            if best is None or o.y0 < best.y0:
                best = o
        return best

    def above(self, l: _IL, max_gap: float = 1.6) -> _IL | None:
        best = None
        for o in self.ls:
            if o is l or o.y1 > l.y0 + 0.3 * l.h or l.y0 - o.y1 > max_gap * max(l.h, self.med_h):
                continue
            if abs(o.x0 - l.x0) > 1.5 * max(l.h, self.med_h):
                continue
            if best is None or o.y1 > best.y1:
                best = o
        return best

    def label_over(self, l: _IL) -> _IL | None:
        """The label printed over a value (a header row over a row of values)."""
        best = None
        for o in self.ls:
            if o is l or o.y1 > l.y0 + 0.2 * l.h or l.y0 - o.y1 > 2.2 * max(l.h, self.med_h):
                continue
            if min(o.x1, l.x1) - max(o.x0, l.x0) <= 0 or _letters(o.fold) < 3:
                continue
            if best is None or o.y1 > best.y1:
                best = o
        return best

    def amounts(self, text: str) -> list:
        return _amounts(text, self.eu)


# --------------------------------------------------------------------------------------------
# Amounts

_DATE_SPAN_FILL = " "


def _blank_dates(text: str) -> str:
    out = text
    for s, e, _, _ in _date_matches(text.upper()):
        out = out[:s] + _DATE_SPAN_FILL * (e - s) + out[e:]
    return out


_NUM_TOKEN_RE = re.compile(r"(?<![\w.,])\d[\d.,']*\d(?![\w])")


def _decimal_comma(lines: Sequence[_IL]) -> bool:
    """True when the document writes amounts with a decimal comma (1.234,56 / 12,50)."""
    comma = point = 0
    for l in lines:
        for m in _NUM_TOKEN_RE.finditer(_blank_dates(l.text)):
            tok = m.group(0).rstrip(".,")
            if re.search(r",\d{2}$", tok) and not re.search(r"\.\d{1,2},", tok):
                comma += 1
            elif re.search(r"\.\d{2}$", tok):
                point += 1
    return comma > point


_CUR_AFTER = r"\s?(?:€|EUR|CHF|£|GBP|USD|\$)"


def _to_point_decimals(text: str, eu: bool) -> str:
    """Rewrite a text's amounts so that the receipt parser (`find_amounts`, point decimals,
    comma thousands) reads them: 1.234,56 -> 1234.56 in a decimal-comma document, 1'234.56 ->
    1234.56, and "1 234,56 €" (space thousands, next to a currency mark) -> 1234.56."""
    text = re.sub(r"(?<=\d)'(?=\d{3}\b)", "", text)  # Swiss thousands
    if eu:
        def space_groups(m: re.Match) -> str:
            return m.group(0).replace(" ", "")

        text = re.sub(r"(?<![\d.,])\d{1,3}(?: \d{3})+,\d{2}(?=" + _CUR_AFTER + r")", space_groups, text)
        text = re.sub(r"([€$£]|EUR|CHF|GBP|USD)( ?)(\d{1,3}(?: \d{3})+,\d{2})(?!\d)",
                      lambda m: m.group(1) + m.group(2) + m.group(3).replace(" ", ""), text)

        def point_form(m: re.Match) -> str:
            return m.group(1).replace(".", "") + "." + m.group(2)

        text = re.sub(r"(?<![\d.,])(\d{1,3}(?:\.\d{3})+|\d+),(\d{2})(?![\d,]|\.\d)", point_form, text)
    else:
        text = re.sub(r"([€$£]|EUR|CHF|GBP|USD)( ?)(\d{1,3}(?: \d{3})+\.\d{2})(?!\d)",
                      lambda m: m.group(1) + m.group(2) + m.group(3).replace(" ", ","), text)
    return text


@dataclass(frozen=True)
class _Amt:
    value: float
    start: int
    end: int
    has_cur: bool


def _amounts(text: str, eu: bool) -> list[_Amt]:
    rewritten = _to_point_decimals(_norm(text), eu)
    out = []
    for a in find_amounts(rewritten):
        value = a.value
        # an accounting negative: (1,234.56)
        if a.start > 0 and rewritten[a.start - 1] == "(" and rewritten[a.end:a.end + 1] == ")":
            value = -abs(value)
        out.append(_Amt(value, a.start, a.end, a.has_cur))
    return out


def parse_amount(text: str) -> float | None:
    """The last money amount in a text, in either notation: `1.234,56 €`, `$1,234.56`,
    `12,50`, `CHF 1'234.50`, `(99.00)`; None when there is none."""
    t = _norm(text)
    eu = bool(re.search(r"\d,\d{2}(?!\d)", t)) and not re.search(r"\d\.\d{2}(?!\d)(?!.*,\d{2})", t)
    found = _amounts(t, eu)
    return found[-1].value if found else None


# --------------------------------------------------------------------------------------------
# Label patterns (on accent-folded upper-case text)

_LEGAL_LONG = (r"GMBH|MBH|KGAA|OHG|GBR|LTD|LIMITED|LLC|L\.L\.C\.?|LLP|INC|INCORPORATED|CORP|CORPORATION|COMPANY|PLC|PTY|"
               r"SARL|S\.A\.R\.L\.?|SASU|SAS|EURL|SNC|SCOP|S\.A\.S\.?|S\.P\.A\.?|SPA|SRL|S\.R\.L\.?|SDN\s+BHD|BHD|"
               r"A\.\s?G\.|E\.\s?K\.|E\.\s?V\.|B\.V\.|N\.V\.|CO\.")
_LEGAL_RE = re.compile(r"(?:^|[\s,(&])(?:" + _LEGAL_LONG + r")(?=$|[\s,.)])", re.IGNORECASE)
_LEGAL_SHORT_RE = re.compile(r"(?:^|\s)(?:AG|KG|UG|SE|SA|AB|AS|BV|NV|OY|LP)(?=$|[\s,.)])")  # case-sensitive
_LEGAL_END_RE = re.compile(r"(?:\b(?:" + _LEGAL_LONG + r")|\s(?:AG|KG|UG|SE|SA|AB|AS|BV|NV|OY|LP)|&\s*CO\.?\s*KG)\.?\s*$",
                           re.IGNORECASE)


def _has_legal(text: str) -> bool:
    return bool(_LEGAL_RE.search(text) or _LEGAL_SHORT_RE.search(text))


def _ends_legal(text: str) -> bool:
    t = text.strip()
    if not _LEGAL_END_RE.search(t):
        return False
    last = t.split()[-1] if t.split() else ""
    if len(last.strip(".")) == 2 and not last[:2].isupper():
        return False  # "sa", "as": words, not legal forms
    return True


_SALUTATION_RE = re.compile(r"^(?:HERRN?|FRAU|FAMILIE|FIRMA|MR|MRS|MS|MISS|DR|MONSIEUR|MADAME|MADEMOISELLE|MME|MLLE|M)\.?(?:\s|$)")
_SALUTATION_ONLY_RE = re.compile(r"^(?:HERRN?|FRAU|FAMILIE|FIRMA|MR|MRS|MS|MISS|MONSIEUR|MADAME|MADEMOISELLE|MME|MLLE)\.?$")

# Party block labels. A label is a line's whole text (maybe with a colon) or "Label: value".
_BUYER_LABEL = (
    r"BILL(?:ED)?\s*TO|SHIP(?:PED)?\s*TO|SOLD\s*TO|INVOICE(?:D)?\s*TO|DELIVER(?:ED)?\s*TO|DELIVERY\s*ADDRESS|BILLING\s*ADDRESS|"
    r"SHIPPING\s*ADDRESS|CUSTOMER(?:\s*(?:DETAILS|INFORMATION|ADDRESS))?|CLIENT(?:\s*(?:DETAILS|INFORMATION))?|BUYER|GUEST|"
    r"PURCHASER|RECIPIENT|CHARGE\s*TO|TO|"
    r"KUNDE|KUNDIN|KUNDENADRESSE|KUNDENANSCHRIFT|RECHNUNGSEMPFANGER(?:IN)?|RECHNUNGSADRESSE|RECHNUNGSANSCHRIFT|WARENEMPFANGER(?:IN)?|LEISTUNGSEMPFANGER(?:IN)?|"
    r"ABWEICHENDER\s*(?:WAREN|RECHNUNGS)EMPFANGER|LIEFERADRESSE|LIEFERANSCHRIFT|KAUFER(?:IN)?(?:\s*/\s*LEISTUNGSEMPFANGER)?|"
    r"AUFTRAGGEBER(?:IN)?|AN|"
    r"DESTINATAIRE|FACTURE\s*A|FACTURER\s*A|FACTURE\s*AU\s*NOM\s*DE|ADRESSE\s*DE\s*(?:LIVRAISON|FACTURATION)|LIVRE\s*A|"
    r"LIVRER\s*A|ACHETEUR|CLIENT\s*FINAL"
)
_BILLING_RE = re.compile(r"BILL|SOLD|INVOICE|CUSTOMER|CLIENT|BUYER|PURCHASER|CHARGE|KUNDE|RECHNUNGS|KAUFER|LEISTUNGS|"
                         r"AUFTRAGGEBER|FACTUR|ACHETEUR|DESTINATAIRE|GUEST|ATT|^TO|^AN")
_SELLER_LABEL = (
    r"FROM|SELLER|VENDOR|SUPPLIER|ISSUER|ISSUED\s*BY|BILL(?:ED)?\s*FROM|INVOICE\s*FROM|SERVICE\s*PROVIDER|SOLD\s*BY|"
    r"VERKAUFER(?:IN)?|LIEFERANT(?:IN)?|RECHNUNGSSTELLER(?:IN)?|LEISTUNGSERBRINGER(?:IN)?|AUFTRAGNEHMER(?:IN)?|ABSENDER|"
    r"VENDEUR|FOURNISSEUR|EMETTEUR|PRESTATAIRE|EXPEDITEUR"
)
_PAYEE_LABEL = (r"PAY(?:ABLE)?\s*TO|REMIT(?:TANCE)?\s*TO|MAKE\s*(?:ALL\s*)?(?:CHECKS|CHEQUES)\s*PAYABLE\s*TO|KONTOINHABER|"
                r"ACCOUNT\s*NAME|BENEFICIARY|BENEFICIAIRE|TITULAIRE")

# "Customer No.", "Kunden-Nr", "Client VAT": references, not the block's label
_NOT_BLOCK_AFTER = (r"(?:\s*[-.]?\s*(?:NO|NR|NUMBER|NUMMER|NUM|ID|#|N°|REF|REFERENCE|CODE|VAT|TVA|UST|TAX|CONTACT|SERVICE|"
                    r"SUPPORT|CARE|PORTAL|SINCE|TYPE|GLN|KONTO|SEIT)\b)")


def _label_re(alts: str) -> re.Pattern:
    return re.compile(r"^\(?(?P<label>(?:" + alts + r"))(?:\s*\(IN\))?(?:\s+(?:NAME|DETAILS|INFORMATION))?(?!" + _NOT_BLOCK_AFTER
                      + r")\s*(?P<colon>[:：])?\s*(?P<rest>.*)$")


_BUYER_RE = _label_re(_BUYER_LABEL)
_SELLER_RE = _label_re(_SELLER_LABEL)
_PAYEE_RE = _label_re(_PAYEE_LABEL)

_TITLE_RE = re.compile(
    r"^(?:[A-Z]+[\s-]?)?(?:TAX\s+INVOICE|COMMERCIAL\s+INVOICE|PRO\s*FORMA\s+INVOICE|INVOICE|BILL|CREDIT\s*NOTE|DEBIT\s*NOTE|"
    r"STATEMENT|QUOTE|QUOTATION|ESTIMATE|RECEIPT|"
    r"[A-Z]*RECHNUNG(?:S[-\s]?KORREKTUR)?|GUTSCHRIFT|STORNO\w*|"
    r"FACTURE(?:\s+D'ACOMPTE|\s+PRO\s*FORMA)?|AVOIR|NOTE\s+DE\s+CREDIT|DEVIS|FATTURA|FACTURA)\b"
)
_INVOICE_WORD_RE = re.compile(r"\b(?:TAX\s+INVOICE|INVOICE|FACTURE|AVOIR|GUTSCHRIFT|CREDIT\s+NOTE|FATTURA|FACTURA)\b|RECHNUNG")

_KEY_BOX_RE = re.compile(r"^[A-Z][A-Z .'/()&-]{1,40}[:：]$")
_NAME_KEY_RE = re.compile(r"^(?:NAME|FIRMA|FIRMENNAME|COMPANY(?:\s*NAME)?|BUSINESS\s*NAME|RAISON\s*SOCIALE|NOM|SOCIETE|"
                          r"BEZEICHNUNG)\s*[:：]\s*(?P<rest>.*)$")

_CONTACT_RE = re.compile(
    r"\b(?:TEL|TELEFON|TELEPHONE|PHONE|MOBILE|MOBIL|FAX|TELEFAX|E-?MAIL|MAIL|WEB|WEBSITE|INTERNET|HOMEPAGE|"
    r"VAT|TVA|UST|UST-?ID(?:NR)?|UST\.?-?ID\.?-?NR|STEUER-?NR|STEUERNUMMER|TAX\s*ID|EIN|TIN|ABN|GST|SIRET|SIREN|RCS|APE|NAF|"
    r"IBAN|BIC|SWIFT|BLZ|SORT\s*CODE|ACCOUNT|KONTO|BANK|BANQUE|HRB|HRA|AMTSGERICHT|REGISTERGERICHT|HANDELSREGISTER\w*|"
    r"GESCHAFTSFUHR\w*|REGISTERED|COMPANY\s*(?:NO|NUMBER|REG)|REG\.?\s*NO|GLN|DUNS|NUMMER|NUMBER|SEITE|PAGE)\b"
    r"|@|WWW\.|HTTPS?:"
)
_BARE_DOMAIN_RE = re.compile(r"\S+\.(?:COM|DE|FR|NET|ORG|CO\.UK|UK|IO|CH|AT|BE|EU)(?:/\S*)?")  # a web address alone
_ADDRESS_RE = re.compile(
    r"^\d+[A-Z]?\s*,?\s+\w|^(?:P\.?\s?O\.?\s*BOX|POSTFACH|BP|CS)\s*\d|"
    r"\b(?:STREET|ST\.|AVENUE|AVE\.?|ROAD|RD\.?|BOULEVARD|BLVD|LANE|DRIVE|SUITE|STE\.?|FLOOR|HIGHWAY|PARKWAY|"
    r"STRASSE|STR\.|WEG|ALLEE|PLATZ|GASSE|RING|DAMM|UFER|CHAUSSEE|RUE|AVENUE|CHEMIN|IMPASSE|ROUTE|QUAI|PLACE|CEDEX)\b.*\d|"
    r"\d.*\b(?:STREET|ST\.?|AVENUE|AVE\.?|ROAD|RD\.?|BLVD|LANE|DRIVE|WAY|STRASSE|STR\.?|WEG|ALLEE|PLATZ|RUE|CHEMIN)\b|"
    r"[A-Z]*(?:STRASSE|STRAßE|STR\.)\s*\d|"
    r"(?:^|\s)(?:[A-Z]{1,2}-?\s?)?\d{4,5}\s+[A-Z][A-Z]|\b[A-Z]{2}\s+\d{5}(?:-\d{4})?$|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b"
)


def _is_contact(fold: str) -> bool:
    return bool(_CONTACT_RE.search(fold) or _BARE_DOMAIN_RE.fullmatch(fold.strip()))


def _is_address(fold: str) -> bool:
    return bool(_ADDRESS_RE.search(fold))


def _clean_name(text: str) -> str:
    text = re.sub(r"^[\s:;,.\-–—|•·*]+|[\s:;,\-–—|•·*]+$", "", text)
    return _norm(text)


_SEPARATOR = r"\s*[|•·]\s*|\s+[-–—]\s+"  # between the parts of a one-line address


def _first_segment(text: str) -> str:
    """A letterhead line often runs name, address and contact together: the name is the
    first segment ("Au bon moulin SARL - 1 chemin … - 84340 …" -> "Au bon moulin SARL")."""
    parts = re.split(_SEPARATOR + r"|\s{3,}", text)
    name = parts[0]
    m = re.match(r"^(.*?[A-Za-z].*?),\s+(?=\d|[A-Z][a-z]+\s+\d)", name)
    if m and len(m.group(1)) >= 3:
        name = m.group(1)
    return _clean_name(name)


_ATTN_RE = re.compile(r"^(?:ATTN|ATTENTION|ATT|Z\.?\s*H(?:D|ÄNDEN)\.?|ZU\s+HANDEN|A\s+L'ATTENTION|C/O)\b")


def _name_like(l: _IL) -> bool:
    """A line that may be a party's name: letters, not a label, contact, address, date or amount."""
    f = l.fold
    if _ATTN_RE.match(f):
        return False
    if _letters(f) < 2 or _digits(f) > max(3, _letters(f) // 2):
        return False
    if _is_contact(f) or _date_matches(f):
        return False
    if re.search(r"[€$£¥]\s?\d|\d\s?[€$£¥]", f) or _TOTALS_ANY_RE.search(f) and re.search(r"\d", f):
        return False  # money
    if _KEY_BOX_RE.match(f) or _BUYER_RE.match(f) and _is_block_label(f, _BUYER_RE):
        return False
    if _is_address(f) and not _has_legal(l.text):
        return False
    if re.fullmatch(r"[\W\d_]+", f):
        return False
    return True


def _is_block_label(fold: str, rx: re.Pattern) -> bool:
    m = rx.match(fold)
    if not m:
        return False
    rest = m.group("rest").strip()
    label = m.group("label")
    short = label in ("TO", "AN", "ATTN", "ATTENTION", "FROM")
    if not rest:
        return True
    if m.group("colon"):
        return not short or _letters(rest) >= 2
    return False


# --------------------------------------------------------------------------------------------
# Party blocks


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
            if kind == "buyer" and label in ("TO", "AN") and not m.group("colon"):
                continue  # a bare "To" / "An" line is too often something else
            rest = m.group("rest").strip()
            inline = l.text[len(l.text) - len(rest):] if rest else ""
            b = _Block(kind, l, bool(_BILLING_RE.search(label)) if kind == "buyer" else False)
            b.lines = _block_lines(doc, l, inline)
            b.name = _block_name(doc, b.lines, l, inline, legal_join=kind != "buyer")
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


# --------------------------------------------------------------------------------------------
# Issuer (merchant)

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
        near = [o for o in doc.ls if o.page == l.page and abs(o.cy - l.cy) <= 3.5 * max(l.h, doc.med_h)]
        if not any(_FOOTER_LEGAL_RE.search(o.text) for o in near):
            continue
        key = (not weak, l.page == 0, -l.y0)
        if best is None or key > best[0]:
            best = (key, name, [l])
    if best is None:
        return None
    return best[1], best[2], 0.75 if best[0][0] else 0.6


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
        return head
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


# --------------------------------------------------------------------------------------------
# Invoice number

_INVNO_RES = [
    re.compile(r"(?:TAX\s+)?INVOICE\s*(?:N°|(?:NO|NR|NUMBER|NUM|ID|REF(?:ERENCE)?)\b)\.?\s*[:#.]?|"
               r"(?:TAX\s+)?INVOICE\s*#\s*[:.]?|\bINV\s*(?:NO|#|NR)\b\.?\s*[:.]?"),
    re.compile(r"RECHNUNGS\s*-?\s*(?:NUMMER|NR)\b\.?\s*[:.]?|RECHNUNG\s*(?:NR|NO|NUMMER)\b\.?\s*[:.]?|"
               r"BELEG\s*-?\s*(?:NUMMER|NR)\b\.?\s*[:.]?|"
               r"GUTSCHRIFTS?\s*-?\s*(?:NUMMER|NR)\b\.?\s*[:.]?"),
    re.compile(r"(?:N°|NO|NUMERO)\s*(?:DE\s+)?(?:LA\s+)?FACTURE\s*[:.]?|FACTURE\s*(?:N°|(?:NO|NUMERO|NUM)\b)\.?\s*[:.]?|"
               r"(?:N°|NO)\s*(?:D'|DE\s+L')AVOIR\s*[:.]?|AVOIR\s*(?:N°|NO\b)\.?\s*[:.]?"),
    re.compile(r"(?:DOCUMENT|BILL|CREDIT\s+NOTE|FOLIO)\s*(?:NO|NR|NUMBER|#)\b\.?\s*[:.]?"),
]
_TITLE_NO_RE = re.compile(
    r"^(?:[A-Z]+\s?)?(?:TAX\s+INVOICE|INVOICE|[A-Z]*RECHNUNG|GUTSCHRIFT|FACTURE|AVOIR|CREDIT\s+NOTE)\b[^:]{0,40}?\s*"
    r"(?:\b(?:NR|NO|NUMMER|NUMBER)\b\.?|N°|#|:)\s*"
)
_TITLE_TOKEN_RE = re.compile(r"^(?:TAX\s+INVOICE|INVOICE|RECHNUNG|GUTSCHRIFT|FACTURE|AVOIR|CREDIT\s+NOTE)\s+(?=\S*\d)")
_NOT_INVNO_CONTEXT = re.compile(
    r"ORDER|BESTELL|AUFTRAG|KUNDEN|CUSTOMER|CLIENT|VERTRAG|CONTRACT|LIEFERSCHEIN|DELIVERY|PO\b|P\.O\.|ACCOUNT|KONTO|"
    r"URSPRUNG|ORIGINAL|RELATED|LIEE|CORRIGE|REFERENCE\s+TO|BEZUG|VAT|TAX\s*ID|UST|TVA\s+(?:CLIENT|INTRA)|COMMANDE|"
    r"DEVIS|QUOTE|TRACKING|REKLAMATION"
)
_TOKEN_RE = re.compile(r"[A-Z0-9][A-Z0-9./\-_]*[A-Z0-9]|[0-9]")


def _invno_token(text: str, short_ok: bool = False) -> str | None:
    t = text.strip().lstrip(":#.").strip()
    m = _TOKEN_RE.match(t.upper())
    if not m:
        return None
    tok = t[: m.end()]
    if not re.search(r"\d", tok) or len(tok) > 40:
        return None
    if _date_matches(tok.upper()) and re.fullmatch(r"[\d./-]+", tok):
        return None
    if re.fullmatch(r"\d{1,2}", tok) and not short_ok:
        return None
    return tok


def _invoice_number(doc: _Doc) -> tuple[str, list[_IL], float] | None:
    cands = []
    for l in doc.by_y:
        f = l.fold
        hits = []
        for k, rx in enumerate(_INVNO_RES):
            for m in rx.finditer(f):
                hits.append((m.start(), m.end(), 3 if k < 3 else 2))
        m = _TITLE_NO_RE.match(f)
        if m:
            hits.append((0, m.end(), 3 if re.search(r"\b(?:NR|NO|NUMMER|NUMBER)\b|N°|#", m.group(0)) else 2))
        m = _TITLE_TOKEN_RE.match(f)
        if m and l.y0 < doc.p0_top + 0.5 * (doc.p0_bottom - doc.p0_top) and l.page == 0:
            hits.append((0, m.end(), 2))
        for start, end, strength in hits:
            before = f[max(0, start - 25):start]
            if _NOT_INVNO_CONTEXT.search(before + f[start:end]):
                continue
            rest = l.text[end:] if len(l.text) == len(f) else f[end:]
            tok = _invno_token(rest, short_ok=strength == 3)
            used = [l]
            if tok is None and not rest.strip(" :#.").strip():
                right = [o for o in doc.right_of(l) if o.x0 - l.x1 < 12 * doc.med_h]
                if right:
                    tok = _invno_token(right[0].text)
                    used = [l, right[0]]
                if tok is None:
                    b = doc.below(l, 1.5)
                    if b is not None:
                        tok = _invno_token(b.text)
                        used = [l, b]
            if tok:
                cands.append((strength, -l.page, -l.y0, tok, used))
                break
    if not cands:
        return None
    best = max(cands, key=lambda c: (c[0], c[1], c[2]))
    return best[3], best[4], 0.9 if best[0] == 3 else 0.75


# --------------------------------------------------------------------------------------------
# Dates

_ISSUE_DATE_RE = re.compile(
    r"INVOICE\s*DATE|DATE\s*OF\s*(?:INVOICE|ISSUE)|ISSUE\s*DATE|ISSUED(?:\s*ON)?|DATE\s*ISSUED|BILLING\s*DATE|BILL\s*DATE|"
    r"TAX\s*POINT|DATED|RECHNUNGS\s*-?\s*DATUM|BELEG\s*-?\s*DATUM|AUSSTELLUNGS\s*-?\s*DATUM|AUSGESTELLT\s*AM|"
    r"DATE\s*DE\s*(?:LA\s*)?(?:FACTURE|FACTURATION)|DATE\s*D'?\s*EMISSION|EMISE?\s*LE|FAIT\s*LE|"
    r"\bDATE\b|\bDATUM\b|\bDATE\s*:|\bLE\b|\bVOM\b|\bDU\b|\bON\b"
)
_STRONG_ISSUE_RE = re.compile(r"INVOICE\s*DATE|DATE\s*OF\s*(?:INVOICE|ISSUE)|ISSUE\s*DATE|RECHNUNGS\s*-?\s*DATUM|BELEG\s*-?\s*DATUM|"
                              r"DATE\s*DE\s*(?:LA\s*)?FACTURE|DATE\s*D'?\s*EMISSION|AUSSTELLUNGS")
_NOT_ISSUE_DATE_RE = re.compile(
    r"DUE|PAYABLE|PAY\s*BY|PAYMENT|FALLIG|ZAHLBAR|ZAHLUNG|ZIEL|SKONTO|ECHEANCE|REGLEMENT|PAIEMENT|AVANT\s+LE|"
    r"LIEFER|LEISTUNG|DELIVER|SHIP|DISPATCH|SERVICE|PERIOD|ZEITRAUM|BIS\b|UNTIL|THROUGH|VALID|GULTIG|EXPIR|"
    r"ORDER|BESTELL|AUFTRAG|VERTRAG|CONTRACT|LIEFERSCHEIN|LIVRAISON|COMMANDE|EXECUTION|PRESTATION|"
    r"START|END|ENDE|BEGINN|FROM|\bVON\b|\bAU\b|\bTO\b|BIRTH|GEBURT|STAND|PRINTED|GEDRUCKT|ZAHLUNGSEINGANG|RECEIVED|"
    r"ACOMPTE|VIREMENT|KW\b|ABRECHNUNG|REKLAMATION|TELEFONAT|SCHREIBEN"
)
_TITLE_CONTEXT_RE = re.compile(r"RECHNUNG|INVOICE|FACTURE|AVOIR|GUTSCHRIFT|CREDIT\s+NOTE")


def _date_scan(text: str) -> tuple[list[tuple[int, int, Any, int]], str]:
    """The dates in a text (accents folded, so "août", "März", "décembre" read) and the folded
    text their offsets refer to."""
    up = _fold(text)
    up = re.sub(r"\b1ER\b", "1 ", up)
    return _date_matches(up), up


def _month_first(doc: _Doc, currency: str | None) -> bool:
    """Whether numeric dates read month-first: from dates that can only be read one way, else
    from the currency (a US-dollar invoice is American)."""
    dm = md = 0
    for l in doc.ls:
        for m in re.finditer(r"(?<![\d./-])(\d{1,2})([/.-])(\d{1,2})\2(\d{2,4})(?![\d])", _blank_iso(l.text)):
            a, b = int(m.group(1)), int(m.group(3))
            if a > 12 >= b:
                dm += 1
            elif b > 12 >= a:
                md += 1
    if dm or md:
        return md > dm
    return currency == "USD"


def _blank_iso(text: str) -> str:
    return re.sub(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}", " ", text)


def _reread(up: str, start: int, end: int, d, month_first: bool):
    """A numeric day-first date re-read month-first (the receipt parser reads day-first)."""
    if not month_first:
        return d
    span = up[start:end]
    if re.search(r"[A-Z]", span):
        return d
    nums = re.findall(r"\d+", span)
    if len(nums) != 3 or len(nums[0]) == 4:
        return d
    a, b = int(nums[0]), int(nums[1])
    import datetime as _dt

    try:
        return _dt.date(d.year, a, b)
    except ValueError:
        return d


def _date_context(doc: _Doc, l: _IL, before: str) -> tuple[str, list[_IL]]:
    """The label of a date: the words before it in its own box, else the box just left of it on
    its row, else the label printed over it (a header row over a row of values)."""
    if re.search(r"[A-Z]{2}", before):
        return before[-45:], [l]
    for o in doc.left_of(l)[:1]:
        label_like = _digits(o.fold) == 0 or re.search(r"[:：]\s*$|\b(?:VOM|DU|LE|ON|DATED)\s*$", o.fold)
        if l.x0 - o.x1 <= 15 * max(doc.med_h, l.h) and re.search(r"[A-Z]{2}", o.fold) and label_like:
            return o.fold[-45:], [o, l]
    above = doc.label_over(l)
    if above is not None:
        return _overlapping_words(above, l), [above, l]
    return before[-45:], [l]


def _overlapping_words(label: _IL, value: _IL) -> str:
    """The words of a (possibly joined) header box that sit over a value box, their positions
    estimated from their character offsets."""
    text = label.fold
    if label.w <= 1.6 * value.w or not text:
        return text
    per_char = label.w / max(1, len(text))
    words = []
    for m in re.finditer(r"\S+", text):
        x0 = label.x0 + m.start() * per_char
        x1 = label.x0 + m.end() * per_char
        if min(x1, value.x1 + 2 * per_char) - max(x0, value.x0 - 2 * per_char) > 0:
            words.append(m.group(0))
    return " ".join(words) or text


def _header_limit(doc: _Doc) -> float:
    """Where the first page's header (parties, references, dates) ends: at the item table's
    header row, else 45% down the page (its height guessed from the text's width)."""
    for row in doc.rows:
        if row[0].page == 0 and _ITEM_HEADER_HIT(_fold(_row_text(row))) >= 2:
            return row[0].y0
    est = max(doc.p0_bottom - doc.p0_top, 1.5 * doc.width)
    return doc.p0_top + 0.45 * est


def _issue_date(doc: _Doc, month_first: bool) -> tuple[str, list[_IL], float] | None:
    cands = []
    limit = doc.header_limit
    for l in doc.by_y:
        found, up = _date_scan(l.text)
        prev_end = 0
        for start, end, d, strength in found:
            before = up[prev_end:start]
            prev_end = end
            after = up[end:end + 12]
            d = _reread(up, start, end, d, month_first)
            seg, used = _date_context(doc, l, before)
            if _NOT_ISSUE_DATE_RE.search(seg) or re.match(r"\s*(?:-|–|BIS|TO|AU|UNTIL)\b", after):
                continue
            if re.search(r"(?:-|–|BIS|TO|AU|UNTIL)\s*$", before):
                continue  # the end of a period
            if _STRONG_ISSUE_RE.search(seg):
                score = 4
            elif _ISSUE_DATE_RE.search(seg):
                score = 3.5 if _TITLE_CONTEXT_RE.search(seg) else 3
            elif _TITLE_CONTEXT_RE.search(seg):
                score = 2
            else:
                if l.page != 0 or l.y0 > limit:
                    continue
                score = 1
            cands.append((score, strength, -l.page, -l.y0, d, used))
    if not cands:
        return None
    best = max(cands, key=lambda c: c[:4])
    conf = {4: 0.95, 3.5: 0.9, 3: 0.85, 2: 0.8, 1: 0.6}[best[0]] * (1.0 if best[1] == 2 else 0.85)
    return best[4].isoformat(), best[5], conf


# --------------------------------------------------------------------------------------------
# Totals

_PAID_RE = re.compile(
    r"AMOUNT\s*PAID|\bPAID\b|PAYMENTS?\s*(?:RECEIVED|MADE)|DEPOSIT|PREPAID|PREPAYMENT|ADVANCE|CREDIT\s*APPLIED|"
    r"ANZAHLUNG|VORAUSZAHLUNG|BEZAHLT|ERHALTEN|ABSCHLAG(?:S)?ZAHLUNG|ACOMPTE|DEJA\s*(?:PAYE|REGLE)|REGLEMENT|"
    r"CASH|CHANGE|TENDER"
)
_NOT_TOTAL_RE = re.compile(
    r"RABATT|DISCOUNT|REMISE|SKONTO|ZUSCHLAG|ABSCHLAG|ALLOWANCE|CHARGES?\b|SHIPPING|FREIGHT|FRACHT|VERSAND|PORT\b|"
    r"QTY|QUANTITY|MENGE|QUANTITE|ITEMS?\b|STUCK|PIECES|WEIGHT|GEWICHT|UNITS?\b|HOURS|STUNDEN|PREIS\b|PRICE|PRIX|"
    r"POINTS|SAVINGS|EINZEL|UNIT"
)
_DUE_RE = re.compile(
    r"AMOUNT\s*DUE|BALANCE\s*DUE|TOTAL\s*DUE|AMOUNT\s*PAYABLE|TOTAL\s*PAYABLE|PAYABLE\s*AMOUNT|PLEASE\s*PAY|BALANCE\b|DUE\s*NOW|"
    r"ZAHLBETRAG|ZU\s*ZAHLEN(?:DER\s*BETRAG)?|OFFENER\s*BETRAG|RESTBETRAG|FALLIGER\s*BETRAG|"
    r"NET\s*A\s*PAYER|RESTE\s*A\s*PAYER|SOLDE(?:\s*(?:A\s*PAYER|DU))?|MONTANT\s*(?:A\s*PAYER|DU)\b|TOTAL\s*A\s*PAYER"
)
_NET_STRONG_RE = re.compile(
    r"TOTAL\s*(?:NET|HT|H\.T\.|EXCL\w*|EXCLUDING|BEFORE\s*TAX|EX\.?\s*(?:VAT|TAX|GST)|W/?O\s*(?:VAT|TAX)|WITHOUT)|"
    r"(?:AMOUNT|SUM|NET\s*AMOUNT)\s*\(?\s*(?:EXCL|EX\.|BEFORE|WITHOUT)|\bNET\s*(?:TOTAL|AMOUNT|VALUE|SUM)\b|"
    r"(?:TOTAL|AMOUNT|SUM|CHARGES|SUBTOTAL)\b.{0,20}\b(?:BEFORE|EXCL\w*\.?|EXCLUDING|EX\.?|WITHOUT)\s*(?:VAT|TAX|GST|SALES\s*TAX)\b|"
    r"NETTO\s*-?\s*(?:BETRAG|SUMME|GESAMT|RECHNUNGSBETRAG|WERT)|(?:GESAMT|SUMME|RECHNUNGSSUMME|BETRAG|WARENWERT)\s*\(?\s*NETTO|"
    r"(?:SUMME|RECHNUNGSSUMME|BETRAG|GESAMTBETRAG|ZWISCHENSUMME)\s*OHNE\s*(?:UST|MWST|MEHRWERTSTEUER|STEUER)|"
    r"OHNE\s*(?:UST|MWST)|EXKL\w*\s*(?:UST|MWST)|"
    r"(?:TOTAL|MONTANT|SOUS[-\s]*TOTAL)\s*(?:HT|H\.T\.|HORS\s*TAXES?)|\bHT\b|HORS\s*TAXES?"
)
_NET_WEAK_RE = re.compile(r"SUB\s*-?\s*TOTAL|SOUS[-\s]*TOTAL|ZWISCHENSUMME|POSITIONSSUMME|WARENWERT|SUMME\s*POSITIONEN|"
                          r"NETTOBETRAG|NETTOSUMME|\bNETTO\b|\bNET\b")
_GROSS_STRONG_RE = re.compile(
    r"GRAND\s*TOTAL|INVOICE\s*TOTAL|TOTAL\s*(?:AMOUNT|INVOICE|SUM)|TOTAL\s*\(?\s*(?:INCL|INC\.|INCLUDING|WITH)|"
    r"(?:AMOUNT|SUM)\s*\(?\s*(?:INCL|INC\.|INCLUDING)|TOTAL\s*\(?(?:USD|EUR|GBP|CHF|CAD|AUD)\)?\s*$|"
    r"GESAMTBETRAG|GESAMTSUMME|GESAMTPREIS|ENDBETRAG|ENDSUMME|RECHNUNGSBETRAG|RECHNUNGSSUMME|RECHNUNGSBEITRAG|"
    r"BRUTTO\s*-?\s*(?:BETRAG|SUMME|GESAMT|RECHNUNGSBETRAG|WERT)|(?:GESAMT|SUMME|BETRAG)\s*\(?\s*BRUTTO|\bBRUTTO\b|"
    r"INKL\w*\.?\s*(?:UST|MWST)|"
    r"TOTAL\s*(?:TTC|T\.T\.C\.?|TOUTES\s*TAXES)|MONTANT\s*(?:TTC|TOTAL)|\bTTC\b|TOTAL\s*(?:GENERAL|FACTURE)"
)
_GROSS_WEAK_RE = re.compile(r"\bTOTAL\b|\bTOTAL\s*:|SUMME\b|\bGESAMT\b|GESAMTBEITRAG|\bMONTANT\b|\bAMOUNT\b")
_TAX_STRONG_RE = re.compile(
    r"TOTAL\s*(?:VAT|TAX(?:ES)?|GST|MWST|UST|TVA)|(?:VAT|TAX|GST|TVA)\s*(?:TOTAL|AMOUNT)|STEUERBETRAG|"
    r"(?:MWST|UST|MEHRWERTSTEUER|UMSATZSTEUER)\s*-?\s*(?:BETRAG|SUMME|GESAMT)|SUMME\s*(?:MWST|UST)|MONTANT\s*(?:DE\s*LA\s*)?TVA|"
    r"TOTAL\s*TVA"
)
_TAX_RE = re.compile(
    r"\b(?:VAT|TAX|TAXES|SALES\s*TAX|GST|HST|PST|QST|MWST|UST|TVA|IVA)\b|MEHRWERTSTEUER|UMSATZSTEUER|VERSICHERUNGS?STEUER|"
    r"STEUER\b|\bZZGL"
)
_NOT_TAX_RE = re.compile(
    r"(?:VAT|TAX|UST|TVA|MWST|GST|STEUER)\s*[-.]*\s*(?:NO|NR|NUMBER|NUMMER|ID|REG|IDENT|CODE|RATE|SATZ|%|CATEGORY|KATEGORIE|EXEMPT|BEFREIT)|"
    r"RABATT|DISCOUNT|REMISE|BASISBETRAG|"
    r"UST-?ID|UST\.?-?ID|STEUERNUMMER|STEUER-?NR|TAX\s*INVOICE|N°\s*TVA|TVA\s*(?:INTRA|CLIENT)|SIRET|EXCL|OHNE|EXEMPT|"
    r"STEUERSATZ|TAX\s*RATE|REVERSE|INCL|INKL|ENTHALT|DONT|INCLUDED|\bNO\s+(?:VAT|TAX)|NON[-\s]?TAXABLE|TAX[-\s]?FREE|"
    r"STEUERFREI|EXONER|HORS\s+TAXE"
)
_INCLUDED_TAX_RE = re.compile(
    r"^(?:DARIN\s+|HIERIN\s+)?(?:ENTHALTEN\w*|ENTH\.|INKL\w*\.?|INCL\w*\.?|INCLUDING|INCLUDED|DONT|DAVON|OF\s+WHICH)\b"
    r"[^:]{0,25}?\b(?:MWST|UST|VAT|TVA|TAX|GST|MEHRWERTSTEUER|UMSATZSTEUER)\b\.?(?:\s*\(?\d+(?:[.,]\d+)?\s*%\)?)?\s*:?"
    r"|^(?:VAT|TAX|GST|MWST|UST|TVA)\.?\s+(?:INCLUDED|INCL\.?|ENTHALTEN|INCLUSE?)\b[^:]{0,20}?(?:\d+(?:[.,]\d+)?\s*%)?\s*:?"
)
_TOTALS_ANY_RE = re.compile(
    r"SUB\s*-?\s*TOTAL|\bTOTAL\b|GESAMTBETRAG|ENDBETRAG|RECHNUNGSBETRAG|BRUTTO|NETTO|AMOUNT\s*DUE|BALANCE\s*DUE|ZAHLBETRAG|"
    r"TOTAL\s*(?:HT|TTC)|NET\s*A\s*PAYER"
)
_HEADER_WORDS = re.compile(
    r"\b(?:DESCRIPTION|DESC|ITEMS?|ARTICLE|ARTIKEL\w*|BEZEICHNUNG|BESCHREIBUNG|LEISTUNG|POSITION|POS|DESIGNATION|LIBELLE|"
    r"QTY|QUANTITY|MENGE|ANZAHL|QUANTITE|QTE|UNIT\s*PRICE|PRICE|RATE|PREIS|EINZELPREIS|NETTOPREIS|PRIX(?:\s*UNITAIRE)?|"
    r"AMOUNT|BETRAG|GESAMTPREIS|MONTANT|TOTAL|HOURS|STUNDEN|PRIX\s*HT|NETTOBETRAG|POSITIONSBETRAG|SERVICE|PRODUCT|PRODUKT)\b"
)


def _ITEM_HEADER_HIT(fold: str) -> int:
    return len(_HEADER_WORDS.findall(fold)) if not re.search(r"\d", fold) else 0


@dataclass
class _Money:
    kind: str  # gross, gross_weak, due, net, net_weak, tax, tax_weak
    value: float
    lines: list[_IL]
    y: float
    has_cur: bool


def _classify(fold: str) -> tuple[str, int] | None:
    """The kind of a totals label, and where the label ends in the text (its amount follows)."""
    if _PAID_RE.search(fold) and not _DUE_RE.search(fold):
        return None
    m = _INCLUDED_TAX_RE.search(fold)
    if m:
        return "tax", m.end()
    for kind, rx in (("due", _DUE_RE), ("net", _NET_STRONG_RE), ("gross", _GROSS_STRONG_RE), ("tax", _TAX_STRONG_RE),
                     ("net_weak", _NET_WEAK_RE)):
        m = rx.search(fold)
        if m:
            if kind in ("gross", "net_weak") and _NOT_TOTAL_RE.search(fold[:m.end() + 20]):
                return None
            return kind, m.end()
    m = _TAX_RE.search(fold)
    if m and not _NOT_TAX_RE.search(fold):
        return "tax_weak", m.end()
    m = _GROSS_WEAK_RE.search(fold)
    if m and not _NOT_TOTAL_RE.search(fold) and not _TAX_RE.search(fold):
        return "gross_weak", m.end()
    return None


def _label_amount(doc: _Doc, l: _IL, end: int) -> tuple[_Amt, list[_IL]] | None:
    """The amount of a totals label: after the label in its own text, else the right-most amount
    on its row before the next text label to the right."""
    own = [a for a in doc.amounts(l.text) if a.start >= end - 2]
    if own:
        return own[-1], [l]
    got = None
    for o in doc.right_of(l):
        found = doc.amounts(o.text)
        rest = re.sub(r"€|\$|£|\b(?:EUR|USD|GBP|CHF|CAD|AUD|IN|TTC|HT)\b", "", o.fold)
        if not found:
            if _letters(rest) >= 3:
                break
            continue
        if _letters(rest) >= 4 and not _TAX_RE.search(o.fold):
            break
        got = (found[-1], [l, o])
    return got


def _money(doc: _Doc) -> list[_Money]:
    out: list[_Money] = []
    for l in doc.by_y:
        f = l.fold
        c = _classify(f)
        if c is None:
            continue
        kind, end = c
        got = _label_amount(doc, l, end)
        if got is None:
            continue
        amt, used = got
        # a rate, not an amount ("VAT 20.00 %")
        out.append(_Money(kind, amt.value, used, l.cy, amt.has_cur))
    return out


def _table_totals(doc: _Doc) -> tuple[float, float, float, list[_IL]] | None:
    """A totals table: a header row naming the columns (net … tax … gross) over value rows that
    add up (net + tax = gross, gross the right-most); the largest such gross."""
    best = None
    for i, row in enumerate(doc.rows):
        text = _row_text(row)
        amts = doc.amounts(text)
        if len(amts) < 3:
            continue
        header = " ".join(_fold(_row_text(r)) for r in doc.rows[max(0, i - 4):i])
        if not (_GROSS_STRONG_RE.search(header) or re.search(r"\bTOTAL\b|SUMME|GESAMT|ENDBETRAG", header)):
            continue
        vals = [a.value for a in amts]
        c = vals[-1]
        found = None
        for x in range(len(vals) - 1):
            for y in range(x + 1, len(vals) - 1):
                a, b = vals[x], vals[y]
                if abs(a + b - c) < 0.011 and abs(b) < abs(c) and abs(a) <= abs(c) and abs(b) > 0:
                    found = (a, b)
        if found and (best is None or abs(c) > abs(best[2]) or (abs(c) == abs(best[2]))):
            best = (found[0], found[1], c, list(row))
    return best


def _totals(doc: _Doc) -> dict[str, tuple[float, list[_IL], float]]:
    money = _money(doc)
    out: dict[str, tuple[float, list[_IL], float]] = {}

    def pick(kinds: tuple[str, ...]) -> list[_Money]:
        return [m for m in money if m.kind in kinds]

    nets = pick(("net",)) or pick(("net_weak",))
    net = nets[-1] if nets else None
    taxes_strong = pick(("tax",))
    taxes_weak = pick(("tax_weak",))
    gross = pick(("gross",))
    gross_weak = pick(("gross_weak",))
    due = [m for m in pick(("due",)) if abs(m.value) > 0.001]

    tax: _Money | None = None
    tax_value = None
    tax_lines: list[_IL] = []
    all_totals = gross + gross_weak + due
    if net is not None:
        for t in taxes_strong + taxes_weak:
            if any(abs(net.value + t.value - g.value) < 0.011 for g in all_totals):
                tax = t
                break
        if tax is None and len(taxes_weak) > 1:
            s = round(sum(t.value for t in taxes_weak), 2)
            if any(abs(net.value + s - g.value) < 0.011 for g in all_totals):
                tax_value, tax_lines = s, [x for t in taxes_weak for x in t.lines]
    if tax is None and tax_value is None:
        if taxes_strong:
            tax = taxes_strong[-1]
        elif taxes_weak:
            # a line that gives its rate ("VAT @ 20%") before one that only names the tax
            tax = max(taxes_weak, key=lambda t: ("%" in t.lines[0].text, -t.y))
    if tax is not None:
        tax_value, tax_lines = tax.value, tax.lines

    total: tuple[float, list[_IL], float] | None = None
    if net is not None and tax_value is not None:
        consistent = [g for g in gross + gross_weak + due if abs(net.value + tax_value - g.value) < 0.011]
        if consistent:
            order = {"gross": 3, "gross_weak": 2, "due": 1}
            g = max(consistent, key=lambda g: (order[g.kind], g.y))
            total = (g.value, g.lines, 0.95)
    if total is None and (gross or gross_weak):
        pool = gross or gross_weak
        g = max(pool, key=lambda g: (abs(g.value), g.y))
        total = (g.value, g.lines, 0.85 if gross else 0.7)
    if total is None:
        table = _table_totals(doc)
        if table is not None:
            n, t, g, used = table
            total = (g, used, 0.8)
            # the table's own net and tax add up; labelled ones elsewhere may be partial
            out["subtotal"] = (n, used, 0.7)
            out["tax"] = (t, used, 0.7)
    if total is None and due:
        d = max(due, key=lambda d: (abs(d.value), d.y))
        total = (d.value, d.lines, 0.75)
    if total is None and net is not None and tax_value is not None:
        total = (round(net.value + tax_value, 2), net.lines + tax_lines, 0.5)
    if total is not None:
        out["total"] = total
    if net is not None and "subtotal" not in out:
        if total is None or abs(net.value) <= abs(total[0]) + 0.001:
            out["subtotal"] = (net.value, net.lines, 0.85 if net.kind == "net" else 0.75)
    if tax_value is not None and "tax" not in out:
        if total is None or abs(tax_value) < abs(total[0]) or total[0] == 0:
            out["tax"] = (tax_value, tax_lines, 0.8)
    return out


# --------------------------------------------------------------------------------------------
# Currency

_CURRENCY_LABEL_RE = re.compile(r"(?:CURRENCY|WAHRUNG|RECHNUNGSWAHRUNG|DEVISE|MONNAIE)\s*[:：]?\s*(?P<code>[A-Z]{3})\b")
_AMOUNTS_IN_RE = re.compile(r"(?:(?:ALL\s+)?(?:AMOUNTS|PRICES|FIGURES)\s+(?:ARE\s+)?(?:IN|SHOWN\s+IN|STATED\s+IN)|"
                            r"(?:ALLE\s+)?(?:BETRAGE|PREISE)\s+IN|MONTANTS\s+(?:EXPRIMES\s+)?EN)\s+(?P<code>[A-Z]{3})\b")
_DOLLAR_CODES = {"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "TWD"}
_ISO_CODES = {"USD", "EUR", "GBP", "CHF", "CAD", "AUD", "NZD", "SGD", "HKD", "JPY", "CNY", "SEK", "NOK", "DKK", "PLN",
              "CZK", "HUF", "INR", "MYR", "ZAR", "AED", "MXN", "BRL", "TWD", "KRW", "THB", "IDR", "PHP", "VND", "MAD"}


def _find_currency(doc: _Doc, default_currency: str | None) -> tuple[str, list[_IL], float] | None:
    for l in doc.by_y:
        m = _CURRENCY_LABEL_RE.search(l.fold)
        used = [l]
        code = m.group("code") if m else None
        if m is None and re.search(r"(?:CURRENCY|WAHRUNG|DEVISE)\s*[:：]?\s*$", l.fold):
            right = doc.right_of(l)
            if right and re.fullmatch(r"[A-Z]{3}", right[0].fold):
                code, used = right[0].fold, [l, right[0]]
        if code in _ISO_CODES:
            return code, used, 0.95
    m = None
    for l in doc.ls:
        m = _AMOUNTS_IN_RE.search(l.fold)
        if m and m.group("code") in _ISO_CODES:
            return m.group("code"), [l], 0.9
    # the marks and codes printed with the amounts, else anywhere; a bare "$" is USD unless
    # the document names another dollar
    money_lines = [l for l in doc.ls if doc.amounts(l.text) or re.search(r"[€$£¥]", l.text)]
    found = _currency(money_lines, None) if money_lines else None
    anywhere = _currency(doc.ls, None)
    if found and found[2] < 0.9 and anywhere and anywhere[0] in _DOLLAR_CODES:
        found = (anywhere[0], found[1], max(found[2], anywhere[2] - 0.1))  # which dollar, from the whole page
    found = found or anywhere
    if found:
        return found
    if default_currency:
        return default_currency.upper(), [], 0.4
    return None


# --------------------------------------------------------------------------------------------
# Items

def _items(doc: _Doc, totals_y: float | None) -> tuple[list[dict], list[_IL]] | None:
    headers = [i for i, row in enumerate(doc.rows) if _ITEM_HEADER_HIT(_fold(_row_text(row))) >= 2]
    if not headers:
        return None
    items: list[dict] = []
    used: list[_IL] = []
    for hi, h in enumerate(headers):
        header_row = doc.rows[h]
        amount_x1 = max(l.x1 for l in header_row)
        stop = headers[hi + 1] if hi + 1 < len(headers) else len(doc.rows)
        pending: list[str] = []
        for row in doc.rows[h + 1:stop]:
            text = _row_text(row)
            f = _fold(text)
            if totals_y is not None and row[0].cy >= totals_y - 0.3 * row[0].h:
                break
            if _classify(f) and _classify(f)[0] in ("net", "gross", "due", "net_weak", "tax") and doc.amounts(text):
                break
            if _PAID_RE.search(f) and doc.amounts(text):
                break
            last = max(row, key=lambda l: l.x1)
            amts = doc.amounts(last.text)
            if not amts or last.x1 < amount_x1 - 0.12 * doc.width:
                desc = " ".join(l.text for l in row if _letters(l.fold) >= 3 and not doc.amounts(l.text))
                if desc and not re.search(r"[:：]", desc) and len(pending) < 2:
                    pending.append(desc)
                continue
            desc_parts = []
            for l in row:
                if l is last:
                    rest = l.text[: amts[0].start] if len(amts) else l.text
                    rest = re.sub(r"[\d.,%€$£\s]+$", "", rest)
                    if _letters(rest) >= 3:
                        desc_parts.append(rest)
                    continue
                if _letters(l.fold) >= 3 and not re.fullmatch(r"[\d.,%€$£\s-]+", l.text):
                    desc_parts.append(l.text)
            desc = _norm(" ".join(desc_parts))
            desc = re.sub(r"^\d{1,3}\s+(?=[A-Za-z])", "", desc)  # a position number
            desc = re.sub(r"(?:\s+[\d.,]+(?:\s*[A-Za-z]{1,5}\.?)?)+$", "", desc).strip()
            if _letters(desc) < 3 and pending:
                desc = pending[-1]
            pending = []
            if _letters(desc) < 3:
                continue
            items.append({"description": desc[:200], "amount": round(amts[-1].value, 2)})
            used.extend(row)
            if len(items) >= _MAX_ITEMS:
                return items, used
    return (items, used) if items else None


# --------------------------------------------------------------------------------------------
# Entry points

def extract_invoice(lines: Any, default_currency: str | None = None, *, source: str = "ocr") -> Extraction:
    """Extract an invoice's fields from positioned text lines (objects with `text`, `box`,
    `score`): one page's lines, or a list of pages' lines.

    Fields: document_kind ("invoice"), merchant_name (the issuer), buyer_name, invoice_number,
    transaction_date (ISO issue date), total, subtotal, tax, currency (ISO 4217), items.
    `default_currency` is used only when the invoice prints no currency. `source` ("ocr" or
    "text_layer") is recorded for every field.
    """
    ls = _prepare(lines)
    ex = Extraction()
    if not ls:
        return ex
    doc = _Doc(ls)

    def put(name: str, value, used: Sequence[_IL], conf: float) -> None:
        if isinstance(value, str):
            value = value[: _MAX_LEN.get(name, 200)].strip()
            if not value:
                return
        ex.fields[name] = value
        ex.confidence[name] = max(0.0, min(1.0, round(float(conf), 3)))
        ex.evidence[name] = _ev(used)
        ex.sources[name] = source

    blocks = _party_blocks(doc)
    number = _invoice_number(doc)
    put("document_kind", "invoice", [], 0.9 if _looks_like(doc, blocks, number) else 0.6)
    issuer = _issuer(doc, blocks)
    if issuer:
        put("merchant_name", *issuer)
    buyer = _buyer(blocks)
    if buyer and (not issuer or _fold(buyer[0]) != _fold(issuer[0])):
        put("buyer_name", *buyer)
    if number:
        put("invoice_number", *number)
    currency = _find_currency(doc, default_currency)
    if currency:
        put("currency", *currency)
    date = _issue_date(doc, _month_first(doc, currency[0] if currency else None))
    if date:
        put("transaction_date", *date)
    totals = _totals(doc)
    for key in ("total", "subtotal", "tax"):
        if key in totals:
            value, used, conf = totals[key]
            put(key, round(float(value), 2), used, conf)
    totals_y = None
    if "total" in totals or "subtotal" in totals:
        ys = [l.cy for k in ("subtotal", "total") if k in totals for l in totals[k][1]]
        totals_y = min(ys) if ys else None
    items = _items(doc, totals_y)
    if items:
        listed, used = items
        conf = 0.5
        s = round(sum(i["amount"] for i in listed), 2)
        if any(k in ex.fields and abs(ex.fields[k] - s) < 0.011 for k in ("subtotal", "total")):
            conf = 0.85
        put("items", listed[:_MAX_ITEMS], used, conf)
    return ex


_RECEIPT_SIGNS_RE = re.compile(
    r"\b(?:CASH|CHANGE|TENDER(?:ED)?|CASHIER|RECEIPT|COUNTER|TERMINAL|TABLE|PAX|ROUNDING|"
    r"KASSE|KASSIERER\w*|BAR|RUCKGELD|QUITTUNG|KASSENBON|TICKET\s+DE\s+CAISSE|ESPECES|CAISSE)\b"
)
_INVOICE_SIGNS_RE = re.compile(
    r"\b(?:DUE\s*DATE|PAYMENT\s*(?:TERMS|DUE)|TERMS|NET\s*\d{1,2}|PAY\s*BY|IBAN|SWIFT|BIC|SORT\s*CODE|BANK\s*(?:DETAILS|TRANSFER|ACCOUNT)|"
    r"ROUTING|REMIT|PURCHASE\s*ORDER|P\.?O\.?\s*(?:NO|NUMBER|#)|FALLIG\w*|ZAHLBAR|ZAHLUNGSZIEL|ZAHLUNGSBEDINGUNGEN|"
    r"BANKVERBINDUNG|USt-?IdNr|ECHEANCE|CONDITIONS\s*DE\s*(?:PAIEMENT|REGLEMENT)|VIREMENT|SIRET|TVA\s*INTRA\w*|"
    r"LEISTUNGSDATUM|LIEFERDATUM|RECHNUNGSDATUM|DATE\s*DE\s*FACTURE|INVOICE\s*DATE)\b"
)


def looks_like_invoice(lines: Any) -> bool:
    """True for a document that calls itself an invoice (Invoice, Tax invoice, Rechnung, Facture,
    Avoir, Gutschrift, Credit note) and carries an invoice number, with an invoice's structure (a
    customer block, payment terms, bank details, a due date, a seller block); False for a till
    receipt, which may print "TAX INVOICE" and a number but has cash, change and a cashier."""
    ls = _prepare(lines)
    if not ls:
        return False
    doc = _Doc(ls)
    return _looks_like(doc, _party_blocks(doc), _invoice_number(doc))


def _looks_like(doc: _Doc, blocks: list[_Block], number) -> bool:
    ls = doc.ls
    text = " ".join(l.fold for l in ls)
    if not _INVOICE_WORD_RE.search(text):
        return False
    parties = any(b.kind in ("buyer", "seller") for b in blocks)
    invoice_signs = len({m.group(0)[:6] for m in _INVOICE_SIGNS_RE.finditer(text)})
    receipt_signs = len({m.group(0)[:6] for m in _RECEIPT_SIGNS_RE.finditer(text)})
    structure = invoice_signs + 2 * parties
    if number is None:
        titled = any(_TITLE_RE.match(l.fold) and _INVOICE_WORD_RE.search(l.fold) for l in ls)
        return structure >= 3 and receipt_signs == 0 and titled
    if structure == 0:
        return False
    return structure >= receipt_signs
