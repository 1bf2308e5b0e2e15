"""Synthetic invoices for tests and benchmarks: English (US/UK/other dollar), German and French
invoices of varied layouts, rendered as PDFs with a text layer, with their ground truth.

    from tests.invoice_documents import synthetic_invoice
    inv = synthetic_invoice(seed=7)            # or language="en" / "de" / "fr"
    inv.pdf    # bytes of a PDF (text layer present)
    inv.truth  # merchant_name, buyer_name, invoice_number, transaction_date (ISO), total,
               # subtotal, tax, currency, items [(description, amount)], language, layout

Everything comes from a seeded RNG, so a seed always gives the same invoice. Needs `fpdf2`
(a test-only dependency) and a TrueType font (DejaVu Sans; Debian: fonts-dejavu-core).
Layouts vary the things an extractor must not rely on: letterhead left or right or only in the
footer, a "From" block or none, the customer block left or right under several labels, an
unlabelled ship-to block, meta fields as "Label: value" lines, label/value columns or a header
row over values, due and delivery dates around the issue date, currency as a symbol before or a
code after the amount, totals with shipping, discount, deposits and balance due.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import random
from dataclasses import dataclass, field
from pathlib import Path

FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
             Path("/usr/local/share/fonts")]


def font_path(bold: bool = False) -> Path | None:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for d in FONT_DIRS:
        if (d / name).is_file():
            return d / name
    return None


def available() -> str | None:
    """None when synthetic invoices can be made here, else why not."""
    if importlib.util.find_spec("fpdf") is None:
        return "fpdf2 is not installed (test dependency: pip install fpdf2==2.8.9)"
    if font_path() is None or font_path(True) is None:
        return "DejaVu Sans is missing (apt-get install -y fonts-dejavu-core)"
    return None


@dataclass
class SyntheticInvoice:
    pdf: bytes
    truth: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Vocabulary

_WORDS = ["Northwind", "Bluebird", "Granite", "Harbor", "Summit", "Redwood", "Silverline", "Oakridge", "Brightwater",
          "Ironbridge", "Maple", "Pinecrest", "Lakeside", "Kestrel", "Falcon", "Cobalt", "Juniper", "Meridian",
          "Evergreen", "Copperfield", "Starling", "Westbrook", "Hawthorne", "Lumen", "Quarry", "Atlas", "Vertex"]
_TRADES_EN = ["Consulting", "Supplies", "Logistics", "Software", "Design Studio", "Engineering", "Media", "Analytics",
              "Print Works", "Electrical", "Catering", "Cleaning Services", "Systems", "Hardware", "Marketing"]
_TRADES_DE = ["Beratung", "Bürobedarf", "Logistik", "Softwareentwicklung", "Elektrotechnik", "Druckerei", "Gebäudeservice",
              "Maschinenbau", "Handelsgesellschaft", "Medien", "Haustechnik", "Messebau", "Datentechnik"]
_TRADES_FR = ["Conseil", "Fournitures", "Logistique", "Informatique", "Électricité", "Imprimerie", "Nettoyage",
              "Ingénierie", "Communication", "Menuiserie", "Traiteur", "Services"]
_LEGAL = {"en_us": ["Inc.", "LLC", "Corp.", "Inc"], "en_gb": ["Ltd", "Limited", "Ltd.", "LLP", "plc"],
          "en_other": ["Pty Ltd", "Ltd", "Inc."], "de": ["GmbH", "AG", "GmbH & Co. KG", "e.K.", "UG"],
          "fr": ["SARL", "SAS", "SA", "EURL"]}
_FIRST = {"en": ["James", "Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Mia", "Ethan", "Grace", "Henry", "Chloe"],
          "de": ["Lukas", "Anna", "Jonas", "Lena", "Felix", "Sophie", "Paul", "Marie", "Maximilian", "Laura"],
          "fr": ["Louis", "Camille", "Hugo", "Léa", "Jules", "Manon", "Arthur", "Chloé", "Gabriel", "Inès"]}
_LAST = {"en": ["Carter", "Bennett", "Hughes", "Morgan", "Foster", "Reed", "Sullivan", "Ward", "Brooks", "Palmer"],
         "de": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Schäfer", "Koch", "Richter"],
         "fr": ["Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Laurent", "Girard", "Roux", "Fontaine", "Mercier"]}
_STREETS = {"en": ["Main Street", "Oak Avenue", "Market Street", "Park Road", "High Street", "Station Road", "Elm Drive",
                   "Harbour Way", "Mill Lane", "King Street"],
            "de": ["Hauptstraße", "Bahnhofstraße", "Gartenweg", "Lindenallee", "Marktplatz", "Industriestraße",
                   "Schillerstraße", "Am Hafen", "Ringstraße"],
            "fr": ["rue de la République", "avenue Victor Hugo", "boulevard Voltaire", "rue des Lilas", "chemin des Vignes",
                   "place du Marché", "rue Pasteur", "quai de la Loire"]}
_CITIES = {"en_us": [("Springfield", "IL 62701"), ("Austin", "TX 78701"), ("Portland", "OR 97205"),
                     ("Denver", "CO 80202"), ("Boston", "MA 02108"), ("Seattle", "WA 98101")],
           "en_gb": [("London", "EC1A 1BB"), ("Manchester", "M1 1AE"), ("Leeds", "LS1 4DY"), ("Bristol", "BS1 5TR"),
                     ("Glasgow", "G1 1XQ")],
           "en_other": [("Toronto", "ON M5H 2N2"), ("Sydney", "NSW 2000"), ("Vancouver", "BC V6B 1A1"),
                        ("Melbourne", "VIC 3000")],
           "de": [("10115 Berlin", ""), ("80331 München", ""), ("20095 Hamburg", ""), ("50667 Köln", ""),
                  ("60311 Frankfurt am Main", ""), ("70173 Stuttgart", ""), ("8001 Zürich", "")],
           "fr": [("75008 Paris", ""), ("69001 Lyon", ""), ("13001 Marseille", ""), ("31000 Toulouse", ""),
                  ("33000 Bordeaux", ""), ("44000 Nantes", "")]}
_ITEMS = {"en": ["Consulting services", "Website maintenance", "Office chairs", "Printer toner cartridge",
                 "Annual software licence", "Cloud hosting (monthly)", "Project management", "Installation labour",
                 "Network switch 24-port", "Training workshop", "Design revisions", "Delivery and setup",
                 "USB-C docking station", "Copy paper A4 (box)", "Support hours"],
          "de": ["Beratungsleistung", "Wartung Webseite", "Bürostühle", "Tonerkartusche", "Softwarelizenz (Jahr)",
                 "Cloud-Hosting (Monat)", "Projektmanagement", "Montage vor Ort", "Netzwerk-Switch 24 Port",
                 "Schulung", "Kopierpapier A4", "Fahrtkosten", "Arbeitsstunden Techniker"],
          "fr": ["Prestation de conseil", "Maintenance du site web", "Chaises de bureau", "Cartouche de toner",
                 "Licence logicielle annuelle", "Hébergement cloud (mensuel)", "Gestion de projet",
                 "Main-d'œuvre installation", "Formation", "Papier A4 (carton)", "Frais de déplacement",
                 "Heures de support"]}
_MONTHS = {"en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                  "November", "December"],
           "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
                  "November", "Dezember"],
           "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
                  "novembre", "décembre"]}

_L = {  # labels per language: a random choice among the alternatives
    "en": {
        "title": ["INVOICE", "Invoice", "TAX INVOICE", "Invoice"],
        "number": ["Invoice No.", "Invoice #", "Invoice Number", "Invoice no:", "Invoice #:"],
        "date": ["Invoice Date", "Date", "Date of issue", "Issue date", "Invoice date:"],
        "due": ["Due Date", "Payment due", "Due date:", "Due"],
        "delivery": ["Delivery date", "Service date", "Ship date"],
        "po": ["PO Number", "P.O. #", "Order No."],
        "customer_no": ["Customer ID", "Account No.", "Customer No."],
        "bill_to": ["Bill To", "BILL TO", "Billed To", "Invoice To", "Customer", "Bill to:", "Sold To"],
        "ship_to": ["Ship To", "SHIP TO", "Deliver To"],
        "from": ["From", "FROM:", "Seller", "Vendor"],
        "desc": ["Description", "Item", "DESCRIPTION"], "qty": ["Qty", "Quantity", "QTY", "Hours"],
        "price": ["Unit Price", "Rate", "Price"], "amount": ["Amount", "Total", "Line Total"],
        "subtotal": ["Subtotal", "Sub-total", "SUBTOTAL", "Net amount"],
        "tax": ["Tax ({r}%)", "Sales Tax {r}%", "Sales tax", "Tax"],
        "tax_vat": ["VAT {r}%", "VAT ({r}%)", "VAT", "GST {r}%"],
        "shipping": ["Shipping", "Shipping & handling"], "discount": ["Discount"],
        "total": ["Total", "TOTAL", "Grand Total", "Total Due", "Invoice Total", "Total (incl. VAT)"],
        "paid": ["Amount Paid", "Payments", "Deposit received"],
        "balance": ["Balance Due", "Amount Due", "BALANCE DUE"],
        "thanks": ["Thank you for your business!", "Payment is due within 30 days.",
                   "Please include the invoice number with your payment."],
        "terms": ["Terms: Net 30", "Payment terms: 14 days", "Net 15"],
    },
    "de": {
        "title": ["RECHNUNG", "Rechnung"],
        "number": ["Rechnungsnummer", "Rechnung Nr.", "Rechnungs-Nr.", "Rechnungsnr."],
        "date": ["Rechnungsdatum", "Datum"],
        "due": ["Fällig am", "Zahlbar bis", "Fälligkeitsdatum"],
        "delivery": ["Lieferdatum", "Leistungsdatum", "Leistungszeitraum"],
        "po": ["Bestellnummer", "Ihre Bestellung"],
        "customer_no": ["Kundennummer", "Kunden-Nr."],
        "bill_to": ["Rechnungsempfänger", "Kunde", "Rechnungsadresse", "Kunde:"],
        "ship_to": ["Lieferadresse", "Lieferanschrift", "Warenempfänger"],
        "from": ["Verkäufer", "Lieferant", "Rechnungssteller"],
        "desc": ["Beschreibung", "Bezeichnung", "Artikel"], "qty": ["Menge", "Anzahl"],
        "price": ["Einzelpreis", "Preis"], "amount": ["Betrag", "Gesamtpreis", "Gesamt"],
        "subtotal": ["Nettobetrag", "Zwischensumme", "Summe netto", "Gesamtbetrag netto"],
        "tax": ["MwSt. {r}%", "zzgl. {r}% USt.", "Umsatzsteuer {r}%", "MwSt {r} %"],
        "shipping": ["Versandkosten"], "discount": ["Rabatt"],
        "total": ["Gesamtbetrag", "Rechnungsbetrag", "Bruttobetrag", "Gesamtsumme", "Endbetrag"],
        "paid": ["Anzahlung", "Bereits bezahlt"],
        "balance": ["Zahlbetrag", "Noch zu zahlen", "Offener Betrag"],
        "thanks": ["Vielen Dank für Ihren Auftrag.", "Bitte überweisen Sie den Betrag innerhalb von 14 Tagen.",
                   "Es gelten unsere allgemeinen Geschäftsbedingungen."],
        "terms": ["Zahlungsziel: 14 Tage netto", "Zahlbar innerhalb 30 Tagen ohne Abzug"],
    },
    "fr": {
        "title": ["FACTURE", "Facture"],
        "number": ["Facture n°", "N° de facture", "Numéro de facture", "Facture N°"],
        "date": ["Date de facture", "Date", "Date d'émission"],
        "due": ["Date d'échéance", "Échéance", "À régler avant le"],
        "delivery": ["Date de livraison", "Date de prestation"],
        "po": ["Bon de commande", "Votre commande"],
        "customer_no": ["N° client", "Code client"],
        "bill_to": ["Facturé à", "Client", "Adresse de facturation", "Destinataire"],
        "ship_to": ["Adresse de livraison", "Livré à"],
        "from": ["Vendeur", "Émetteur", "Fournisseur"],
        "desc": ["Désignation", "Description"], "qty": ["Qté", "Quantité"],
        "price": ["Prix unitaire HT", "P.U. HT"], "amount": ["Montant HT", "Total HT"],
        "subtotal": ["Total HT", "Montant HT", "Sous-total HT"],
        "tax": ["TVA {r}%", "TVA ({r} %)", "Montant TVA {r}%"],
        "shipping": ["Frais de port"], "discount": ["Remise"],
        "total": ["Total TTC", "Montant TTC", "TOTAL TTC"],
        "paid": ["Acompte versé", "Déjà réglé"],
        "balance": ["Net à payer", "Reste à payer", "Solde à payer"],
        "thanks": ["Merci de votre confiance.", "Paiement à 30 jours par virement.",
                   "En cas de retard de paiement, une pénalité de 3 fois le taux d'intérêt légal sera appliquée."],
        "terms": ["Conditions de paiement : 30 jours", "Paiement à réception"],
    },
}


# --------------------------------------------------------------------------------------------
# Formatting


def _fmt_number(value: float, style: str) -> str:
    neg = value < 0
    s = f"{abs(value):,.2f}"  # 1,234.56
    if style == "de":
        s = s.replace(",", "X").replace(".", ",").replace("X", ".")
    elif style == "fr":
        s = s.replace(",", "\u202f").replace(".", ",")
    elif style == "ch":
        s = s.replace(",", "'")
    return ("-" if neg else "") + s


@dataclass
class _Money:
    code: str
    style: str  # number style: en, de, fr, ch
    mark: str  # how the currency shows: "$", "US$", "€", "£", "CHF", "code_after", "symbol_after", "none"

    def __call__(self, value: float, with_mark: bool = True) -> str:
        n = _fmt_number(value, self.style)
        if not with_mark or self.mark == "none":
            return n
        symbol = {"USD": "$", "EUR": "€", "GBP": "£", "CHF": "CHF", "CAD": "$", "AUD": "$"}[self.code]
        if self.mark == "code_after":
            return f"{n} {self.code}"
        if self.mark == "symbol_after":
            return f"{n} {symbol}"
        if self.mark == "US$":
            return f"US${n}"
        if self.mark == "code_before":
            return f"{self.code} {n}"
        sep = " " if symbol.isalpha() else ""
        return f"{symbol}{sep}{n}"


def _fmt_date(d: dt.date, locale: str, rng: random.Random) -> str:
    lang = locale[:2]
    months = _MONTHS[lang]
    if locale == "en_us":
        return rng.choice([f"{months[d.month - 1]} {d.day}, {d.year}", f"{d.month:02d}/{d.day:02d}/{d.year}",
                           f"{months[d.month - 1][:3]} {d.day}, {d.year}", d.isoformat()])
    if lang == "en":
        return rng.choice([f"{d.day} {months[d.month - 1]} {d.year}", f"{d.day:02d}/{d.month:02d}/{d.year}",
                           f"{d.day} {months[d.month - 1][:3]} {d.year}", d.isoformat()])
    if lang == "de":
        return rng.choice([f"{d.day:02d}.{d.month:02d}.{d.year}", f"{d.day}. {months[d.month - 1]} {d.year}",
                           f"{d.day:02d}.{d.month:02d}.{d.year}"])
    return rng.choice([f"{d.day:02d}/{d.month:02d}/{d.year}", f"{d.day} {months[d.month - 1]} {d.year}",
                       f"{d.day:02d}/{d.month:02d}/{d.year}"])


# --------------------------------------------------------------------------------------------
# Content


def _company(rng: random.Random, locale: str, legal_form: bool = True) -> str:
    lang = locale[:2]
    trades = {"en": _TRADES_EN, "de": _TRADES_DE, "fr": _TRADES_FR}[lang]
    legal = rng.choice(_LEGAL[locale if locale in _LEGAL else lang])
    a, b = rng.sample(_WORDS, 2)
    if not legal_form:
        # a sole trader or a trading name: no legal form to recognise it by
        first, last = rng.choice(_FIRST[lang]), rng.choice(_LAST[lang])
        return rng.choice([f"{first} {last} {rng.choice(trades)}", f"{a} {rng.choice(trades)}",
                           {"en": f"{last} & Sons", "de": f"{rng.choice(trades)} {last}", "fr": f"Atelier {last}"}[lang],
                           {"en": f"Studio {a}", "de": f"Studio {a}", "fr": f"Maison {a}"}[lang]])
    shape = rng.random()
    if shape < 0.45:
        base = f"{a} {rng.choice(trades)}"
    elif shape < 0.7:
        base = f"{a} & {b}" if lang == "en" else f"{a} {b}"
    elif shape < 0.85:
        base = f"{a}{b.lower()}"
    else:
        base = f"{rng.choice(_LAST['en' if lang == 'en' else lang])} {rng.choice(trades)}"
    return f"{base} {legal}"


def _person(rng: random.Random, lang: str) -> str:
    return f"{rng.choice(_FIRST[lang])} {rng.choice(_LAST[lang])}"


def _address(rng: random.Random, locale: str) -> list[str]:
    lang = locale[:2]
    street = rng.choice(_STREETS[lang])
    num = rng.randint(1, 240)
    city, post = rng.choice(_CITIES[locale if locale in _CITIES else lang])
    if lang == "en":
        lines = [f"{num} {street}", f"{city}, {post}" if locale == "en_us" else f"{city} {post}"]
        if rng.random() < 0.3:
            lines.insert(1, f"Suite {rng.randint(100, 900)}")
        if locale == "en_gb" and rng.random() < 0.5:
            lines.append("United Kingdom")
        return lines
    if lang == "de":
        return [f"{street} {num}", city] + (["Deutschland"] if rng.random() < 0.3 else [])
    return [f"{num} {street}", city] + (["France"] if rng.random() < 0.3 else [])


def _invoice_number(rng: random.Random, year: int) -> str:
    shape = rng.randrange(6)
    if shape == 0:
        return f"INV-{year}-{rng.randint(1, 9999):04d}"
    if shape == 1:
        return str(rng.randint(10000, 999999))
    if shape == 2:
        return f"{year}{rng.randint(1, 999):03d}"
    if shape == 3:
        return f"RE-{rng.randint(1000, 99999)}"
    if shape == 4:
        return f"F{year % 100:02d}-{rng.randint(100, 9999)}"
    return f"{rng.choice('ABCDEFGHJK')}{rng.randint(100000, 9999999)}"


def _registration(rng: random.Random, lang: str) -> str:
    """A footer's legal details."""
    if lang == "en":
        return rng.choice([f"Company No. {rng.randint(1000000, 9999999)}",
                           f"EIN {rng.randint(10, 99)}-{rng.randint(1000000, 9999999)}",
                           f"VAT Reg. No. GB{rng.randint(100000000, 999999999)}"])
    if lang == "de":
        return rng.choice([f"HRB {rng.randint(1000, 99999)} Amtsgericht Berlin",
                           f"USt-IdNr. DE{rng.randint(100000000, 999999999)}"])
    return f"SIRET {rng.randint(10 ** 13, 10 ** 14 - 1)} - TVA FR{rng.randint(10, 99)}{rng.randint(10 ** 8, 10 ** 9 - 1)}"


