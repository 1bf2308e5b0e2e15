"""The reviewer layer over HTTP: reviews, the queue listing with counts, stats, the CSV export and
the document/page routes, on the embedded SQLite database with the Flask test client (no Celery:
the worker's part is played in-process)."""
from __future__ import annotations

import base64
import csv
import io

import pytest
from PIL import Image

from api import create_app
from api.export import COLUMNS
from docket import lifecycle as job_state
from db.models import Decision
from db.session import session_scope
from docket.tenants import create_key
from tests.conftest import SAMPLES


@pytest.fixture
def client(settings):
    return create_app(settings, broker_url="memory://").test_client()


@pytest.fixture
def keys(settings):
    def key(role: str, tenant: str, name: str | None = None) -> dict:
        with session_scope(settings.database_url) as s:
            _, plaintext = create_key(s, tenant, role, name)
        return {"Authorization": f"Bearer {plaintext}"}

    return {"admin": key("admin", "acme"), "reviewer": key("reviewer", "acme", "Alice"),
            "submitter": key("submitter", "acme"), "other": key("admin", "globex")}


def submit(client, headers, sample: str, rule: str = "expense_policy", filename: str | None = None) -> str:
    body = {"rule": rule, "content_base64": base64.b64encode((SAMPLES / sample).read_bytes()).decode(),
            "filename": filename or sample}
    r = client.post("/v1/jobs", json=body, headers=headers)
    assert r.status_code == 202, r.get_json()
    return r.get_json()["id"]


def analyze(settings, monkeypatch, job_id: str) -> None:
    """The worker's part, for real: claim, analyze (OCR), succeed."""
    from worker import tasks

    monkeypatch.setattr(tasks, "settings", settings)
    with session_scope(settings.database_url) as s:
        job, document = job_state.claim_with_document(s, job_id, 600)
        assert tasks._check(s, job, document, tasks._read(job, document), job.attempts)


def decide(settings, job_id: str, decision: str, fields: dict, text: str = "") -> None:
    """The worker's part with a decision made up by the test (fast, exact)."""
    with session_scope(settings.database_url) as s:
        attempt = job_state.claim(s, job_id, 600)
        assert job_state.succeed(s, job_id, attempt, Decision(
            job_id=job_id, decision=decision, fields=fields, reasons=[{"check": "c", "message": "=1+1"}],
            confidence={}, evidence={}, rule_name="expense_policy", rule_version="1", analyzer="ocr", model=None,
            timings={}, text=text))


def receipt(merchant: str, total: float) -> dict:
    return {"merchant_name": merchant, "total": total, "transaction_date": "2026-03-02", "currency": "MYR"}


