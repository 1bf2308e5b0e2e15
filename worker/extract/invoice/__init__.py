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

The package, by concern: `lines` and `layout` (the lines and the page's layout), `amounts`
(decimal mark and amounts), `labels` (label and name patterns), `blocks` and `parties`
(issuer and customer), `numbers` (invoice number), `dates`, `totals`, `currency`, `items`, and
`reader` (the entry points re-exported here).
"""
from __future__ import annotations

from worker.extract.invoice.amounts import parse_amount
from worker.extract.invoice.reader import extract_invoice, looks_like_invoice

__all__ = ["extract_invoice", "looks_like_invoice", "parse_amount"]
