"""Rebuild the confidence calibration (docket/calibration.json) from the development sets, and say
how well calibrated each field is on documents the map was not fitted on.

    .venv/bin/python bench/calibrate.py [--data ../shared/data] [--cache DIR] [--jobs 2]
                                        [--write] [--png reliability.png] [--json]

Every document of every expense dev set (bench/stp.py's sets) is read as the worker reads it;
each field with a label gives one sample: the reader's raw score and whether the value was
right (bench/scoring.py's comparison). Per group (document kind / field / source, and the
field across kinds as the fallback) an isotonic regression of right-or-wrong on the raw score
gives steps of documents; each step's rate is shrunk by a uniform prior ((right + 1) / (n + 2)),
so a step of 20 documents that were all right says 0.95, not 1.0, and monotonicity is restored
over the shrunk steps. Exact sources (an e-invoice's XML, a verified QR code) are not mapped.

What it prints, per dev set and field: samples, accuracy, and the expected calibration error
(ECE, 10 equal-width bins) of the raw scores, of the map fitted on everything (in-sample), of
5-fold cross-fitting (each document scored by a map fitted without it) and of leave-one-set-out
(each set scored by a map fitted on the other sets only: the honest figure for a new kind of
document). Then the straight-through figures of bench/stp.py with cross-fitted confidences at the
policy's thresholds: automation and silent errors without the in-sample advantage.

`--write` writes the map fitted on all sets to docket/calibration.json (what the worker uses).
Needs scikit-learn (`pip install scikit-learn==1.9.1`; not a runtime dependency: the worker only
reads the steps).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.accuracy import DataMissing, read_labels, resolve_data  # noqa: E402
from bench.scoring import field_value  # noqa: E402
from bench.stp import SETS, DevSet, _correct, read_all  # noqa: E402
from docket import calibration  # noqa: E402

MIN_GROUP = 20  # fewer samples than this: the group is not fitted (a wider group answers)
FOLDS = 5
BINS = 10


# --- samples ----------------------------------------------------------------------------------------

def judged(dev: DevSet, record: dict, fields: dict) -> dict[str, bool]:
    """Top-level field -> whether its value is right, for each present field with a label (a
    field with several labelled parts, e.g. a ticket's `travel`, is right when all are)."""
    labels = {**dev.implied, **record["fields"]}
    visible = record.get("visible") or {}
    out: dict[str, bool] = {}
    for name, (path, kind) in dev.spec.items():
        label = labels.get(name)
        if label in (None, "") or visible.get(name) is False:
            continue
        predicted = field_value(fields, path)
        if predicted is None:
            continue
        top = path.split(".")[0]
        out[top] = out.get(top, True) and _correct(kind, name, label, predicted)
    return out


def documents(dev: DevSet, data: str, default_currency: str | None, jobs: int, cache: str | None):
    """Each labelled document of a dev set: (label record, document id, reading as the worker reads it)."""
    folder = resolve_data(data) / dev.folder
    if not folder.is_dir():
        raise DataMissing(f"{folder} not found")
    records = read_labels(folder)
    files = [str(folder / (r.get("original_file", r["file"]) if dev.originals else r["file"])) for r in records]
    for record, file, reading in zip(records, files, read_all(files, default_currency, jobs, cache)):
        yield record, hashlib.sha256(f"{dev.name}|{file}".encode()).hexdigest()[:12], reading


def collect(data: str, cache: str | None, jobs: int, default_currency: str | None) -> list[dict]:
    """One sample per (document, judged field) of every set: set, document id, kind, field,
    source, raw score, right."""
    samples = []
    for dev in SETS:
        for record, doc, reading in documents(dev, data, default_currency, jobs, cache):
            fields = reading["fields"]
            for name, right in judged(dev, record, fields).items():
                raw = reading["confidence"].get(name)
                if raw is None:
                    continue
                samples.append({"set": dev.name, "doc": doc, "kind": fields.get("document_kind") or "other",
                                "field": name, "source": reading["sources"].get(name) or "ocr",
                                "raw": float(raw), "right": bool(right)})
    return samples


# --- fitting ------------------------------------------------------------------------------------------

def _steps(raw: list[float], right: list[bool]) -> dict[str, Any]:
    """Isotonic steps of right-or-wrong on the raw score, each shrunk to (right + 1) / (n + 2)."""
    import numpy as np
    from sklearn.isotonic import IsotonicRegression

    x = np.asarray(raw, dtype=float)
    y = np.asarray(right, dtype=float)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y).predict(x)
    blocks: list[list[float]] = []  # [lowest raw, right, n] per run of equal fitted values
    for xi, yi, fi in zip(x, y, fitted):
        if blocks and abs(blocks[-1][3] - fi) < 1e-12:
            blocks[-1][1] += yi
            blocks[-1][2] += 1
        else:
            blocks.append([xi, yi, 1.0, fi])
    # shrink, then pool adjacent steps that shrinking left out of order (weighted by size)
    pooled: list[list[float]] = []
    for low, k, n, _ in blocks:
        pooled.append([low, k, n])
        while len(pooled) > 1 and (pooled[-2][1] + 1) / (pooled[-2][2] + 2) >= (pooled[-1][1] + 1) / (pooled[-1][2] + 2):
            last = pooled.pop()
            pooled[-1][1] += last[1]
            pooled[-1][2] += last[2]
    return {"x": [round(float(p[0]), 4) for p in pooled],
            "y": [round((p[1] + 1) / (p[2] + 2), 4) for p in pooled],
            "n": [int(p[2]) for p in pooled]}


