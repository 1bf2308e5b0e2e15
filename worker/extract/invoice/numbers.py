"""The invoice number: labelled, in the title ("Rechnung Nr. …"), never an order or customer
number."""
from __future__ import annotations

import re

from worker.extract.invoice.layout import _Doc
from worker.extract.invoice.lines import _IL
from worker.extract.receipt.dates import _date_matches

_INVNO_RES = [
    re.compile(r"(?:TAX\s+)?INVOICE\s*(?:N°|(?:NO|NR|NUMBER|NUM|ID|REF(?:ERENCE)?)\b)\.?\s*[:#.]?|"
               r"(?:TAX\s+)?INVOICE\s*#\s*[:.]?|\bINV\s*(?:NO|#|NR)\b\.?\s*[:.]?"),
    re.compile(r"RECHNUNGS\s*-?\s*(?:NUMMER|NR)\b\.?\s*[:.]?|RECHNUNG\s*(?:NR|NO|NUMMER)\b\.?\s*[:.]?|"
               r"BELEG\s*-?\s*(?:NUMMER|NR)\b\.?\s*[:.]?|"
               r"GUTSCHRIFTS?\s*-?\s*(?:NUMMER|NR)\b\.?\s*[:.]?"),
    re.compile(r"(?:N°|NO|NUMERO)\s*(?:DE\s+)?(?:LA\s+)?FACTURE\s*[:.]?|FACTURE\s*(?:N°|(?:NO|NUMERO|NUM)\b)\.?\s*[:.]?|"
               r"(?:N°|NO)\s*(?:D'|DE\s+L')AVOIR\s*[:.]?|AVOIR\s*(?:N°|NO\b)\.?\s*[:.]?"),
    re.compile(r"(?:DOCUMENT|BILL|CREDIT\s+NOTE|FOLIO)\s*(?:NO|NR|NUMBER|#)\b\.?\s*[:.]?"),
    # Dutch, Spanish, Italian, Portuguese, Chinese
    re.compile(r"FACTUUR\s*-?\s*(?:NUMMER|NR|NO)\b\.?\s*[:.]?|CREDITNOTA\s*-?\s*(?:NUMMER|NR)\b\.?\s*[:.]?|"
               r"(?:N[O°º]?\.?\s*[°º]?|NUM(?:ERO)?\.?|NRO\.?)\s*(?:DE\s+)?(?:LA\s+)?FACTURA\s*[:.]?|"
               r"FACTURA\s*(?:N[O°º]?\.?\s*[°º]?|NUM(?:ERO)?\b\.?|NRO\b\.?|#)\s*[:.]?|"
               r"(?:N[O°º]?\.?|NUM(?:ERO)?\.?|NR\.?)\s*(?:DI\s+|DELLA\s+)?FATTURA\s*[:.]?|"
               r"FATTURA\s*(?:N[O°º]?\.?\s*[°º]?|NR\b\.?|NUM(?:ERO)?\b\.?)\s*[:.]?|"
               r"(?:N[O°º]?\.?|NUMERO)\s*(?:DA\s+)?FATURA\s*[:.]?|FATURA\s*(?:N[O°º]?\.?\s*[°º]?|NR\b\.?|NUMERO\b)\s*[:.]?|"
               r"发票号码\s*[:：]?"),
]
_TITLE_NO_RE = re.compile(
    r"^(?:[A-Z]+\s?)?(?:TAX\s+INVOICE|INVOICE|[A-Z]*RECHNUNG|GUTSCHRIFT|FACTURE|AVOIR|CREDIT\s+NOTE|FACTUUR|FACTURA|FATTURA|"
    r"FATURA)\b[^:]{0,40}?\s*"
    r"(?:\b(?:NR|NO|NUMMER|NUMBER)\b\.?|N°|#|:)\s*"
)
_TITLE_TOKEN_RE = re.compile(r"^(?:TAX\s+INVOICE|INVOICE|RECHNUNG|GUTSCHRIFT|FACTURE|AVOIR|CREDIT\s+NOTE|FACTUUR|FACTURA|"
                             r"FATTURA|FATURA)\s+(?=\S*\d)")
_NOT_INVNO_CONTEXT = re.compile(
    r"ORDER|BESTELL|AUFTRAG|KUNDEN|CUSTOMER|CLIENT|VERTRAG|CONTRACT|LIEFERSCHEIN|DELIVERY|PO\b|P\.O\.|ACCOUNT|KONTO|"
    r"URSPRUNG|ORIGINAL|RELATED|LIEE|CORRIGE|ASSOCIE|REFERENCE\s+TO|BEZUG|VAT|TAX\s*ID|UST|TVA\s+(?:CLIENT|INTRA)|COMMANDE|"
    r"DEVIS|QUOTE|TRACKING|REKLAMATION|POLICY|POLIC[EY]\s*(?:NO|NUMBER)|POLIZZA|POLIZA|APOLICE|VERSICHERUNGS(?:SCHEIN|NUMMER)|"
    r"KLANT|BESTEL|PEDIDO|ORDINE|ENCOMENDA|CONTRATTO|CONTRATO|MANDAT|MEMBER|MITGLIED|VERTRAGS|ABONNEMENT|SUBSCRIPTION|"
    r"IBAN|BTW|NIF|CIF|P\.?\s*IVA|GSTIN|PAN\b"
)
_TOKEN_RE = re.compile(r"[A-Z0-9][A-Z0-9./\-_]*[A-Z0-9]|[0-9]")


def _invno_token(text: str, short_ok: bool = False) -> str | None:
    t = text.strip().lstrip(":#.").strip()
    m = _TOKEN_RE.match(t.upper())
    if not m:
        return None
    tok = t[: m.end()]
    series = re.match(r"([A-Z]{1,4})\s(\d[A-Z0-9./\-_]*[A-Z0-9]|\d)(?![\w])", t.upper())
    if series and not re.search(r"\d", tok):
        tok = t[: series.end()]  # a series and its number ("FT 2024/33", "A 1234")
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
                hits.append((m.start(), m.end(), 3 if k < 3 or k == 4 else 2))
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
                right = [o for o in doc.right_of(l) if o.x0 - l.x1 < max(12 * doc.med_h, 0.3 * doc.width)]
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
