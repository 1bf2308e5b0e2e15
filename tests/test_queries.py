"""The reviewer queue's read side and reviews, on SQLite and real Postgres: db.queries (filters,
sorts, keyset cursors, counts), db.stats.overview, db.review_queue and docket.reviews.add_review.

Rows are written through the ORM the way the worker leaves them (queue columns from
db.review_queue.queue_values), committed, and read back through fresh sessions, so what is
tested is what the database returns (SQLite hands back naive datetimes, Postgres aware ones).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from db import stats
from db.migrate import upgrade
from db.models import Batch, Decision, Document, Job, Review, Tenant, WebhookDelivery, WebhookSubscription
from db.queries import JobFilter, as_utc, decision_counts, list_jobs
from db.review_queue import queue_values, summarize
from db.session import get_engine, session_factory
from docket import reviews
from docket.errors import DocketError
from docket.rules import default_rules_dir, load_rules
from tests import services

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday
RULES = load_rules(default_rules_dir())


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request, tmp_path_factory):
    """A fresh database per backend, built by the migrations (not by create_all)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('queries') / 'q.db'}"
        upgrade(url)
        yield url
        get_engine(url).dispose()
    else:
        url, drop = services.fresh_database(request.getfixturevalue("postgres_admin_url"))
        upgrade(url)
        yield url
        get_engine(url).dispose()
        drop()


@pytest.fixture
def session(database_url):
    s = session_factory(database_url)()
    yield s
    s.rollback()
    s.close()


class Seed:
    """Writes one tenant's rows; tenants are unique per test, so tests share a database."""

    def __init__(self, session, name: str = "t"):
        self.session = session
        self.tenant = f"{name}-{uuid.uuid4().hex[:10]}"
        session.add(Tenant(id=self.tenant, webhook_secret="whsec_test"))
        session.flush()

    def job(self, created: datetime, decision: str | None = None, fields: dict | None = None, *,
            text_: str | None = None, rule: str = "expense_policy", status: str | None = None,
            batch: str | None = None, took: float = 30.0, reviewed_at: datetime | None = None,
            callback_url: str | None = None) -> str:
        sha = uuid.uuid4().hex * 2
        self.session.add(Document(sha256=sha, mime_type="image/png", size=100, page_count=1,
                                  storage_path=f"{sha[:2]}/{sha}.png"))
        job = Job(id=uuid.uuid4().hex, tenant_id=self.tenant, document_sha256=sha, filename="r.png",
                  rule_name=rule, rule_version="1", analyzer="ocr", batch_id=batch, created_at=created,
                  status=status or ("succeeded" if decision else "queued"), callback_url=callback_url,
                  reviewed_at=reviewed_at)
        if decision is not None:
            decided = created + timedelta(seconds=took)
            job.finished_at = decided
            job.decision = Decision(tenant_id=self.tenant, decision=decision, fields=fields or {}, reasons=[],
                                    confidence={}, evidence={}, rule_name=rule, rule_version="1", analyzer="ocr",
                                    timings={}, text=text_, created_at=decided)
            for column, value in queue_values(decision, fields, decided).items():
                setattr(job, column, value)
        self.session.add(job)
        self.session.flush()
        return job.id

    def batch(self) -> str:
        batch = Batch(id=uuid.uuid4().hex, tenant_id=self.tenant, rule_name="expense_policy", created_at=T0)
        self.session.add(batch)
        self.session.flush()
        return batch.id

    def done(self) -> None:
        """Commit and forget every object: what follows reads the database, not the identity map."""
        self.session.commit()
        self.session.expunge_all()


def receipt(merchant: str, total: float, day: str = "2026-03-01", **more) -> dict:
    return {"merchant_name": merchant, "total": total, "transaction_date": day, "currency": "MYR", **more}


def page_ids(session, flt: JobFilter, **kw) -> list[str]:
    jobs, cursor = list_jobs(session, flt, limit=1000, **kw)
    assert cursor is None
    return [j.id for j in jobs]


# --------------------------------------------------------------------------- db.review_queue


