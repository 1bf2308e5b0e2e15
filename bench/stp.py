"""Straight-through processing on the development sets: how many documents the expense policy
decides on its own (automation rate) and how many of those automatic decisions rest on a misread
field (silent-error rate), at the policy's `certainty:` thresholds and along a curve of one
threshold applied to every field the policy names.

    .venv/bin/python bench/stp.py [--data ../shared/data] [--limit N] [--jobs 2] [--cache DIR]
                                  [--png stp.png] [--json]

Each document is read as the CPU analyzer reads it (`worker.extract.expense.read_expense`: the
file's own data, a verified QR code, the text layer or OCR) and decided by the built-in
`expense_policy` (or $DOCKET_RULES_DIR's) as the worker decides it, confidences, evidence and
sources included, with `now` one day after the labelled date (a claim submitted the day after
the purchase, so the claim window is the policy's and not the data set's age).

- automatic: the decision is `approve` or `reject` (no person looks at it);
- silent error: an automatic decision where a field that a check reads (any `fields.<name>` in a
  check, or a field named in `certainty`) is present and differs from the label (scored as
  bench/scoring.py scores it; a field the label lacks cannot be judged and counts as right);
- decision error: a silent error whose decision would have been another had the misread fields
  been read right (the labels put in their place): the misreads that cost something. A receipt
  whose merchant name lost one letter to OCR is a silent error, and only a decision error when
  the letter decided the meal check.

`--cache DIR` keeps each document's reading as JSON (keyed by the file's hash), so a second run
costs seconds instead of OCR; delete it after changing an extractor. The PNG is drawn with
Pillow (matplotlib is not a dependency).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import hashlib
import json
import multiprocessing
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.accuracy import MIME, DataMissing, _init_ocr_worker, read_labels, resolve_data  # noqa: E402
from bench.scoring import (FAPIAO_FIELDS, SROIE_FIELDS, TICKET_FIELDS, ZUGFERD_FIELDS, _iso, _same,  # noqa: E402
                           field_value, parse_date_dayfirst, parse_decimal, sroie_field_correct)

#: One threshold for every field the policy names, from "off" to "only exact values".
CURVE = (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 1.0)
INVOICES_FIELDS = {"seller_name": ("merchant_name", "loose"), "issue_date": ("transaction_date", "date"),
                   "total": ("total", "money"), "currency": ("currency", "id")}


@dataclasses.dataclass(frozen=True)
class DevSet:
    name: str
    folder: str
    kind: str  # receipts | e-invoices | structured | tickets (the goals are per kind)
    spec: dict  # label name -> (our field path, comparison)
    originals: bool = False
    implied: dict = dataclasses.field(default_factory=dict)  # label values the set's README states once


SETS = (
    DevSet("sroie-dev (receipts)", "sroie-dev", "receipts", {k: (v, "sroie") for k, v in SROIE_FIELDS.items()}),
    DevSet("cn-fapiao-dev (page images)", "cn-fapiao-dev", "e-invoices", FAPIAO_FIELDS, implied={"currency": "CNY"}),
    DevSet("cn-fapiao-dev (PDF/OFD originals)", "cn-fapiao-dev", "structured", FAPIAO_FIELDS, originals=True,
           implied={"currency": "CNY"}),
    DevSet("zugferd-dev (embedded XML)", "zugferd-dev", "structured", ZUGFERD_FIELDS),
    DevSet("invoices-dev (read from the page)", "invoices-dev", "e-invoices", INVOICES_FIELDS),
    DevSet("cn-train-tickets-dev (2 photos)", "cn-train-tickets-dev", "tickets", TICKET_FIELDS,
           implied={"currency": "CNY"}),
)


# --- reading --------------------------------------------------------------------------------------

def read_one(task: tuple[str, str | None, str | None]) -> dict[str, Any]:
    """One document read as the CPU analyzer reads it: fields, confidences, evidence, sources."""
    path, currency, cache = task
    key = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:32] + f"-{currency or 'none'}"
    cached = Path(cache) / f"{key}.json" if cache else None
    if cached is not None and cached.is_file():
        return json.loads(cached.read_text())
    from docket.pages import prepare
    from worker.extract.expense import read_expense
    from worker.ocr import recognise

    started = time.perf_counter()
    try:
        document = prepare(Path(path), MIME[Path(path).suffix.lower()], max_side=2560, max_pages=10)
        reading = read_expense(document, recognise, currency)
        x = reading.extraction
        out = {"fields": x.fields, "confidence": x.confidence, "sources": x.sources,
               "evidence": {k: [list(b) for b in v] for k, v in x.evidence.items()}, "qr": reading.qr,
               "pages": document.page_count, "mime_type": document.mime_type, "error": None}
    except Exception as exc:  # one bad file must not stop the run: it goes to review (no fields)
        out = {"fields": {}, "confidence": {}, "sources": {}, "evidence": {}, "qr": None, "pages": 1,
               "mime_type": "", "error": f"{type(exc).__name__}: {exc}"}
    out["read_s"] = round(time.perf_counter() - started, 3)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(out, ensure_ascii=False, default=str))
    return out


def read_all(paths: list[str], currency: str | None, jobs: int, cache: str | None) -> list[dict]:
    tasks = [(p, currency, cache) for p in paths]
    if jobs <= 1 or len(tasks) <= 1:
        _init_ocr_worker()
        return [read_one(t) for t in tasks]
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(jobs, initializer=_init_ocr_worker) as pool:
        return list(pool.imap(read_one, tasks, chunksize=1))


# --- scoring ---------------------------------------------------------------------------------------

def _correct(kind: str, label_name: str, label: Any, predicted: Any) -> bool:
    if kind == "sroie":
        return sroie_field_correct(label_name, label, predicted)
    if kind == "loose":  # invoices-dev names: case, spaces and punctuation ignored, containment counts
        a, b = (re.sub(r"[\W_]+", "", str(v or "")).lower() for v in (label, predicted))
        return bool(a and b) and (a in b or b in a)
    return _same(kind, label, predicted)


def wrong_fields(dev: DevSet, record: dict, fields: dict) -> set[str]:
    """Top-level fields present in `fields` whose value differs from the label."""
    labels = {**dev.implied, **record["fields"]}
    visible = record.get("visible") or {}
    out = set()
    for name, (path, kind) in dev.spec.items():
        label = labels.get(name)
        if label in (None, "") or visible.get(name) is False:
            continue
        predicted = field_value(fields, path)
        if predicted is not None and not _correct(kind, name, label, predicted):
            out.add(path.split(".")[0])
    return out


def with_labels(dev: DevSet, record: dict, fields: dict, wrong: set[str]) -> dict:
    """`fields` with each misread field (top-level name in `wrong`) replaced by its label, in the
    form the reader gives it (ISO dates, numbers): what the policy would have seen from a perfect
    reading of those fields."""
    labels = {**dev.implied, **record["fields"]}
    out = json.loads(json.dumps(fields, default=str))
    for name, (path, kind) in dev.spec.items():
        top = path.split(".")[0]
        label = labels.get(name)
        if top not in wrong or label in (None, ""):
            continue
        if path == "transaction_date" or kind == "date":
            day = _iso(label) or parse_date_dayfirst(label)
            value: Any = day.isoformat() if day else label
        elif kind == "money" or path in ("total", "subtotal", "tax"):
            money = parse_decimal(label)
            value = float(money) if money is not None else label
        else:
            value = label
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[leaf] = value
    return out


def label_date(dev: DevSet, record: dict) -> _dt.date | None:
    for name, (path, _) in dev.spec.items():
        if path == "transaction_date" and record["fields"].get(name):
            value = record["fields"][name]
            return _iso(value) or parse_date_dayfirst(value)
    return None


def fields_read(rule) -> set[str]:
    """The fields a check reads, and those the policy's certainty names."""
    names = {m for c in rule.checks for m in re.findall(r"\bfields\s*\.\s*([A-Za-z_]\w*)", c.expr)}
    return names | set(rule.certainty)


