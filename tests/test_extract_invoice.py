"""Generic invoice extraction (worker/extract/invoice/): synthetic invoices read through the
PDF text layer and (two of them) through OCR, hand-built layouts in the shapes of common invoice
templates, the pure helpers, and an accuracy floor on the real zugferd-dev PDFs (page read, their
embedded XML ignored)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from docket.pages import TextLine, prepare
from tests import invoice_documents
from tests.devdata import dev_set
from worker.extract.invoice import extract_invoice, looks_like_invoice, parse_amount

CHAR_W = 11.0


def page(rows: list, h: float = 24.0, step: float = 34.0, top: float = 60.0) -> list[TextLine]:
    """Positioned lines from rows. A row is "" (an empty row) or a list of boxes (text, x0) or
    (text, x0, size) on one printed line; size scales the box (a larger font)."""
    out = []
    y = top
    for row in rows:
        if row == "":
            y += step
            continue
        for box in row:
            text, x0 = box[0], float(box[1])
            size = box[2] if len(box) > 2 else 1.0
            out.append(TextLine(text, (x0, y, x0 + CHAR_W * size * len(text), y + h * size), 0.98))
        y += step * max((b[2] if len(b) > 2 else 1.0) for b in row)
    return out


def pdf_lines(tmp_path: Path, pdf: bytes, name: str = "inv.pdf", max_side: int = 2560):
    path = tmp_path / name
    path.write_bytes(pdf)
    return prepare(path, "application/pdf", max_side=max_side, max_pages=5)


def check(ex, want: dict) -> dict:
    """The fields that differ from what was wanted: {field: (wanted, got)}."""
    return {k: (v, ex.fields.get(k)) for k, v in want.items() if ex.fields.get(k) != v}


# --------------------------------------------------------------------------------------------
# Layouts in the shapes of common invoice templates (hand-built lines, no PDF, no OCR)

STRIPE_LIKE = page([
    [("Invoice", 80, 1.6)],
    [("Invoice number", 80), ("9F2C1A7B-0003", 330)],
    [("Date of issue", 80), ("March 5, 2024", 330)],
    [("Date due", 80), ("April 4, 2024", 330)],
    "",
    [("Acme Cloud, Inc.", 80), ("Bill to", 700)],
    [("510 Townsend Street", 80), ("Jane Doe", 700)],
    [("San Francisco, California 94103", 80), ("42 Elm Street", 700)],
    [("United States", 80), ("Austin, Texas 78701", 700)],
    [("billing@acmecloud.com", 80), ("jane@example.com", 700)],
    "",
    [("$240.00 due April 4, 2024", 80, 1.3)],
    "",
    [("Description", 80), ("Qty", 800), ("Unit price", 950), ("Amount", 1150)],
    [("Pro plan (Mar 5 - Apr 5, 2024)", 80), ("2", 800), ("$120.00", 950), ("$240.00", 1150)],
    [("Subtotal", 800), ("$240.00", 1150)],
    [("Total", 800), ("$240.00", 1150)],
    [("Amount due", 800), ("$240.00", 1150)],
])

QUICKBOOKS_LIKE = page([
    [("Brightline Plumbing LLC", 80, 1.4), ("INVOICE", 1000, 1.8)],
    [("1200 Market St", 80)],
    [("Denver, CO 80202", 80)],
    [("(303) 555-0142", 80)],
    "",
    [("BILL TO", 80), ("SHIP TO", 450), ("INVOICE #", 900), ("1047", 1100)],
    [("Harbor View Apartments", 80), ("Unit 4B", 450), ("DATE", 900), ("02/03/2024", 1100)],
    [("88 Lake Shore Dr", 80), ("88 Lake Shore Dr", 450), ("DUE DATE", 900), ("03/04/2024", 1100)],
    [("Denver, CO 80205", 80), ("Denver, CO 80205", 450), ("TERMS", 900), ("Net 30", 1100)],
    "",
    [("ACTIVITY", 80), ("QTY", 700), ("RATE", 850), ("AMOUNT", 1100)],
    [("Labor - drain repair", 80), ("3", 700), ("95.00", 850), ("285.00", 1100)],
    [("Parts: P-trap assembly", 80), ("1", 700), ("42.50", 850), ("42.50", 1100)],
    [("SUBTOTAL", 850), ("327.50", 1100)],
    [("TAX (8.81%)", 850), ("28.85", 1100)],
    [("TOTAL", 850), ("356.35", 1100)],
    [("BALANCE DUE", 850), ("$356.35", 1100, 1.3)],
])

UK_FREELANCE = page([
    [("INVOICE", 80, 2.0)],
    "",
    [("From:", 80), ("Invoice to:", 700)],
    [("Sarah Whitfield Design", 80), ("Greenleaf Publishing Ltd", 700)],
    [("14 Canal Street", 80), ("3 Queen's Yard", 700)],
    [("Manchester M1 3HU", 80), ("London E9 5EN", 700)],
    [("VAT Reg: GB 123 4567 89", 80)],
    "",
    [("Invoice no: SW-2023-118", 80), ("Invoice date: 14/02/2023", 700)],
    [("Tax point: 14/02/2023", 80), ("Payment due: 16/03/2023", 700)],
    "",
    [("Description", 80), ("Amount", 1100)],
    [("Cover illustration - 'The Quiet Harbour'", 80), ("£1,200.00", 1100)],
    [("Revisions (2 rounds)", 80), ("£150.00", 1100)],
    [("Net total", 800), ("£1,350.00", 1100)],
    [("VAT @ 20%", 800), ("£270.00", 1100)],
    [("Total due", 800), ("£1,620.00", 1100)],
    [("Bank: Starling Bank  Sort code: 60-83-71  Account: 12345678", 80)],
])

GERMAN_LETTER = page([
    [("Malerbetrieb Hoffmann", 900, 1.5)],
    [("Meisterbetrieb seit 1987", 900)],
    [("Gartenweg 4 · 70173 Stuttgart", 900)],
    "",
    [("Herrn", 100)],
    [("Thomas Becker", 100)],
    [("Lindenallee 12", 100)],
    [("70176 Stuttgart", 100), ("Stuttgart, 14.03.2024", 900)],
    "",
    [("Rechnung Nr. 2024-117", 100, 1.3)],
    [("Leistungszeitraum: 04.03.2024 - 08.03.2024", 100)],
    [("Pos.", 100), ("Bezeichnung", 200), ("Menge", 700), ("Einzelpreis", 850), ("Gesamt", 1100)],
    [("1", 100), ("Wände streichen, Wohnzimmer", 200), ("42 m²", 700), ("12,50 €", 850), ("525,00 €", 1100)],
    [("2", 100), ("Material (Farbe, Abdeckfolie)", 200), ("1", 700), ("1.118,40 €", 850), ("1.118,40 €", 1100)],
    [("Nettobetrag", 800), ("1.643,40 €", 1100)],
    [("zzgl. 19 % MwSt.", 800), ("312,25 €", 1100)],
    [("Rechnungsbetrag", 800), ("1.955,65 €", 1100)],
    [("Zahlbar innerhalb von 14 Tagen ohne Abzug.", 100)],
    [("Bankverbindung: Volksbank Stuttgart · IBAN DE12 6009 0100 0123 4567 89", 100)],
    [("Steuernummer 99/123/45678", 100)],
])

FRENCH = page([
    [("FACTURE", 100, 2.0), ("Boulangerie Dupont", 850, 1.4)],
    [("12 rue des Lilas", 850)],
    [("33000 Bordeaux", 850)],
    [("SIRET 123 456 789 00012", 850)],
    "",
    [("Facture n° 2023-0456", 100)],
    [("Date : 3 octobre 2023", 100)],
    [("Client :", 100)],
    [("Restaurant Le Comptoir SAS", 100)],
    [("8 place du Marché", 100)],
    [("33000 Bordeaux", 100)],
    "",
    [("Désignation", 100), ("Qté", 700), ("PU HT", 850), ("Total HT", 1100)],
    [("Baguettes tradition", 100), ("300", 700), ("0,95", 850), ("285,00", 1100)],
    [("Croissants", 100), ("1200", 700), ("1,10", 850), ("1 320,00", 1100)],
    [("Total HT", 850), ("1 605,00 €", 1100)],
    [("TVA 5,5 %", 850), ("88,28 €", 1100)],
    [("Total TTC", 850), ("1 693,28 €", 1100)],
    [("Échéance : 2 novembre 2023", 100)],
])

LOGO_AND_FOOTER = page([
    [("NORTHSTAR", 80, 2.2), ("INVOICE", 1000, 1.6)],
    "",
    [("Invoice Number:", 700), ("NS-88213", 950)],
    [("Invoice Date:", 700), ("Nov 2, 2023", 950)],
    [("Payment Due:", 700), ("Dec 2, 2023", 950)],
    [("Bill To:", 80)],
    [("Olivia Grant", 80)],
    [("Grant & Partners LLP", 80)],
    [("600 Sixth Avenue, New York, NY 10011", 80)],
    "",
    [("Service", 80), ("Hours", 700), ("Rate", 850), ("Amount", 1100)],
    [("Brand strategy workshop", 80), ("6", 700), ("$250.00", 850), ("$1,500.00", 1100)],
    [("Total Due (USD)", 800), ("$1,500.00", 1100)],
    "", "", "",
    [("Northstar Creative Studio · 220 W 19th St, New York, NY 10011 · EIN 84-1234567", 80, 0.8)],
])

TEMPLATES = {
    "stripe": (STRIPE_LIKE, dict(merchant_name="Acme Cloud, Inc.", buyer_name="Jane Doe", invoice_number="9F2C1A7B-0003",
                                 transaction_date="2024-03-05", total=240.0, subtotal=240.0, currency="USD")),
    "quickbooks": (QUICKBOOKS_LIKE, dict(merchant_name="Brightline Plumbing LLC", buyer_name="Harbor View Apartments",
                                         invoice_number="1047", transaction_date="2024-02-03", total=356.35,
                                         subtotal=327.5, tax=28.85, currency="USD")),
    "uk": (UK_FREELANCE, dict(merchant_name="Sarah Whitfield Design", buyer_name="Greenleaf Publishing Ltd",
                              invoice_number="SW-2023-118", transaction_date="2023-02-14", total=1620.0,
                              subtotal=1350.0, tax=270.0, currency="GBP")),
    "german_letter": (GERMAN_LETTER, dict(merchant_name="Malerbetrieb Hoffmann", buyer_name="Herrn Thomas Becker",
                                          invoice_number="2024-117", transaction_date="2024-03-14", total=1955.65,
                                          subtotal=1643.4, tax=312.25, currency="EUR")),
    "french": (FRENCH, dict(merchant_name="Boulangerie Dupont", buyer_name="Restaurant Le Comptoir SAS",
                            invoice_number="2023-0456", transaction_date="2023-10-03", total=1693.28, subtotal=1605.0,
                            tax=88.28, currency="EUR")),
    "logo_and_footer": (LOGO_AND_FOOTER, dict(merchant_name="Northstar Creative Studio", buyer_name="Olivia Grant",
                                              invoice_number="NS-88213", transaction_date="2023-11-02", total=1500.0,
                                              currency="USD")),
}


DESIGN_STUDIO = page([
    [("Invoice", 80, 2.0), ("Pixelcraft Studio", 950, 1.3)],
    [("hello@pixelcraft.io", 950)],
    [("+1 415 555 0199", 950)],
    "",
    [("Billed To", 80), ("Date Issued", 500), ("Invoice Number", 800)],
    [("Lumos Health Inc.", 80), ("Jan 9, 2025", 500), ("#000812", 800)],
    [("1 Embarcadero Center", 80), ("Due Date", 500), ("Amount Due (USD)", 800)],
    [("San Francisco, CA 94111", 80), ("Feb 8, 2025", 500), ("$4,800.00", 800, 1.4)],
    "",
    [("Description", 80), ("Rate", 700), ("Qty", 850), ("Line total", 1050)],
    [("UX audit", 80), ("$2,400.00", 700), ("1", 850), ("$2,400.00", 1050)],
    [("Prototype iterations", 80), ("$1,200.00", 700), ("2", 850), ("$2,400.00", 1050)],
    [("Subtotal", 850), ("$4,800.00", 1050)],
    [("Tax", 850), ("$0.00", 1050)],
    [("Total", 850), ("$4,800.00", 1050)],
    [("Amount due", 850), ("$4,800.00", 1050)],
])
GERMAN_TRADESMAN = page([
    [("Elektro Schulz", 900, 1.5)],
    [("Inh. Peter Schulz · Ringstraße 7 · 04109 Leipzig", 80, 0.7)],
    [("Bauträger Nord GmbH", 80), ("Kundennummer:", 800), ("10452", 1000)],
    [("Frau Katrin Lange", 80), ("Rechnungsdatum:", 800), ("28.06.2024", 1000)],
    [("Hafenstraße 22", 80), ("Leistungsdatum:", 800), ("21.06.2024", 1000)],
    [("04179 Leipzig", 80), ("Rechnungsnummer:", 800), ("24-0318", 1000)],
    "",
    [("Rechnung", 80, 1.4)],
    [("Pos", 80), ("Leistung", 180), ("Menge", 700), ("Preis", 850), ("Summe", 1050)],
    [("1", 80), ("Elektroinstallation Küche", 180), ("8 Std.", 700), ("65,00", 850), ("520,00", 1050)],
    [("2", 80), ("Installationsmaterial", 180), ("1", 700), ("212,37", 850), ("212,37", 1050)],
    [("Summe netto", 800), ("732,37 EUR", 1050)],
    [("Umsatzsteuer 19 %", 800), ("139,15 EUR", 1050)],
    [("Gesamtsumme", 800), ("871,52 EUR", 1050)],
    [("Bei Zahlung innerhalb 10 Tagen 2 % Skonto = 17,43 EUR", 80)],
])
FRENCH_LETTER = page([
    [("SARL Les Jardins d'Émile", 80, 1.3)],
    [("Paysagiste - 4 impasse des Tilleuls - 49000 Angers", 80)],
    "",
    [("M. et Mme Garnier", 800)],
    [("17 rue Lamartine", 800)],
    [("49100 Angers", 800)],
    "",
    [("Facture N° F-2024-003 du 15/03/2024", 80, 1.2)],
    [("Désignation", 80), ("Quantité", 700), ("Prix unitaire", 850), ("Montant", 1050)],
    [("Taille de haies", 80), ("6 h", 700), ("45,00 €", 850), ("270,00 €", 1050)],
    [("Évacuation des déchets verts", 80), ("1", 700), ("60,00 €", 850), ("60,00 €", 1050)],
    [("Montant HT", 800), ("330,00 €", 1050)],
    [("TVA 10 %", 800), ("33,00 €", 1050)],
    [("Net à payer", 800), ("363,00 €", 1050)],
    [("Date d'échéance : 14/04/2024", 80)],
])
UK_SOLICITOR = page([
    [("HARGREAVES & CO. SOLICITORS", 80, 1.3)],
    [("12 Bank Street, Leeds LS1 5AT", 80)],
    "",
    [("Invoice: #1234", 80), ("Date: 5th March 2024", 800)],
    [("Client: Mr R. Patel", 80)],
    [("Matter: Purchase of 4 Elm Grove", 80)],
    "",
    [("Professional fees", 80), ("£1,450.00", 1050)],
    [("Land Registry fee (disbursement, no VAT)", 80), ("£150.00", 1050)],
    [("VAT on fees @ 20%", 80), ("£290.00", 1050)],
    [("TOTAL", 800), ("£1,890.00", 1050)],
    [("VAT Reg. No. 123 4567 89", 80)],
])
HOTEL_FOLIO = page([
    [("THE GRAND HARBOUR HOTEL", 300, 1.5)],
    [("Harbour Road, Southampton SO14 2AQ", 300)],
    [("INVOICE", 500, 1.3)],
    [("Guest Name:", 80), ("Emily Carter", 300), ("Folio No.:", 800), ("558211", 1000)],
    [("Arrival:", 80), ("12/07/2024", 300), ("Invoice Date:", 800), ("14/07/2024", 1000)],
    [("Departure:", 80), ("14/07/2024", 300), ("Room:", 800), ("412", 1000)],
    [("Date", 80), ("Description", 300), ("Charges", 1050)],
    [("12/07/2024", 80), ("Accommodation", 300), ("£180.00", 1050)],
    [("13/07/2024", 80), ("Accommodation", 300), ("£180.00", 1050)],
    [("13/07/2024", 80), ("Restaurant", 300), ("£64.50", 1050)],
    [("Total", 800), ("£424.50", 1050)],
    [("Payment - Visa", 800), ("-£424.50", 1050)],
    [("Balance", 800), ("£0.00", 1050)],
    [("VAT included at 20%", 800), ("£70.75", 1050)],
])

MORE_TEMPLATES = {
    "design_studio": (DESIGN_STUDIO, dict(merchant_name="Pixelcraft Studio", buyer_name="Lumos Health Inc.",
                                          invoice_number="000812", transaction_date="2025-01-09", total=4800.0,
                                          currency="USD")),
    "german_tradesman": (GERMAN_TRADESMAN, dict(merchant_name="Elektro Schulz", buyer_name="Bauträger Nord GmbH",
                                                invoice_number="24-0318", transaction_date="2024-06-28", total=871.52,
                                                subtotal=732.37, tax=139.15, currency="EUR")),
    "french_letter": (FRENCH_LETTER, dict(merchant_name="SARL Les Jardins d'Émile", buyer_name="M. et Mme Garnier",
                                          invoice_number="F-2024-003", transaction_date="2024-03-15", total=363.0,
                                          subtotal=330.0, tax=33.0, currency="EUR")),
    "uk_solicitor": (UK_SOLICITOR, dict(merchant_name="HARGREAVES & CO. SOLICITORS", buyer_name="Mr R. Patel",
                                        invoice_number="1234", transaction_date="2024-03-05", total=1890.0, tax=290.0,
                                        currency="GBP")),
    "hotel_folio": (HOTEL_FOLIO, dict(merchant_name="THE GRAND HARBOUR HOTEL", buyer_name="Emily Carter",
                                      invoice_number="558211", transaction_date="2024-07-14", total=424.5, tax=70.75,
                                      currency="GBP")),
}
TEMPLATES.update(MORE_TEMPLATES)

SAAS_LOGO = page([  # a logo word over the name spelled out
    [("cloudmesh", 80, 2.0), ("INVOICE", 1000, 1.2)],
    [("Cloudmesh Networks, Inc.", 80), ("Invoice ID: CM-2024-00981", 800)],
    [("2100 Geng Rd, Palo Alto, CA 94303", 80), ("Issued: 2024-11-01", 800)],
    [("Tax ID: 94-3344556", 80), ("Due: 2024-12-01", 800)],
    "",
    [("Invoice to:", 800)],
    [("Orbital Freight LLC", 800)],
    [("400 Pier Ave, Long Beach, CA 90802", 800)],
    [("Product", 80), ("Period", 450), ("Amount", 1050)],
    [("Mesh Pro (25 seats)", 80), ("Nov 1 - Nov 30, 2024", 450), ("$1,225.00", 1050)],
    [("Additional storage 500 GB", 80), ("Nov 1 - Nov 30, 2024", 450), ("$75.00", 1050)],
    [("Subtotal", 800), ("$1,300.00", 1050)],
    [("Sales tax (CA 9.25%)", 800), ("$120.25", 1050)],
    [("Total in USD", 800), ("$1,420.25", 1050)],
])
GERMAN_JOINERY = page([  # German Handwerker with "Kunde:" inline and "Datum" on right, Endbetrag
    [("Tischlerei Braun GmbH", 80, 1.6)],
    [("Werkstattweg 5, 93047 Regensburg", 80)],
    [("Tel. 0941 123456", 80)],
    "",
    [("Kunde: Familie Oswald", 80), ("Datum: 02.05.2023", 800)],
    [("Eichenstraße 11", 80), ("Rechnung-Nr.: 2023/0147", 800)],
    [("93051 Regensburg", 80), ("Auftrag vom: 14.03.2023", 800)],
    "",
    [("RECHNUNG", 80, 1.5)],
    [("Menge", 80), ("Text", 250), ("E-Preis", 850), ("G-Preis", 1050)],
    [("1", 80), ("Einbauschrank Eiche massiv", 250), ("3.450,00", 850), ("3.450,00", 1050)],
    [("1", 80), ("Montage", 250), ("380,00", 850), ("380,00", 1050)],
    [("Netto", 800), ("3.830,00 €", 1050)],
    [("19% MwSt.", 800), ("727,70 €", 1050)],
    [("Endbetrag", 800), ("4.557,70 €", 1050)],
    [("Amtsgericht Regensburg HRB 9876 · Geschäftsführer: Klaus Braun", 80, 0.7)],
])
FRENCH_CONSULTANT = page([  # French consultant, "Émise le", client block labelled "À l'attention de"
    [("Sophie Marchand", 80, 1.5)],
    [("Consultante en stratégie", 80)],
    [("SIRET 812 345 678 00021", 80)],
    "",
    [("FACTURE N° 2025-017", 700, 1.2)],
    [("Émise le 7 février 2025", 700)],
    [("Client", 80)],
    [("Groupe Lemaire SA", 80)],
    [("À l'attention de M. Petit", 80)],
    [("22 avenue Foch, 75116 Paris", 80)],
    [("Prestation", 80), ("Jours", 700), ("Tarif", 850), ("Total", 1050)],
    [("Atelier de cadrage", 80), ("3", 700), ("850,00", 850), ("2 550,00", 1050)],
    [("Total HT", 800), ("2 550,00 €", 1050)],
    [("TVA 20 %", 800), ("510,00 €", 1050)],
    [("Total TTC", 800), ("3 060,00 €", 1050)],
    [("Règlement à 30 jours par virement - IBAN FR76 3000 4000 0312 3456 7890 143", 80)],
])
US_LANDSCAPER = page([  # US contractor: "Customer" left, "Invoice" box right, "Balance due" with payments
    [("Rivera Landscaping", 80, 1.4), ("Invoice", 900, 1.5)],
    [("PO Box 1182, Tucson, AZ 85702", 80), ("Invoice # 3317", 900)],
    [("(520) 555-0110", 80), ("Date 09/10/2024", 900)],
    "",
    [("Customer", 80)],
    [("Desert Bloom HOA", 80)],
    [("c/o Maria Gomez", 80)],
    [("77 Saguaro Way, Tucson, AZ 85704", 80)],
    [("Description", 80), ("Amount", 1050)],
    [("Monthly maintenance - September", 80), ("$1,450.00", 1050)],
    [("Irrigation repair", 80), ("$315.00", 1050)],
    [("Total", 800), ("$1,765.00", 1050)],
    [("Payments/Credits", 800), ("-$500.00", 1050)],
    [("Balance Due", 800), ("$1,265.00", 1050)],
])
UK_UTILITY = page([  # UK utility-like, "Bill date", account number, "Total amount due"
    [("BrightSpark Energy Ltd", 80, 1.5)],
    [("Your electricity bill", 80, 1.2)],
    [("Mr John Abbott", 80), ("Account number", 800), ("8812 4471 09", 1050)],
    [("5 Orchard Close", 80), ("Bill date", 800), ("21 August 2024", 1050)],
    [("Reading RG1 4QP", 80), ("Bill number", 800), ("100445781", 1050)],
    [("Billing period 14 Jul 2024 - 13 Aug 2024", 80)],
    [("Electricity used 312 kWh", 80), ("£79.87", 1050)],
    [("Standing charge 31 days", 80), ("£16.43", 1050)],
    [("Total charges before VAT", 80), ("£96.30", 1050)],
    [("VAT at 5%", 80), ("£4.82", 1050)],
    [("Total amount due", 80), ("£101.12", 1050)],
    [("BrightSpark Energy Ltd, registered in England No. 0987654, VAT No. GB 333 4444 55", 80, 0.7)],
])
GERMAN_MEDIA = page([  # German two-column header, "Rechnungsanschrift", "Belegdatum"
    [("RECHNUNG", 80, 1.8), ("Medienhaus Kraft AG", 800, 1.3)],
    [("Gutenbergplatz 1", 800)],
    [("55116 Mainz", 800)],
    [("Rechnungsanschrift:", 80), ("Belegnummer:", 800), ("RE-88410", 1050)],
    [("Werbeagentur Lichtblick", 80), ("Belegdatum:", 800), ("30.09.2024", 1050)],
    [("Frau Nina Roth", 80), ("Lieferdatum:", 800), ("27.09.2024", 1050)],
    [("Domstraße 3", 80), ("Kundennr.:", 800), ("K-2209", 1050)],
    [("55116 Mainz", 80)],
    [("Artikel", 80), ("Anzahl", 700), ("Einzelpreis", 850), ("Gesamtpreis", 1050)],
    [("Anzeige 1/2 Seite, Ausgabe 10/2024", 80), ("1", 700), ("1.890,00", 850), ("1.890,00", 1050)],
    [("Summe netto", 800), ("1.890,00 EUR", 1050)],
    [("USt 19 %", 800), ("359,10 EUR", 1050)],
    [("Summe brutto", 800), ("2.249,10 EUR", 1050)],
])

HELD_OUT_TEMPLATES = {
    "saas_logo": (SAAS_LOGO, dict(merchant_name="Cloudmesh Networks, Inc.", buyer_name="Orbital Freight LLC",
                                  invoice_number="CM-2024-00981", transaction_date="2024-11-01", total=1420.25,
                                  subtotal=1300.0, tax=120.25, currency="USD")),
    "german_joinery": (GERMAN_JOINERY, dict(merchant_name="Tischlerei Braun GmbH", buyer_name="Familie Oswald",
                                            invoice_number="2023/0147", transaction_date="2023-05-02", total=4557.7,
                                            subtotal=3830.0, tax=727.7, currency="EUR")),
    "french_consultant": (FRENCH_CONSULTANT, dict(merchant_name="Sophie Marchand", buyer_name="Groupe Lemaire SA",
                                                  invoice_number="2025-017", transaction_date="2025-02-07", total=3060.0,
                                                  subtotal=2550.0, tax=510.0, currency="EUR")),
    "us_landscaper": (US_LANDSCAPER, dict(merchant_name="Rivera Landscaping", buyer_name="Desert Bloom HOA",
                                          invoice_number="3317", transaction_date="2024-09-10", total=1765.0,
                                          currency="USD")),
    "german_media": (GERMAN_MEDIA, dict(merchant_name="Medienhaus Kraft AG", buyer_name="Werbeagentur Lichtblick",
                                        invoice_number="RE-88410", transaction_date="2024-09-30", total=2249.1,
                                        subtotal=1890.0, tax=359.1, currency="EUR")),
}
TEMPLATES.update(HELD_OUT_TEMPLATES)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_layouts(name):
    lines, want = TEMPLATES[name]
    ex = extract_invoice(lines, "MYR")  # the deployment default must not override a printed currency
    assert check(ex, want) == {}
    assert ex.fields["document_kind"] == "invoice"
    assert looks_like_invoice(lines)
    assert all(src == "ocr" for src in ex.sources.values())
    for key in ("merchant_name", "total", "transaction_date"):
        assert ex.evidence[key], key
        assert 0 < ex.confidence[key] <= 1


def test_issuer_is_never_the_customer_block():
    # the customer has the legal form and the bigger type; the issuer is the plain letterhead
    lines = page([
        [("Jonas Weber Fotografie", 80, 1.2), ("RECHNUNG", 1000, 1.6)],
        [("Am Hafen 3, 20095 Hamburg", 80)],
        "",
        [("Rechnungsempfänger", 80), ("Rechnungsnummer: 2023-41", 800)],
        [("Globex Handels GmbH", 80, 1.4), ("Rechnungsdatum: 01.12.2023", 800)],
        [("Industriestraße 9", 80), ("Lieferdatum: 20.11.2023", 800)],
        [("50667 Köln", 80)],
        "",
        [("Beschreibung", 80), ("Betrag", 1100)],
        [("Produktfotos (Tagessatz)", 80), ("950,00 €", 1100)],
        [("Nettobetrag", 800), ("950,00 €", 1100)],
        [("USt. 19 %", 800), ("180,50 €", 1100)],
        [("Gesamtbetrag", 800), ("1.130,50 €", 1100)],
    ])
    ex = extract_invoice(lines, None)
    assert ex.fields["merchant_name"] == "Jonas Weber Fotografie"
    assert ex.fields["buyer_name"] == "Globex Handels GmbH"
    assert ex.fields["transaction_date"] == "2023-12-01"  # not the delivery date
    assert ex.fields["total"] == 1130.5


def test_seller_block_and_guest_block():
    lines = page([
        [("INVOICE", 80, 1.8)],
        [("Guest:", 80), ("Seller:", 700)],
        [("Mr Paul Hughes", 80), ("Harbourside Hotel Ltd", 700)],
        [("12 Quay Road", 80), ("1 Marina Walk, Cardiff CF10 4PA", 700)],
        [("Invoice No: H-20931", 80), ("Date: 03/09/2023", 700)],
        [("Room 214, 2 nights", 80), ("£240.00", 1100)],
        [("Total (incl. VAT)", 700), ("£240.00", 1100)],
        [("VAT included", 700), ("£40.00", 1100)],
    ])
    ex = extract_invoice(lines, None)
    assert ex.fields["merchant_name"] == "Harbourside Hotel Ltd"
    assert ex.fields["buyer_name"] == "Mr Paul Hughes"
    assert ex.fields["total"] == 240.0
    assert ex.fields["currency"] == "GBP"
    assert ex.fields["transaction_date"] == "2023-09-03"  # day-first: a pound invoice


def test_dates_month_first_only_where_the_document_is():
    def doc(currency_mark: str, extra_date: str | None = None) -> list[TextLine]:
        rows = [
            [("Acme Widgets Inc.", 80, 1.4), ("INVOICE", 1000, 1.6)],
            [("Invoice #", 700), ("A-100", 950)],
            [("Invoice date", 700), ("03/04/2024", 950)],
            [("Bill to:", 80), ("Globex Corp.", 250)],
            [("Widgets", 80), (f"{currency_mark}100.00", 1100)],
            [("Total", 800), (f"{currency_mark}100.00", 1100)],
        ]
        if extra_date:
            rows.insert(3, [("Due date", 700), (extra_date, 950)])
        return page(rows)

    assert extract_invoice(doc("$"), None).fields["transaction_date"] == "2024-03-04"  # US: March 4
    assert extract_invoice(doc("€"), None).fields["transaction_date"] == "2024-04-03"  # day-first
    # a date that can only be month-first (05/28) settles a dollar document that is not US...
    assert extract_invoice(doc("€", "05/28/2024"), None).fields["transaction_date"] == "2024-03-04"
    # ...and one that can only be day-first (28/05) a US-dollar one
    assert extract_invoice(doc("$", "28/05/2024"), None).fields["transaction_date"] == "2024-04-03"


def test_currency_marks_and_default():
    base = [
        [("Kestrel Supplies Ltd", 80, 1.4), ("INVOICE", 1000, 1.6)],
        [("Invoice No.", 700), ("K-5", 950)],
        [("Date", 700), ("12 May 2024", 950)],
    ]

    def with_total(text: str, note: str | None = None) -> list[TextLine]:
        rows = base + [[("Total", 800), (text, 1100)]]
        if note:
            rows.append([(note, 80)])
        return page(rows)

    assert extract_invoice(with_total("$1,250.00"), "MYR").fields["currency"] == "USD"
    assert extract_invoice(with_total("US$ 1,250.00"), "MYR").fields["currency"] == "USD"
    assert extract_invoice(with_total("1,250.00 USD"), "MYR").fields["currency"] == "USD"
    assert extract_invoice(with_total("£1,250.00"), None).fields["currency"] == "GBP"
    assert extract_invoice(with_total("1.250,00 €"), None).fields["currency"] == "EUR"
    assert extract_invoice(with_total("CHF 1'250.00"), None).fields["currency"] == "CHF"
    assert extract_invoice(with_total("$1,250.00", "All amounts in CAD"), None).fields["currency"] == "CAD"
    assert extract_invoice(with_total("$1,250.00", "Sydney NSW 2000, Australia ABN 12 345 678 901"),
                           None).fields["currency"] == "AUD"
    # nothing printed: the default, with a low confidence
    ex = extract_invoice(with_total("1,250.00"), "MYR")
    assert ex.fields["currency"] == "MYR" and ex.confidence["currency"] < 0.5
    assert "currency" not in extract_invoice(with_total("1,250.00"), None).fields
    assert extract_invoice(with_total("CHF 1'250.00"), None).fields["total"] == 1250.0


def test_utility_bill_net_before_vat():
    ex = extract_invoice(UK_UTILITY, None)
    want = dict(merchant_name="BrightSpark Energy Ltd", buyer_name="Mr John Abbott", invoice_number="100445781",
                transaction_date="2024-08-21", total=101.12, subtotal=96.3, tax=4.82, currency="GBP")
    assert check(ex, want) == {}

def test_parse_amount_both_notations():
    assert parse_amount("1.234,56 €") == 1234.56
    assert parse_amount("Total: $1,234.56") == 1234.56
    assert parse_amount("12,50") == 12.5
    assert parse_amount("EUR 1.000.000,00") == 1000000.0
    assert parse_amount("CHF 1'234.50") == 1234.5
    assert parse_amount("1 234,56 €") == 1234.56
    assert parse_amount("-8,79") == -8.79
    assert parse_amount("(99.00)") == -99.0
    assert parse_amount("19 %") is None
    assert parse_amount("30.09.2013") is None
    assert parse_amount("no amount") is None


def test_totals_table_that_adds_up():
    # a column header over the values: net, tax and gross are told apart by adding up
    lines = page([
        [("Lieferant", 80), ("Käufer", 500), ("RECHNUNG", 900, 1.3)],
        [("Muster Handel GmbH", 80), ("Kunde AG", 500), ("Beleg-Nr : R-7781", 900)],
        [("Beleg-Datum : 06.10.2023", 900)],
        [("Warenwert Zu-/Abschlag Nettobetrag MwSt-Betrag MwSt-% Endbetrag", 80)],
        [("1.062,60 15,00 1.077,60 204,74 19,0 1.282,34", 100)],
    ])
    ex = extract_invoice(lines, None)
    assert ex.fields["total"] == 1282.34
    assert ex.fields["subtotal"] == 1077.6
    assert ex.fields["tax"] == 204.74
    assert ex.fields["invoice_number"] == "R-7781"
    assert ex.fields["transaction_date"] == "2023-10-06"
    assert ex.fields["merchant_name"] == "Muster Handel GmbH"
    assert ex.fields["buyer_name"] == "Kunde AG"


def test_grand_total_not_balance_after_deposit():
    lines = page([
        [("Atelier Roux", 80, 1.4), ("FACTURE", 1000, 1.6)],
        [("Facture N° FA-2024-12", 700)],
        [("Date de facture", 700), ("15/01/2024", 950)],
        [("Date d'échéance", 700), ("15/02/2024", 950)],
        [("Total HT", 800), ("500,00 €", 1100)],
        [("TVA 20%", 800), ("100,00 €", 1100)],
        [("Total TTC", 800), ("600,00 €", 1100)],
        [("Acompte versé", 800), ("-200,00 €", 1100)],
        [("Net à payer", 800), ("400,00 €", 1100)],
    ])
    ex = extract_invoice(lines, None)
    assert ex.fields["total"] == 600.0
    assert ex.fields["transaction_date"] == "2024-01-15"
    assert ex.fields["invoice_number"] == "FA-2024-12"


def test_pages_and_evidence():
    first = page([
        [("Vertex Analytics Ltd", 80, 1.4), ("INVOICE", 1000, 1.6)],
        [("Invoice No.", 700), ("V-42", 950)],
        [("Invoice Date", 700), ("2 June 2024", 950)],
        [("Description", 80), ("Amount", 1100)],
        *[[(f"Analysis block {i}", 80), (f"£{100 + i}.00", 1100)] for i in range(12)],
    ])
    second = page([
        [("Subtotal", 800), ("£1,266.00", 1100)],
        [("VAT 20%", 800), ("£253.20", 1100)],
        [("Total", 800), ("£1,519.20", 1100)],
    ])
    ex = extract_invoice([first, second], None, source="text_layer")
    assert ex.fields["total"] == 1519.2
    assert ex.fields["merchant_name"] == "Vertex Analytics Ltd"
    assert {box[4] for box in ex.evidence["total"]} == {1}  # on the second page, in its own pixels
    assert ex.evidence["total"][0][1] < 200
    assert {box[4] for box in ex.evidence["merchant_name"]} == {0}
    assert set(ex.sources.values()) == {"text_layer"}
    assert len(ex.fields["items"]) == 12


def test_items_are_capped():
    rows = [[("Bulk Parts Inc.", 80, 1.4), ("INVOICE", 1000, 1.6)], [("Invoice #", 700), ("B-1", 950)],
            [("Description", 80), ("Qty", 700), ("Amount", 1100)]]
    rows += [[(f"Part number {i}", 80), ("1", 700), ("$1.00", 1100)] for i in range(70)]
    rows += [[("Total", 800), ("$70.00", 1100)]]
    ex = extract_invoice(page(rows, step=30), None)
    assert len(ex.fields["items"]) == 50
    assert ex.fields["total"] == 70.0


def test_empty_and_junk_input():
    ex = extract_invoice([], "EUR")
    assert ex.fields == {}
    ex = extract_invoice([TextLine("   ", (0, 0, 10, 10), 0.5)], None)
    assert ex.fields == {}
    assert not looks_like_invoice([])


def test_till_receipt_is_not_an_invoice():
    receipt = page([
        [("KEDAI BUKU MAJU SDN BHD", 80)],
        [("NO. 8, JALAN TUN RAZAK,", 80)],
        [("TAX INVOICE", 80)],
        [("Invoice No: 10023", 80)],
        [("Cashier: AMY", 80)],
        [("NOTEBOOK A5", 80), ("12.50", 500)],
        [("TOTAL", 80), ("RM 12.50", 480)],
        [("CASH", 80), ("RM 20.00", 480)],
        [("CHANGE", 80), ("RM 7.50", 480)],
        [("THANK YOU", 80)],
    ])
    assert not looks_like_invoice(receipt)
    assert not looks_like_invoice(page([[("Hello world", 80)], [("Total 12.00", 80)]]))
    for name in ("stripe", "german_letter", "french"):
        assert looks_like_invoice(TEMPLATES[name][0])


# --------------------------------------------------------------------------------------------
# Synthetic invoices rendered as PDFs (text layer), and two through OCR

_missing = invoice_documents.available()
needs_pdf = pytest.mark.skipif(_missing is not None, reason=_missing or "")
SYNTH_FIELDS = ("merchant_name", "buyer_name", "invoice_number", "transaction_date", "total", "subtotal", "tax", "currency")


@needs_pdf
def test_synthetic_invoices_text_layer(tmp_path):
    hits = {k: [] for k in SYNTH_FIELDS}
    misses = []
    for seed in range(40):
        inv = invoice_documents.synthetic_invoice(seed, language=("en", "de", "fr", "en")[seed % 4])
        doc = pdf_lines(tmp_path, inv.pdf, f"s{seed}.pdf", max_side=1400)  # small pages: quicker to render
        assert doc.pages[0].text_lines, "the synthetic PDF has a text layer"
        ex = extract_invoice([p.text_lines for p in doc.pages], "MYR", source="text_layer")
        for key in SYNTH_FIELDS:
            want = inv.truth[key]
            if want is None:
                continue
            ok = ex.fields.get(key) == want
            hits[key].append(ok)
            if not ok:
                misses.append((seed, inv.truth["layout"], key, want, ex.fields.get(key)))
        assert ex.fields["document_kind"] == "invoice"
        assert set(ex.sources.values()) == {"text_layer"}
    accuracy = {k: sum(v) / len(v) for k, v in hits.items()}
    for key in ("merchant_name", "transaction_date", "total", "currency", "invoice_number"):
        assert accuracy[key] >= 0.9, (key, accuracy, misses)
    assert sum(accuracy.values()) / len(accuracy) >= 0.9, (accuracy, misses)


@needs_pdf
def test_synthetic_invoice_is_deterministic():
    a = invoice_documents.synthetic_invoice(123)
    b = invoice_documents.synthetic_invoice(123)
    assert a.truth == b.truth
    assert a.pdf[:4] == b"%PDF"
    assert invoice_documents.synthetic_invoice(124).truth != a.truth


@needs_pdf
@pytest.mark.parametrize("seed, language", [(3, "en"), (8, "de")])
def test_synthetic_invoice_through_ocr(tmp_path, seed, language):
    from worker.ocr import recognise

    inv = invoice_documents.synthetic_invoice(seed, language=language)
    doc = pdf_lines(tmp_path, inv.pdf, max_side=1400)
    lines = recognise(doc.pages[0].image)
    ex = extract_invoice(lines, None)
    truth = inv.truth
    assert check(ex, {k: truth[k] for k in ("merchant_name", "transaction_date", "total", "currency")}) == {}
    assert ex.sources["total"] == "ocr"


# --------------------------------------------------------------------------------------------
# The real zugferd-dev invoices, read from the page (their embedded XML is ignored)

def test_zugferd_dev_page_read_accuracy():
    folder = dev_set("zugferd-dev")
    labels = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines() if line.strip()]
    hits = {"seller_name": [], "issue_date": [], "grand_total": [], "currency": []}
    for rec in labels:
        doc = prepare(folder / rec["file"], "application/pdf", max_side=2560, max_pages=5)
        ex = extract_invoice([p.text_lines for p in doc.pages], None, source="text_layer")
        want, got = rec["fields"], ex.fields
        hits["seller_name"].append(" ".join(str(got.get("merchant_name")).split()) == " ".join(want["seller_name"].split()))
        hits["issue_date"].append(got.get("transaction_date") == want["issue_date"])
        hits["grand_total"].append(got.get("total") is not None and abs(got["total"] - want["grand_total"]) < 0.006)
        hits["currency"].append(got.get("currency") == want["currency"])
    accuracy = {k: sum(v) / len(v) for k, v in hits.items()}
    # measured: seller 0.80 (the three "Au bon moulin" invoices print "Au bon moulin SARL"), date 1.0,
    # total 0.93 (a credit note whose page shows negative amounts, its XML positive), currency 1.0
    assert accuracy["seller_name"] >= 0.8, accuracy
    assert accuracy["issue_date"] >= 0.95, accuracy
    assert accuracy["grand_total"] >= 0.9, accuracy
    assert accuracy["currency"] >= 0.95, accuracy
    assert sum(accuracy.values()) / 4 >= 0.9, accuracy


def test_invoices_dev_read_from_the_page():
    """invoices-dev (15 real issuers, 20 e-invoice specimens without their XML) read exactly as the
    CPU analyzer reads it, default currency MYR as expense_policy's worker passes it, scored where
    the page shows the value (bench/accuracy.py --only invoices). Before issue 22: seller 0.74,
    date 0.26, total 0.77, currency 0.94, number 0.30, buyer 0.85."""
    from bench import accuracy

    folder = dev_set("invoices-dev")
    # one process: the scored documents all have a text layer, and forking a pytest process whose
    # OCR engine (earlier tests) already runs threads can hang the pool
    result = accuracy.measure_invoices(folder.parent, jobs=1)
    assert result["errors"] == 0, [d for d in result["per_document"] if d["error"]]
    misses = [f"{d['file']} {k}: label={d['label'][k]!r} got={d['predicted'][k]!r}"
              for d in result["per_document"] for k, ok in d["correct"].items() if not ok]
    floors = {"seller_name": 0.95, "issue_date": 0.97, "total": 0.97, "currency": 0.97, "invoice_number": 0.9,
              "buyer_name": 0.85}  # measured: 0.97, 1.00, 1.00, 1.00, 0.95, 0.90
    for name, floor in floors.items():
        assert result["fields"][name] >= floor, (name, result["fields"], misses)


# --------------------------------------------------------------------------------------------
# Invoices from anywhere (issue 22): Dutch, Spanish, Italian, Portuguese and Indian-English
# invoices laid out as written, rendered as PDFs and read through the text layer. Each carries
# what the reader used to get wrong: customer blocks under labels it did not know, dates in
# words, delivery/service/due dates beside the issue date, "Rs." amounts read in the policy's
# default currency, numbers with "/", a customer number beside the invoice number.

R = 540  # the right edge of the amounts column (points)
LAID_OUT = {
    "nl": ([
        [(40, "Van Dijk Installatietechniek B.V.", 14, True), (R, "FACTUUR", 16, True, "R")],
        [(40, "Industrieweg 12")], [(40, "3542 AD Utrecht")], [(40, "BTW-nummer: NL812345678B01")], [(40, "KvK 30123456")], "",
        [(40, "Factuuradres", 9.5, True), (300, "Afleveradres", 9.5, True)],
        [(40, "Bakkerij De Molen"), (300, "Bakkerij De Molen - filiaal Zeist")],
        [(40, "Dorpsstraat 5"), (300, "Slotlaan 101")],
        [(40, "1234 AB Amersfoort"), (300, "3701 GB Zeist")], "",
        [(40, "Factuurnummer:"), (160, "2024/0117")],
        [(40, "Klantnummer:"), (160, "55012")],
        [(40, "Factuurdatum:"), (160, "3 maart 2024")],
        [(40, "Leverdatum:"), (160, "28 februari 2024")],
        [(40, "Vervaldatum:"), (160, "2 april 2024")], "",
        [(40, "Omschrijving", 9.5, True), (330, "Aantal", 9.5, True), (420, "Prijs", 9.5, True), (R, "Bedrag", 9.5, True, "R")],
        [(40, "Onderhoud cv-installatie"), (330, "1"), (420, "650,00"), (R, "650,00", 9.5, False, "R")],
        [(40, "Vervangen thermostaat"), (330, "1"), (420, "350,00"), (R, "350,00", 9.5, False, "R")], "",
        [(330, "Subtotaal"), (R, "€ 1.000,00", 9.5, False, "R")],
        [(330, "BTW 21%"), (R, "€ 210,00", 9.5, False, "R")],
        [(330, "Totaal", 9.5, True), (R, "€ 1.210,00", 9.5, True, "R")], "",
        [(40, "Gelieve te betalen binnen 30 dagen op IBAN NL91 ABNA 0417 1643 00.")],
    ], {"merchant_name": "Van Dijk Installatietechniek B.V.", "buyer_name": "Bakkerij De Molen",
        "invoice_number": "2024/0117", "transaction_date": "2024-03-03", "total": 1210.0, "subtotal": 1000.0,
        "tax": 210.0, "currency": "EUR"}),
    "es": ([
        [(40, "Servicios Técnicos Almagro S.L.", 14, True), (R, "FACTURA", 16, True, "R")],
        [(40, "Calle Mayor 15, 28013 Madrid")], [(40, "NIF: B12345678")], "",
        [(40, "Cliente:", 9.5, True)],
        [(40, "Distribuciones Ruiz S.A.")], [(40, "Avenida de la Paz 7")], [(40, "41001 Sevilla")], "",
        [(40, "Nº de factura: A/2024/015")],
        [(40, "Fecha de factura: 15 de enero de 2024")],
        [(40, "Periodo de servicio: 1 de diciembre de 2023 - 31 de diciembre de 2023")],
        [(40, "Fecha de vencimiento: 14 de febrero de 2024")], "",
        [(40, "Concepto", 9.5, True), (R, "Importe", 9.5, True, "R")],
        [(40, "Mantenimiento mensual"), (R, "800,00 €", 9.5, False, "R")], "",
        [(330, "Base imponible"), (R, "800,00 €", 9.5, False, "R")],
        [(330, "IVA 21%"), (R, "168,00 €", 9.5, False, "R")],
        [(330, "Total factura", 9.5, True), (R, "968,00 €", 9.5, True, "R")],
    ], {"merchant_name": "Servicios Técnicos Almagro S.L.", "buyer_name": "Distribuciones Ruiz S.A.",
        "invoice_number": "A/2024/015", "transaction_date": "2024-01-15", "total": 968.0, "subtotal": 800.0,
        "tax": 168.0, "currency": "EUR"}),
    "en-in": ([
        [(40, "Sharma Textiles Pvt. Ltd.", 14, True), (R, "TAX INVOICE", 16, True, "R")],
        [(40, "14 MG Road, Pune 411001, Maharashtra")], [(40, "GSTIN: 27AAPFU0939F1ZV")], "",
        [(40, "Bill To:", 9.5, True), (330, "Invoice No.:"), (430, "INV/2024-25/0042")],
        [(40, "Mehta Traders"), (330, "Invoice Date:"), (430, "August 3, 2024")],
        [(40, "22 Linking Road"), (330, "Due Date:"), (430, "September 2, 2024")],
        [(40, "Mumbai 400050"), (330, "PO Number:"), (430, "PO-7781")], "",
        [(40, "Description", 9.5, True), (R, "Amount", 9.5, True, "R")],
        [(40, "Cotton fabric, 200 m"), (R, "Rs. 10,000.00", 9.5, False, "R")], "",
        [(330, "Sub Total"), (R, "Rs. 10,000.00", 9.5, False, "R")],
        [(330, "IGST 18%"), (R, "Rs. 1,800.00", 9.5, False, "R")],
        [(330, "Grand Total", 9.5, True), (R, "Rs. 11,800.00", 9.5, True, "R")],
        [(40, "Amount in words: Rupees Eleven Thousand Eight Hundred only")],
    ], {"merchant_name": "Sharma Textiles Pvt. Ltd.", "buyer_name": "Mehta Traders", "invoice_number": "INV/2024-25/0042",
        "transaction_date": "2024-08-03", "total": 11800.0, "subtotal": 10000.0, "tax": 1800.0, "currency": "INR"}),
    "it": ([
        [(40, "Officine Bertolini S.r.l.", 14, True)],
        [(40, "Via Roma 21, 20121 Milano")], [(40, "P.IVA 01234567890")], "",
        [(300, "Spett.le", 9.5, True)], [(300, "Rossi Costruzioni S.p.A.")], [(300, "Corso Italia 8")], [(300, "10121 Torino")], "",
        [(40, "Fattura n. 12/2024 del 5 marzo 2024", 12, True)],
        [(40, "Scadenza pagamento: 4 aprile 2024")], "",
        [(40, "Descrizione", 9.5, True), (R, "Importo", 9.5, True, "R")],
        [(40, "Revisione impianto"), (R, "500,00", 9.5, False, "R")], "",
        [(330, "Imponibile"), (R, "500,00", 9.5, False, "R")],
        [(330, "IVA 22%"), (R, "110,00", 9.5, False, "R")],
        [(330, "Totale fattura", 9.5, True), (R, "610,00 €", 9.5, True, "R")],
    ], {"merchant_name": "Officine Bertolini S.r.l.", "buyer_name": "Rossi Costruzioni S.p.A.", "invoice_number": "12/2024",
        "transaction_date": "2024-03-05", "total": 610.0, "subtotal": 500.0, "tax": 110.0, "currency": "EUR"}),
    "pt": ([
        [(40, "Fatura Nº FT 2024/33", 14, True)],
        [(40, "Carpintaria Alves Lda.")], [(40, "Rua das Flores 10, 4050-262 Porto")], [(40, "NIPC 501234567")], "",
        [(40, "Cliente:", 9.5, True)], [(40, "Padaria Lisboa Lda.")], [(40, "Avenida da Liberdade 200, 1250-147 Lisboa")], "",
        [(40, "Data de emissão: 1 de março de 2024")],
        [(40, "Data de vencimento: 31 de março de 2024")], "",
        [(40, "Descrição", 9.5, True), (R, "Valor", 9.5, True, "R")],
        [(40, "Armário de cozinha"), (R, "1.500,00 €", 9.5, False, "R")], "",
        [(330, "Total sem IVA"), (R, "1.500,00 €", 9.5, False, "R")],
        [(330, "IVA 23%"), (R, "345,00 €", 9.5, False, "R")],
        [(330, "Total a pagar", 9.5, True), (R, "1.845,00 €", 9.5, True, "R")],
    ], {"merchant_name": "Carpintaria Alves Lda.", "buyer_name": "Padaria Lisboa Lda.", "invoice_number": "FT 2024/33",
        "transaction_date": "2024-03-01", "total": 1845.0, "subtotal": 1500.0, "tax": 345.0, "currency": "EUR"}),
}


@pytest.fixture(scope="module")
def laid_out_docs(tmp_path_factory):
    """Each laid-out invoice rendered once and prepared as the worker prepares a PDF."""
    if _missing:
        pytest.skip(_missing)
    folder = tmp_path_factory.mktemp("laid_out")
    return {key: pdf_lines(folder, invoice_documents.laid_out_pdf(rows), f"{key}.pdf", max_side=1400)
            for key, (rows, _) in LAID_OUT.items()}


@pytest.mark.parametrize("key", sorted(LAID_OUT))
def test_invoices_in_the_languages_companies_use(laid_out_docs, key):
    doc = laid_out_docs[key]
    ex = extract_invoice([p.text_lines for p in doc.pages], "MYR", source="text_layer")
    assert check(ex, LAID_OUT[key][1]) == {}
    assert ex.fields["document_kind"] == "invoice" and set(ex.sources.values()) == {"text_layer"}
    # the totals add up on the page: the total says so in its confidence and its notes
    assert ex.confidence["total"] >= 0.95 and "arithmetic" in ex.notes["total"]


def test_rupees_through_the_analyzer_path(laid_out_docs):
    """`read_expense` as the CPU worker runs it, with expense_policy's default currency (MYR):
    an Indian invoice printing "Rs." is in rupees, not ringgit."""
    from worker.extract.expense import read_expense

    reading = read_expense(laid_out_docs["en-in"], lambda image: [], "MYR")
    fields = reading.extraction.fields
    assert (fields["document_kind"], fields["currency"], fields["total"]) == ("invoice", "INR", 11800.0)
    assert reading.read_from == "text_layer"


def test_currency_from_clues_is_a_guess():
    """No symbol, code or name: the parties' VAT ids and countries say which currency, before the
    policy's default, and the confidence says it is a guess; a printed code is sure."""
    rows = [
        [("Kessler Maschinenbau GmbH", 60, 1.4)], [("Werkstr. 4, 70173 Stuttgart", 60)], [("Deutschland", 60)],
        [("USt-IdNr.: DE123456789", 60)], "",
        [("Rechnung", 60, 1.3)], [("Rechnungsnummer: 2024-311", 60)], [("Rechnungsdatum: 05.02.2024", 60)], "",
        [("Nettobetrag", 700), ("1.000,00", 1100)], [("MwSt. 19 %", 700), ("190,00", 1100)],
        [("Gesamtbetrag", 700), ("1.190,00", 1100)],
    ]
    ex = extract_invoice(page(rows), "MYR")
    assert ex.fields["currency"] == "EUR" and 0.45 <= ex.confidence["currency"] < 0.7
    assert "guess" in ex.notes["currency"]
    rows[8] = [("Gesamtbetrag", 700), ("1.190,00 EUR", 1100)]
    sure = extract_invoice(page(rows), "MYR")
    assert sure.fields["currency"] == "EUR" and sure.confidence["currency"] >= 0.9
    # nothing at all to go by: the default, and a low confidence
    bare = extract_invoice(page([[("Invoice", 60, 1.3)], [("Invoice No: 77", 60)], [("Total", 700), ("12.00", 1100)]]), "MYR")
    assert bare.fields["currency"] == "MYR" and bare.confidence["currency"] <= 0.4


