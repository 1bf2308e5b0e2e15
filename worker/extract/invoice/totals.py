"""Totals: labelled net / tax / gross / due rows checked against each other, else a totals
table whose value row adds up."""
from __future__ import annotations

import re
from dataclasses import dataclass

from worker.extract.invoice.amounts import _Amt
from worker.extract.invoice.layout import _Doc
from worker.extract.invoice.lines import _fold, _IL, _letters
from worker.extract.receipt.lines import _row_text

_PAID_RE = re.compile(
    r"AMOUNT\s*PAID|\bPAID\b|PAYMENTS?\s*(?:RECEIVED|MADE)|DEPOSIT|PREPAID|PREPAYMENT|ADVANCE|CREDIT\s*APPLIED|"
    r"ANZAHLUNG|VORAUSZAHLUNG|BEZAHLT|ERHALTEN|ABSCHLAG(?:S)?ZAHLUNG|ACOMPTE|DEJA\s*(?:PAYE|REGLE)|REGLEMENT|"
    r"CASH|CHANGE|TENDER|BETAALD|AANBETALING|VOORUITBETAALD|PAGADO|ANTICIPO|ACCONTO|PAGATO|ADIANTAMENTO|已付"
)
_NOT_TOTAL_RE = re.compile(
    r"RABATT|DISCOUNT|REMISE|SKONTO|ZUSCHLAG|ABSCHLAG|ALLOWANCE|CHARGES?\b|SHIPPING|FREIGHT|FRACHT|VERSAND|PORT\b|"
    r"QTY|QUANTITY|MENGE|QUANTITE|ITEMS?\b|STUCK|PIECES|WEIGHT|GEWICHT|UNITS?\b|HOURS|STUNDEN|PREIS\b|PRICE|PRIX|"
    r"POINTS|SAVINGS|EINZEL|UNIT|AANTAL|PRIJS|KORTING|VERZEND|CANTIDAD|PRECIO|DESCUENTO|PORTES|QUANTITA|PREZZO|SCONTO|"
    r"QUANTIDADE|PRECO|DESCONTO|数量|单价"
)
_DUE_RE = re.compile(
    r"AMOUNT\s*DUE|BALANCE\s*DUE|TOTAL\s*DUE|AMOUNT\s*PAYABLE|TOTAL\s*PAYABLE|PAYABLE\s*AMOUNT|PLEASE\s*PAY|BALANCE\b|DUE\s*NOW|"
    r"ZAHLBETRAG|ZU\s*ZAHLEN(?:DER\s*BETRAG)?|OFFENER\s*BETRAG|RESTBETRAG|FALLIGER\s*BETRAG|"
    r"NET\s*A\s*PAYER|RESTE\s*A\s*PAYER|SOLDE(?:\s*(?:A\s*PAYER|DU))?|MONTANT\s*(?:A\s*PAYER|DU)\b|TOTAL\s*A\s*PAYER|"
    r"TE\s*BETALEN|OPENSTAAND\s*BEDRAG|(?:TOTAL|IMPORTE|VALOR)\s*A\s*PAGAR|(?:TOTALE|NETTO|IMPORTO)\s*DA\s*PAGARE|"
    r"应付金额"
)
_NET_STRONG_RE = re.compile(
    r"TOTAL\s*(?:NET|HT|H\.T\.|EXCL\w*|EXCLUDING|BEFORE\s*TAX|EX\.?\s*(?:VAT|TAX|GST)|W/?O\s*(?:VAT|TAX)|WITHOUT)|"
    r"(?:AMOUNT|SUM|NET\s*AMOUNT)\s*\(?\s*(?:EXCL|EX\.|BEFORE|WITHOUT)|\bNET\s*(?:TOTAL|AMOUNT|VALUE|SUM)\b|"
    r"(?:TOTAL|AMOUNT|SUM|CHARGES|SUBTOTAL)\b.{0,20}\b(?:BEFORE|EXCL\w*\.?|EXCLUDING|EX\.?|WITHOUT)\s*(?:VAT|TAX|GST|SALES\s*TAX)\b|"
    r"NETTO\s*-?\s*(?:BETRAG|SUMME|GESAMT|RECHNUNGSBETRAG|WERT)|(?:GESAMT|SUMME|RECHNUNGSSUMME|BETRAG|WARENWERT)\s*\(?\s*NETTO|"
    r"(?:SUMME|RECHNUNGSSUMME|BETRAG|GESAMTBETRAG|ZWISCHENSUMME)\s*OHNE\s*(?:UST|MWST|MEHRWERTSTEUER|STEUER)|"
    r"OHNE\s*(?:UST|MWST)|EXKL\w*\s*(?:UST|MWST)|"
    r"(?:TOTAL|MONTANT|SOUS[-\s]*TOTAL)\s*(?:HT|H\.T\.|HORS\s*TAXES?)|\bHT\b|HORS\s*TAXES?|"
    r"(?:TOTAAL|BEDRAG|SUBTOTAAL)\s*(?:EXCL\.?|EXCLUSIEF|ZONDER)\s*BTW|EXCL\.?\s*BTW|"
    r"BASE\s*IMPONIBLE|(?:TOTALE\s*)?IMPONIBILE|BASE\s*TRIBUTAVEL|(?:TOTAL|IMPORTE|VALOR)\s*(?:SIN|SEM)\s*IVA|"
    r"TOTALE\s*(?:NETTO|MERCE)|金额合计|合计金额"
)
_NET_WEAK_RE = re.compile(r"SUB\s*-?\s*TOTAL|SOUS[-\s]*TOTAL|ZWISCHENSUMME|POSITIONSSUMME|WARENWERT|SUMME\s*POSITIONEN|"
                          r"NETTOBETRAG|NETTOSUMME|\bNETTO\b|\bNET\b|SUBTOTAAL|SUBTOTALE|NETTOBEDRAG")
