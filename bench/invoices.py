"""Invoice field accuracy of `worker.extract.invoice.extract_invoice`, read from the page.

    .venv/bin/python bench/invoices.py [--data ../shared/data] [--ocr N] [--synthetic N] [--seed S] [-v]
                                       [--jobs 2] [--default-currency MYR] [--json FILE]

invoices-dev: every PDF read exactly as the CPU analyzer reads it (`worker.extract.expense.read_expense`:
text layer, or OCR where the text layer is missing or garbage; the policy's default currency, MYR
for expense_policy, passed as the worker passes it), scored with that set's conventions
(../shared/data/README.md: names with case, spaces and punctuation ignored and containment
counting, `issue_date` as a date, `total` to 0.01, `currency` and `invoice_number` exact, only the
fields the page shows). `--json FILE` writes every document's label, prediction, confidence and
issuer group (bench/invoices_cv.py reads it for the per-issuer cross-validation).

zugferd-dev: each PDF is prepared as the worker prepares it and its text layer's positioned lines
(all prepared pages) go to the extractor; the embedded XML is ignored. Scored with the owners'
conventions (../shared/data/README.md): `seller_name` (-> merchant_name) and `buyer_name` exact
after collapsing whitespace, `issue_date` as an ISO date, `grand_total` (-> total), `tax_total`,
`net_total` as numbers to 0.01, `currency` and `invoice_number` exact after trimming.
`--ocr N`: also N of them through rapidocr instead of the text layer, every prepared page
(several seconds a page on two cores).
`--synthetic N`: N generated invoices (tests/invoice_documents.py: English/German/French, text
layer), scored on the same fields (needs fpdf2); `--ocr-synthetic N`: N of those through OCR.
Prints per-field accuracy and the mean over the four headline fields (seller, date, total,
currency).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docket.pages import prepare  # noqa: E402
from worker.extract.invoice import extract_invoice  # noqa: E402

HEADLINE = ("seller_name", "issue_date", "grand_total", "currency")
# label field -> (extracted field, how compared)
FIELDS = {
    "seller_name": ("merchant_name", "name"),
    "issue_date": ("transaction_date", "date"),
    "grand_total": ("total", "number"),
    "currency": ("currency", "exact"),
    "invoice_number": ("invoice_number", "exact"),
    "buyer_name": ("buyer_name", "name"),
    "net_total": ("subtotal", "number"),
    "tax_total": ("tax", "number"),
}


def _same(kind: str, label, got) -> bool:
    if got is None:
        return False
    if kind == "name":
        return " ".join(str(label).split()) == " ".join(str(got).split())
    if kind == "exact":
        return str(label).strip() == str(got).strip()
    if kind == "date":
        return str(label)[:10] == str(got)[:10]
    try:
        return abs(float(label) - float(got)) < 0.006
    except (TypeError, ValueError):
        return False


def score(records: list[tuple[str, dict, dict]], verbose: bool) -> dict[str, float]:
    """records: (name, label fields, extracted fields) -> per-field accuracy."""
    hits: dict[str, list[bool]] = {k: [] for k in FIELDS}
    for name, label, got in records:
        for key, (ours, kind) in FIELDS.items():
            if label.get(key) is None:
                continue
            ok = _same(kind, label[key], got.get(ours))
            hits[key].append(ok)
            if verbose and not ok:
                print(f"    {name}: {key} want {label[key]!r} got {got.get(ours)!r}")
    acc = {k: sum(v) / len(v) for k, v in hits.items() if v}
    return acc


def report(title: str, acc: dict[str, float], n: int, seconds: float) -> None:
    print(f"{title}: {n} documents, {seconds / max(n, 1) * 1000:.0f} ms/doc")
    for key in FIELDS:
        if key in acc:
            print(f"  {key:<15} {acc[key]:.3f}")
    mean = sum(acc[k] for k in HEADLINE if k in acc) / len([k for k in HEADLINE if k in acc])
    print(f"  {'mean (4 fields)':<15} {mean:.3f}")


# invoices-dev: label field -> (extracted field, how compared)
INVOICES_DEV_FIELDS = {
    "seller_name": ("merchant_name", "loose"),
    "issue_date": ("transaction_date", "date"),
    "total": ("total", "number"),
    "currency": ("currency", "exact"),
    "invoice_number": ("invoice_number", "exact"),
    "buyer_name": ("buyer_name", "loose"),
}


def _loose(label, got) -> bool:
    """invoices-dev names: case, spaces and punctuation ignored; a legal suffix may be missing
    (containment counts either way)."""
    import re

    a, b = (re.sub(r"[\W_]+", "", str(v or "")).lower() for v in (label, got))
    return bool(a and b) and (a in b or b in a)


def issuer_group(record: dict) -> str:
    """The issuer a dev document belongs to (its seller label, folded): the unit of the
    cross-validation folds, so that no issuer's documents sit on both sides of a split."""
    import re

    return re.sub(r"[\W_]+", "", str(record["fields"].get("seller_name", ""))).lower()