def test_amounts_in_two_currency_columns_follow_the_document_currency():
    rows = [
        [("BILLED TO:", 60), ("PROVIDED BY:", 860)], [("Felix Wolf", 60), ("Quillon Inc.", 860)],
        [("PAYMENT CURRENCY: USD", 60)], [("INVOICE: #A-1007", 60)], "",
        [("AMOUNT", 1060)], [("USD", 1060), ("EUR", 1300)],
        [("PRO plan", 350), ("119.95", 1035), ("109.15", 1273)],
        [("VAT (19%)", 750), ("0.00", 1060), ("0.00", 1297)],
        [("TOTAL", 750), ("119.95", 1035), ("109.15", 1273)],
    ]
    ex = extract_invoice(page(rows), "MYR")
    assert (ex.fields["currency"], ex.fields["total"]) == ("USD", 119.95)


def test_policy_and_customer_numbers_are_not_the_invoice_number():
    rows = [
        [("Harbor Mutual Insurance Ltd", 60, 1.4)], [("Invoice", 60, 1.3)],
        [("Policy No: HM-2024-55120", 60)], [("Customer No: 88123", 60)], [("Invoice No: 2024/INV/0093", 60)],
        [("Invoice date: 12 January 2024", 60)], [("Cover period: 01/02/2024 - 31/01/2025", 60)], "",
        [("Premium", 700), ("£ 400.00", 1100)], [("Insurance premium tax", 700), ("£ 48.00", 1100)],
        [("Total due", 700), ("£ 448.00", 1100)],
    ]
    ex = extract_invoice(page(rows), None)
    assert check(ex, {"invoice_number": "2024/INV/0093", "transaction_date": "2024-01-12", "total": 448.0,
                      "currency": "GBP"}) == {}