def test_reviews(client, keys, settings, monkeypatch):
    zh = submit(client, keys["submitter"], "receipt-zh.png")
    analyze(settings, monkeypatch, zh)
    job = client.get(f"/v1/jobs/{zh}", headers=keys["reviewer"]).get_json()
    analyzer_decision, analyzer_fields = job["decision"], job["fields"]
    assert job["status"] == "succeeded" and analyzer_fields["merchant_name"] == "海底捞火锅(望京店)"
    assert (job["analyzer_decision"], job["analyzer_fields"], job["review_count"], job["reviewed_at"]) == (
        analyzer_decision, None, 0, None)
    after = "reject" if analyzer_decision != "reject" else "approve"

    r = client.post(f"/v1/jobs/{zh}/reviews", headers=keys["reviewer"],
                    json={"decision": after, "comment": "converted to MYR", "fields": {"total": 82.5,
                                                                                     "currency": "MYR"}})
    assert r.status_code == 201, r.get_json()
    review, job = r.get_json()["review"], r.get_json()["job"]
    assert review["reviewer"].startswith("Alice (") and review["reviewer_key_id"]
    assert (review["decision_before"], review["decision_after"], review["comment"], review["changed_fields"]) == (
        analyzer_decision, after, "converted to MYR", ["currency", "total"])
    assert review["fields_before"] == analyzer_fields
    assert review["fields_after"] == {**analyzer_fields, "total": 82.5, "currency": "MYR"}
    assert (job["decision"], job["analyzer_decision"], job["analyzer_fields"], job["review_count"]) == (
        after, analyzer_decision, analyzer_fields, 1)
    assert job["fields"]["total"] == 82.5 and job["reviewed_at"] == review["created_at"]
    assert client.get(f"/v1/jobs/{zh}", headers=keys["submitter"]).get_json() == job

    r = client.post(f"/v1/jobs/{zh}/reviews", headers=keys["admin"],
                    json={"decision": "needs_review", "comment": "ask finance", "fields": {"merchant_name": "海底捞"}})
    assert r.status_code == 201 and r.get_json()["review"]["reviewer"].startswith("key ")
    trail = client.get(f"/v1/jobs/{zh}/reviews", headers=keys["submitter"]).get_json()
    assert trail["job_id"] == zh
    assert [(t["decision_before"], t["decision_after"], t["comment"]) for t in trail["reviews"]] == [
        (analyzer_decision, after, "converted to MYR"), (after, "needs_review", "ask finance")]
    assert trail["reviews"][0] == review  # the trail is never edited
    assert trail["reviews"][1]["changed_fields"] == ["merchant_name"]

    def refused(body, status, code, headers=keys["reviewer"], job_id=zh):
        resp = client.post(f"/v1/jobs/{job_id}/reviews", json=body, headers=headers)
        assert (resp.status_code, resp.mimetype, resp.get_json()["code"]) == (
            status, "application/problem+json", code), resp.get_json()
        return resp.get_json()

    refused({"decision": "maybe", "comment": "x"}, 422, "invalid_review")
    refused({"comment": "x"}, 422, "invalid_review")
    refused({"decision": "approve", "comment": "   "}, 422, "invalid_review")
    refused({"decision": "approve"}, 422, "invalid_review")
    refused(["approve"], 422, "invalid_review")
    refused({"decision": "approve", "comment": "x", "fields": "total=1"}, 422, "invalid_review")
    problem = refused({"decision": "approve", "comment": "x", "fields": {"total": "lots", "colour": "red"}},
                      422, "invalid_review")
    assert sorted(e["path"] for e in problem["errors"]) == ["", "total"]
    refused({"decision": "approve", "comment": "x", "fields": {"merchant_name": None}}, 422, "invalid_review")
    resp = client.post(f"/v1/jobs/{zh}/reviews", data="not json", content_type="application/json",
                       headers=keys["reviewer"])
    assert resp.status_code == 422
    refused({"decision": "approve", "comment": "x"}, 403, "forbidden", headers=keys["submitter"])
    refused({"decision": "approve", "comment": "x"}, 404, "not_found", headers=keys["other"])
    refused({"decision": "approve", "comment": "x"}, 404, "not_found", job_id="0" * 32)
    assert client.get(f"/v1/jobs/{zh}/reviews", headers=keys["other"]).status_code == 404
    assert client.post(f"/v1/jobs/{zh}/reviews", json={"decision": "approve", "comment": "x"}).status_code == 401
    # nothing refused left a trace
    assert len(client.get(f"/v1/jobs/{zh}/reviews", headers=keys["admin"]).get_json()["reviews"]) == 2

    queued = submit(client, keys["submitter"], "receipt-en.png")
    refused({"decision": "approve", "comment": "x"}, 409, "not_reviewable", job_id=queued)
    assert client.get(f"/v1/jobs/{queued}/reviews", headers=keys["reviewer"]).get_json()["reviews"] == []

    listing = client.get("/v1/jobs?reviewed=true", headers=keys["reviewer"]).get_json()
    assert [j["id"] for j in listing["jobs"]] == [zh]
    assert [j["id"] for j in client.get("/v1/jobs?reviewed=false", headers=keys["reviewer"]).get_json()["jobs"]] == [
        queued]
    assert [j["id"] for j in client.get("/v1/jobs?merchant=海底捞", headers=keys["reviewer"]).get_json()["jobs"]] == [zh]