def read_invoices_dev(data: Path, jobs: int = 2, default_currency: str | None = "MYR") -> list[dict]:
    """Every invoices-dev document read as the CPU analyzer reads it, with its label, its
    prediction per field (value, confidence, source, notes) and whether each visible field is right."""
    folder = data / "invoices-dev"
    labels = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines() if line.strip()]
    results = _read_with_confidence([str(folder / r["file"]) for r in labels], jobs, default_currency)
    rows = []
    for rec, (fields, confidence, sources, notes, error) in zip(labels, results):
        correct = {}
        for key, (ours, kind) in INVOICES_DEV_FIELDS.items():
            label = rec["fields"].get(key)
            if label is None or rec.get("visible", {}).get(key) is False:
                continue
            got = fields.get(ours)
            correct[key] = _loose(label, got) if kind == "loose" else _same(kind, label, got)
        rows.append({"file": Path(rec["file"]).name, "group": issuer_group(rec), "correct": correct,
                     "label": {k: rec["fields"].get(k) for k in INVOICES_DEV_FIELDS},
                     "predicted": {k: fields.get(o) for k, (o, _) in INVOICES_DEV_FIELDS.items()},
                     "confidence": {k: confidence.get(o) for k, (o, _) in INVOICES_DEV_FIELDS.items()},
                     "sources": {k: sources.get(o) for k, (o, _) in INVOICES_DEV_FIELDS.items()},
                     "notes": {k: notes.get(o) for k, (o, _) in INVOICES_DEV_FIELDS.items() if notes.get(o)},
                     "error": error})
    return rows


def _read_one(task: tuple[str, str | None]) -> tuple:
    path, currency = task
    from docket.pages import prepare
    from worker.extract.expense import read_expense
    from worker.ocr import recognise

    try:
        document = prepare(Path(path), "application/pdf", max_side=2560, max_pages=10)
        x = read_expense(document, recognise, currency).extraction
        return x.fields, x.confidence, x.sources, dict(getattr(x, "notes", {}) or {}), None
    except Exception as exc:  # one bad file scores as all wrong, the run goes on
        return {}, {}, {}, {}, f"{type(exc).__name__}: {exc}"


def _read_with_confidence(paths: list[str], jobs: int, currency: str | None) -> list[tuple]:
    import multiprocessing

    from bench.accuracy import _init_ocr_worker

    tasks = [(p, currency) for p in paths]
    if jobs <= 1:
        _init_ocr_worker()
        return [_read_one(t) for t in tasks]
    with multiprocessing.get_context("fork").Pool(jobs, initializer=_init_ocr_worker) as pool:
        return list(pool.imap(_read_one, tasks, chunksize=1))


def score_rows(rows: list[dict]) -> dict[str, float]:
    """Per-field accuracy over rows (fields a row does not score are left out)."""
    hits: dict[str, list[bool]] = {}
    for row in rows:
        for key, ok in row["correct"].items():
            hits.setdefault(key, []).append(ok)
    return {k: sum(v) / len(v) for k, v in hits.items()}