def test_dates_in_words_and_periods():
    from worker.extract.invoice.dates import _date_scan

    def dates(text):
        return [d.isoformat() for _, _, d, _ in _date_scan(text)[0]]

    assert dates("Factuurdatum: 3 maart 2024") == ["2024-03-03"]
    assert dates("Fecha: 3 de agosto de 2014") == ["2014-08-03"]
    assert dates("Data fattura 15 settembre 2023") == ["2023-09-15"]
    assert dates("Data de emissão: 1º de março de 2024") == ["2024-03-01"]
    assert dates("3. März 2014 / 3 août 2014 / August 3, 2014") == ["2014-03-03", "2014-08-03", "2014-08-03"]
    assert dates("Totaal 12 mei") == []  # no year: not a date to take
    # a service period or a delivery date beside the invoice date: the invoice date wins
    rows = [
        [("Studio Lumen SARL", 60, 1.4)], [("Facture", 60, 1.3)], [("Facture n° 2014-118", 60)],
        [("Période de service : 1 juillet 2014 au 31 juillet 2014", 60)], [("Date de livraison : 31 juillet 2014", 60)],
        [("Date de facture : 3 août 2014", 60)], "",
        [("Total TTC", 700), ("1 200,00 €", 1100)],
    ]
    ex = extract_invoice(page(rows), None)
    assert ex.fields["transaction_date"] == "2014-08-03"