def fit(samples: Iterable[dict]) -> dict[str, Any]:
    """The map: a step function per group with at least MIN_GROUP samples."""
    by_group: dict[str, list[dict]] = defaultdict(list)
    for s in samples:
        if s["source"] in calibration.EXACT_SOURCES:
            continue
        for key in calibration.group_keys(s["kind"], s["field"], s["source"]):
            by_group[key].append(s)
    groups = {key: _steps([s["raw"] for s in rows], [s["right"] for s in rows])
              for key, rows in sorted(by_group.items()) if len(rows) >= MIN_GROUP}
    return {"groups": groups}


def predict(mapping: dict, s: dict) -> float:
    if s["source"] in calibration.EXACT_SOURCES:
        return s["raw"]
    for key in calibration.group_keys(s["kind"], s["field"], s["source"]):
        if key in mapping["groups"]:
            return calibration.probability(mapping["groups"][key], s["raw"])
    return s["raw"]


def cross_fitted(samples: list[dict], split) -> list[float]:
    """Each sample scored by a map fitted on the samples of other parts (`split(s)` names the part)."""
    parts = sorted({split(s) for s in samples})
    out = [0.0] * len(samples)
    for part in parts:
        mapping = fit(s for s in samples if split(s) != part)
        for i, s in enumerate(samples):
            if split(s) == part:
                out[i] = predict(mapping, s)
    return out


def fold_of(s: dict) -> int:
    return int(s["doc"], 16) % FOLDS


# --- measuring -----------------------------------------------------------------------------------------

def ece(probs: list[float], right: list[bool]) -> float | None:
    if not probs:
        return None
    bins: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for p, r in zip(probs, right):
        bins[min(int(p * BINS), BINS - 1)].append((p, r))
    return sum(abs(sum(p for p, _ in b) / len(b) - sum(r for _, r in b) / len(b)) * len(b)
               for b in bins.values()) / len(probs)


def report(samples: list[dict], columns: dict[str, list[float]]) -> list[dict]:
    rows = []
    keys = sorted({(s["set"], s["field"]) for s in samples})
    for set_name, field in keys:
        idx = [i for i, s in enumerate(samples) if s["set"] == set_name and s["field"] == field]
        right = [samples[i]["right"] for i in idx]
        row = {"set": set_name, "field": field, "n": len(idx), "accuracy": round(sum(right) / len(idx), 3),
               "exact_share": round(sum(samples[i]["source"] in calibration.EXACT_SOURCES for i in idx) / len(idx), 3)}
        for name, probs in columns.items():
            value = ece([probs[i] for i in idx], right)
            row[f"ece_{name}"] = None if value is None else round(value, 3)
        rows.append(row)
    return rows


def stp_held_out(data: str, cache: str | None, jobs: int, samples: list[dict], held_out: list[float],
                 rule=None) -> list[dict]:
    """bench/stp.py's automation and silent-error rates at the policy's thresholds, each document's
    confidences cross-fitted (from a map that never saw it)."""
    from bench import stp
    from docket.rules import default_rules_dir, load_rules

    rule = rule or load_rules(default_rules_dir())["expense_policy"]
    by_doc: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for s, p in zip(samples, held_out):
        by_doc[(s["set"], s["doc"])][s["field"]] = p
    read = stp.fields_read(rule)
    out = []
    for dev in SETS:
        automatic = silent = n = 0
        for record, doc, reading in documents(dev, data, rule.default_currency, jobs, cache):
            n += 1
            # fields without a label have no held-out score: the shipped map scores them
            confidence = {**calibration.calibrate(reading["fields"], reading["confidence"], reading["sources"]),
                          **by_doc.get((dev.name, doc), {})}
            day = stp.label_date(dev, record) or _dt.date.today()
            now = _dt.datetime.combine(day + _dt.timedelta(days=1), _dt.time(12), tzinfo=_dt.timezone.utc)
            verdict = stp.decide(rule, {**reading, "confidence": confidence}, now, calibrated=True)
            auto = verdict.decision in ("approve", "reject")
            automatic += auto
            silent += auto and bool(stp.wrong_fields(dev, record, reading["fields"]) & read)
        out.append({"set": dev.name, "documents": n, "automation_rate": round(automatic / n, 4) if n else None,
                    "silent_error_rate": round(silent / automatic, 4) if automatic else 0.0,
                    "automatic": automatic, "silent_errors": silent})
    return out