_GROSS_STRONG_RE = re.compile(
    r"GRAND\s*TOTAL|INVOICE\s*TOTAL|TOTAL\s*(?:AMOUNT|INVOICE|SUM)|TOTAL\s*\(?\s*(?:INCL|INC\.|INCLUDING|WITH)|"
    r"(?:AMOUNT|SUM)\s*\(?\s*(?:INCL|INC\.|INCLUDING)|TOTAL\s*\(?(?:USD|EUR|GBP|CHF|CAD|AUD)\)?\s*$|"
    r"GESAMTBETRAG|GESAMTSUMME|GESAMTPREIS|ENDBETRAG|ENDSUMME|RECHNUNGSBETRAG|RECHNUNGSSUMME|RECHNUNGSBEITRAG|"
    r"BRUTTO\s*-?\s*(?:BETRAG|SUMME|GESAMT|RECHNUNGSBETRAG|WERT)|(?:GESAMT|SUMME|BETRAG)\s*\(?\s*BRUTTO|\bBRUTTO\b|"
    r"INKL\w*\.?\s*(?:UST|MWST)|"
    r"TOTAL\s*(?:TTC|T\.T\.C\.?|TOUTES\s*TAXES)|MONTANT\s*(?:TTC|TOTAL)|\bTTC\b|TOTAL\s*(?:GENERAL|FACTURE)|"
    r"(?:TOTAAL|BEDRAG)\s*(?:INCL\.?|INCLUSIEF)\s*BTW|TOTAALBEDRAG|FACTUURBEDRAG|TOTAAL\s*FACTUUR|"
    r"TOTAL\s*(?:FACTURA|CON\s*IVA|IVA\s*INCLUIDO|GERAL|DA\s*FATURA|COM\s*IVA)|IMPORTE\s*TOTAL|"
    r"TOTALE\s*(?:FATTURA|DOCUMENTO|GENERALE|IVA\s*INCLUSA|COMPLESSIVO)|IMPORTO\s*TOTALE|VALOR\s*TOTAL|"
    r"价税合计"
)
_GROSS_WEAK_RE = re.compile(r"\bTOTAL\b|\bTOTAL\s*:|SUMME\b|\bGESAMT\b|GESAMTBEITRAG|\bMONTANT\b|\bAMOUNT\b|"
                            r"\bTOTAAL\b|\bTOTALE\b|\bIMPORTE\b|\bIMPORTO\b|\bBEDRAG\b|合计")