def test_ocr_junk_does_not_become_a_name():
    """OCR misreads of a title ("PAYMENT REEIPT", "INVOlCE") are not the issuer, and a value read
    from a line OCR was unsure of is no surer than that line."""
    from worker.extract.invoice.labels import _misread_label

    assert _misread_label("PAYMENT REEIPT") and _misread_label("INVOLCE") and _misread_label("RECHNUNC")
    assert not _misread_label("STORYBLOK GMBH") and not _misread_label("CALENDLY LLC")
    rows = [
        [("PAYMENT REEIPT", 60, 1.5)], [("Brightwater Analytics Ltd", 60)], [("12 Harbour Street, Leeds LS1 4AB", 60)], "",
        [("Receipt No: R-20931", 60)], [("Date paid: 14 March 2024", 60)], "",
        [("Total", 700), ("£ 96.00", 1100)],
    ]
    lines = page(rows)
    lines[-1] = TextLine(lines[-1].text, lines[-1].box, 0.62)  # OCR unsure of the amount
    ex = extract_invoice(lines, None, source="ocr")
    assert ex.fields.get("merchant_name") == "Brightwater Analytics Ltd"
    assert ex.fields["total"] == 96.0 and ex.confidence["total"] <= 0.62 and "ocr_low_score" in ex.notes["total"]