def test_queue_listing_with_counts(client, keys, settings):
    ids = {}
    for name, decision, total in (("a", "approve", 10.0), ("b", "needs_review", 20.0), ("c", "reject", 30.0),
                                  ("d", "needs_review", 40.0), ("e", "approve", 50.0)):
        ids[name] = submit(client, keys["submitter"], "receipt-en.png", filename=f"{name}.png")
        decide(settings, ids[name], decision, receipt(f"Shop {name}", total))
    ids["f"] = submit(client, keys["submitter"], "receipt-en.png", filename="f.png")  # still queued
    submit(client, keys["other"], "receipt-en.png")  # another tenant's
    get = lambda url: client.get(url, headers=keys["reviewer"])  # noqa: E731

    first = get("/v1/jobs?sort=queue&counts=true&limit=3")
    assert first.status_code == 200
    body = first.get_json()
    assert body["counts"] == {"approve": 2, "needs_review": 2, "reject": 1, "undecided": 1}
    assert [j["id"] for j in body["jobs"]] == [ids["b"], ids["d"], ids["a"]]  # needing a person first, oldest first
    rest = get(f"/v1/jobs?sort=queue&limit=3&cursor={body['next_cursor']}").get_json()
    assert [j["id"] for j in rest["jobs"]] == [ids["c"], ids["e"], ids["f"]]
    assert rest["next_cursor"] is None and "counts" not in rest
    # counts ignore the decision filter (they are the queue's tabs); the jobs do not
    tab = get("/v1/jobs?sort=queue&counts=true&decision=approve").get_json()
    assert [j["id"] for j in tab["jobs"]] == [ids["a"], ids["e"]] and tab["counts"] == body["counts"]
    narrowed = get("/v1/jobs?counts=true&amount_min=20&amount_max=40&merchant=shop").get_json()
    assert narrowed["counts"] == {"approve": 0, "needs_review": 2, "reject": 1, "undecided": 0}
    assert [j["id"] for j in narrowed["jobs"]] == [ids["d"], ids["c"], ids["b"]]  # newest first by default
    assert [j["id"] for j in get("/v1/jobs?sort=oldest&q=shop%20e").get_json()["jobs"]] == [ids["e"]]

    for bad in ("sort=sideways", "reviewed=yes", "amount_min=abc", "amount_max=nan", "amount_min=inf",
                "created_since=yesterday", "limit=0", "limit=501", "status=done", "decision=ok", "q=" + "x" * 201,
                f"sort=newest&cursor={body['next_cursor']}", "cursor=garbage"):
        resp = get(f"/v1/jobs?{bad}")
        assert resp.status_code == 400 and resp.mimetype == "application/problem+json", bad


def test_stats(client, keys, settings):
    made = []
    for decision in ("approve", "needs_review", "needs_review", "reject"):
        made.append(submit(client, keys["submitter"], "receipt-en.png", filename=f"{len(made)}.png"))
        decide(settings, made[-1], decision, receipt("Shop", 10.0))
    submit(client, keys["submitter"], "receipt-en.png", rule="screenshot_moderation")  # queued
    other = submit(client, keys["other"], "receipt-en.png")
    decide(settings, other, "needs_review", {})
    r = client.post(f"/v1/jobs/{made[0]}/reviews", headers=keys["reviewer"],
                    json={"decision": "needs_review", "comment": "look again"})
    assert r.status_code == 201
    job = client.get(f"/v1/jobs/{made[0]}", headers=keys["reviewer"]).get_json()

    body = client.get("/v1/stats", headers=keys["reviewer"]).get_json()
    assert (body["decided"], body["by_decision"], body["review_backlog"], body["reviews"]) == (
        4, {"approve": 0, "needs_review": 3, "reject": 1}, 3, 1)
    assert body["by_status"] == {"queued": 1, "running": 0, "succeeded": 4, "failed": 0}
    assert body["per_day"] == [{"day": job["decided_at"][:10], "rule": "expense_policy", "approve": 0,
                                "needs_review": 3, "reject": 1, "total": 4}]
    assert body["oldest_in_backlog"] == job["created_at"]
    assert body["median_seconds_to_decision"] >= 0
    screenshots = client.get("/v1/stats?rule=screenshot_moderation", headers=keys["reviewer"]).get_json()
    assert (screenshots["decided"], screenshots["review_backlog"], screenshots["by_status"]["queued"]) == (0, 0, 1)
    past = client.get("/v1/stats?since=2020-01-01&until=2020-02-01", headers=keys["reviewer"]).get_json()
    assert (past["since"], past["until"], past["decided"], past["per_day"], past["review_backlog"]) == (
        "2020-01-01T00:00:00+00:00", "2020-02-01T00:00:00+00:00", 0, [], 3)
    for bad in ("since=2026-02-01&until=2026-02-01", "since=2026-03-01&until=2026-02-01",
                "since=2020-01-01&until=2026-01-01", "since=soon", "until=2026-13-01"):
        resp = client.get(f"/v1/stats?{bad}", headers=keys["reviewer"])
        assert resp.status_code == 400 and resp.get_json()["code"] == "invalid_query", bad
    assert client.get("/v1/stats").status_code == 401


