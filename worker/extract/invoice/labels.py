"""Label and name patterns on accent-folded upper-case text: legal forms, salutations, party
block labels, titles, contact and address lines, and the tests built on them."""
from __future__ import annotations

import re

from worker.extract.invoice.lines import _digits, _IL, _letters
from worker.extract.receipt.dates import _date_matches
from worker.extract.receipt.text import _norm

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


_SALUTATION_RE = re.compile(r"^(?:HERRN?|FRAU|FAMILIE|FIRMA|MR|MRS|MS|MISS|DR|MONSIEUR|MADAME|MADEMOISELLE|MME|MLLE|M|"
                            r"DHR|MEVR|MEVROUW|DE\s+HEER|SR|SRA|SRES|SENOR|SENORA|SIG|SIG\.RA|SIGNOR|SIGNORA|SPETT\.?LE|"
                            r"SPETTABILE|EXMO|EXMA|SENHOR|SENHORA)\.?(?:\s|$)")
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
    r"LIVRER\s*A|ACHETEUR|CLIENT\s*FINAL|ADRESSE\s*(?:DU\s*)?CLIENT|COORDONNEES\s*(?:DU\s*)?CLIENT|"
    r"BILLING\s*CONTACT|TECHNICAL\s*CONTACT|"
    # Dutch, Spanish, Italian, Portuguese, Chinese
    r"FACTUURADRES|AFLEVERADRES|LEVERADRES|KLANT(?:GEGEVENS)?|AFNEMER|GEFACTUREERD\s*AAN|FACTUUR\s*AAN|ONTVANGER|KOPER|"
    r"CLIENTE|FACTURAR\s*A|FACTURADO\s*A|DATOS\s*DEL\s*CLIENTE|DESTINATARIO|DIRECCION\s*DE\s*(?:ENVIO|FACTURACION|ENTREGA)|"
    r"COMPRADOR|ENVIAR\s*A|SPETT(?:ABILE|\.?LE)|INTESTATARIO|FATTURA(?:RE|TO)\s*A|COMMITTENTE|ACQUIRENTE|"
    r"INDIRIZZO\s*DI\s*(?:FATTURAZIONE|SPEDIZIONE|CONSEGNA)|CESSIONARIO(?:\s*/\s*COMMITTENTE)?|"
    r"FATURA(?:R|DO)\s*A|ADQUIRENTE|TOMADOR|MORADA\s*DE\s*(?:FATURACAO|ENTREGA)|ENDERECO\s*DE\s*(?:FATURAMENTO|COBRANCA|ENTREGA)|"
    r"购买方|购方|买方|客户"
)
_BILLING_RE = re.compile(r"BILL|SOLD|INVOICE|CUSTOMER|CLIENT|BUYER|PURCHASER|CHARGE|KUNDE|RECHNUNGS|KAUFER|LEISTUNGS|"
                         r"AUFTRAGGEBER|FACTUR|ACHETEUR|DESTINATAIRE|GUEST|ATT|^TO|^AN|"
                         r"FACTUUR|KLANT|AFNEMER|KOPER|CLIENTE|COMPRADOR|DESTINATARIO|FATTUR|SPETT|INTESTATARIO|COMMITTENTE|"
                         r"ACQUIRENTE|CESSIONARIO|FATUR|ADQUIRENTE|TOMADOR|购|买|客户")
_SELLER_LABEL = (
    r"FROM|SELLER|VENDOR|SUPPLIER|ISSUER|ISSUED\s*BY|BILL(?:ED)?\s*FROM|INVOICE\s*FROM|SERVICE\s*PROVIDER|SOLD\s*BY|"
    r"VERKAUFER(?:IN)?|LIEFERANT(?:IN)?|RECHNUNGSSTELLER(?:IN)?|LEISTUNGSERBRINGER(?:IN)?|AUFTRAGNEHMER(?:IN)?|ABSENDER|"
    r"VENDEUR|FOURNISSEUR|EMETTEUR|PRESTATAIRE|EXPEDITEUR|"
    r"LEVERANCIER|VERKOPER|AFZENDER|FACTUUR\s*VAN|UITGEGEVEN\s*DOOR|"
    r"PROVEEDOR|VENDEDOR|EMISOR|EMITIDO\s*POR|DATOS\s*DEL\s*EMISOR|"
    r"FORNITORE|VENDITORE|CEDENTE(?:\s*/\s*PRESTATORE)?|PRESTATORE|EMITTENTE|MITTENTE|"
    r"FORNECEDOR|EMITENTE|PRESTADOR(?:\s*DE\s*SERVICOS)?|"
    r"销售方|销方|卖方|开票方|供应商"
)
_PAYEE_LABEL = (r"PAY(?:ABLE)?\s*TO|REMIT(?:TANCE)?\s*TO|MAKE\s*(?:ALL\s*)?(?:CHECKS|CHEQUES)\s*PAYABLE\s*TO|KONTOINHABER|"
                r"ACCOUNT\s*NAME|BENEFICIARY|BENEFICIAIRE|TITULAIRE")