def test_chinese_labels_on_a_generic_invoice():
    rows = [
        [("发票", 500, 1.5)],
        [("发票号码：24310000000012345678", 60)], [("开票日期：2024年03月05日", 60)], "",
        [("购买方：", 60), ("销售方：", 700)],
        [("名称：上海明远贸易有限公司", 60), ("名称：深圳市蓝鲸科技有限公司", 700)], "",
        [("项目名称", 60), ("数量", 500), ("单价", 700), ("金额", 900), ("税额", 1100)],
        [("*信息技术服务*软件维护", 60), ("1", 500), ("1000.00", 700), ("1000.00", 900), ("130.00", 1100)],
        [("价税合计（大写）壹仟壹佰叁拾元整", 60), ("（小写）¥1130.00", 900)],
    ]
    ex = extract_invoice(page(rows), "MYR")
    assert check(ex, {"merchant_name": "深圳市蓝鲸科技有限公司", "buyer_name": "上海明远贸易有限公司",
                      "invoice_number": "24310000000012345678", "transaction_date": "2024-03-05", "total": 1130.0,
                      "currency": "CNY"}) == {}
    assert ex.confidence["transaction_date"] >= 0.9 and ex.notes["merchant_name"] == ["once"]


def test_dutch_invoice_through_ocr(laid_out_docs):
    """The Dutch laid-out invoice read by OCR from its page image (no text layer used)."""
    from worker.ocr import recognise

    doc = laid_out_docs["nl"]
    ex = extract_invoice([recognise(p.image) for p in doc.pages], "MYR", source="ocr")
    assert check(ex, LAID_OUT["nl"][1]) == {}
    assert set(ex.sources.values()) == {"ocr"}


