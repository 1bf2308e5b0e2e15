"""Field-extraction accuracy on the development sets, scored as the project's owners score it.

    .venv/bin/python bench/accuracy.py [--data ../shared/data] [--limit N] [--jobs 2] [--json]

Receipts (`sroie-dev`): each image is opened, EXIF-rotated, converted to RGB, read with
`worker.ocr.recognise` (a pool of --jobs processes) and passed to
`extract_receipt(lines, default_currency="MYR")`. Contracts (`contracts-dev`): the text layer
of every page (pypdfium2) goes to `worker.extract.contract.extract_contract`. Scoring follows
`../shared/data/README.md` (see bench/scoring.py). Prints a table per dataset with per-field
accuracy and the mean; --json prints one machine-readable summary instead.

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
    KLEISTER_FIELDS,
    SROIE_FIELDS,
    aggregate,
    score_kleister_document,
    score_sroie_document,
)

DEFAULT_DATA = "../shared/data"
RECEIPTS = "sroie-dev"
CONTRACTS = "contracts-dev"


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

    worker.ocr builds its engine with rapidocr's defaults, which give every session as many
    threads as there are cores; with one process per core that oversubscribes the CPU and
    is about 30% slower than one thread each. The engine is pre-built here with the same
    settings plus single-threaded sessions; if worker.ocr ever stops exposing `_engine`, this
    does nothing and the defaults apply.
    """
    try:
        import worker.ocr as ocr_module

        if getattr(ocr_module, "_engine", "absent") is None:
            from rapidocr import RapidOCR

            ocr_module._engine = RapidOCR(params={
                "Global.log_level": "warning",
                "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            })
    except Exception:  # the defaults still work, only slower
        pass


def ocr_receipt(path: str) -> tuple[str, list, float, str | None]:
    """(path, OCR lines, seconds, error) for one receipt image: EXIF rotation, RGB, recognise."""
    from PIL import Image, ImageOps

    from worker.ocr import recognise

    started = time.perf_counter()
    try:
        with Image.open(path) as img:
            image = ImageOps.exif_transpose(img).convert("RGB")
        lines = recognise(image)
        return path, lines, time.perf_counter() - started, None
    except Exception as exc:  # one bad file must not stop the run; it scores as all wrong
        return path, [], time.perf_counter() - started, f"{type(exc).__name__}: {exc}"


def measure_receipts(data: str | os.PathLike | None = None, limit: int | None = None, jobs: int = 2,
                     default_currency: str = "MYR") -> dict[str, Any]:
    """OCR + extract every receipt of sroie-dev and score it. Returns the summary dict."""
    from worker.extract.receipt import extract_receipt

    folder = resolve_data(data) / RECEIPTS
    if not folder.is_dir():
        raise DataMissing(f"{folder} not found")
    records = read_labels(folder, limit)
    paths = [str(folder / rec["file"]) for rec in records]
    started = time.perf_counter()
    jobs = max(1, int(jobs))
    if jobs == 1:
        _init_ocr_worker()
        results = [ocr_receipt(p) for p in paths]
    else:
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        # largest files first, so that no big image is left alone at the end of the run
        order = sorted(paths, key=lambda p: -os.path.getsize(p))
        with ctx.Pool(jobs, initializer=_init_ocr_worker) as pool:
            by_path = {r[0]: r for r in pool.imap_unordered(ocr_receipt, order, chunksize=1)}
        results = [by_path[p] for p in paths]
    ocr_s = time.perf_counter() - started

    per_doc = []
    documents = []
    for rec, (path, lines, seconds, error) in zip(records, results):
        extraction = extract_receipt(lines, default_currency=default_currency)
        scores = score_sroie_document(rec["fields"], extraction.fields)
        per_doc.append(scores)
        documents.append({
            "file": rec["file"],
            "ocr_s": round(seconds, 3),
            "error": error,
            "correct": scores,
            "label": {k: rec["fields"].get(k) for k in SROIE_FIELDS},
            "predicted": {k: extraction.fields.get(f) for k, f in SROIE_FIELDS.items()},
        })
    summary = aggregate(per_doc, SROIE_FIELDS)
    return {
        "dataset": RECEIPTS,
        "path": str(folder),
        "documents": len(records),
        "errors": sum(1 for d in documents if d["error"]),
        "fields": summary["fields"],
        "counts": summary["counts"],
        "mean": summary["mean"],
        "seconds": round(time.perf_counter() - started, 2),
        "ocr_seconds": round(ocr_s, 2),
        "jobs": jobs,
        "per_document": documents,
    }


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
    if show_failures:
        key = "correct" if result["dataset"] == RECEIPTS else "score"
        for doc in result["per_document"]:
            for name, ok in doc[key].items():
                if float(ok) < 1.0:
                    print(f"    {doc['file']} {name}: label={doc['label'][name]!r} predicted={doc['predicted'][name]!r}", file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="shared data folder (default ../shared/data, from the project root)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents of each set")
    ap.add_argument("--jobs", type=int, default=2, help="OCR worker processes (default 2)")
    ap.add_argument("--only", choices=["receipts", "contracts"], default=None, help="measure one set only")
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