def read_csv(response) -> list[list[str]]:
    data = response.get_data()
    assert data.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM to read UTF-8
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))


def test_export_csv(client, keys, settings):
    merchants = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+SUM(A1:A2)", "-2+3", "@cmd", "星巴克咖啡 KLCC",
                 "Plain, with comma"]
    ids = []
    for i, merchant in enumerate(merchants):
        ids.append(submit(client, keys["submitter"], "receipt-en.png", filename=f"{i}.png"))
        decide(settings, ids[-1], "reject" if i == 3 else "approve", receipt(merchant, 10.0 + i))
    ids.append(submit(client, keys["submitter"], "receipt-en.png", filename="=queued.png"))
    submit(client, keys["other"], "receipt-en.png", filename="other.png")

    r = client.get("/v1/jobs/export.csv?sort=oldest", headers=keys["reviewer"])
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"] == 'attachment; filename="docket-jobs.csv"'
    header, *rows = read_csv(r)
    assert header == list(COLUMNS) == ["job_id", "created_at", "status", "rule", "rule_version", "filename",
                                       "decision", "analyzer_decision", "merchant", "amount", "reasons",
                                       "reviewed_at", "decided_at", "batch_id", "fields"]
    assert [row[0] for row in rows] == ids  # one row per job of this tenant only
    col = {name: i for i, name in enumerate(header)}
    assert [row[col["merchant"]] for row in rows] == [
        "'=HYPERLINK(\"http://evil.example\",\"x\")", "'+SUM(A1:A2)", "'-2+3", "'@cmd", "星巴克咖啡 KLCC",
        "Plain, with comma", ""]
    assert [row[col["decision"]] for row in rows] == ["approve"] * 3 + ["reject"] + ["approve"] * 2 + [""]
    assert rows[0][col["amount"]] == "10.0" and rows[0][col["reasons"]] == "c: =1+1"
    assert rows[-1][col["filename"]] == "'=queued.png" and rows[-1][col["status"]] == "queued"
    assert "星巴克咖啡 KLCC" in rows[4][col["fields"]]  # JSON kept readable, not \\u-escaped
    assert all(len(row) == len(COLUMNS) for row in rows)

    rejected = read_csv(client.get("/v1/jobs/export.csv?decision=reject", headers=keys["reviewer"]))
    assert [row[0] for row in rejected[1:]] == [ids[3]]
    assert read_csv(client.get("/v1/jobs/export.csv?merchant=nobody", headers=keys["reviewer"])) == [list(COLUMNS)]
    assert client.get("/v1/jobs/export.csv?amount_min=x", headers=keys["reviewer"]).status_code == 400