def test_fine_print_footer_date_is_not_the_issue_date():
    rows = [[("Stadtwerke Musterstadt GmbH", 60, 1.4)], [("Rechnung", 60, 1.3)],
            [("Rechnungsnummer: 2015738820", 900)], [("01.11.2024", 1000)], "",
            [("Rechnungsbetrag", 700), ("119,00 €", 1100)]] + [""] * 30 + [
            [("Datum:", 900, 0.45), ("30.10.2024", 1000, 0.45)]]
    ex = extract_invoice(page(rows), None)
    assert ex.fields["transaction_date"] == "2024-11-01"


def test_tax_line_naming_its_base():
    """'zzgl. 19% MwSt. aus 100,00 €  19,00 €': the tax is the amount beside the base, and net +
    tax = total confirms all three."""
    rows = [[("Medienhaus Kappel GmbH & Co. KG", 60, 1.4)], [("Rechnung Nr. 02581", 60)], [("Datum: 04.07.2023", 60)], "",
            [("Zwischensumme (zzgl. MwSt.)", 700), ("100,00 €", 1200)],
            [("zzgl. 19,0% MwSt. aus 100,00 €", 700), ("19,00 €", 1200)],
            [("Gesamtbetrag", 700), ("119,00 €", 1200)]]
    ex = extract_invoice(page(rows), None)
    assert check(ex, {"subtotal": 100.0, "tax": 19.0, "total": 119.0}) == {}
    assert all("arithmetic" in ex.notes[k] for k in ("subtotal", "tax", "total"))


def test_issuer_named_by_the_footer_domain():
    """Two unlabelled parties side by side under the title: the one the footer's e-mail domain
    spells is the issuer, not the window address on the left."""
    rows = [[("Invoice 103767", 60, 1.6)], [("February 17, 2026", 60)], "",
            [("Fabrikam Logistics", 60), ("NORTHWIND DE", 1300)],
            [("Station Road, 21", 60), ("Hofstraße 12", 1300)],
            [("48436 Düsseldorf", 60), ("20097 Hamburg", 1300)], "",
            [("Subtotal", 900), ("573.00", 1300)], [("19% VAT", 900), ("108.87", 1300)],
            [("Total € Incl. VAT", 900), ("681.87", 1300)]] + [""] * 20 + [
            [("VAT Registration No.", 60), ("Email", 900)], [("DE777777777", 60), ("info@northwind.com", 900)]]
    ex = extract_invoice(page(rows), None)
    assert ex.fields["merchant_name"] == "NORTHWIND DE" and ex.fields["total"] == 681.87
