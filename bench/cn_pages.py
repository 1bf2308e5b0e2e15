"""Chinese VAT invoices and railway tickets read from page images: per-field accuracy.

OCR (worker.ocr) + worker.extract.kind.classify + worker.extract.fapiao / train_ticket, with the
invoice QR code decoded by worker.extract.fapiao_qr, over the dev sets
`../shared/data/cn-fapiao-dev` (page-1 PNGs) and `../shared/data/cn-train-tickets-dev` (photos),
scored with the conventions of shared/data/README.md:
- fapiao: number, code, tax ids exact (whitespace removed); issue_date as an ISO date; names exact
  Chinese strings after removing whitespace; total_amount / amount_excl_tax / tax_amount as numbers
  to 0.01; a field absent from a label is left out; PDF and OFD reported separately and together.
  `currency` (expected "CNY" on every invoice) and the classifier's `kind` are scored too.
- tickets: date via date_iso, price via price (0.01), stations / train number / grade / ticket number
  exact after removing whitespace.

    .venv/bin/python -m bench.cn_pages                 # both dev sets, with and without the QR
    .venv/bin/python -m bench.cn_pages --synthetic 40  # plus 40 synthetic tickets (tests/cn_documents)
    .venv/bin/python -m bench.cn_pages --only synthetic --synthetic 40 --synthetic-invoices 20 --hard
    .venv/bin/python -m bench.cn_pages --ocr-cache /tmp/cnocr   # reuse OCR results (JSON per image)
    .venv/bin/python -m bench.cn_pages --only text-layer  # the 26 PDFs read through their text layer
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

FAPIAO_FIELDS = [  # label key → extraction field
    ("seller_name", "merchant_name"),
    ("buyer_name", "buyer_name"),
    ("seller_tax_id", "seller_tax_id"),
    ("buyer_tax_id", "buyer_tax_id"),
    ("invoice_number", "invoice_number"),
    ("invoice_code", "invoice_code"),
    ("issue_date", "transaction_date"),
    ("total_amount", "total"),
    ("amount_excl_tax", "subtotal"),
    ("tax_amount", "tax"),
    ("currency", "currency"),
    ("kind", "kind"),
]
TICKET_FIELDS = [
    ("date_iso", "transaction_date"),
    ("price", "total"),
    ("starting_station", "travel.from"),
    ("destination_station", "travel.to"),
    ("train_num", "travel.train_number"),
    ("ticket_grade", "travel.seat_class"),
    ("ticket_num", "invoice_number"),
    ("currency", "currency"),
    ("kind", "kind"),
]
NUMERIC = {"total_amount", "amount_excl_tax", "tax_amount", "price"}
DATES = {"issue_date", "date_iso"}


def _compact(v) -> str:
    return re.sub(r"\s+", "", str(v))


def _iso(v) -> str | None:
    try:
        return dt.date.fromisoformat(str(v)[:10]).isoformat()
    except ValueError:
        return None


def match(key: str, want, got) -> bool:
    if got is None:
        return False
    if key in NUMERIC:
        try:
            return abs(float(want) - float(got)) < 0.005 + 1e-9
        except (TypeError, ValueError):
            return False
    if key in DATES:
        return _iso(want) is not None and _iso(want) == _iso(got)
    return _compact(want) == _compact(got)


def get(fields: dict, path: str):
    cur = fields
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _ocr(path: Path, cache: Path | None):
    from worker.ocr import OcrLine, recognise

    if cache is not None:
        f = cache / (path.name + ".json")
        if f.exists():
            d = json.loads(f.read_text())
            return [OcrLine(t, tuple(b), s) for t, b, s in d["lines"]], 0.0
    image = Image.open(path).convert("RGB")
    started = time.perf_counter()
    lines = recognise(image)
    secs = time.perf_counter() - started
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        (cache / (path.name + ".json")).write_text(json.dumps(
            {"size": image.size, "secs": secs, "lines": [[l.text, list(l.box), l.score] for l in lines]},
            ensure_ascii=False))
    return lines, secs


class Tally:
    def __init__(self):
        self.ok = defaultdict(int)
        self.n = defaultdict(int)

    def add(self, group: str, key: str, good: bool):
        self.n[(group, key)] += 1
        self.ok[(group, key)] += int(good)

    def line(self, group: str, keys: list[str]) -> str:
        cells = []
        for k in keys:
            n = self.n.get((group, k), 0)
            cells.append(f"{self.ok[(group, k)] / n:5.2f}({n:2d})" if n else "    -    ")
        return cells


def _table(title: str, tally: Tally, groups: list[str], keys: list[str]) -> None:
    print(f"\n{title}")
    width = max(len(k) for k in keys) + 2
    print(" " * width + "".join(f"{g:>12}" for g in groups))
    for k in keys:
        cells = [tally.line(g, [k])[0] for g in groups]
        print(f"{k:<{width}}" + "".join(f"{c:>12}" for c in cells))


def fapiao(cache: Path | None, verbose: bool) -> None:
    from worker.extract.fapiao import extract_vat_invoice
    from worker.extract.fapiao_qr import decode
    from worker.extract.kind import classify

    folder = SHARED / "cn-fapiao-dev"
    tally = Tally()
    qr_found = 0
    ocr_secs = []
    records = [json.loads(l) for l in (folder / "labels.jsonl").read_text().splitlines() if l.strip()]
    for rec in records:
        path = folder / rec["file"]
        labels = dict(rec["fields"], currency="CNY", kind="vat_invoice")
        group = "pdf" if rec["original_file"].endswith(".pdf") else "ofd"
        lines, secs = _ocr(path, cache)
        if secs:
            ocr_secs.append(secs)
        qr = decode(Image.open(path))
        qr_found += qr is not None
        for mode, q in (("ocr+qr", qr), ("ocr only", None)):
            ex = extract_vat_invoice(lines, q)
            got = dict(ex.fields, kind=classify(lines, q))
            for key, field in FAPIAO_FIELDS:
                if key not in labels:
                    continue
                good = match(key, labels[key], get(got, field))
                tally.add(f"{mode}:{group}", key, good)
                tally.add(f"{mode}:all", key, good)
                if verbose and not good and mode == "ocr+qr":
                    print(f"  MISS {path.name} {key}: want {labels[key]!r} got {get(got, field)!r}")
    keys = [k for k, _ in FAPIAO_FIELDS]
    _table(f"cn-fapiao-dev page images ({len(records)}; QR decoded on {qr_found})", tally,
           ["ocr+qr:pdf", "ocr+qr:ofd", "ocr+qr:all", "ocr only:all"], keys)
    if ocr_secs:
        print(f"OCR: mean {sum(ocr_secs) / len(ocr_secs):.1f} s per page over {len(ocr_secs)} pages")


def fapiao_text_layer(verbose: bool) -> None:
    """The PDFs' own text as positioned lines (docket.pages, as the service reads a PDF with a
    sound text layer), through the same extractor, with the QR from the rendered page."""
    from docket.pages import prepare
    from worker.extract.fapiao import extract_vat_invoice
    from worker.extract.fapiao_qr import decode
    from worker.extract.kind import classify

    folder = SHARED / "cn-fapiao-dev"
    tally = Tally()
    records = [json.loads(l) for l in (folder / "labels.jsonl").read_text().splitlines() if l.strip()]
    records = [r for r in records if r["original_file"].endswith(".pdf")]
    for rec in records:
        doc = prepare(folder / rec["original_file"], "application/pdf", max_side=4000, max_pages=1)
        lines = doc.pages[0].text_lines
        labels = dict(rec["fields"], currency="CNY", kind="vat_invoice")
        qr = decode(doc.pages[0].image)
        for mode, q in (("text+qr", qr), ("text only", None)):
            got = dict(extract_vat_invoice(lines, q).fields, kind=classify(lines, q))
            for key, field in FAPIAO_FIELDS:
                if key not in labels:
                    continue
                good = match(key, labels[key], get(got, field))
                tally.add(mode, key, good)
                if verbose and not good:
                    print(f"  MISS {rec['original_file']} ({mode}) {key}: want {labels[key]!r} got {get(got, field)!r}")
    _table(f"cn-fapiao-dev PDFs through their text layer ({len(records)})", tally, ["text+qr", "text only"],
           [k for k, _ in FAPIAO_FIELDS])


def tickets(cache: Path | None, verbose: bool) -> None:
    from worker.extract.kind import classify
    from worker.extract.train_ticket import extract_train_ticket

    folder = SHARED / "cn-train-tickets-dev"
    tally = Tally()
    records = [json.loads(l) for l in (folder / "labels.jsonl").read_text().splitlines() if l.strip()]
    for rec in records:
        path = folder / rec["file"]
        labels = dict(rec["fields"], currency="CNY", kind="train_ticket")
        lines, _ = _ocr(path, cache)
        ex = extract_train_ticket(lines)
        got = dict(ex.fields, kind=classify(lines))
        for key, field in TICKET_FIELDS:
            good = match(key, labels[key], get(got, field))
            tally.add("real", key, good)
            if verbose and not good:
                print(f"  MISS {path.name} {key}: want {labels[key]!r} got {get(got, field)!r}")
    _table(f"cn-train-tickets-dev photos ({len(records)}: a smoke test, not an accuracy figure)",
           tally, ["real"], [k for k, _ in TICKET_FIELDS])


def synthetic(n: int, verbose: bool, seed: int = 1000, photo="photo") -> None:
    sys.path.insert(0, str(ROOT))
    from tests.cn_documents import render_train_ticket
    from worker.extract.kind import classify
    from worker.extract.train_ticket import extract_train_ticket
    from worker.ocr import recognise

    tally = Tally()
    for i in range(n):
        layout = "paper" if i % 2 == 0 else "eticket"
        image, truth = render_train_ticket(seed + i, layout=layout, photo="hard" if photo == "hard" else True)
        lines = recognise(image)
        ex = extract_train_ticket(lines)
        got = dict(ex.fields, kind=classify(lines))
        labels = {
            "date_iso": truth["transaction_date"], "price": truth["total"],
            "starting_station": truth["travel"]["from"], "destination_station": truth["travel"]["to"],
            "train_num": truth["travel"]["train_number"], "ticket_grade": truth["travel"]["seat_class"],
            "ticket_num": truth["invoice_number"], "currency": "CNY", "kind": "train_ticket",
        }
        for key, field in TICKET_FIELDS:
            good = match(key, labels[key], get(got, field))
            tally.add(layout, key, good)
            tally.add("all", key, good)
            if verbose and not good:
                print(f"  MISS synthetic seed={seed + i} {layout} {key}: want {labels[key]!r} got {get(got, field)!r}")
        departure = get(got, "travel.departure")
        tally.add(layout, "departure", departure == truth["travel"]["departure"])
        tally.add("all", "departure", departure == truth["travel"]["departure"])
    _table(f"synthetic railway tickets ({n}, tests/cn_documents.render_train_ticket, photo={photo})", tally,
           ["paper", "eticket", "all"], [k for k, _ in TICKET_FIELDS] + ["departure"])


SYN_INVOICE_FIELDS = [("merchant_name", "merchant_name"), ("buyer_name", "buyer_name"),
                      ("seller_tax_id", "seller_tax_id"), ("buyer_tax_id", "buyer_tax_id"),
                      ("invoice_number", "invoice_number"), ("invoice_code", "invoice_code"),
                      ("transaction_date", "transaction_date"), ("total", "total"), ("subtotal", "subtotal"),
                      ("tax", "tax"), ("currency", "currency"), ("kind", "kind"), ("qr", "qr")]


def synthetic_invoices(n: int, verbose: bool, seed: int = 2000, photo="photo") -> None:
    sys.path.insert(0, str(ROOT))
    from tests.cn_documents import render_vat_invoice
    from worker.extract.fapiao import extract_vat_invoice
    from worker.extract.fapiao_qr import decode
    from worker.extract.kind import classify
    from worker.ocr import recognise

    tally = Tally()
    for i in range(n):
        layout = "provincial" if i % 2 == 0 else "digital"
        image, truth = render_vat_invoice(seed + i, layout=layout, photo="hard" if photo == "hard" else True)
        lines = recognise(image)
        qr = decode(image)
        truth = dict(truth, kind="vat_invoice", qr=truth["qr_payload"])
        for mode, q in (("qr", qr), ("no qr", None)):
            got = dict(extract_vat_invoice(lines, q).fields, kind=classify(lines, q), qr=qr.raw if qr else None)
            for key, field in SYN_INVOICE_FIELDS:
                if key not in truth:
                    continue
                want = truth[key]
                num = isinstance(want, float)
                good = (get(got, field) is not None and abs(float(get(got, field)) - want) < 0.006) if num \
                    else get(got, field) == want
                tally.add(f"{layout}+{mode}", key, good)
                tally.add(f"all+{mode}", key, good)
                if verbose and not good and mode == "qr":
                    print(f"  MISS synthetic invoice seed={seed + i} {layout} {key}: want {want!r} got {get(got, field)!r}")
    _table(f"synthetic VAT invoices ({n}, tests/cn_documents.render_vat_invoice, photo={photo})", tally,
           ["provincial+qr", "digital+qr", "all+qr", "all+no qr"], [k for k, _ in SYN_INVOICE_FIELDS])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ocr-cache", type=Path, default=None, help="read/write OCR results here (JSON per image)")
    ap.add_argument("--synthetic", type=int, default=0, help="also score N synthetic railway tickets")
    ap.add_argument("--synthetic-invoices", type=int, default=0, help="also score N synthetic VAT invoices")
    ap.add_argument("--hard", action="store_true", help="synthetic pages as phone photos (4°, blur, JPEG)")
    ap.add_argument("--only", choices=["fapiao", "text-layer", "tickets", "synthetic"], default=None)
    ap.add_argument("-v", "--verbose", action="store_true", help="print every miss")
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"no dev data at {SHARED}", file=sys.stderr)
        return 2
    if args.only in (None, "fapiao"):
        fapiao(args.ocr_cache, args.verbose)
    if args.only in (None, "text-layer"):
        fapiao_text_layer(args.verbose)
    if args.only in (None, "tickets"):
        tickets(args.ocr_cache, args.verbose)
    photo = "hard" if args.hard else "photo"
    if args.synthetic and args.only in (None, "synthetic"):
        synthetic(args.synthetic, args.verbose, photo=photo)
    if args.synthetic_invoices and args.only in (None, "synthetic"):
        synthetic_invoices(args.synthetic_invoices, args.verbose, photo=photo)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