def invoices_dev(data: Path, jobs: int, default_currency: str | None, verbose: bool, json_out: Path | None) -> None:
    started = time.perf_counter()
    rows = read_invoices_dev(data, jobs, default_currency)
    elapsed = time.perf_counter() - started
    print(f"invoices-dev, as the analyzer reads it (default currency {default_currency}): {len(rows)} documents, "
          f"{elapsed / max(len(rows), 1) * 1000:.0f} ms/doc, {sum(1 for r in rows if r['error'])} errors")
    for sub, pick in (("all", lambda r: True), ("real issuers (parsee-)", lambda r: r["file"].startswith("parsee-")),
                      ("e-invoice specimens (zf*, mustang-)", lambda r: not r["file"].startswith("parsee-"))):
        acc = score_rows([r for r in rows if pick(r)])
        print(f"  {sub}: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    if verbose:
        for r in rows:
            for key, ok in r["correct"].items():
                if not ok:
                    print(f"    {r['file']}: {key} want {r['label'][key]!r} got {r['predicted'][key]!r} "
                          f"(conf {r['confidence'][key]}, {r['sources'][key]})")
    if json_out is not None:
        json_out.write_text(json.dumps(rows, indent=1, ensure_ascii=False, default=str))


def zugferd(data: Path, ocr: int, verbose: bool) -> None:
    folder = data / "zugferd-dev"
    labels = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines() if line.strip()]
    records, ocr_records = [], []
    started = time.perf_counter()
    prepared = []
    for rec in labels:
        doc = prepare(folder / rec["file"], "application/pdf", max_side=2560, max_pages=5)
        prepared.append((rec, doc))
        ex = extract_invoice([p.text_lines for p in doc.pages], None, source="text_layer")
        records.append((Path(rec["file"]).name, rec["fields"], ex.fields))
    elapsed = time.perf_counter() - started
    report("zugferd-dev, text layer", score(records, verbose), len(records), elapsed)
    if ocr:
        from worker.ocr import recognise

        started = time.perf_counter()
        for rec, doc in prepared[:ocr]:
            ex = extract_invoice([recognise(p.image) for p in doc.pages], None, source="ocr")
            ocr_records.append((Path(rec["file"]).name, rec["fields"], ex.fields))
        elapsed = time.perf_counter() - started
        report("zugferd-dev, OCR of every page", score(ocr_records, verbose), len(ocr_records), elapsed)


def synthetic(n: int, seed: int, verbose: bool, ocr: bool = False) -> None:
    from tests.invoice_documents import synthetic_invoice

    if ocr:
        from worker.ocr import recognise
    records = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            inv = synthetic_invoice(seed + i)
            path = Path(tmp) / f"inv{i}.pdf"
            path.write_bytes(inv.pdf)
            doc = prepare(path, "application/pdf", max_side=2560, max_pages=5)
            if ocr:
                ex = extract_invoice([recognise(p.image) for p in doc.pages], None, source="ocr")
            else:
                ex = extract_invoice([p.text_lines for p in doc.pages], None, source="text_layer")
            truth = inv.truth
            label = {
                "seller_name": truth["merchant_name"], "buyer_name": truth["buyer_name"],
                "issue_date": truth["transaction_date"], "grand_total": truth["total"],
                "currency": truth["currency"], "invoice_number": truth["invoice_number"],
                "net_total": truth["subtotal"], "tax_total": truth["tax"],
            }
            records.append((f"seed {seed + i} ({truth['language']}, {truth['layout']})", label, ex.fields))
    elapsed = time.perf_counter() - started
    how = "OCR" if ocr else "text layer"
    report(f"synthetic, {how} (seed {seed}..{seed + n - 1})", score(records, verbose), n, elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--ocr", type=int, default=0, help="also OCR page 1 of this many dev invoices")
    parser.add_argument("--synthetic", type=int, default=100, help="generated invoices to score (0: none)")
    parser.add_argument("--ocr-synthetic", type=int, default=0, help="generated invoices to score through OCR")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("-v", "--verbose", action="store_true", help="print every miss")
    parser.add_argument("--jobs", type=int, default=2, help="reader processes for invoices-dev (OCR)")
    parser.add_argument("--default-currency", default="MYR", help="the policy default the worker passes (expense_policy: MYR)")
    parser.add_argument("--json", type=Path, default=None, help="write invoices-dev's per-document rows here")
    parser.add_argument("--no-invoices-dev", action="store_true", help="skip invoices-dev")
    args = parser.parse_args()
    if not args.no_invoices_dev:
        if (args.data / "invoices-dev").is_dir():
            invoices_dev(args.data, args.jobs, args.default_currency, args.verbose, args.json)
        else:
            print(f"no invoices-dev under {args.data}: skipped")
    if (args.data / "zugferd-dev").is_dir():
        zugferd(args.data, args.ocr, args.verbose)
    else:
        print(f"no zugferd-dev under {args.data}: skipped")
    if args.synthetic:
        synthetic(args.synthetic, args.seed, args.verbose)
    if args.ocr_synthetic:
        synthetic(args.ocr_synthetic, args.seed, args.verbose, ocr=True)


if __name__ == "__main__":
    main()
