"""The reviewer queue's queries at 100,000 jobs, against the same queries on a 1,000-job tenant in
the same database, in the same run.

    .venv/bin/python bench/queries.py [--dsn postgresql+psycopg://postgres@127.0.0.1:5432/NAME]
                                      [-n 100000] [--small 1000] [--runs 7] [--keep]

Creates the database (DSN from --dsn or $DOCKET_BENCH_DSN; default a fresh `docket_bench_…` on the
machine's Postgres, or a throwaway server like the tests use), runs the migrations, bulk-loads a big
tenant (n jobs) and a small one with COPY: documents, jobs and their decisions, 3 rules, ~15%
needs_review, merchants in Chinese and English, amounts, OCR-like text, created over 90 days, a few
reviews. Then ANALYZE, and each query the dashboard runs (db.queries, db.stats, api.export) is
timed as the median of --runs runs per tenant. Prints ms for both tenants and big/small: the queue
pages and filtered pages should stay near 1 (index-bound); counts and stats aggregate the tenant's
rows, so they grow with it. Prints EXPLAIN ANALYZE of the queue's first and deep page. Drops the
database at the end unless --keep.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import text, tuple_  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402

from api.export import csv_chunks  # noqa: E402
from db import stats  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.models import Job  # noqa: E402
from db.queries import JobFilter, decision_counts, decode_cursor, encode_cursor, filtered, list_jobs  # noqa: E402
from db.review_queue import queue_values  # noqa: E402
from db.session import get_engine, session_factory  # noqa: E402
from tests import services  # noqa: E402

NOW = datetime.now(timezone.utc).replace(microsecond=0)
BIG, SMALL = "bench-big", "bench-small"

ZH_SHOPS = ["星巴克咖啡", "海底捞火锅", "西贝莜面村", "麦当劳", "肯德基", "喜茶", "瑞幸咖啡", "全家便利店", "盒马鲜生",
            "永和大王", "真功夫", "呷哺呷哺", "外婆家", "鼎泰丰", "味千拉面"]
ZH_BRANCHES = ["国贸店", "望京店", "中关村店", "南京西路店", "天河城店", "春熙路店", "西湖店", "陆家嘴店"]
EN_SHOPS = ["KEDAI BUKU MAJU", "SUNRISE CAFE", "Starbucks", "Old Town White Coffee", "Secret Recipe", "Marrybrown",
            "Texas Chicken", "Popular Bookstore", "Mr DIY", "Watsons", "Guardian Pharmacy", "Grab", "Petronas",
            "Shell", "Tealive", "Nando's", "Sushi King", "Uniqlo", "IKEA", "Jaya Grocer"]
EN_BRANCHES = ["KLCC", "Mid Valley", "Pavilion", "Sunway Pyramid", "1 Utama", "Bangsar", "Puchong", "Penang"]
ZH_ITEMS = ["拿铁", "美式咖啡", "番茄锅底", "肥牛卷", "青岛啤酒", "米饭", "宫保鸡丁", "小笼包", "牛肉面", "豆浆", "油条"]
EN_ITEMS = ["NASI LEMAK AYAM", "TEH TARIK", "ROTI CANAI", "LATTE", "AMERICANO", "NOTEBOOK A5", "PEN BLUE",
            "CHICKEN RICE", "MINERAL WATER", "PETROL RON95", "CAKE SLICE", "SUSHI SET"]
COMPANIES = ["Northwind Traders Inc.", "Contoso Analytics LLC", "Acme Sdn Bhd", "深圳华强电子有限公司",
             "上海浦东发展有限公司", "Globex Corporation", "Initech Bhd", "腾飞科技(北京)有限公司", "Umbrella Pte Ltd"]
LAWS = ["Malaysia", "Singapore", "Delaware", "England and Wales", "中华人民共和国"]
RULE_WEIGHTS = (("expense_policy", 0.6), ("contract_review", 0.2), ("screenshot_moderation", 0.2))


def pick(rng: random.Random, weighted) -> str:
    x, total = rng.random(), 0.0
    for value, weight in weighted:
        total += weight
        if x < total:
            return value
    return weighted[-1][0]


def make_job(rng: random.Random, tenant: str, i: int) -> tuple[dict, dict | None]:
    """One job row (and its decision row), as the API and the worker would have left them."""
    rule = pick(rng, RULE_WEIGHTS)
    created = NOW - timedelta(seconds=rng.uniform(0, 90 * 86400))
    age = (NOW - created).total_seconds()
    status = pick(rng, (("succeeded", 0.97), ("failed", 0.03)))
    if age < 300:  # the last few minutes: still in flight
        status = pick(rng, (("queued", 0.5), ("running", 0.5)))
    decision = pick(rng, (("approve", 0.75), ("needs_review", 0.15), ("reject", 0.10)))
    if rule == "expense_policy":
        zh = rng.random() < 0.4
        shop = (f"{rng.choice(ZH_SHOPS)}({rng.choice(ZH_BRANCHES)})" if zh
                else f"{rng.choice(EN_SHOPS)} {rng.choice(EN_BRANCHES)}")
        items = [{"description": rng.choice(ZH_ITEMS if zh else EN_ITEMS), "amount": round(rng.uniform(2, 80), 2)}
                 for _ in range(rng.randint(1, 6))]
        total = round(sum(it["amount"] for it in items) * rng.choice((1, 1, 1, 3, 20)), 2)
        fields = {"merchant_name": shop, "transaction_date": (created - timedelta(days=rng.randint(0, 5))).date()
                  .isoformat(), "total": total, "currency": "CNY" if zh else "MYR", "items": items}
        lines = [shop, "地址: 北京市朝阳区" if zh else "NO. 12, JALAN MERANTI 3", created.strftime("%d/%m/%Y %H:%M")]
        lines += [f"{it['description']:<20}{it['amount']:>8.2f}" for it in items]
        lines += [f"{'合计' if zh else 'TOTAL RM'} {total:.2f}", "谢谢惠顾" if zh else "THANK YOU"]
    elif rule == "contract_review":
        parties = rng.sample(COMPANIES, 2)
        amounts = [{"value": rng.choice((5000, 25000, 120000, 800000, 6000000)), "currency": "MYR"}
                   for _ in range(rng.randint(1, 3))]
        law = rng.choice(LAWS)
        fields = {"parties": parties, "effective_date": created.date().isoformat(), "jurisdiction": law,
                  "term": "2 years", "term_months": 24, "amounts": amounts}
        lines = ["SERVICES AGREEMENT 服务协议", f"between {parties[0]} and {parties[1]}",
                 f"This Agreement is governed by the laws of {law}.", "本合同适用" + law + "法律。",
                 f"The total fees shall not exceed MYR {max(a['value'] for a in amounts):,}.",
                 "Either party may terminate with 30 days' written notice."]
    else:
        fields = {"contains_pii": rng.random() < 0.2, "language": rng.choice(("zh", "en"))}
        lines = [rng.choice(("聊天记录", "Chat", "订单详情", "Order details")),
                 f"用户{rng.randint(1000, 9999)}: 你好，请问发货了吗？", "Agent: Your parcel ships today.",
                 f"订单号 {rng.randint(10**9, 10**10)}"]
    sha = hashlib.sha256(f"{tenant}/{i}".encode()).hexdigest()
    job = {"id": uuid.UUID(int=rng.getrandbits(128)).hex, "tenant_id": tenant, "document_sha256": sha,
           "filename": f"doc-{i}.{'pdf' if rule == 'contract_review' else 'png'}", "rule_name": rule,
           "rule_version": "1", "analyzer": "ocr", "status": status, "attempts": 1 if status != "queued" else 0,
           "created_at": created, "enqueued_at": created, "review_rank": 1, "current_decision": None,
           "merchant": None, "amount": None, "decided_at": None, "reviewed_at": None,
           "started_at": created if status != "queued" else None, "finished_at": None}
    if status != "succeeded":
        return job, None
    decided = created + timedelta(seconds=rng.lognormvariate(1.5, 0.8))
    job.update(finished_at=decided, **queue_values(decision, fields, decided))
    if rng.random() < 0.04 and decided + timedelta(hours=2) < NOW:  # a person looked at it
        job["reviewed_at"] = decided + timedelta(minutes=rng.uniform(5, 120))
    dec = {"tenant_id": tenant, "job_id": job["id"], "decision": decision, "fields": fields,
           "text": "\n".join(lines), "created_at": decided, "rule_name": rule}
    return job, dec


JOB_COLS = ("id", "tenant_id", "document_sha256", "filename", "rule_name", "rule_version", "analyzer", "status",
            "attempts", "created_at", "enqueued_at", "started_at", "finished_at", "current_decision", "review_rank",
            "merchant", "amount", "decided_at", "reviewed_at")
DEC_COLS = ("tenant_id", "job_id", "decision", "fields", "reasons", "confidence", "evidence", "rule_name",
            "rule_version", "analyzer", "timings", "text", "created_at")
DOC_COLS = ("sha256", "mime_type", "size", "page_count", "original_filename", "storage_path", "created_at")
REV_COLS = ("tenant_id", "job_id", "reviewer_key_id", "reviewer", "decision_before", "decision_after",
            "fields_before", "fields_after", "comment", "created_at")


def load(conninfo: str, tenant: str, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with psycopg.connect(conninfo) as conn:
        conn.execute("INSERT INTO tenants (id, webhook_secret, created_at) VALUES (%s, 'whsec_bench', %s)",
                     (tenant, NOW - timedelta(days=365)))
        cur = conn.cursor()
        rows = [make_job(rng, tenant, i) for i in range(n)]
        with cur.copy(f"COPY documents ({', '.join(DOC_COLS)}) FROM STDIN") as copy:
            for job, _ in rows:
                pdf = job["rule_name"] == "contract_review"
                copy.write_row((job["document_sha256"], "application/pdf" if pdf else "image/png",
                                rng.randint(20_000, 900_000), 2 if pdf else 1, job["filename"],
                                f"{job['document_sha256'][:2]}/{job['document_sha256']}", job["created_at"]))
        with cur.copy(f"COPY jobs ({', '.join(JOB_COLS)}) FROM STDIN") as copy:
            for job, _ in rows:
                copy.write_row(tuple(job[c] for c in JOB_COLS))
        empty, timings = "{}", json.dumps({"preprocess_s": 0.05, "analyze_s": 0.8, "rules_s": 0.001})
        with cur.copy(f"COPY decisions ({', '.join(DEC_COLS)}) FROM STDIN") as copy:
            for job, dec in rows:
                if dec is None:
                    continue
                reasons = "[]" if dec["decision"] == "approve" else json.dumps(
                    [{"check": "meal_cap", "outcome": dec["decision"], "message": "Meal receipts over MYR 100"}])
                copy.write_row((tenant, job["id"], dec["decision"], json.dumps(dec["fields"], ensure_ascii=False),
                                reasons, empty, empty, dec["rule_name"], "1", "ocr", timings, dec["text"],
                                dec["created_at"]))
        with cur.copy(f"COPY reviews ({', '.join(REV_COLS)}) FROM STDIN") as copy:
            for job, dec in rows:
                if job["reviewed_at"] is not None:
                    fields = json.dumps(dec["fields"], ensure_ascii=False)
                    copy.write_row((tenant, job["id"], "k1", "Alice (k1)", dec["decision"], job["current_decision"],
                                    fields, fields, "checked", job["reviewed_at"]))
        conn.commit()


def sql(query) -> str:
    # pyformat doubles '%' in literals; text() doubles it again for the driver, which undoes one.
    return str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})).replace("%%", "%")


class Bench:
    def __init__(self, url: str, runs: int):
        self.url, self.runs = url, runs
        self.make = session_factory(url)

    def time(self, fn) -> float:
        """Median ms of `runs` runs, after one warm-up; a fresh session each (no identity map help)."""
        times = []
        for i in range(self.runs + 1):
            with self.make() as session:
                started = time.perf_counter()
                fn(session)
                elapsed = time.perf_counter() - started
                session.rollback()
            if i:
                times.append(elapsed * 1000)
        return statistics.median(times)

    def deep_cursor(self, tenant: str, position: int) -> str:
        with self.make() as session:
            query = filtered(JobFilter(tenant=tenant)).order_by(Job.review_rank, Job.created_at, Job.id)
            job = session.scalars(query.offset(position).limit(1)).one()
            return encode_cursor(job, "queue")

    def explain(self, query) -> str:
        with self.make() as session:
            plan = session.execute(text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql(query))).scalars().all()
        return "\n".join("    " + line for line in plan)


def queries(bench: Bench, tenant: str, size: int) -> dict[str, callable]:
    f = lambda **kw: JobFilter(tenant=tenant, **kw)  # noqa: E731
    deep = bench.deep_cursor(tenant, size // 2)
    since30, since90 = NOW - timedelta(days=30), NOW - timedelta(days=90)

    def page(flt, **kw):
        return lambda s: list_jobs(s, flt, limit=50, **kw)

    return {
        "queue, first page": page(f(), sort="queue"),
        "queue, deep page (cursor at n/2)": page(f(), sort="queue", cursor=deep),
        "newest, first page": page(f()),
        "decision=needs_review & rule=expense": page(f(decision="needs_review", rule="expense_policy")),
        "merchant ~ '星巴克'": page(f(merchant="星巴克")),
        "merchant ~ 'kedai buku'": page(f(merchant="kedai buku")),
        "amount 100..200": page(f(amount_min=100, amount_max=200)),
        "q ~ 'teh tarik' (English text)": page(f(q="teh tarik")),
        "q ~ '肥牛卷' (Chinese text)": page(f(q="肥牛卷")),
        "q ~ 'zzz-no-such-text' (no hit)": page(f(q="zzz-no-such-text")),
        "queue + counts=true (tabs)": lambda s: (list_jobs(s, f(), limit=50, sort="queue"), decision_counts(s, f())),
        "decision_counts, all": lambda s: decision_counts(s, f()),
        "decision_counts, merchant ~ '咖啡'": lambda s: decision_counts(s, f(merchant="咖啡")),
        "stats.overview, 30 days": lambda s: stats.overview(s, tenant, since30, NOW),
        "stats.overview, 90 days": lambda s: stats.overview(s, tenant, since90, NOW),
        "CSV, first chunk (500 rows)": lambda s: next(csv_chunks(s, f(), "newest")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=os.environ.get("DOCKET_BENCH_DSN"),
                        help="SQLAlchemy URL of a database to create (must not exist); default: a fresh name")
    parser.add_argument("-n", type=int, default=100_000, help="jobs of the big tenant")
    parser.add_argument("--small", type=int, default=1_000, help="jobs of the baseline tenant")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    args = parser.parse_args()
    throwaway = services.Throwaway()
    try:
        if args.dsn:
            url = args.dsn
            server, name = url.split("://", 1)[1].rsplit("/", 1)
            maintenance = f"postgresql://{server}/postgres"
        else:
            maintenance = services.postgres(throwaway)
            name = f"docket_bench_{uuid.uuid4().hex[:10]}"
            url = maintenance.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
        conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            run(args, url, conninfo)
        finally:
            get_engine(url).dispose()
            if args.keep:
                print(f"kept database {name}")
            else:
                with psycopg.connect(maintenance, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        throwaway.close()


def run(args, url: str, conninfo: str) -> None:
    started = time.perf_counter()
    upgrade(url)
    load(conninfo, BIG, args.n, seed=1)
    load(conninfo, SMALL, args.small, seed=2)
    loaded = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        counts = conn.execute("SELECT tenant_id, count(*), count(*) FILTER (WHERE current_decision = 'needs_review')"
                              " FROM jobs GROUP BY tenant_id ORDER BY 2 DESC").fetchall()
        version = conn.execute("SHOW server_version").fetchone()[0]
    print(f"Postgres {version}, {os.cpu_count()} CPUs; set-up: migrate + COPY {time.perf_counter() - started:.1f} s "
          f"(load {loaded - started:.1f} s, VACUUM ANALYZE {time.perf_counter() - loaded:.1f} s)")
    for tenant, total, review in counts:
        print(f"  tenant {tenant:<12} {total:>7} jobs, {review:>6} needs_review")
    bench = Bench(url, args.runs)
    big, small = queries(bench, BIG, args.n), queries(bench, SMALL, args.small)
    print(f"\nmedian of {args.runs} runs, ms{'':24}{BIG + f' ({args.n})':>20}{SMALL + f' ({args.small})':>20}"
          f"{'big/small':>11}")
    for name in big:
        t_big, t_small = bench.time(big[name]), bench.time(small[name])
        print(f"  {name:<44}{t_big:>18.2f}{t_small:>20.2f}{t_big / t_small:>10.2f}x")
    flt = JobFilter(tenant=BIG)
    queue = filtered(flt).order_by(Job.review_rank, Job.created_at, Job.id).limit(51)
    print("\nEXPLAIN ANALYZE, queue first page (big tenant):")
    print(bench.explain(queue))
    key = decode_cursor(bench.deep_cursor(BIG, args.n // 2), "queue")
    deep = (filtered(flt).where(tuple_(Job.review_rank, Job.created_at, Job.id) > tuple_(*key))
            .order_by(Job.review_rank, Job.created_at, Job.id).limit(51))
    print("\nEXPLAIN ANALYZE, queue deep page via cursor (big tenant):")
    print(bench.explain(deep))
    # The outlier above: q with a rare term. The trigram index finds the (no) decisions at once, but
    # `id IN (…) OR merchant ILIKE …` is a per-row filter on a walk of every job of the tenant.
    rare = (filtered(JobFilter(tenant=BIG, q="zzz-no-such-text"))
            .order_by(Job.created_at.desc(), Job.id.desc()).limit(51))
    print("\nEXPLAIN ANALYZE, q with no hit, newest first (big tenant):")
    print(bench.explain(rare))


if __name__ == "__main__":
    main()