# --- deciding ----------------------------------------------------------------------------------------

def decide(rule, reading: dict, now: _dt.datetime, *, calibrated: bool = False):
    """The worker's decision for one reading: its raw scores mapped by the shipped calibration
    (docket/calibration.py, as worker/analyzers/ocr.py does) unless `calibrated` already."""
    from docket import calibration, fx, invoice_facts
    from docket.rules import evaluate

    fields = reading["fields"]
    confidence = reading["confidence"] if calibrated else calibration.calibrate(fields, reading["confidence"],
                                                                                 reading["sources"])
    document = {"text": "", "pages": reading["pages"], "mime_type": reading["mime_type"], "filename": "",
                **invoice_facts.facts(None, None, fields, reading.get("qr"), with_history=False),
                # caps in the policy's currency, as the worker converts (the shipped ECB history)
                **fx.facts(fx.Rates(None, None), rule, fields)}
    sources = {k: reading["sources"].get(k, "ocr") for k in fields}
    return evaluate(rule, fields, document, now=now, confidence=confidence,
                    evidence=reading["evidence"], sources=sources)


def measure(dev: DevSet, rule, data, *, limit: int | None, jobs: int, cache: str | None) -> dict[str, Any]:
    from docket import calibration

    folder = resolve_data(data) / dev.folder
    if not folder.is_dir():
        raise DataMissing(f"{folder} not found")
    records = read_labels(folder, limit)
    files = [str(folder / (r.get("original_file", r["file"]) if dev.originals else r["file"])) for r in records]
    started = time.perf_counter()
    # The worker reads every document with the rule's default currency (worker/analyzers/ocr.py).
    readings = read_all(files, rule.default_currency, jobs, cache)
    read = fields_read(rule)
    thresholds = {"policy": rule.certainty, **{f"{t:g}": {f: t for f in rule.certainty} for t in CURVE}}
    rules = {k: dataclasses.replace(rule, certainty=c) for k, c in thresholds.items()}
    tally = {k: {"automatic": 0, "silent_errors": 0} for k in thresholds}
    decision_errors = 0
    per_field: dict[str, int] = {}
    to_review: dict[str, int] = {}
    documents = []
    for record, reading in zip(records, readings):
        # mapped once per document, as the worker does (the labels put in below change no document kind)
        reading = {**reading, "confidence": calibration.calibrate(reading["fields"], reading["confidence"],
                                                                  reading["sources"])}
        day = label_date(dev, record) or _dt.date.today()
        now = _dt.datetime.combine(day + _dt.timedelta(days=1), _dt.time(12), tzinfo=_dt.timezone.utc)
        wrong = wrong_fields(dev, record, reading["fields"]) & read
        row = {"file": Path(record.get("original_file", record["file"]) if dev.originals else record["file"]).name,
               "wrong": sorted(wrong), "error": reading.get("error"),
               "confidence": {f: reading["confidence"].get(f) for f in rule.certainty},
               "sources": {f: reading["sources"].get(f) for f in rule.certainty}}
        for key, variant in rules.items():
            verdict = decide(variant, reading, now, calibrated=True)
            decision = verdict.decision
            automatic = decision in ("approve", "reject")
            tally[key]["automatic"] += automatic
            tally[key]["silent_errors"] += automatic and bool(wrong)
            if key == "policy":
                row["decision"] = decision
                if not automatic:  # what a person is asked to look at, and why
                    for check in {r["check"].split(":")[0] for r in verdict.reasons}:
                        to_review[check] = to_review.get(check, 0) + 1
                if automatic:
                    for name in wrong:
                        per_field[name] = per_field.get(name, 0) + 1
                    if wrong:  # would a perfect reading of those fields have been decided otherwise?
                        fixed = decide(variant, {**reading, "fields": with_labels(dev, record, reading["fields"], wrong)},
                                       now, calibrated=True)
                        row["decision_if_read_right"] = fixed.decision
                        decision_errors += fixed.decision != decision
        documents.append(row)
    n = len(records)

    def rates(t: dict) -> dict:
        return {"automation_rate": round(t["automatic"] / n, 4) if n else None,
                "silent_error_rate": round(t["silent_errors"] / t["automatic"], 4) if t["automatic"] else 0.0,
                **t}

    policy = rates(tally["policy"])
    policy["decision_errors"] = decision_errors
    policy["decision_error_rate"] = round(decision_errors / policy["automatic"], 4) if policy["automatic"] else 0.0
    return {"dataset": dev.name, "kind": dev.kind, "documents": n, "policy": policy,
            "silent_errors_by_field": per_field, "review_reasons": dict(sorted(to_review.items(), key=lambda kv: -kv[1])),
            "curve": [{"threshold": t, **rates(tally[f"{t:g}"])} for t in CURVE],
            "seconds": round(time.perf_counter() - started, 2), "per_document": documents}


