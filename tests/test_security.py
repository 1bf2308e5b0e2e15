"""Safe to expose: keys and roles, tenants, rate limits, queue depth, idempotency, the decision
cache, the webhook outbox, and the OpenAPI document under property-based fuzzing."""
from __future__ import annotations

import dataclasses
import io
from datetime import date

import pytest
import schemathesis
from hypothesis import HealthCheck, settings as hsettings

from api import create_app
from docket import lifecycle as job_state
from db.models import Decision, WebhookDelivery
from db.session import session_scope
from docket.tenants import create_key, revoke_key
from tests.documents import encode, receipt_image

PNG = encode(receipt_image(date(2026, 1, 5)), "PNG")


def make_app(settings, redis_url, **overrides):
    return create_app(dataclasses.replace(settings, **overrides), broker_url=redis_url.rsplit("/", 1)[0] + "/14")


def key(settings, role: str, tenant: str) -> dict:
    with session_scope(settings.database_url) as s:
        _, plaintext = create_key(s, tenant, role)
    return {"Authorization": f"Bearer {plaintext}"}


def submit(client, headers, data=PNG, **form):
    return client.post("/v1/jobs", data={"file": (io.BytesIO(data), "r.png"), "rule": "expense_policy", **form},
                       content_type="multipart/form-data", headers=headers)


def test_keys_roles_and_tenants(settings, redis_url):
    client = make_app(settings, redis_url).test_client()
    admin_a, sub_a = key(settings, "admin", "a"), key(settings, "submitter", "a")
    rev_a, sub_b = key(settings, "reviewer", "a"), key(settings, "submitter", "b")
    assert client.get("/healthz").status_code == 200  # the one open route
    assert client.get("/v1/jobs").status_code == 401
    assert client.get("/v1/jobs", headers={"Authorization": "Bearer dk_nope_nope"}).status_code == 401
    assert client.get("/v1/jobs", headers={"Authorization": "Basic abc"}).status_code == 401
    job = submit(client, sub_a).get_json()
    assert submit(client, rev_a).status_code == 403  # reviewers read and review, never submit
    assert client.get(f"/v1/jobs/{job['id']}", headers=rev_a).status_code == 200
    # Another tenant's id is simply not there: 404, not 403.
    other = client.get(f"/v1/jobs/{job['id']}", headers=sub_b)
    assert other.status_code == 404 and other.mimetype == "application/problem+json"
    assert client.get(f"/v1/jobs/{job['id']}/deliveries", headers=sub_b).status_code == 404
    assert client.get("/v1/jobs", headers=sub_b).get_json()["jobs"] == []
    assert [j["id"] for j in client.get("/v1/jobs", headers=admin_a).get_json()["jobs"]] == [job["id"]]
    # Webhook subscriptions are an admin's business.
    body = {"url": "https://hooks.example.com/docket", "event_types": ["job.succeeded"]}
    assert client.post("/v1/webhooks", json=body, headers=sub_a).status_code == 403
    created = client.post("/v1/webhooks", json=body, headers=admin_a)
    assert created.status_code == 201 and created.get_json()["secret"].startswith("whsec_")
    assert "secret" not in client.get("/v1/webhooks", headers=admin_a).get_json()["webhooks"][0]
    assert client.get(f"/v1/webhooks/{created.get_json()['id']}", headers=key(settings, "admin", "b")).status_code == 404
    # A revoked key stops working at once.
    with session_scope(settings.database_url) as s:
        revoke_key(s, sub_a["Authorization"].split()[1])
    assert client.get("/v1/jobs", headers=sub_a).status_code == 401


def test_open_first_run_ends_with_the_first_key(settings, redis_url):
    client = make_app(settings, redis_url).test_client()
    assert submit(client, {}).status_code == 202  # embedded default, no keys yet: a laptop needs no setup
    key(settings, "submitter", "default")
    assert submit(client, {}).status_code == 401
    closed = make_app(settings, redis_url, auth_mode="required").test_client()
    assert closed.get("/v1/rules").status_code == 401


