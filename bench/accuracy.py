"""Field-extraction accuracy on the development sets, scored as the project's owners score it.

    .venv/bin/python bench/accuracy.py [--data ../shared/data] [--limit N] [--jobs 2] [--json]
                                       [--only receipts|contracts|fapiao-images|fapiao-originals|zugferd|tickets|invoices]

Expense documents go exactly the way the CPU analyzer reads them
(`worker.extract.expense.read_expense`: the file's own data first, then the page — text layer
or OCR — by document kind), in a pool of --jobs processes:
- `sroie-dev` receipts (JPEG, default currency MYR);
- `cn-fapiao-dev` Chinese VAT invoices twice: from the page images (PNG: OCR + QR code) and
  from the originals (PDF text layer / OFD data), reported per format too;
- `zugferd-dev` ZUGFeRD/Factur-X PDFs (their embedded XML);
- `cn-train-tickets-dev` railway ticket photos (two only: a smoke test, not a figure);
- `invoices-dev` PDF invoices read from the page (their XML removed; default currency MYR, as
  expense_policy's worker passes it), scored only where `visible` says the page shows the value,
  names loosely (case, spaces, punctuation ignored; containment counts). bench/invoices.py
  splits it by kind of issuer and bench/invoices_cv.py by issuer.
Contracts (`contracts-dev`): the text layer of every page (pypdfium2) goes to
`worker.extract.contract.extract_contract`. Scoring follows `../shared/data/README.md` (see
bench/scoring.py). Prints a table per dataset with per-field accuracy and the mean; --json
prints one machine-readable summary instead.

`--data` is resolved against the project root when relative (also accepted: a path relative to
the current directory, or an absolute one).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.scoring import (  # noqa: E402
    FAPIAO_FIELDS,
    INVOICES_FIELDS,
    KLEISTER_FIELDS,
    SROIE_FIELDS,
    TICKET_FIELDS,
    ZUGFERD_FIELDS,
    aggregate,
    score_fields,
    score_kleister_document,
    score_sroie_document,
)

DEFAULT_DATA = "../shared/data"
RECEIPTS = "sroie-dev"
CONTRACTS = "contracts-dev"
FAPIAO = "cn-fapiao-dev"
ZUGFERD = "zugferd-dev"
TICKETS = "cn-train-tickets-dev"
INVOICES = "invoices-dev"
MIME = {".pdf": "application/pdf", ".ofd": "application/ofd", ".xml": "application/xml", ".png": "image/png",
        ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


class DataMissing(RuntimeError):
    """The development data is not where it was looked for."""


def resolve_data(data: str | os.PathLike | None = None) -> Path:
    """The data folder: absolute as given; relative to the project root; else relative to the
    current directory. Raises DataMissing (with where it looked) when none exists."""
    raw = Path(data or DEFAULT_DATA)
    tried = [raw] if raw.is_absolute() else [ROOT / raw, Path.cwd() / raw]
    for path in tried:
        if path.is_dir():
            return path.resolve()
    raise DataMissing(
        "development data not found: looked in " + ", ".join(str(p) for p in tried)
        + " (expected the shared data folder with sroie-dev/ and contracts-dev/, see its README.md)"
    )


def read_labels(folder: Path, limit: int | None = None) -> list[dict]:
    labels = folder / "labels.jsonl"
    if not labels.is_file():
        raise DataMissing(f"{labels} not found")
    records = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    return records[:limit] if limit else records


# --------------------------------------------------------------------------------------------
# Receipts


def _init_ocr_worker() -> None:
    """Pool initialiser: one ONNX Runtime thread per worker process.

    worker.ocr gives its engine as many threads as there are cores for one worker process;
    with one process per core that oversubscribes the CPU. Here each process's engine is
    single-threaded unless DOCKET_OCR_THREADS says otherwise; every other DOCKET_OCR_*
    setting applies as in the worker, so candidates are measured as they would run.
    """
    from dataclasses import replace

    import worker.ocr as ocr_module

    config = ocr_module.settings()
    if not os.environ.get("DOCKET_OCR_THREADS"):
        config = replace(config, threads=1)
    ocr_module.configure(config)


def read_document(task: tuple[str, str | None]) -> tuple[str, dict, float, str | None]:
    """(path, fields, seconds, error) for one document read as the CPU analyzer reads it."""
    path, default_currency = task
    from docket.pages import prepare
    from worker.extract.expense import read_expense
    from worker.ocr import recognise

    started = time.perf_counter()
    try:
        document = prepare(Path(path), MIME[Path(path).suffix.lower()], max_side=2560, max_pages=10)
        fields = read_expense(document, recognise, default_currency).extraction.fields
        return path, fields, time.perf_counter() - started, None
    except Exception as exc:  # one bad file must not stop the run; it scores as all wrong
        return path, {}, time.perf_counter() - started, f"{type(exc).__name__}: {exc}"


def read_all(paths: list[str], jobs: int, default_currency: str | None) -> list[tuple]:
    jobs = max(1, int(jobs))
    tasks = [(p, default_currency) for p in paths]
    if jobs == 1:
        _init_ocr_worker()
        return [read_document(t) for t in tasks]
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    # largest files first, so that no big image is left alone at the end of the run
    order = sorted(tasks, key=lambda t: -os.path.getsize(t[0]))
    with ctx.Pool(jobs, initializer=_init_ocr_worker) as pool:
        by_path = {r[0]: r for r in pool.imap_unordered(read_document, order, chunksize=1)}
    return [by_path[p] for p in paths]


def _summary(dataset: str, folder: Path, documents: list[dict], per_doc: list, field_names, started: float,
             **extra) -> dict[str, Any]:
    summary = aggregate(per_doc, field_names)
    return {"dataset": dataset, "path": str(folder), "documents": len(documents),
            "errors": sum(1 for d in documents if d["error"]), "fields": summary["fields"],
            "counts": summary["counts"], "mean": summary["mean"],
            "seconds": round(time.perf_counter() - started, 2), "per_document": documents, **extra}


def measure_receipts(data: str | os.PathLike | None = None, limit: int | None = None, jobs: int = 2,
                     default_currency: str = "MYR") -> dict[str, Any]:
    """Read every receipt of sroie-dev as the analyzer does and score it. Returns the summary."""
    folder = resolve_data(data) / RECEIPTS
    if not folder.is_dir():
        raise DataMissing(f"{folder} not found")
    records = read_labels(folder, limit)
    started = time.perf_counter()
    results = read_all([str(folder / rec["file"]) for rec in records], jobs, default_currency)
    per_doc, documents = [], []
    for rec, (path, fields, seconds, error) in zip(records, results):
        scores = score_sroie_document(rec["fields"], fields)
        per_doc.append(scores)
        documents.append({"file": rec["file"], "read_s": round(seconds, 3), "error": error, "correct": scores,
                          "label": {k: rec["fields"].get(k) for k in SROIE_FIELDS},
                          "predicted": {k: fields.get(f) for k, f in SROIE_FIELDS.items()}})
    return _summary(RECEIPTS, folder, documents, per_doc, SROIE_FIELDS, started, jobs=jobs)


def measure_expense_set(dataset: str, spec: dict, *, data=None, limit: int | None = None, jobs: int = 2,
                        originals: bool = False, implied: dict | None = None, name: str | None = None) -> dict[str, Any]:
    """Read every document of an invoice/ticket set (`originals`: the PDF/OFD beside each page
    image) and score it field by field. `implied`: label values the set's README states once
    for all documents (Chinese invoices and tickets are in CNY)."""
    folder = resolve_data(data) / dataset
    if not folder.is_dir():
        raise DataMissing(f"{folder} not found")
    records = read_labels(folder, limit)
    files = [rec.get("original_file", rec["file"]) if originals else rec["file"] for rec in records]
    started = time.perf_counter()
    results = read_all([str(folder / f) for f in files], jobs, None)
    per_doc, documents, by_format = [], [], {}
    for rec, file, (path, fields, seconds, error) in zip(records, files, results):
        labels = {**(implied or {}), **rec["fields"]}
        scores = score_fields(spec, labels, fields)
        per_doc.append(scores)
        by_format.setdefault(Path(file).suffix.lower().lstrip("."), []).append(scores)
        documents.append({"file": file, "read_s": round(seconds, 3), "error": error, "correct": scores,
                          "label": {k: labels.get(k) for k in spec},
                          "predicted": {k: _get(fields, p) for k, (p, _) in spec.items()}})
    formats = {fmt: aggregate(rows, spec)["fields"] for fmt, rows in by_format.items()} if len(by_format) > 1 else {}
    return _summary(name or dataset, folder, documents, per_doc, spec, started, jobs=jobs, by_format=formats)


def measure_invoices(data=None, limit: int | None = None, jobs: int = 2, default_currency: str = "MYR") -> dict[str, Any]:
    """invoices-dev read as the analyzer reads it, scored where the page shows the value."""
    folder = resolve_data(data) / INVOICES
    if not folder.is_dir():
        raise DataMissing(f"{folder} not found")
    # a document whose page shows none of the scored values (a scan without a text layer whose
    # labels were made from elsewhere) scores nothing: it is not read
    records = [rec for rec in read_labels(folder, limit)
               if any((rec.get("visible") or {}).get(k, True) for k in INVOICES_FIELDS if k in rec["fields"])]
    started = time.perf_counter()
    results = read_all([str(folder / rec["file"]) for rec in records], jobs, default_currency)
    per_doc, documents = [], []
    for rec, (path, fields, seconds, error) in zip(records, results):
        visible = rec.get("visible") or {}
        labels = {k: v for k, v in rec["fields"].items() if visible.get(k, True)}
        scores = score_fields(INVOICES_FIELDS, labels, fields)
        per_doc.append(scores)
        documents.append({"file": rec["file"], "read_s": round(seconds, 3), "error": error, "correct": scores,
                          "label": {k: labels.get(k) for k in INVOICES_FIELDS},
                          "predicted": {k: _get(fields, p) for k, (p, _) in INVOICES_FIELDS.items()}})
    return _summary(INVOICES, folder, documents, per_doc, INVOICES_FIELDS, started, jobs=jobs)


def _get(fields: dict, path: str):
    from bench.scoring import field_value

    return field_value(fields, path)


# --------------------------------------------------------------------------------------------
# Contracts


def pdf_text(path: Path) -> str:
    """The text layer of every page, pages joined by a newline."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        pages = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            pages.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return "\n".join(pages)
    finally:
        pdf.close()