# --- output -----------------------------------------------------------------------------------------

def _pct(v: float | None) -> str:
    return "   n/a" if v is None else f"{100 * v:5.1f}%"


def print_tables(results: list[dict], rule, out=sys.stdout) -> None:
    shown = ", ".join(f"{k} >= {v:g}" for k, v in rule.certainty.items()) or "none"
    print(f"policy {rule.name} certainty: {shown}", file=out)
    print(f"\n{'dataset':<36}{'docs':>5}{'automation':>12}{'silent err':>12}{'decision err':>14}"
          "  wrong fields (automatic)", file=out)
    for r in results:
        p = r["policy"]
        wrong = ", ".join(f"{k} {v}" for k, v in sorted(r["silent_errors_by_field"].items())) or "-"
        print(f"{r['dataset']:<36}{r['documents']:>5}{_pct(p['automation_rate']):>12}"
              f"{_pct(p['silent_error_rate']):>12}{_pct(p['decision_error_rate']):>14}  {wrong}", file=out)
    print("silent err: automatic decisions resting on a misread field that a check reads; decision err: those "
          "whose decision a right reading of the misread fields would have changed", file=out)
    print("\nwhy the others went to a person (jobs per check, at the policy's thresholds):", file=out)
    for r in results:
        print(f"  {r['dataset']}: " + (", ".join(f"{k} {v}" for k, v in r["review_reasons"].items()) or "-"), file=out)
    print("\nautomation / silent-error rate with one threshold for every certainty field:", file=out)
    print(f"{'threshold':<10}" + "".join(f"{r['dataset'][:22]:>24}" for r in results), file=out)
    for i, t in enumerate(CURVE):
        cells = "".join(f"{_pct(r['curve'][i]['automation_rate']):>12}{_pct(r['curve'][i]['silent_error_rate']):>12}"
                        for r in results)
        print(f"{t:<10g}{cells}", file=out)


