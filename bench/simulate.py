"""What-if speed: a policy version simulated over 10,000 stored decisions, against evaluating the
same fields with `evaluate()` in memory, in the same run.

    .venv/bin/python bench/simulate.py [-n 10000] [--runs 3] [--postgres [DSN]]

Builds a fresh database (SQLite in a temporary folder; with --postgres a fresh database on the
machine's Postgres, or a throwaway server like the tests use, or DSN) and loads one tenant's n
expense claims as the worker leaves them: receipts in English and Chinese, meals and others, items,
totals, dates over 60 days, a perceptual hash per document (1% near-duplicate re-scans), and a
decision made by the built-in expense_policy on those fields at submission time. Stores a version
with a stricter meal cap (30 instead of 100), then times `docket.simulation.simulate` over all n
jobs (median of --runs): reading the jobs and decisions, the document facts (near-duplicates
among the tenant's jobs included) and the CEL checks. Also times a version that changes the
fields schema (no schema findings can be reused: every job is validated again).

Prints seconds and jobs/s for each, the transitions found, and the baseline: `evaluate()` with
the stricter version on the same n (fields, document) pairs already in memory, no database.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from db.models import Decision, Document, Job, Tenant  # noqa: E402
from db.review_queue import queue_values  # noqa: E402
from db.session import get_engine, session_factory  # noqa: E402
from docket import duplicates, policies, simulation  # noqa: E402
from docket.rules import evaluate, load_rules  # noqa: E402

TENANT = "bench-sim"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
MEALS = ["NASI KANDAR RESTORAN", "SUNRISE CAFE", "KOPITIAM MAJU", "Sushi King", "海底捞火锅", "鼎泰丰", "Old Town Kopitiam",
         "DIM SUM RESTAURANT", "Marrybrown", "星巴克咖啡"]
OTHERS = ["KEDAI BUKU MAJU", "Popular Bookstore", "Mr DIY", "Watsons", "Grab", "Petronas", "IKEA", "全家便利店",
          "Jaya Grocer", "Guardian Pharmacy"]
MEAL_ITEMS = ["NASI LEMAK AYAM", "TEH TARIK", "ROTI CANAI", "LATTE", "CHICKEN RICE", "SUSHI SET", "番茄锅底", "小笼包"]
OTHER_ITEMS = ["NOTEBOOK A5", "PEN BLUE", "MINERAL WATER", "PETROL RON95", "USB CABLE", "A4 PAPER", "牙膏"]


def receipt(rng: random.Random, created: datetime) -> dict:
    meal = rng.random() < 0.45
    items = [{"description": rng.choice(MEAL_ITEMS if meal else OTHER_ITEMS), "amount": round(rng.uniform(2, 80), 2)}
             for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.02:
        items.append({"description": "TIGER BEER", "amount": 18.0})
    total = round(sum(i["amount"] for i in items), 2)
    fields = {"merchant_name": rng.choice(MEALS if meal else OTHERS), "total": total,
              "transaction_date": (created - timedelta(days=rng.randint(0, 6))).date().isoformat(),
              "currency": "MYR" if rng.random() < 0.93 else "CNY", "items": items,
              "document_kind": "receipt", "expense_category": "meals" if meal else "office"}
    if rng.random() < 0.5:
        fields["tax"] = round(total * 0.06, 2)
        fields["subtotal"] = round(total - fields["tax"], 2)
    return fields


def load(url: str, n: int, builtin) -> list[tuple[dict, dict, datetime]]:
    """n jobs, documents and decisions of one tenant; returns (fields, document facts, created)."""
    rng = random.Random(7)
    engine = get_engine(url)
    jobs, documents, decisions, pairs = [], [], [], []
    phashes: list[str] = []
    earlier = np.zeros(n, dtype=np.uint64)  # as the worker's near-duplicate scan saw them
    ids: list[str] = []
    for i in range(n):
        created = NOW - timedelta(seconds=(n - i) * (60 * 86400 / n))
        sha = f"{i:064x}"
        if phashes and rng.random() < 0.01:  # a re-scan of an earlier receipt: a few bits off
            phash = f"{int(rng.choice(phashes), 16) ^ (1 << rng.randrange(64)):016x}"
        else:
            phash = f"{rng.getrandbits(64):016x}"
        phashes.append(phash)
        documents.append({"sha256": sha, "mime_type": "image/jpeg", "size": 100_000, "page_count": 1,
                          "storage_path": f"{sha[:2]}/{sha}.jpg", "phash": phash, "created_at": created})
        fields = receipt(rng, created)
        job_id = uuid.UUID(int=rng.getrandbits(128)).hex
        window = np.arange(max(0, i - duplicates.SCAN_LIMIT), i)[::-1]
        distances = np.bitwise_count(earlier[window] ^ np.uint64(int(phash, 16)))
        near = np.flatnonzero(distances <= 6)
        near = [ids[window[k]] for k in near[np.argsort(distances[near], kind="stable")]]
        earlier[i] = np.uint64(int(phash, 16))
        ids.append(job_id)
        doc = {"text": "", "pages": 1, "mime_type": "image/jpeg", "filename": f"r{i}.jpg", "invalid_tax_ids": [],
               "qr_mismatches": [], **duplicates.facts(near)}
        pairs.append((fields, doc, created))
        verdict = evaluate(builtin, fields, doc, now=created)
        jobs.append({"id": job_id, "tenant_id": TENANT, "document_sha256": sha, "filename": f"r{i}.jpg",
                     "rule_name": builtin.name, "rule_version": builtin.version, "analyzer": "ocr",
                     "status": "succeeded", "attempts": 1, "created_at": created, "started_at": created,
                     "finished_at": created, "analysis_round": 0,
                     **queue_values(verdict.decision, fields, created)})
        decisions.append({"tenant_id": TENANT, "job_id": job_id, "origin": "analysis:0", "decision": verdict.decision,
                          "fields": fields, "reasons": verdict.reasons, "confidence": {}, "evidence": {},
                          "rule_name": builtin.name, "rule_version": builtin.version, "analyzer": "ocr",
                          "timings": {}, "model_output": None, "sources": {}, "text": "", "created_at": created})
    with engine.begin() as conn:
        conn.execute(insert(Tenant), [{"id": TENANT, "webhook_secret": "whsec_bench", "created_at": NOW}])
        for table, rows in ((Document, documents), (Job, jobs), (Decision, decisions)):
            for start in range(0, len(rows), 2000):
                conn.execute(insert(table), rows[start:start + 2000])
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", nargs="?", const="", default=None, metavar="DSN",
                        help="use Postgres (the machine's, a throwaway one, or DSN) instead of SQLite")
    args = parser.parse_args()

    drop = None
    if args.postgres is None:
        folder = tempfile.mkdtemp(prefix="docket-bench-sim-")
        url = f"sqlite:///{folder}/bench.db"
    elif args.postgres:
        url = args.postgres
    else:
        from tests import services

        throwaway = services.Throwaway()
        url, dropper = services.fresh_database(services.postgres(throwaway))
        drop = lambda: (dropper(), throwaway.close())  # noqa: E731
    try:
        run(url, args.n, args.runs)
    finally:
        get_engine(url).dispose()
        if drop:
            drop()


def run(url: str, n: int, runs: int) -> None:
    upgrade(url)
    builtins = load_rules()
    builtin = builtins["expense_policy"]
    source = policies.builtin_source(builtin)
    started = time.perf_counter()
    pairs = load(url, n, builtin)
    print(f"database: {url.split('://')[0]}; loaded {n} jobs with decisions in {time.perf_counter() - started:.1f} s")

    factory = session_factory(url)
    with factory() as session:
        strict, _ = policies.push(session, TENANT, "expense_policy", source.replace("meal_cap: 100.0", "meal_cap: 30.0"),
                                  actor="bench")
        reschema, _ = policies.push(session, TENANT, "expense_policy", source.replace(
            "  properties:\n    merchant_name:\n      type: string\n",
            "  properties:\n    merchant_name:\n      type: string\n      minLength: 1\n"), actor="bench")
        session.commit()
        versions = {"stricter meal cap": policies.find_rule(session, TENANT, "expense_policy", strict.version, builtins),
                    "fields schema changed": policies.find_rule(session, TENANT, "expense_policy", reschema.version,
                                                                builtins)}

    rows = []
    for label, candidate in versions.items():
        times, result = [], None
        for _ in range(runs):
            with factory() as session:
                t0 = time.perf_counter()
                result = simulation.simulate(session, TENANT, candidate, simulation.PolicyFilter(), builtins)
                times.append(time.perf_counter() - t0)
        assert result["evaluated"] == n, result["evaluated"]
        rows.append((label, statistics.median(times), result))

    candidate = versions["stricter meal cap"]
    t0 = time.perf_counter()
    for fields, doc, created in pairs:
        evaluate(candidate, fields, doc, now=created)
    baseline = time.perf_counter() - t0

    print(f"\nsimulate() over {n} jobs (median of {runs}):")
    for label, seconds, result in rows:
        print(f"  {label:<24} {seconds:6.2f} s  {n / seconds:8.0f} jobs/s  {seconds / baseline:5.2f}x baseline  "
              f"changed {result['changed']}: {result['transitions']}")
    print(f"  {'baseline: evaluate()':<24} {baseline:6.2f} s  {n / baseline:8.0f} jobs/s  "
          "(same fields in memory, validated, no database)")
    strict_result = rows[0][2]
    print(f"\nchecks firing more or less often (stricter meal cap): {strict_result['checks']}")


if __name__ == "__main__":
    main()