def test_queue_values_summarize_receipts_contracts_and_screenshots():
    assert summarize(receipt("星巴克咖啡", 18.5)) == ("星巴克咖啡", 18.5)
    assert summarize({"parties": ["深圳华强电子有限公司", "", "Acme Sdn Bhd"],
                      "amounts": [{"value": 5000, "currency": "MYR"}, {"value": 120000, "currency": "USD"},
                                  {"value": "lots"}, "junk"]}) == ("深圳华强电子有限公司; Acme Sdn Bhd", 120000.0)
    assert summarize({"parties": [], "amounts": []}) == (None, None)
    assert summarize({"verdict": "ok"}) == (None, None)  # screenshots
    assert summarize(None) == (None, None)
    assert summarize({"merchant_name": "x" * 400, "total": True}) == ("x" * 300, None)  # bool is not an amount
    assert summarize({"merchant_name": "A", "total": 7}) == ("A", 7.0)
    when = T0
    assert queue_values("needs_review", receipt("A", 1.0), when) == {
        "current_decision": "needs_review", "review_rank": 0, "merchant": "A", "amount": 1.0, "decided_at": when,
        "invoice_key": None}
    assert queue_values("approve", {}) == {"current_decision": "approve", "review_rank": 1, "merchant": None,
                                           "amount": None, "invoice_key": None}
    assert queue_values("approve", {"seller_tax_id": "91320594MA1MFD7F31", "invoice_number": "2708 6599"}
                        )["invoice_key"] == "91320594MA1MFD7F31|27086599"
    assert queue_values("reject", None)["review_rank"] == 1


# --------------------------------------------------------------------------- filters


@pytest.fixture
def catalogue(session):
    """Tenant A's jobs by name, plus look-alike rows in tenant B that must never show up."""
    a, b = Seed(session, "a"), Seed(session, "b")
    batch = a.batch()
    h = timedelta(hours=1)
    ids = {
        "star": a.job(T0, "approve", receipt("星巴克咖啡 Starbucks KLCC", 18.5),
                      text_="星巴克咖啡\n拿铁 LATTE 18.50\n合计 18.50", reviewed_at=T0 + 5 * h),
        "kedai": a.job(T0 + h, "needs_review", receipt("KEDAI BUKU MAJU SDN BHD", 32.5),
                       text_="NOTEBOOK A5 12.50\nPEN BLUE 20.00\nTOTAL RM 32.50", batch=batch),
        "pct": a.job(T0 + 2 * h, "reject", receipt("100% Pure Juice", 6000.0),
                     text_="discount 50% off_peak", batch=batch),
        "plain": a.job(T0 + 3 * h, "approve", receipt("1000 Pure Juice", 5.0), text_="discount 500 offXpeak"),
        "under": a.job(T0 + 24 * h, "approve", receipt("a_b trading", 100.0), text_="back\\slash"),
        "axb": a.job(T0 + 25 * h, "approve", receipt("axb trading", 100.01), text_="backslash"),
        "contract": a.job(T0 + 48 * h, "needs_review",
                          {"parties": ["深圳华强电子有限公司", "Acme Sdn Bhd"],
                           "amounts": [{"value": 120000, "currency": "MYR"}, {"value": 5000, "currency": "MYR"}]},
                          rule="contract_review", text_="本合同适用中华人民共和国法律。Governing law: PRC."),
        "shot": a.job(T0 + 49 * h, "approve", {"has_pii": False}, rule="screenshot_moderation",
                      text_="hello world chat"),
        "queued": a.job(T0 + 72 * h),
        "failed": a.job(T0 + 73 * h, status="failed"),
    }
    other = b.batch()
    for i, name in enumerate(("星巴克咖啡 Starbucks", "100% Pure Juice", "a_b trading", "KEDAI BUKU")):
        b.job(T0 + i * h, "needs_review", receipt(name, 100.0), text_="星巴克 LATTE 50% off_peak", batch=other,
              reviewed_at=T0)
    b.job(T0, rule="contract_review")
    a.done()
    return a.tenant, batch, ids