def draw_png(results: list[dict], path: Path) -> None:
    """Automation (blue) and silent-error (red) rate against the threshold, one panel per set."""
    from PIL import Image, ImageDraw

    pw, ph, pad = 360, 220, 40
    cols = 3
    rows = (len(results) + cols - 1) // cols
    image = Image.new("RGB", (cols * pw, rows * ph + 24), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 6), "automation (blue) and silent-error rate (red) vs certainty threshold", fill="black")
    for i, r in enumerate(results):
        x0, y0 = (i % cols) * pw + pad, (i // cols) * ph + 24 + 20
        w, h = pw - pad - 12, ph - 20 - 34
        draw.text((x0 - pad + 8, y0 - 18), f"{r['dataset'][:48]} (n={r['documents']})", fill="black")
        draw.rectangle([x0, y0, x0 + w, y0 + h], outline="gray")
        for v in (0.0, 0.5, 1.0):
            y = y0 + h - v * h
            draw.line([x0 - 3, y, x0, y], fill="gray")
            draw.text((x0 - 30, y - 6), f"{v:.1f}", fill="gray")
        for t in (0.0, 0.5, 1.0):
            x = x0 + t * w
            draw.text((x - 8, y0 + h + 4), f"{t:g}", fill="gray")
        for key, colour in (("automation_rate", (30, 90, 200)), ("silent_error_rate", (210, 40, 40))):
            points = [(x0 + c["threshold"] * w, y0 + h - (c[key] or 0.0) * h) for c in r["curve"]]
            draw.line(points, fill=colour, width=2)
            for x, y in points:
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    image.save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents of each set")
    ap.add_argument("--jobs", type=int, default=2, help="reader processes (default 2)")
    ap.add_argument("--cache", default=None, help="folder for cached readings (JSON per document)")
    ap.add_argument("--png", default="stp.png", help="where to draw the curve (default stp.png; '' for none)")
    ap.add_argument("--only", default=None, help="the sets whose name contains this")
    ap.add_argument("--json", action="store_true", help="print a machine-readable summary")
    args = ap.parse_args(argv)

    from docket.rules import default_rules_dir, load_rules

    rule = load_rules(default_rules_dir())["expense_policy"]
    try:
        resolve_data(args.data)
    except DataMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = []
    for dev in SETS:
        if args.only and args.only not in dev.name:
            continue
        try:
            results.append(measure(dev, rule, args.data, limit=args.limit, jobs=args.jobs, cache=args.cache))
        except DataMissing as exc:
            print(f"skipped {dev.name}: {exc}", file=sys.stderr)
    if args.json:
        print(json.dumps({"certainty": rule.certainty,
                          "sets": [{k: v for k, v in r.items() if k != "per_document"} for r in results]}, indent=2))
    else:
        print_tables(results, rule)
    if args.png and results:
        draw_png(results, Path(args.png))
        if not args.json:
            print(f"\ncurve: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