def test_document_and_pages(client, keys, settings):
    png = submit(client, keys["submitter"], "receipt-en.png")
    pdf = submit(client, keys["submitter"], "contract-en.pdf", rule="contract_review")
    get = lambda url, who="reviewer": client.get(url, headers=keys[who])  # noqa: E731

    doc = get(f"/v1/jobs/{png}/document")
    assert doc.status_code == 200 and doc.mimetype == "image/png"
    assert doc.get_data() == (SAMPLES / "receipt-en.png").read_bytes()
    sha = get(f"/v1/jobs/{png}").get_json()["document"]["sha256"]
    assert doc.headers["ETag"].strip('"') == sha
    assert get(f"/v1/jobs/{pdf}/document").mimetype == "application/pdf"

    page = get(f"/v1/jobs/{png}/pages/1")
    assert page.status_code == 200 and page.mimetype == "image/png"
    image = Image.open(io.BytesIO(page.get_data()))
    assert image.format == "PNG" and max(image.size) <= settings.max_image_side
    assert get(f"/v1/jobs/{png}/pages/1").get_data() == page.get_data()  # from the page cache
    for n in (1, 2):
        assert get(f"/v1/jobs/{pdf}/pages/{n}").status_code == 200
    for url in (f"/v1/jobs/{png}/pages/2", f"/v1/jobs/{png}/pages/0", f"/v1/jobs/{pdf}/pages/3",
                f"/v1/jobs/{pdf}/pages/99999999999999999999"):
        resp = get(url)
        assert resp.status_code == 404 and resp.mimetype == "application/problem+json", url
    for url in (f"/v1/jobs/{png}/document", f"/v1/jobs/{png}/pages/1"):
        assert get(url, "other").status_code == 404
        assert client.get(url).status_code == 401


def test_time_filters_with_an_offset_mean_the_same_instant(client, keys, settings):
    job_id = submit(client, keys["submitter"], "receipt-en.png")
    created = client.get(f"/v1/jobs/{job_id}", headers=keys["reviewer"]).get_json()["created_at"]
    from datetime import datetime, timedelta, timezone

    at = datetime.fromisoformat(created)
    one_hour_before_in_kl = (at - timedelta(hours=1)).astimezone(timezone(timedelta(hours=8))).isoformat()
    found = client.get("/v1/jobs", query_string={"created_since": one_hour_before_in_kl}, headers=keys["reviewer"])
    assert [j["id"] for j in found.get_json()["jobs"]] == [job_id]


def test_stats_window_near_the_minimum_date_is_a_400(client, keys):
    assert client.get("/v1/stats?until=0001-01-05T00:00:00Z", headers=keys["reviewer"]).status_code == 400


def test_nul_in_a_text_filter_is_a_400(client, keys):
    # Postgres text cannot hold NUL: refused up front, never a 500 or a truncated export.
    for url in ("/v1/jobs?merchant=a%00b", "/v1/jobs?q=%00", "/v1/jobs/export.csv?rule=x%00", "/v1/stats?rule=%00"):
        resp = client.get(url, headers=keys["reviewer"])
        assert resp.status_code == 400 and resp.get_json()["code"] == "invalid_query", url


def test_corrected_fields_are_run_through_the_policy_again(client, keys, settings):
    """A reviewer who fixes a misread total sees what the checks say about the fixed value."""
    from datetime import date, timedelta

    job_id = submit(client, keys["submitter"], "receipt-en.png")
    weekday = date.today() - timedelta(days=1)
    while weekday.weekday() >= 5:
        weekday -= timedelta(days=1)
    decide(settings, job_id, "approve", {**receipt("KEDAI BUKU", 32.5), "transaction_date": weekday.isoformat()})

    def review(body):
        resp = client.post(f"/v1/jobs/{job_id}/reviews", headers=keys["reviewer"], json=body)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()["review"]

    # No field changed: nothing to re-run.
    assert review({"decision": "approve", "comment": "looked at it"})["policy_after"] is None
    # The total was really 6,500: over the hard limit of the policy (max_total 5000 → reject).
    policy = review({"decision": "needs_review", "comment": "misread total", "fields": {"total": 6500}})["policy_after"]
    assert policy["decision"] == "reject" and policy["rule_version"].startswith("sha256:")
    assert "max_total" in [r["check"] for r in policy["reasons"]]
    # Back under the limit: the checks pass again.
    policy = review({"decision": "approve", "comment": "receipt says 65.00", "fields": {"total": 65.0}})["policy_after"]
    assert (policy["decision"], policy["reasons"]) == ("approve", [])