def test_every_filter_returns_exactly_the_matching_jobs(session, catalogue):
    tenant, batch, ids = catalogue
    names = {v: k for k, v in ids.items()}

    def match(**kw) -> set[str]:
        return {names[i] for i in page_ids(session, JobFilter(tenant=tenant, **kw))}

    assert match() == set(ids)  # and nothing of tenant B's
    assert match(status="succeeded") == set(ids) - {"queued", "failed"}
    assert match(status="failed") == {"failed"}
    assert match(status="queued") == {"queued"}
    assert match(decision="needs_review") == {"kedai", "contract"}
    assert match(decision="reject") == {"pct"}
    assert match(rule="contract_review") == {"contract"}
    assert match(rule="screenshot_moderation") == {"shot"}
    assert match(rule="expense_policy") == set(ids) - {"contract", "shot"}
    assert match(batch=batch) == {"kedai", "pct"}
    assert match(batch="no-such-batch") == set()
    # created: [since, until)
    assert match(created_since=T0 + timedelta(hours=1), created_until=T0 + timedelta(hours=3)) == {"kedai", "pct"}
    assert match(created_since=T0 + timedelta(hours=72)) == {"queued", "failed"}
    assert match(created_until=T0 + timedelta(hours=1)) == {"star"}
    # merchant: case-insensitive substring, Chinese included, contract parties too
    assert match(merchant="星巴克") == {"star"}
    assert match(merchant="starbucks") == {"star"}
    assert match(merchant="KLCC") == {"star"}
    assert match(merchant="华强") == {"contract"}
    assert match(merchant="acme") == {"contract"}
    assert match(merchant="pure juice") == {"pct", "plain"}
    # LIKE wildcards and the escape character in user input are literal
    assert match(merchant="100%") == {"pct"}
    assert match(merchant="%") == {"pct"}
    assert match(merchant="a_b") == {"under"}
    assert match(merchant="_") == {"under"}
    assert match(q="50%") == {"pct"}
    assert match(q="f_p") == {"pct"}
    assert match(q="k\\s") == {"under"}
    assert match(q="\\") == {"under"}
    # amounts: inclusive bounds, jobs without an amount never match
    assert match(amount_min=100, amount_max=100) == {"under"}
    assert match(amount_min=100) == {"under", "axb", "pct", "contract"}
    assert match(amount_max=18.5) == {"star", "plain"}
    assert match(amount_min=100.005, amount_max=6000) == {"axb", "pct"}
    assert match(amount_min=0) == set(ids) - {"shot", "queued", "failed"}
    # q: the extracted text (Chinese included) or the merchant
    assert match(q="拿铁") == {"star"}
    assert match(q="中华人民共和国") == {"contract"}
    assert match(q="latte") == {"star"}
    assert match(q="total rm") == {"kedai"}
    assert match(q="trading") == {"under", "axb"}  # merchant only: their text does not say it
    assert match(q="星巴克") == {"star"}  # tenant B's text says it too
    assert match(q="nowhere at all") == set()
    # reviewed
    assert match(reviewed=True) == {"star"}
    assert match(reviewed=False) == set(ids) - {"star"}
    # combined
    assert match(decision="approve", rule="expense_policy", amount_max=100) == {"star", "plain", "under"}
    assert match(q="pure", decision="reject", batch=batch, status="succeeded") == {"pct"}


def test_other_tenants_never_appear(session, catalogue):
    tenant, _, ids = catalogue
    nobody = JobFilter(tenant="no-such-tenant")
    assert page_ids(session, nobody) == []
    assert decision_counts(session, nobody) == {"approve": 0, "needs_review": 0, "reject": 0, "undecided": 0}
    for sort in ("newest", "oldest", "queue"):
        assert set(page_ids(session, JobFilter(tenant=tenant), sort=sort)) == set(ids.values())


def test_decision_counts(session, catalogue):
    tenant, batch, _ = catalogue
    assert decision_counts(session, JobFilter(tenant=tenant)) == {
        "approve": 5, "needs_review": 2, "reject": 1, "undecided": 2}
    assert decision_counts(session, JobFilter(tenant=tenant, rule="expense_policy")) == {
        "approve": 4, "needs_review": 1, "reject": 1, "undecided": 2}
    assert decision_counts(session, JobFilter(tenant=tenant, batch=batch)) == {
        "approve": 0, "needs_review": 1, "reject": 1, "undecided": 0}
    assert decision_counts(session, JobFilter(tenant=tenant, merchant="星巴克", reviewed=True)) == {
        "approve": 1, "needs_review": 0, "reject": 0, "undecided": 0}


# --------------------------------------------------------------------------- sorts and cursors