_TAX_STRONG_RE = re.compile(
    r"TOTAL\s*(?:VAT|TAX(?:ES)?|GST|MWST|UST|TVA)|(?:VAT|TAX|GST|TVA)\s*(?:TOTAL|AMOUNT)|STEUERBETRAG|"
    r"(?:MWST|UST|MEHRWERTSTEUER|UMSATZSTEUER)\s*-?\s*(?:BETRAG|SUMME|GESAMT)|SUMME\s*(?:MWST|UST)|MONTANT\s*(?:DE\s*LA\s*)?TVA|"
    r"TOTAL\s*TVA|(?:TOTAAL|BEDRAG)\s*BTW|BTW\s*-?\s*(?:BEDRAG|TOTAAL)|(?:TOTAL|IMPORTE|CUOTA|VALOR)\s*(?:DE\s*|DO\s*)?IVA|"
    r"(?:TOTALE|IMPORTO)\s*IVA|IVA\s*TOTAL|IMPOSTA|税额|税额合计"
)
_TAX_RE = re.compile(
    r"\b(?:VAT|TAX|TAXES|SALES\s*TAX|GST|HST|PST|QST|MWST|UST|TVA|IVA|BTW|IGIC|CGST|SGST|IGST)\b|MEHRWERTSTEUER|"
    r"UMSATZSTEUER|VERSICHERUNGS?STEUER|STEUER\b|\bZZGL|\bIMPUESTO|税"
)
_NOT_TAX_RE = re.compile(
    r"(?:VAT|TAX|UST|TVA|MWST|GST|STEUER|BTW|IVA)\s*[-.]*\s*(?:NO|NR|NUMBER|NUMMER|ID|REG|IDENT|CODE|RATE|SATZ|%|CATEGORY|KATEGORIE|EXEMPT|BEFREIT|"
    r"N°|NUM)|P\.?\s*IVA|PARTITA\s*IVA|GSTIN|税号|"
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


_BASE_BEFORE_RE = re.compile(r"\b(?:AUS|VON|FROM|ON|OF|SUR|DE|VAN|OVER|SU|SOBRE|BASIS|BASE|AUF)\s*(?:[€$£]|EUR|USD|GBP|CHF)?\s*$")


def _column_currency(doc: _Doc, box: _IL) -> str | None:
    """The currency code printed at the head of a value's column ("USD" over one column of
    amounts, "EUR" over the next), if any."""
    best = None
    for o in doc.ls:
        if o.y1 > box.y0 or o.page != box.page or min(o.x1, box.x1) - max(o.x0, box.x0) <= 0:
            continue
        if re.fullmatch(r"\(?[A-Z]{3}\)?", o.fold.strip()) and (best is None or o.y1 > best.y1):
            best = o
    return best.fold.strip("() ") if best is not None else None


def _label_amount(doc: _Doc, l: _IL, end: int, currency: str | None = None) -> tuple[_Amt, list[_IL]] | None:
    """The amount of a totals label: after the label in its own text, else the right-most amount
    on its row before the next text label to the right; where the row gives the amount in
    several currencies (a column per currency, its code at the column's head), the one in the
    document's currency."""
    own = [a for a in doc.amounts(l.text) if a.start >= end - 2]
    # "zzgl. 19% MwSt. aus 100,00 €", "VAT 20% on £400.00": the amount the tax is reckoned on,
    # not the tax; the tax is the amount beside it
    own = [a for a in own if not _BASE_BEFORE_RE.search(_fold(l.text[:a.start]))]
    if own:
        return own[-1], [l]
    got = None
    columns = []
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
        columns.append((found[-1], o))
    if currency and len(columns) > 1:
        mine = [(a, o) for a, o in columns if _column_currency(doc, o) == currency]
        if len(mine) == 1:
            return mine[0][0], [l, mine[0][1]]
    return got


def _money(doc: _Doc, currency: str | None = None) -> list[_Money]:
    out: list[_Money] = []
    for l in doc.by_y:
        f = l.fold
        c = _classify(f)
        if c is None:
            continue
        kind, end = c
        got = _label_amount(doc, l, end, currency)
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


def _totals(doc: _Doc, currency: str | None = None) -> dict[str, tuple[float, list[_IL], float]]:
    money = _money(doc, currency)
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