def _bank_line(rng: random.Random, lang: str) -> str:
    groups = " ".join(str(rng.randint(1000, 9999)) for _ in range(4))
    if lang == "en":
        bank = rng.choice(["First National Bank", "Barclays Bank PLC", "Commerce Bank"])
        return f"Bank: {bank} · Account {rng.randint(10000000, 99999999)}"
    if lang == "de":
        bic = rng.choice(["COBADEFFXXX", "DEUTDEFF", "SOLADEST600"])
        return f"Bankverbindung: Sparkasse · IBAN DE{rng.randint(10, 99)} {groups} {rng.randint(10, 99)} · BIC {bic}"
    return f"Banque : Crédit Agricole · IBAN FR76 {groups} · BIC AGRIFRPP"


# --------------------------------------------------------------------------------------------
# Rendering


class _Canvas:
    def __init__(self, letter: bool):
        from fpdf import FPDF

        self.pdf = FPDF(unit="pt", format="letter" if letter else "A4")
        self.pdf.set_auto_page_break(False)
        self.pdf.add_font("DejaVu", "", str(font_path()))
        self.pdf.add_font("DejaVu", "B", str(font_path(True)))
        self.pdf.add_page()
        self.w = self.pdf.w
        self.h = self.pdf.h

    def text(self, x: float, y: float, s: str, size: float = 9.5, bold: bool = False, align: str = "L") -> float:
        """Write s with its baseline at y; x is its left edge (L), right edge (R) or centre (C).
        Returns the text's width."""
        self.pdf.set_font("DejaVu", "B" if bold else "", size)
        w = self.pdf.get_string_width(s)
        if align == "R":
            x -= w
        elif align == "C":
            x -= w / 2
        self.pdf.text(x, y, s)
        return w

    def line(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.pdf.set_line_width(0.6)
        self.pdf.line(x0, y0, x1, y1)

    def new_page(self) -> None:
        self.pdf.add_page()

    def bytes(self) -> bytes:
        return bytes(self.pdf.output())


def synthetic_invoice(seed: int, language: str | None = None) -> SyntheticInvoice:
    """One invoice from a seed: its PDF (text layer present) and its ground truth."""
    rng = random.Random(seed)
    lang = language or rng.choice(["en", "en", "en", "de", "fr"])
    if lang == "en":
        locale = rng.choice(["en_us", "en_us", "en_gb", "en_other"])
    else:
        locale = lang
    L = {k: v for k, v in _L[lang].items()}
    if locale in ("en_gb", "en_other"):
        L["tax"] = L["tax_vat"] if locale == "en_gb" else L["tax_vat"][-1:] + L["tax"][:1]
        L["subtotal"] = L["subtotal"] + ["Total excl. VAT"] if locale == "en_gb" else L["subtotal"]
    elif lang == "en":
        L["total"] = [t for t in L["total"] if "VAT" not in t]
        L["subtotal"] = [t for t in L["subtotal"] if "VAT" not in t]

    def pick(key: str) -> str:
        return rng.choice(L[key])

    # currency and how it is printed
    if locale == "en_us":
        money = _Money("USD", "en", rng.choice(["$", "$", "US$", "code_after", "code_before"]))
    elif locale == "en_gb":
        money = _Money(rng.choice(["GBP", "GBP", "EUR"]), "en", "")
        money.mark = rng.choice(["£", "code_after"]) if money.code == "GBP" else rng.choice(["€", "code_after"])
    elif locale == "en_other":
        money = _Money(rng.choice(["CAD", "AUD"]), "en", rng.choice(["$", "code_after", "code_before"]))
    elif lang == "de":
        code = "CHF" if rng.random() < 0.15 else "EUR"
        style = "ch" if code == "CHF" and rng.random() < 0.5 else "de"
        marks = ["symbol_after", "code_after", "€"] if code == "EUR" else ["code_before", "code_after"]
        money = _Money(code, style, rng.choice(marks))
    else:
        money = _Money("EUR", "fr", rng.choice(["symbol_after", "code_after"]))
    marks_on_rows = rng.random() < 0.5  # currency on every amount, else only on the totals
    # a dollar that is not the US dollar says which it is somewhere on the page
    currency_note = None
    if money.code in ("CAD", "AUD") and money.mark == "$":
        currency_note = rng.choice([f"All amounts in {money.code}", f"Currency: {money.code}",
                                    f"Prices shown in {money.code}"])

    seller = _company(rng, locale, legal_form=rng.random() < 0.75)
    seller_addr = _address(rng, locale)
    buyer_is_person = rng.random() < 0.3
    buyer_locale = locale
    buyer = _person(rng, lang) if buyer_is_person else _company(rng, buyer_locale)
    if buyer == seller:
        buyer = _person(rng, lang)
    buyer_addr = _address(rng, buyer_locale)
    contact = _person(rng, lang)
    year = rng.randint(2019, 2025)
    issue = dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
    due = issue + dt.timedelta(days=rng.choice([7, 14, 15, 30, 45]))
    delivery = issue - dt.timedelta(days=rng.randint(1, 20))
    number = _invoice_number(rng, year)

    # items and totals
    n_items = rng.randint(1, 9)
    long_invoice = rng.random() < 0.08
    if long_invoice:
        n_items = rng.randint(26, 34)
    items = []
    for _ in range(n_items):
        desc = rng.choice(_ITEMS[lang])
        qty = rng.choice([1, 1, 1, 2, 3, 4, 5, 10, 12, 20])
        price = round(rng.choice([rng.uniform(5, 120), rng.uniform(100, 2500)]), 2)
        items.append((desc, qty, price, round(qty * price, 2)))
    subtotal = round(sum(i[3] for i in items), 2)
    discount = round(subtotal * 0.05, 2) if rng.random() < 0.15 else 0.0
    shipping = round(rng.uniform(5, 60), 2) if rng.random() < 0.2 else 0.0
    rate = {"en_us": rng.choice([0, 6.25, 7, 8.25, 8.875]), "en_gb": 20, "en_other": rng.choice([5, 10, 13]),
            "de": 7.7 if money.code == "CHF" else rng.choice([19, 19, 7]), "fr": rng.choice([20, 20, 10, 5.5])}[locale]
    net = round(subtotal - discount + shipping, 2)
    tax = round(net * rate / 100, 2)
    total = round(net + tax, 2)
    deposit = round(total * rng.choice([0.2, 0.3, 0.5]), 2) if rng.random() < 0.12 else 0.0

    letterhead = rng.choice(["left", "left", "right", "center", "footer_only", "title_first"])
    din_letter = lang != "en" and rng.random() < 0.35 or lang == "en" and rng.random() < 0.1
    if din_letter:
        letterhead = "right"
    seller_block = not din_letter and (rng.random() < 0.2 or letterhead == "footer_only" and rng.random() < 0.5)
    included_tax = lang != "en" and rng.random() < 0.2 or locale == "en_gb" and rng.random() < 0.2
    inline_label = rng.random() < 0.15
    salutation = buyer_is_person and (din_letter or rng.random() < 0.2)
    noise = rng.random() < 0.4
    bill_side = rng.choice(["left", "left", "right"])
    ship_to = rng.random() < 0.3
    meta_style = rng.choice(["colon", "columns", "header_row"])
    footer = rng.random() < 0.6 or letterhead == "footer_only"
    rate_txt = f"{rate:g}".replace(".", "," if lang != "en" else ".")
    layout = f"{letterhead}/{bill_side}/{meta_style}" + ("/from" if seller_block else "") + ("/ship" if ship_to else "") + (
        "/long" if long_invoice else "") + ("/din" if din_letter else "") + ("/incl" if included_tax else "") + (
        "/inline" if inline_label else "")

    c = _Canvas(letter=locale == "en_us")
    W, H = c.w, c.h
    M = 42.0
    y = 58.0

    # letterhead
    head_size = rng.choice([15, 17, 20])
    head_lines = [seller] + seller_addr + [rng.choice([
        f"Tel. +{rng.randint(1, 49)} {rng.randint(100, 999)} {rng.randint(1000000, 9999999)}",
        f"Phone: ({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"]),
        f"{seller.split()[0].lower()}@example.{'com' if lang == 'en' else lang}"]
    title = pick("title")
    if noise:
        c.text(W - M, 30, rng.choice(["Page 1 of 1", "Seite 1 von 1" if lang == "de" else "Page 1/1", "ORIGINAL"]), 7.5,
               align="R")
    if letterhead == "title_first":
        # the title first, the issuer under it
        c.text(M, y, title, 24, bold=True)
        y += 34
        c.text(M, y, seller, head_size - 2, bold=True)
        for i, s in enumerate(head_lines[1:3]):
            c.text(M, y + 15 + i * 12, s, 8.5)
        y += 15 + 2 * 12 + 20
    elif letterhead in ("left", "right", "center"):
        c.pdf.set_font("DejaVu", "B", head_size)
        name_w = c.pdf.get_string_width(seller)
        c.pdf.set_font("DejaVu", "B", 22)
        if name_w + c.pdf.get_string_width(title) + 40 > W - 2 * M:
            head_size = 13  # a long name: smaller, so that it does not run into the title
        if letterhead == "left":
            c.text(M, y, seller, head_size, bold=True)
            for i, s in enumerate(head_lines[1:]):
                c.text(M, y + 18 + i * 12, s, 8.5)
            c.text(W - M, y, title, 22, bold=True, align="R")
        elif letterhead == "right":
            c.text(W - M, y, seller, head_size, bold=True, align="R")
            for i, s in enumerate(head_lines[1:]):
                c.text(W - M, y + 18 + i * 12, s, 8.5, align="R")
            c.text(M, y, title, 22, bold=True)
        else:
            c.text(W / 2, y, seller, head_size, bold=True, align="C")
            c.text(W / 2, y + 16, "  ·  ".join(head_lines[1:3]), 8.5, align="C")
            y += 30
            c.text(W / 2, y + 22, title, 18, bold=True, align="C")
            y += 12
        y += 18 + len(head_lines) * 12 + 12
    else:
        c.text(M, y, title, 24, bold=True)
        y += 36

    # meta fields (number, dates, references)
    meta = [(pick("number"), number), (pick("date"), _fmt_date(issue, locale, rng))]
    extra = []
    if rng.random() < 0.8:
        extra.append((pick("due"), _fmt_date(due, locale, rng)))
    if rng.random() < 0.3:
        extra.append((pick("delivery"), _fmt_date(delivery, locale, rng)))
    if rng.random() < 0.4:
        extra.append((pick("po"), f"{rng.choice(['PO', 'B', ''])}{rng.randint(1000, 99999)}"))
    if rng.random() < 0.4:
        extra.append((pick("customer_no"), str(rng.randint(10000, 99999))))
    rng.shuffle(extra)
    meta = meta + extra if rng.random() < 0.7 else extra[:1] + meta + extra[1:]

    def party_block(x: float, y0: float, label: str | None, name: str, addr: list[str], align: str = "L") -> float:
        yy = y0
        if salutation and name == buyer:
            name_lines = [salutation_word, name] if salutation_split else [f"{salutation_word} {name}"]
            truth_buyer[0] = f"{salutation_word} {name}"
        else:
            name_lines = [name]
        if label and inline_label:
            c.text(x, yy, f"{label.rstrip(':')}: {name_lines[0]}", 9.5, align=align)
            name_lines = name_lines[1:]
            yy += 13
        elif label:
            c.text(x, yy, label, 9, bold=True, align=align)
            yy += 13
        for n in name_lines:
            c.text(x, yy, n, 10, bold=rng.random() < 0.5, align=align)
            yy += 13
        if buyer_is_person is False and rng.random() < 0.3 and name == buyer:
            c.text(x, yy, ("Attn: " if lang == "en" else "z. Hd. " if lang == "de" else "À l'attention de ") + contact, 9,
                   align=align)
            yy += 12
        for s in addr:
            c.text(x, yy, s, 9, align=align)
            yy += 12
        return yy

    truth_buyer = [buyer]
    salutation_word = {"en": rng.choice(["Mr", "Ms"]), "de": rng.choice(["Herrn", "Frau"]),
                       "fr": rng.choice(["Monsieur", "Madame"])}[lang]
    salutation_split = rng.random() < 0.5  # the salutation on a line of its own
    block_top = y
    left_x, right_x = M, W / 2 + 20
    bill_x = left_x if bill_side == "left" else right_x
    other_x = right_x if bill_side == "left" else left_x
    bottom = block_top
    if din_letter:
        # a letter: the sender's return line in small print over the recipient's address (no
        # label), the references on the right
        c.text(M, block_top, f"{seller} · {seller_addr[0]} · {seller_addr[-1]}", 6.5)
        bottom = max(bottom, party_block(M, block_top + 16, None, buyer, buyer_addr))
        meta_x = right_x
        y = block_top
    elif seller_block:
        # an explicit seller block beside the customer
        bottom = max(bottom, party_block(other_x, block_top, pick("from"), seller, seller_addr))
        bottom = max(bottom, party_block(bill_x, block_top, pick("bill_to"), buyer, buyer_addr))
        y = bottom + 16
        meta_x = M
    else:
        bottom = max(bottom, party_block(bill_x, block_top, pick("bill_to"), buyer, buyer_addr))
        if ship_to:
            ship_name = buyer if rng.random() < 0.5 else _person(rng, lang)
            bottom = max(bottom, party_block(bill_x, bottom + 10, pick("ship_to"), ship_name, _address(rng, locale)))
        meta_x = other_x
        y = block_top
    # meta fields
    if meta_style == "colon":
        for label, value in meta:
            sep = "" if label.endswith(":") else ":"
            c.text(meta_x, y, f"{label}{sep} {value}", 9.5)
            y += 14
    elif meta_style == "columns":
        for label, value in meta:
            c.text(meta_x, y, label.rstrip(":"), 9.5, bold=True)
            c.text(meta_x + 125, y, value, 9.5)
            y += 14
    else:
        # a header row over a row of values, across the page under the address blocks
        y = max(y, bottom) + 14
        cols = meta[:4]
        width = (W - 2 * M) / max(1, len(cols))
        for i, (label, value) in enumerate(cols):
            c.text(M + i * width, y, label.rstrip(":"), 8.5, bold=True)
            c.text(M + i * width, y + 13, value, 9.5)
        y += 30
    y = max(y, bottom) + 24

    # items table
    x_desc, x_qty, x_price, x_amt = M, W * 0.55, W * 0.72, W - M
    c.line(M, y - 12, W - M, y - 12)
    c.text(x_desc, y, pick("desc"), 9, bold=True)
    c.text(x_qty, y, pick("qty"), 9, bold=True, align="R")
    c.text(x_price, y, pick("price"), 9, bold=True, align="R")
    c.text(x_amt, y, pick("amount"), 9, bold=True, align="R")
    c.line(M, y + 5, W - M, y + 5)
    y += 20
    for desc, qty, price, amount in items:
        if y > H - 120:
            c.new_page()
            y = 70
        c.text(x_desc, y, desc, 9)
        c.text(x_qty, y, str(qty), 9, align="R")
        c.text(x_price, y, money(price, marks_on_rows), 9, align="R")
        c.text(x_amt, y, money(amount, marks_on_rows), 9, align="R")
        y += 16
        if rng.random() < 0.15:
            c.text(x_desc + 8, y - 4, rng.choice(["Ref. " + str(rng.randint(1000, 9999)), "as agreed", "gemäß Angebot",
                                                   "selon devis", f"{rng.randint(1, 28)}.{rng.randint(1, 12)}."]), 7.5)
            y += 10
    if y > H - 230:
        c.new_page()
        y = 70
    c.line(W * 0.5, y - 6, W - M, y - 6)
    y += 10

    # totals
    x_lab = W * 0.58
    rows = [(pick("subtotal"), subtotal)]
    subtotal_truth = subtotal
    if discount or shipping:
        # the items' sum, then discount / shipping, then the net they leave, labelled as the net
        rows = [(rng.choice({"en": ["Subtotal", "Items total"], "de": ["Zwischensumme", "Warenwert"],
                             "fr": ["Sous-total", "Total articles"]}[lang]), subtotal)]
        if discount:
            rows.append((pick("discount"), -discount))
        if shipping:
            rows.append((pick("shipping"), shipping))
        rows.append((rng.choice({"en": ["Net total", "Total excl. tax"], "de": ["Nettobetrag", "Summe netto"],
                                 "fr": ["Total HT", "Montant HT"]}[lang]), net))
        subtotal_truth = net
    tax_label = pick("tax").format(r=rate_txt)
    if included_tax:
        # a consumer invoice: the total, and the tax it includes
        rows = [(pick("total"), total)]
        rows.append(({"en": f"incl. VAT {rate_txt}%", "de": f"darin enthalten {rate_txt}% MwSt.",
                      "fr": f"dont TVA {rate_txt}%"}[lang], tax))
        subtotal_truth = None
    else:
        rows.append((tax_label, tax))
        rows.append((pick("total"), total))
    if deposit:
        rows.append((pick("paid"), -deposit))
        rows.append((pick("balance"), round(total - deposit, 2)))
    elif rng.random() < 0.25 and lang == "en":
        rows.append((pick("balance"), total))
    for label, value in rows:
        strong = label in L["total"] or label in L["balance"]
        c.text(x_lab, y, label, 10 if strong else 9, bold=strong)
        c.text(x_amt, y, money(value, True), 10 if strong else 9, bold=strong, align="R")
        y += 16 if not strong else 19
    y += 18
    if currency_note:
        c.text(M, y, currency_note, 8.5)
        y += 12
    c.text(M, y, pick("terms"), 8.5)
    y += 12
    c.text(M, y, pick("thanks"), 8.5)

    # footer: the issuer's legal details and bank
    if footer:
        fy = H - 58
        c.line(M, fy - 12, W - M, fy - 12)
        c.text(M, fy, f"{seller} · {seller_addr[0]} · {_registration(rng, lang)}", 7.5)
        bank = _bank_line(rng, lang)
        c.text(M, fy + 11, bank, 7.5)
        if lang == "de" and rng.random() < 0.5:
            c.text(M, fy + 22, f"Geschäftsführer: {_person(rng, 'de')}", 7.5)

    truth = {
        "merchant_name": seller, "buyer_name": truth_buyer[0], "invoice_number": number,
        "transaction_date": issue.isoformat(), "total": total, "subtotal": subtotal_truth, "tax": tax,
        "currency": money.code, "items": [(d, a) for d, _, _, a in items], "language": lang, "locale": locale,
        "layout": layout, "due_date": due.isoformat(),
    }
    return SyntheticInvoice(c.bytes(), truth)


# --------------------------------------------------------------------------------------------
# Hand-laid invoices: one document's rows exactly as written (any language), rendered as a PDF


def laid_out_pdf(rows: list, *, top: float = 60.0, step: float = 15.0, pages: list | None = None) -> bytes:
    """A PDF with a text layer from rows. A row is "" (an empty row) or a list of boxes
    (x in points, text) or (x, text, size, bold, align) on one printed line (align "R": x is the
    right edge). `pages`: more pages' rows after the first."""
    canvas = _Canvas(letter=False)
    for n, page_rows in enumerate([rows] + list(pages or [])):
        if n:
            canvas.new_page()
        y = top
        for row in page_rows:
            if row == "":
                y += step
                continue
            size = max((box[2] if len(box) > 2 else 9.5) for box in row)
            for box in row:
                x, text = box[0], box[1]
                canvas.text(x, y, text, size=box[2] if len(box) > 2 else 9.5,
                            bold=bool(box[3]) if len(box) > 3 else False, align=box[4] if len(box) > 4 else "L")
            y += step * max(1.0, size / 9.5)
    return canvas.bytes()