@pytest.fixture
def crowd(session):
    """17 jobs with many equal created_at (ties broken by id), needs_review scattered among them."""
    seed, other = Seed(session, "crowd"), Seed(session, "other")
    plan = [  # (minutes after T0, decision)
        (0, "approve"), (0, "needs_review"), (0, "reject"), (0, "needs_review"), (0, None),
        (1, "approve"), (2, "needs_review"), (2, "approve"), (2, "approve"),
        (3, None), (5, "needs_review"), (5, "needs_review"), (5, "reject"),
        (8, "approve"), (9, "needs_review"), (9, "approve"), (9, "approve"),
    ]
    rows = []
    for minutes, decision in plan:
        created = T0 + timedelta(minutes=minutes)
        job_id = seed.job(created, decision, receipt("M", 1.0) if decision else None)
        rows.append((0 if decision == "needs_review" else 1, created, job_id, decision))
        other.job(created, decision)  # interleaved: same keys, other tenant
    seed.done()
    return seed.tenant, rows


def walk(session, flt: JobFilter, sort: str, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        jobs, cursor = list_jobs(session, flt, limit=limit, cursor=cursor, sort=sort)
        pages.append([j.id for j in jobs])
        if cursor is None:
            return pages
        assert len(pages) < 100, "cursor does not advance"


@pytest.mark.parametrize("sort", ["newest", "oldest", "queue"])
@pytest.mark.parametrize("limit", [1, 3, 17, 50])
def test_keyset_pagination_walks_every_job_once_in_order(session, crowd, sort, limit):
    tenant, rows = crowd
    if sort == "queue":
        expected = [r[2] for r in sorted(rows, key=lambda r: r[:3])]
    elif sort == "oldest":
        expected = [r[2] for r in sorted(rows, key=lambda r: (r[1], r[2]))]
    else:
        expected = [r[2] for r in sorted(rows, key=lambda r: (r[1], r[2]), reverse=True)]
    pages = walk(session, JobFilter(tenant=tenant), sort, limit)
    assert [i for page in pages for i in page] == expected
    full, rest = divmod(len(rows), limit)
    assert [len(p) for p in pages] == [limit] * full + ([rest] if rest else [])
    if sort == "queue":
        assert pages[0][0] == expected[0] and len([r for r in rows if r[0] == 0]) == 6


def test_pagination_with_a_filter_and_jobs_arriving_meanwhile(session, crowd):
    tenant, rows = crowd
    flt = JobFilter(tenant=tenant, decision="approve")
    approved = [r[2] for r in sorted(rows, key=lambda r: r[:3]) if r[3] == "approve"]
    first, cursor = list_jobs(session, flt, limit=3, sort="queue")
    assert [j.id for j in first] == approved[:3]
    # Jobs arriving after the first page was read: one sorting before the cursor is not seen on
    # later pages (nothing shifts), one sorting after it is.
    seed = Seed.__new__(Seed)
    seed.session, seed.tenant = session, tenant
    seed.job(T0 - timedelta(days=1), "approve")
    late = seed.job(T0 + timedelta(days=1), "approve")
    seed.done()
    rest, end = list_jobs(session, flt, limit=100, cursor=cursor, sort="queue")
    assert [j.id for j in rest] == approved[3:] + [late] and end is None


def test_cursors_are_bound_to_their_sort(session, crowd):
    tenant, _ = crowd
    flt = JobFilter(tenant=tenant)
    cursors = {sort: list_jobs(session, flt, limit=2, sort=sort)[1] for sort in ("newest", "oldest", "queue")}
    assert all(cursors.values())
    for issued in cursors:
        for used in cursors:
            if issued != used:
                with pytest.raises(ValueError):
                    list_jobs(session, flt, limit=2, cursor=cursors[issued], sort=used)
        list_jobs(session, flt, limit=2, cursor=cursors[issued], sort=issued)  # its own sort: fine
    for garbage in ("nope", "W10", "WyJxdWV1ZSJd", "!!!", cursors["queue"][:-3]):
        with pytest.raises(ValueError):
            list_jobs(session, flt, limit=2, cursor=garbage, sort="queue")


# --------------------------------------------------------------------------- stats.overview


def test_overview(session, database_url):
    seed, other = Seed(session, "stats"), Seed(session, "noise")
    since, until = datetime(2026, 3, 2, tzinfo=timezone.utc), datetime(2026, 3, 5, tzinfo=timezone.utc)
    d = datetime(2026, 3, 2, tzinfo=timezone.utc)
    # decided in the window (decided_at = created + took)
    seed.job(d + timedelta(hours=1), "approve", receipt("A", 1.0), took=30)
    old_backlog = seed.job(d - timedelta(days=10), "needs_review", receipt("B", 2.0), took=86400 * 10 + 60)
    seed.job(d + timedelta(hours=2), "reject", rule="contract_review", took=60)
    seed.job(d + timedelta(days=1, hours=23, minutes=59), "approve", receipt("C", 3.0), took=50)  # 3 Mar, 23:59:50
    seed.job(d + timedelta(days=1, hours=23, minutes=59, seconds=30), "needs_review", receipt("D", 4.0),
             took=40)  # created 3 Mar, decided 4 Mar 00:00:10: a 4 Mar decision
    seed.job(since - timedelta(seconds=10), "approve", took=10)  # decided exactly at `since`: in
    # decided outside the window
    seed.job(d - timedelta(days=3), "approve", took=5)
    seed.job(until - timedelta(seconds=20), "reject", took=20)  # decided exactly at `until`: out
    # not decided
    seed.job(d + timedelta(hours=5))
    seed.job(d + timedelta(hours=6), status="running")
    seed.job(d + timedelta(hours=7), status="failed")
    # reviews: one in the window, one after it
    for when in (d + timedelta(hours=3), until + timedelta(hours=1)):
        session.add(Review(tenant_id=seed.tenant, job_id=old_backlog, reviewer="r", decision_before="needs_review",
                           decision_after="needs_review", fields_before={}, fields_after={}, comment="c",
                           created_at=when))
    other.job(d + timedelta(hours=1), "needs_review", took=999)
    other.job(d + timedelta(hours=1), "approve", took=999)
    seed.done()
    if database_url.startswith("postgresql"):
        # Days are UTC days whatever the session's time zone (+08:00 would move 23:59:50 to the 4th).
        session.execute(text("SET LOCAL TIME ZONE 'Asia/Kuala_Lumpur'"))

    body = stats.overview(session, seed.tenant, since, until)
    assert as_utc(body.pop("oldest_in_backlog")) == d - timedelta(days=10)
    assert body == {
        "since": since.isoformat(), "until": until.isoformat(), "rule": None,
        "decided": 6,
        "by_decision": {"approve": 3, "needs_review": 2, "reject": 1},
        # jobs *created* in the window, by status (the one created before `since` is not)
        "by_status": {"queued": 1, "running": 1, "succeeded": 5, "failed": 1},
        "per_day": [
            {"day": "2026-03-02", "rule": "contract_review", "approve": 0, "needs_review": 0, "reject": 1, "total": 1},
            {"day": "2026-03-02", "rule": "expense_policy", "approve": 2, "needs_review": 1, "reject": 0, "total": 3},
            {"day": "2026-03-03", "rule": "expense_policy", "approve": 1, "needs_review": 0, "reject": 0, "total": 1},
            {"day": "2026-03-04", "rule": "expense_policy", "approve": 0, "needs_review": 1, "reject": 0, "total": 1},
        ],
        "review_backlog": 2,  # as of now, whenever decided
        "reviews": 1,
        # durations 30, 864060, 60, 50, 40, 10 -> median of 30, 40, 50, 60 ... = (40 + 50) / 2
        "median_seconds_to_decision": 45.0,
        # 3 approvals and a reject of 6 decided by the policy alone; the review in the window changed no field
        "automation_rate": 0.6667,
        "corrections": {},
    }
    contracts = stats.overview(session, seed.tenant, since, until, rule="contract_review")
    assert (contracts["decided"], contracts["by_decision"], contracts["review_backlog"],
            contracts["oldest_in_backlog"], contracts["median_seconds_to_decision"]) == (
        1, {"approve": 0, "needs_review": 0, "reject": 1}, 0, None, 60.0)
    assert contracts["by_status"] == {"queued": 0, "running": 0, "succeeded": 1, "failed": 0}
    empty = stats.overview(session, seed.tenant, until + timedelta(days=30), until + timedelta(days=31))
    assert (empty["decided"], empty["per_day"], empty["median_seconds_to_decision"], empty["review_backlog"]) == (
        0, [], None, 2)


# --------------------------------------------------------------------------- reviews


@pytest.fixture
def reviewable(session):
    seed = Seed(session, "rev")
    fields = receipt("星巴克咖啡", 18.5)
    job_id = seed.job(T0, "needs_review", fields, text_="星巴克", callback_url=None)
    queued = seed.job(T0 + timedelta(minutes=1))
    failed = seed.job(T0 + timedelta(minutes=2), status="failed")
    seed.done()
    return seed, job_id, fields, queued, failed


def review(session, job_id, **kw):
    job = session.get(Job, job_id)
    kw.setdefault("reviewer", "alice (k1)")
    kw.setdefault("reviewer_key_id", "k1")
    kw.setdefault("rule", RULES[job.rule_name])
    result = reviews.add_review(session, job, **kw)
    session.commit()
    session.expunge_all()
    return result


def test_add_review_appends_to_the_trail_and_moves_the_job(session, reviewable):
    seed, job_id, fields, _, _ = reviewable
    before = session.get(Job, job_id)
    decided_at = as_utc(before.decided_at)
    session.expunge_all()

    first = review(session, job_id, decision="approve", comment="  manager approved  ", fields={"total": 20.0})
    job = session.get(Job, job_id)
    assert (job.current_decision, job.review_rank, job.merchant, job.amount) == ("approve", 1, "星巴克咖啡", 20.0)
    assert job.reviewed_at is not None and as_utc(job.decided_at) == decided_at  # decided_at stays the analyzer's
    assert (job.decision.decision, job.decision.fields) == ("needs_review", fields)  # never changed
    [r1] = job.reviews
    assert (r1.id, r1.reviewer, r1.reviewer_key_id, r1.decision_before, r1.decision_after, r1.comment) == (
        first.id, "alice (k1)", "k1", "needs_review", "approve", "manager approved")
    assert r1.fields_before == fields and r1.fields_after == {**fields, "total": 20.0}
    assert reviews.current_fields(job) == {**fields, "total": 20.0}
    session.expunge_all()

    review(session, job_id, decision="needs_review", comment="wrong shop",
           fields={"merchant_name": "Starbucks KLCC", "currency": None}, reviewer="bob", reviewer_key_id=None)
    job = session.get(Job, job_id)
    assert (job.current_decision, job.review_rank, job.merchant, job.amount) == (
        "needs_review", 0, "Starbucks KLCC", 20.0)
    r1, r2 = job.reviews
    # the first entry is as it was; the second starts where the first ended
    assert (r1.decision_after, r1.fields_after, r1.comment) == (
        "approve", {**fields, "total": 20.0}, "manager approved")
    expected = {"merchant_name": "Starbucks KLCC", "total": 20.0, "transaction_date": "2026-03-01"}
    assert (r2.reviewer, r2.decision_before, r2.decision_after, r2.fields_before, r2.fields_after) == (
        "bob", "approve", "needs_review", {**fields, "total": 20.0}, expected)
    assert session.scalar(select(Review.id).where(Review.job_id == job_id).order_by(Review.id.desc())) == r2.id
    assert job.decision.fields == fields
    # a review without corrections keeps the current fields
    review(session, job_id, decision="reject", comment="duplicate")
    job = session.get(Job, job_id)
    assert (len(job.reviews), job.reviews[-1].fields_after, job.current_decision, job.amount) == (
        3, expected, "reject", 20.0)
    # the queue filters see the review
    assert page_ids(session, JobFilter(tenant=seed.tenant, reviewed=True)) == [job_id]
    assert page_ids(session, JobFilter(tenant=seed.tenant, decision="reject")) == [job_id]
    assert page_ids(session, JobFilter(tenant=seed.tenant, merchant="starbucks")) == [job_id]
    assert page_ids(session, JobFilter(tenant=seed.tenant, merchant="星巴克")) == []


@pytest.mark.parametrize("kw, message", [
    ({"decision": "maybe", "comment": "x"}, "'decision' must be one of"),
    ({"decision": None, "comment": "x"}, "'decision' must be one of"),
    ({"decision": ["approve"], "comment": "x"}, "'decision' must be one of"),
    ({"decision": "approve", "comment": "   "}, "needs a 'comment'"),
    ({"decision": "approve", "comment": None}, "needs a 'comment'"),
    ({"decision": "approve", "comment": 5}, "needs a 'comment'"),
    ({"decision": "approve", "comment": "x" * 4001}, "longer than 4000"),
    ({"decision": "approve", "comment": "x", "fields": ["total", 1]}, "must be an object"),
    ({"decision": "approve", "comment": "x", "fields": {"total": "lots"}}, "total: 'lots' is not of type 'number'"),
    ({"decision": "approve", "comment": "x", "fields": {"total": None}}, "'total' is a required property"),
    ({"decision": "approve", "comment": "x", "fields": {"tip": 1.0}}, "Additional properties"),
    ({"decision": "approve", "comment": "x", "fields": {"transaction_date": "5 March"}}, "transaction_date:"),
    ({"decision": "approve", "comment": "x", "fields": {"items": [{"description": "tea"}]}}, "items/0:"),
])
def test_invalid_reviews_are_refused_and_leave_no_trace(session, reviewable, kw, message):
    seed, job_id, fields, _, _ = reviewable
    with pytest.raises(reviews.InvalidReview) as caught:
        review(session, job_id, **kw)
    assert caught.value.status == 422 and caught.value.code == "invalid_review"
    assert message in caught.value.detail
    session.rollback()
    session.expunge_all()
    job = session.get(Job, job_id)
    assert (job.reviews, job.current_decision, job.reviewed_at, job.amount) == ([], "needs_review", None, 18.5)
    assert session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.job_id == job_id)) is None