# "Customer No.", "Kunden-Nr", "Client VAT": references, not the block's label
_NOT_BLOCK_AFTER = (r"(?:\s*[-.]?\s*(?:NO|NR|NUMBER|NUMMER|NUM|ID|#|N°|REF|REFERENCE|CODE|VAT|TVA|UST|TAX|CONTACT|SERVICE|"
                    r"SUPPORT|CARE|PORTAL|SINCE|TYPE|GLN|KONTO|SEIT)\b)")


def _label_re(alts: str) -> re.Pattern:
    return re.compile(r"^\(?(?P<label>(?:" + alts + r"))(?![A-Z])(?:\s*\(IN\))?(?:\s+(?:NAME|DETAILS|INFORMATION))?(?!" + _NOT_BLOCK_AFTER
                      + r")\s*(?P<colon>[:：])?\s*(?P<rest>.*)$")


_BUYER_RE = _label_re(_BUYER_LABEL)
_SELLER_RE = _label_re(_SELLER_LABEL)
_PAYEE_RE = _label_re(_PAYEE_LABEL)

_TITLE_RE = re.compile(
    r"^(?:[A-Z]+[\s-]?)?(?:TAX\s+INVOICE|COMMERCIAL\s+INVOICE|PRO\s*FORMA\s+INVOICE|INVOICE|BILL|CREDIT\s*NOTE|DEBIT\s*NOTE|"
    r"STATEMENT|QUOTE|QUOTATION|ESTIMATE|RECEIPT|"
    r"[A-Z]*RECHNUNG(?:S[-\s]?KORREKTUR)?|GUTSCHRIFT|STORNO\w*|"
    r"FACTURE(?:\s+D'ACOMPTE|\s+PRO\s*FORMA)?|AVOIR|NOTE\s+DE\s+CREDIT|DEVIS|FATTURA|FACTURA|"
    r"FACTUUR|CREDITNOTA|FATURA(?:-RECIBO)?|NOTA\s+(?:DE|DI)\s+CREDITO|FACTURA\s+RECTIFICATIVA|RICEVUTA|RECIBO)\b"
    r"|^(?:增值税)?(?:电子)?(?:普通|专用)?发票"
)
_INVOICE_WORD_RE = re.compile(r"\b(?:TAX\s+INVOICE|INVOICE|FACTURE|AVOIR|GUTSCHRIFT|CREDIT\s+NOTE|FATTURA|FACTURA|FACTUUR|"
                              r"CREDITNOTA|FATURA|NOTA\s+(?:DE|DI)\s+CREDITO)\b|RECHNUNG|发票")

_KEY_BOX_RE = re.compile(r"^[A-Z][A-Z .'/()&-]{1,40}[:：]$")
_NAME_KEY_RE = re.compile(r"^(?:NAME|FIRMA|FIRMENNAME|COMPANY(?:\s*NAME)?|BUSINESS\s*NAME|RAISON\s*SOCIALE|NOM|SOCIETE|"
                          r"BEZEICHNUNG|NAAM|BEDRIJFSNAAM|NOMBRE|RAZON\s*SOCIAL|RAGIONE\s*SOCIALE|DENOMINAZIONE|NOME|"
                          r"DENOMINACAO(?:\s*SOCIAL)?|名称)\s*[:：]\s*(?P<rest>.*)$")