def measure_contracts(data: str | os.PathLike | None = None, limit: int | None = None) -> dict[str, Any]:
    """Extract and score every contract of contracts-dev. When worker.extract.contract cannot
    be imported the result says so ("skipped" with the reason) instead of scoring anything."""
    folder = resolve_data(data) / CONTRACTS
    if not folder.is_dir():
        raise DataMissing(f"{folder} not found")
    try:
        from worker.extract.contract import extract_contract
    except Exception as exc:  # not written yet, or broken mid-edit: say so, don't fake numbers
        return {"dataset": CONTRACTS, "path": str(folder), "skipped": f"cannot import worker.extract.contract.extract_contract: {type(exc).__name__}: {exc}"}
    records = read_labels(folder, limit)
    started = time.perf_counter()
    per_doc = []
    documents = []
    for rec in records:
        error = None
        fields: dict = {}
        try:
            fields = extract_contract(pdf_text(folder / rec["file"])).fields
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
        scores = score_kleister_document(rec["fields"], fields)
        per_doc.append(scores)
        documents.append({
            "file": rec["file"],
            "error": error,
            "score": scores,
            "label": {k: rec["fields"].get(k) for k in KLEISTER_FIELDS},
            "predicted": {k: fields.get(f) for k, f in KLEISTER_FIELDS.items()},
        })
    summary = aggregate(per_doc, KLEISTER_FIELDS)
    return {
        "dataset": CONTRACTS,
        "path": str(folder),
        "documents": len(records),
        "errors": sum(1 for d in documents if d["error"]),
        "fields": summary["fields"],
        "counts": summary["counts"],
        "mean": summary["mean"],
        "seconds": round(time.perf_counter() - started, 2),
        "per_document": documents,
    }