def test_rate_limit_answers_429_with_retry_after(settings, redis_url):
    client = make_app(settings, redis_url, rate_limit="3/minute").test_client()
    headers = key(settings, "reviewer", "rl")
    codes = [client.get("/v1/rules", headers=headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.get("/v1/rules", headers=headers)
    assert limited.mimetype == "application/problem+json" and int(limited.headers["Retry-After"]) > 0
    assert client.get("/v1/rules", headers=key(settings, "reviewer", "rl")).status_code == 200  # per key


def test_queue_depth_limit_answers_503(settings, redis_url):
    client = make_app(settings, redis_url, max_queue_depth=2).test_client()
    headers = key(settings, "submitter", "qd")
    assert [submit(client, headers, data=encode(receipt_image(date(2026, 1, d)), "PNG")).status_code
            for d in (1, 2)] == [202, 202]
    full = submit(client, headers, data=encode(receipt_image(date(2026, 1, 3)), "PNG"))
    assert full.status_code == 503 and full.get_json()["code"] == "queue_full" and full.headers["Retry-After"]


def test_idempotency_key_replays_and_conflicts(settings, redis_url):
    client = make_app(settings, redis_url).test_client()
    headers = {**key(settings, "submitter", "idem"), "Idempotency-Key": "order-42"}
    first = submit(client, headers)
    again = submit(client, headers)
    assert first.status_code == again.status_code == 202
    assert first.get_json()["id"] == again.get_json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    other = submit(client, headers, data=encode(receipt_image(date(2026, 2, 2)), "PNG"))
    assert other.status_code == 409 and other.get_json()["code"] == "idempotency_conflict"
    # Keys are per tenant: another tenant may use the same key for its own request.
    elsewhere = submit(client, {**key(settings, "submitter", "idem2"), "Idempotency-Key": "order-42"})
    assert elsewhere.status_code == 202 and elsewhere.get_json()["id"] != first.get_json()["id"]


def finish(settings, job_id: str, decision: str = "approve") -> None:
    """Play the worker's part: claim the job and store a decision (the cache and outbox read it)."""
    with session_scope(settings.database_url) as s:
        attempt = job_state.claim(s, job_id, stale_after=60)
        assert job_state.succeed(s, job_id, attempt, Decision(
            job_id=job_id, decision=decision, fields={"total": 1.0}, reasons=[], confidence={}, evidence={},
            rule_name="screenshot_moderation", rule_version="v", analyzer="ocr", model=None, timings={}))


def test_decision_cache_and_outbox(settings, redis_url):
    client = make_app(settings, redis_url).test_client()
    headers = key(settings, "submitter", "cache")
    form = {"rule": "screenshot_moderation", "callback_url": "https://hooks.example.com/cb"}
    first = submit(client, headers, **form).get_json()
    finish(settings, first["id"])
    deliveries = client.get(f"/v1/jobs/{first['id']}/deliveries", headers=headers).get_json()["deliveries"]
    assert [(d["event_type"], d["url"], d["status"]) for d in deliveries] == [
        ("job.succeeded", "https://hooks.example.com/cb", "pending")]
    cached = submit(client, headers, **form)
    body = cached.get_json()
    assert cached.status_code == 202 and body["status"] == "succeeded" and body["cached_from"] == first["id"]
    assert body["decision"] == "approve"
    fresh = submit(client, headers, cache="false", **form).get_json()
    assert fresh["status"] == "queued" and fresh["cached_from"] is None
    # Another tenant never gets this tenant's decision.
    assert submit(client, key(settings, "submitter", "other"), **form).get_json()["status"] == "queued"
    with session_scope(settings.database_url) as s:
        assert s.query(WebhookDelivery).filter_by(job_id=body["id"], event_type="job.succeeded").count() == 1
    assert submit(client, headers, rule="screenshot_moderation", callback_url="ftp://x").status_code == 422


def test_openapi_document_is_served(settings, redis_url):
    client = make_app(settings, redis_url).test_client()
    doc = client.get("/v1/openapi.json", headers=key(settings, "reviewer", "doc")).get_json()
    assert doc["openapi"].startswith("3.") and {"/v1/jobs", "/v1/batches", "/v1/jobs/{job_id}/deliveries"} <= set(doc["paths"])


@pytest.fixture
def fuzz_target(settings, redis_url):
    app = make_app(settings, redis_url, rate_limit="100000/minute", submit_rate_limit="100000/minute")
    return app, key(settings, "admin", "fuzz")


def test_schemathesis_finds_no_server_errors(fuzz_target):
    app, headers = fuzz_target
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app, headers=headers)
    failures = []
    for operation in schema.get_all_operations():
        op = operation.ok()
        strategy = op.as_strategy()

        @hsettings(max_examples=15, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{op.method.upper()} {op.path}: {response.status_code} {response.text[:300]}")

        from hypothesis import given

        given(strategy)(run)()
    assert failures == []


def test_submissions_record_their_key_and_list_with_submitted_by_me(settings, redis_url):
    client = make_app(settings, redis_url).test_client()
    alice, bob = key(settings, "submitter", "sb"), key(settings, "submitter", "sb")
    mine = submit(client, alice).get_json()
    batch = client.post("/v1/batches", data={"files": [(io.BytesIO(PNG), "a.png"), (io.BytesIO(PNG + b"x"), "b.png")],
                                             "rule": "expense_policy"},
                        content_type="multipart/form-data", headers=alice).get_json()
    theirs = submit(client, bob, data=PNG + b"y").get_json()
    assert mine["submitted_by"] and mine["submitted_by"] != theirs["submitted_by"]
    listed = client.get("/v1/jobs?submitted_by=me", headers=alice).get_json()["jobs"]
    assert sorted(j["id"] for j in listed) == sorted([mine["id"], *batch["job_ids"]])
    assert [j["id"] for j in client.get("/v1/jobs?submitted_by=me", headers=bob).get_json()["jobs"]] == [theirs["id"]]
    # Without the filter a submitter still lists only its own (api/visibility.py); a reviewer all four.
    assert [j["id"] for j in client.get("/v1/jobs", headers=bob).get_json()["jobs"]] == [theirs["id"]]
    assert len(client.get("/v1/jobs", headers=key(settings, "reviewer", "sb")).get_json()["jobs"]) == 4
    wrong = client.get("/v1/jobs?submitted_by=someone", headers=alice)
    assert wrong.status_code == 400 and wrong.mimetype == "application/problem+json"


def test_a_batch_keeps_its_note(settings, redis_url):
    client = make_app(settings, redis_url).test_client()
    headers = key(settings, "submitter", "note")
    created = client.post("/v1/batches", data={"files": [(io.BytesIO(PNG), "a.png")], "rule": "expense_policy",
                                               "note": "  Penang trip · 槟城出差\x00 "},
                          content_type="multipart/form-data", headers=headers).get_json()
    batch = client.get(f"/v1/batches/{created['id']}", headers=headers).get_json()
    assert batch["note"] == "Penang trip · 槟城出差" and batch["submitted_by"]
    long = client.post("/v1/batches", data={"files": [(io.BytesIO(PNG), "a.png")], "rule": "expense_policy",
                                            "note": "x" * 2001}, content_type="multipart/form-data", headers=headers)
    assert long.status_code == 422 and long.get_json()["code"] == "note_too_long"