_CONTACT_RE = re.compile(
    r"\b(?:TEL|TELEFON|TELEPHONE|PHONE|MOBILE|MOBIL|FAX|TELEFAX|E-?MAIL|MAIL|WEB|WEBSITE|INTERNET|HOMEPAGE|"
    r"VAT|TVA|UST|UST-?ID(?:NR)?|UST\.?-?ID\.?-?NR|STEUER-?NR|STEUERNUMMER|TAX\s*ID|EIN|TIN|ABN|GST|SIRET|SIREN|RCS|APE|NAF|"
    r"IBAN|BIC|SWIFT|BLZ|SORT\s*CODE|ACCOUNT|KONTO|BANK|BANQUE|HRB|HRA|AMTSGERICHT|REGISTERGERICHT|HANDELSREGISTER\w*|"
    r"GESCHAFTSFUHR\w*|REGISTERED|COMPANY\s*(?:NO|NUMBER|REG)|REG\.?\s*NO|GLN|DUNS|NUMMER|NUMBER|SEITE|PAGE|"
    r"BTW|KVK|TELEFOON|NIF|CIF|NIE|P\.?\s*IVA|PARTITA\s*IVA|CODICE\s*FISCALE|C\.?F\.|TELEFONO|CORREO|PEC|"
    r"NIPC|CNPJ|CPF|TELEFONE|TELEMOVEL|GSTIN|PAN|CIN|PAGINA|BLAD)\b"
    r"|@|WWW\.|HTTPS?:"
)
_BARE_DOMAIN_RE = re.compile(r"\S+\.(?:COM|DE|FR|NET|ORG|CO\.UK|UK|IO|CH|AT|BE|EU)(?:/\S*)?")  # a web address alone
_ADDRESS_RE = re.compile(
    r"^\d+[A-Z]?\s*,?\s+\w|^(?:P\.?\s?O\.?\s*BOX|POSTFACH|BP|CS)\s*\d|"
    r"\b(?:STREET|ST\.|AVENUE|AVE\.?|ROAD|RD\.?|BOULEVARD|BLVD|LANE|DRIVE|SUITE|STE\.?|FLOOR|HIGHWAY|PARKWAY|"
    r"STRASSE|STR\.|WEG|ALLEE|PLATZ|GASSE|RING|DAMM|UFER|CHAUSSEE|RUE|AVENUE|CHEMIN|IMPASSE|ROUTE|QUAI|PLACE|CEDEX|"
    r"STRAAT|LAAN|PLEIN|GRACHT|KADE|CALLE|C/|AVDA|PLAZA|PASEO|CARRER|VIA|VIALE|PIAZZA|CORSO|LARGO|RUA|AVENIDA|TRAVESSA|"
    r"ROAD|NAGAR|MARG)\b.*\d|"
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


# Words a page prints as titles and labels. OCR misreads them ("PAYMENT REEIPT", "INVOlCE",
# "RECHNUNC"): a line that is nearly one of them is that word misread, never a party's name.
_LABEL_WORDS = (
    "INVOICE", "TAX INVOICE", "RECEIPT", "PAYMENT RECEIPT", "OFFICIAL RECEIPT", "SALES RECEIPT", "CREDIT NOTE",
    "STATEMENT", "BILL TO", "SHIP TO", "SOLD TO", "INVOICE TO", "CUSTOMER", "DESCRIPTION", "AMOUNT DUE", "BALANCE DUE",
    "SUBTOTAL", "TOTAL", "PAYMENT", "PAYMENT DETAILS", "RECHNUNG", "GUTSCHRIFT", "RECHNUNGSEMPFANGER", "QUITTUNG",
    "FACTURE", "AVOIR", "DESTINATAIRE", "FACTUUR", "FACTUURADRES", "AFLEVERADRES", "FACTURA", "FATTURA", "FATURA",
    "CLIENTE", "RICEVUTA", "RECIBO", "ORIGINAL", "DUPLICATE", "COPY",
)


def _misread_label(fold: str) -> bool:
    """Whether a short line is a title or label word as OCR misread it (or as printed)."""
    import difflib

    t = re.sub(r"[^A-Z ]+", "", fold).strip()
    if not 4 <= len(t) <= 30:
        return False
    return any(difflib.SequenceMatcher(None, t, w).ratio() >= 0.84 for w in _LABEL_WORDS if abs(len(w) - len(t)) <= 3)


def _name_like(l: _IL) -> bool:
    """A line that may be a party's name: letters, not a label (nor a label OCR misread), contact,
    address, date or amount."""
    f = l.fold
    if _ATTN_RE.match(f) or _misread_label(f):
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


_TOTALS_ANY_RE = re.compile(
    r"SUB\s*-?\s*TOTAL|\bTOTAL\b|GESAMTBETRAG|ENDBETRAG|RECHNUNGSBETRAG|BRUTTO|NETTO|AMOUNT\s*DUE|BALANCE\s*DUE|ZAHLBETRAG|"
    r"TOTAL\s*(?:HT|TTC)|NET\s*A\s*PAYER|TOTAAL|TOTALE|IMPORTE|IMPORTO|TE\s*BETALEN|A\s*PAGAR|合计"
)
_HEADER_WORDS = re.compile(
    r"\b(?:DESCRIPTION|DESC|ITEMS?|ARTICLE|ARTIKEL\w*|BEZEICHNUNG|BESCHREIBUNG|LEISTUNG|POSITION|POS|DESIGNATION|LIBELLE|"
    r"QTY|QUANTITY|MENGE|ANZAHL|QUANTITE|QTE|UNIT\s*PRICE|PRICE|RATE|PREIS|EINZELPREIS|NETTOPREIS|PRIX(?:\s*UNITAIRE)?|"
    r"AMOUNT|BETRAG|GESAMTPREIS|MONTANT|TOTAL|HOURS|STUNDEN|PRIX\s*HT|NETTOBETRAG|POSITIONSBETRAG|SERVICE|PRODUCT|PRODUKT|"
    r"OMSCHRIJVING|AANTAL|PRIJS|BEDRAG|DESCRIPCION|CONCEPTO|CANTIDAD|PRECIO|IMPORTE|DESCRIZIONE|QUANTITA|PREZZO|IMPORTO|"
    r"DESCRICAO|QUANTIDADE|PRECO|VALOR)\b|数量|单价|金额"
)


def _ITEM_HEADER_HIT(fold: str) -> int:
    return len(_HEADER_WORDS.findall(fold)) if not re.search(r"\d", fold) else 0