# --------------------------------------------------------------------------------------------
# Output


def _fmt(v: float | None) -> str:
    return "   n/a" if v is None else f"{v:6.3f}"


def print_table(result: dict[str, Any], show_failures: bool = False, out=sys.stdout) -> None:
    print(f"\n{result['dataset']}  ({result.get('path', '')})", file=out)
    if "skipped" in result:
        print(f"  skipped: {result['skipped']}", file=out)
        return
    print(f"  documents: {result['documents']}   errors: {result['errors']}   time: {result['seconds']} s", file=out)
    print(f"  {'field':<16}{'accuracy':>9}{'scored':>8}", file=out)
    for name, acc in result["fields"].items():
        print(f"  {name:<16}{_fmt(acc):>9}{result['counts'][name]:>8}", file=out)
    print(f"  {'mean':<16}{_fmt(result['mean']):>9}", file=out)
    for fmt, fields in (result.get("by_format") or {}).items():
        print(f"  {fmt}: " + ", ".join(f"{k} {_fmt(v).strip()}" for k, v in fields.items() if v is not None), file=out)
    if show_failures:
        key = "score" if result["dataset"] == CONTRACTS else "correct"
        for doc in result["per_document"]:
            for name, ok in doc[key].items():
                if float(ok) < 1.0:
                    print(f"    {doc['file']} {name}: label={doc['label'][name]!r} predicted={doc['predicted'][name]!r}", file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="shared data folder (default ../shared/data, from the project root)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents of each set")
    ap.add_argument("--jobs", type=int, default=2, help="OCR worker processes (default 2)")
    ap.add_argument("--only", choices=["receipts", "contracts", "fapiao-images", "fapiao-originals", "zugferd", "tickets",
                                       "invoices"],
                    default=None, help="measure one set only")
    ap.add_argument("--failures", action="store_true", help="list every wrong field")
    ap.add_argument("--json", action="store_true", help="print a machine-readable summary")
    args = ap.parse_args(argv)

    try:
        resolve_data(args.data)
    except DataMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    results = []
    if args.only in (None, "receipts"):
        results.append(measure_receipts(args.data, args.limit, args.jobs))
    if args.only in (None, "contracts"):
        results.append(measure_contracts(args.data, args.limit))
    cny = {"currency": "CNY"}
    if args.only in (None, "fapiao-images"):
        results.append(measure_expense_set(FAPIAO, FAPIAO_FIELDS, data=args.data, limit=args.limit, jobs=args.jobs,
                                           implied=cny, name=FAPIAO + " (page images)"))
    if args.only in (None, "fapiao-originals"):
        results.append(measure_expense_set(FAPIAO, FAPIAO_FIELDS, data=args.data, limit=args.limit, jobs=args.jobs,
                                           originals=True, implied=cny, name=FAPIAO + " (PDF/OFD originals)"))
    if args.only in (None, "zugferd"):
        results.append(measure_expense_set(ZUGFERD, ZUGFERD_FIELDS, data=args.data, limit=args.limit, jobs=args.jobs))
    if args.only in (None, "tickets"):
        results.append(measure_expense_set(TICKETS, TICKET_FIELDS, data=args.data, limit=args.limit, jobs=args.jobs,
                                           implied=cny))
    if args.only in (None, "invoices"):
        results.append(measure_invoices(args.data, args.limit, args.jobs))

    if args.json:
        summary = {
            r["dataset"]: (
                {"skipped": r["skipped"]} if "skipped" in r else {
                    k: r[k] for k in ("documents", "errors", "fields", "counts", "mean", "seconds")
                }
            )
            for r in results
        }
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        for r in results:
            print_table(r, show_failures=args.failures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
