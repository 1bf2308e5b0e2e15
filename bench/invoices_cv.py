"""Leave-one-issuer-out cross-validation of the invoice reader on invoices-dev.

    .venv/bin/python bench/invoices_cv.py [--data ../shared/data] [--jobs 2] [--rows FILE] [--target 0.95]

Every invoices-dev document is read once as the CPU analyzer reads it (bench/invoices.py:
`read_invoices_dev`, text layer or OCR, default currency MYR); `--rows FILE` reuses the rows that
`bench/invoices.py --json FILE` wrote. The folds are issuers (the seller label, folded): each
issuer's documents are held out in turn, never on both sides of a split.

What is tuned on the other issuers and measured on the held-out one: for each field, the least
confidence at which the reader's values are right at least `--target` of the time on the
training issuers (the shape of a policy's `certainty:` threshold). On the held-out issuer the
script counts how many values clear that threshold (automation) and how many of those are wrong
(silent errors). It also prints the plain accuracy per field over the held-out folds and the worst
issuer's, so that one issuer that reads badly cannot hide in the pooled figure.

The reader itself has no fitted parameters: its rules were written against kinds of failure
(labels in a language, a layout, a currency clue), and this split measures how its confidences
carry to issuers they were not tuned on. Synthetic and laid-out invoices in tests/ check the
rules on documents nobody tuned on.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIELDS = ("seller_name", "issue_date", "total", "currency", "invoice_number", "buyer_name")
GRID = (0.0, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 1.01)


def threshold(train: list[dict], field: str, target: float) -> float:
    """The least confidence at which `field` is right at least `target` of the time on `train`
    (values with no confidence never clear it); 1.01 (nothing automatic) when none does."""
    for t in GRID:
        kept = [r["correct"][field] for r in train
                if field in r["correct"] and (r["confidence"].get(field) or 0.0) >= t and r["predicted"].get(field) is not None]
        if kept and sum(kept) / len(kept) >= target:
            return t
    return GRID[-1]


def cross_validate(rows: list[dict], target: float) -> dict:
    groups = sorted({r["group"] for r in rows})
    out = {f: {"scored": 0, "right": 0, "automatic": 0, "silent_errors": 0, "thresholds": [], "worst": (1.0, "")}
           for f in FIELDS}
    for g in groups:
        held = [r for r in rows if r["group"] == g]
        train = [r for r in rows if r["group"] != g]
        for f in FIELDS:
            scored = [r for r in held if f in r["correct"]]
            if not scored:
                continue
            t = threshold(train, f, target)
            acc = out[f]
            acc["thresholds"].append(t)
            acc["scored"] += len(scored)
            right = sum(r["correct"][f] for r in scored)
            acc["right"] += right
            if right / len(scored) < acc["worst"][0]:
                acc["worst"] = (right / len(scored), g)
            for r in scored:
                if r["predicted"].get(f) is not None and (r["confidence"].get(f) or 0.0) >= t:
                    acc["automatic"] += 1
                    acc["silent_errors"] += not r["correct"][f]
    return {"folds": len(groups), "fields": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rows", type=Path, default=None, help="rows written by bench/invoices.py --json")
    ap.add_argument("--target", type=float, default=0.95, help="accuracy a threshold must reach on the training issuers")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.rows:
        rows = json.loads(args.rows.read_text())
    else:
        from bench.invoices import read_invoices_dev

        rows = read_invoices_dev(args.data, args.jobs)
    result = cross_validate(rows, args.target)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"invoices-dev, leave one issuer out: {len(rows)} documents, {result['folds']} issuers, "
          f"threshold target {args.target:.2f} on the training issuers")
    print(f"  {'field':<15}{'accuracy':>9}{'worst issuer':>14}{'automatic':>11}{'silent err':>11}  thresholds (min-max)")
    for f, a in result["fields"].items():
        if not a["scored"]:
            continue
        ts = a["thresholds"]
        print(f"  {f:<15}{a['right'] / a['scored']:>9.3f}{a['worst'][0]:>14.2f}{a['automatic'] / a['scored']:>11.3f}"
              f"{a['silent_errors']:>11}  {min(ts):.2f}-{max(ts):.2f}   (worst: {a['worst'][1] or '-'})")


if __name__ == "__main__":
    main()