def test_schema_errors_list_every_path(session, reviewable):
    _, job_id, _, _, _ = reviewable
    with pytest.raises(reviews.InvalidReview) as caught:
        review(session, job_id, decision="approve", comment="x",
               fields={"total": "lots", "currency": "ringgit", "merchant_name": None})
    assert sorted(e["path"] for e in caught.value.extra["errors"]) == ["", "currency", "total"]


def test_only_succeeded_jobs_can_be_reviewed(session, reviewable):
    _, _, _, queued, failed = reviewable
    for job_id in (queued, failed):
        with pytest.raises(DocketError) as caught:
            review(session, job_id, decision="approve", comment="x")
        assert (caught.value.status, caught.value.code) == (409, "not_reviewable")
        session.rollback()
        assert session.scalar(select(Review.id).where(Review.job_id == job_id)) is None


def test_review_without_a_rule_skips_the_schema(session, reviewable):
    _, job_id, fields, _, _ = reviewable
    review(session, job_id, decision="approve", comment="rule gone", fields={"tip": "free text"}, rule=None)
    assert session.get(Job, job_id).reviews[0].fields_after == {**fields, "tip": "free text"}


def deliveries(session, job_id) -> list[tuple]:
    rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id,
                                                         WebhookDelivery.event_type == "review.updated"))
    return sorted((d.url, d.subscription_id, d.status, d.payload["type"], d.payload["data"]["decision"],
                   d.payload["data"]["review_count"]) for d in rows)