def draw_reliability(samples: list[dict], probs: list[float], path: Path) -> None:
    """One panel per field: observed accuracy (dots sized by count) against the cross-fitted
    confidence, in 10 bins; the diagonal is perfect calibration."""
    from PIL import Image, ImageDraw

    fields = sorted({s["field"] for s in samples})
    pw, ph, pad, cols = 300, 300, 40, 4
    rows = (len(fields) + cols - 1) // cols
    image = Image.new("RGB", (cols * pw, rows * ph + 24), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 6), "reliability: observed accuracy vs calibrated confidence (5-fold cross-fitted)", fill="black")
    for i, field in enumerate(fields):
        x0, y0 = (i % cols) * pw + pad, (i // cols) * ph + 24 + 20
        size = pw - pad - 16
        idx = [j for j, s in enumerate(samples) if s["field"] == field]
        draw.text((x0 - pad + 8, y0 - 18), f"{field} (n={len(idx)})", fill="black")
        draw.rectangle([x0, y0, x0 + size, y0 + size], outline="gray")
        draw.line([x0, y0 + size, x0 + size, y0], fill=(180, 180, 180))
        for v in (0.0, 0.5, 1.0):
            draw.text((x0 - 28, y0 + size - v * size - 6), f"{v:.1f}", fill="gray")
            draw.text((x0 + v * size - 8, y0 + size + 4), f"{v:.1f}", fill="gray")
        bins: dict[int, list[int]] = defaultdict(list)
        for j in idx:
            bins[min(int(probs[j] * BINS), BINS - 1)].append(j)
        for members in bins.values():
            conf = sum(probs[j] for j in members) / len(members)
            acc = sum(samples[j]["right"] for j in members) / len(members)
            r = 2 + min(10, len(members) ** 0.5)
            x, y = x0 + conf * size, y0 + size - acc * size
            draw.ellipse([x - r, y - r, x + r, y + r], outline=(30, 90, 200), width=2)
    image.save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--cache", default=None, help="folder for cached readings (bench/stp.py's)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--write", action="store_true", help=f"write the map to {calibration.MAP_PATH}")
    ap.add_argument("--png", default="reliability.png", help="reliability plot ('' for none)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from docket.rules import default_rules_dir, load_rules

    rule = load_rules(default_rules_dir())["expense_policy"]
    try:
        samples = collect(args.data, args.cache, args.jobs, rule.default_currency)
    except DataMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    mapping = fit(samples)
    columns = {
        "raw": [s["raw"] for s in samples],
        "in_sample": [predict(mapping, s) for s in samples],
        "5fold": cross_fitted(samples, fold_of),
        "leave_set_out": cross_fitted(samples, lambda s: s["set"]),
    }
    rows = report(samples, columns)
    held_out = stp_held_out(args.data, args.cache, args.jobs, samples, columns["5fold"])
    if args.write:
        mapping = {"built": _dt.date.today().isoformat(), "method": "isotonic, steps shrunk (k+1)/(n+2)",
                   "samples": len(samples), "sets": sorted({s["set"] for s in samples}), **mapping}
        calibration.MAP_PATH.write_text(json.dumps(mapping, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if args.png:
        draw_reliability(samples, columns["5fold"], Path(args.png))
    if args.json:
        print(json.dumps({"fields": rows, "stp_cross_fitted": held_out, "groups": sorted(mapping["groups"])}, indent=1))
        return 0
    print(f"{'dev set':<36}{'field':<18}{'n':>4}{'acc':>7}{'exact':>7}"
          f"{'ECE raw':>9}{'in-smp':>8}{'5-fold':>8}{'leave-set-out':>15}")
    for r in rows:
        cells = "".join(f"{'-' if r[k] is None else format(r[k], '.3f'):>{w}}"
                        for k, w in (("ece_raw", 9), ("ece_in_sample", 8), ("ece_5fold", 8), ("ece_leave_set_out", 15)))
        print(f"{r['set'][:35]:<36}{r['field'][:17]:<18}{r['n']:>4}{r['accuracy']:>7.3f}{r['exact_share']:>7.2f}{cells}")
    pooled = {name: ece(probs, [s["right"] for s in samples]) for name, probs in columns.items()}
    print("\nall fields, all sets: ECE " + ", ".join(f"{k} {v:.3f}" for k, v in pooled.items()))
    shown = ", ".join(f"{k} >= {v:g}" for k, v in rule.certainty.items())
    print(f"\nstraight-through at the policy's certainty ({shown}), confidences 5-fold cross-fitted:")
    for r in held_out:
        print(f"  {r['set']:<36} automatic {100 * (r['automation_rate'] or 0):5.1f}%  "
              f"silent errors {100 * r['silent_error_rate']:5.1f}% ({r['silent_errors']}/{r['automatic']})")
    if args.write:
        print(f"\nwrote {calibration.MAP_PATH.relative_to(ROOT)} ({len(mapping['groups'])} groups)")
    if args.png:
        print(f"reliability plot: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