def test_review_updated_goes_to_the_outbox(session):
    seed = Seed(session, "hooks")
    quiet = seed.job(T0, "needs_review", receipt("A", 1.0))
    loud = seed.job(T0, "needs_review", receipt("B", 2.0), callback_url="https://hooks.example.com/cb")
    seed.done()
    review(session, quiet, decision="approve", comment="ok")
    assert deliveries(session, quiet) == []  # no subscription, no callback_url: nothing to send
    review(session, loud, decision="reject", comment="no")
    assert deliveries(session, loud) == [("https://hooks.example.com/cb", None, "pending", "review.updated",
                                          "reject", 1)]

    subs = [WebhookSubscription(id=uuid.uuid4().hex, tenant_id=seed.tenant, url=f"https://hooks.example.com/{n}",
                                event_types=types, secret="whsec_x", active=active, created_at=T0)
            for n, types, active in (("reviews", ["review.updated"], True),
                                     ("jobs", ["job.succeeded", "job.failed"], True),
                                     ("off", ["review.updated"], False))]
    session.add_all(subs)
    other = Seed(session, "hooks-other")  # another tenant's subscription hears nothing of this one
    session.add(WebhookSubscription(id=uuid.uuid4().hex, tenant_id=other.tenant, url="https://other.example.com/",
                                    event_types=["review.updated"], secret="whsec_y", active=True, created_at=T0))
    seed.done()
    review(session, quiet, decision="needs_review", comment="again")
    assert deliveries(session, quiet) == [("https://hooks.example.com/reviews", subs[0].id, "pending",
                                           "review.updated", "needs_review", 2)]
    review(session, loud, decision="approve", comment="fine after all")
    assert deliveries(session, loud) == sorted([
        ("https://hooks.example.com/cb", None, "pending", "review.updated", "reject", 1),
        ("https://hooks.example.com/cb", None, "pending", "review.updated", "approve", 2),
        ("https://hooks.example.com/reviews", subs[0].id, "pending", "review.updated", "approve", 2)])
