"""Webhook subscriptions are admin business: their URLs (which often carry a secret token) and
what their receivers answered are shown to admins only, and only admins replay a delivery."""
from __future__ import annotations

import json

import pytest

from tests.test_security import finish, key, make_app, submit

SECRET_URL = "https://hooks.example.com/docket?token=s3cr3t-token-4711"


@pytest.fixture
def hooked(settings, redis_url):
    """Tenant `w`: an admin's subscription, a submitter's job that fired it (and its own callback)."""
    client = make_app(settings, redis_url).test_client()
    ks = {role: key(settings, role, "w") for role in ("admin", "reviewer", "submitter")}
    made = client.post("/v1/webhooks", json={"url": SECRET_URL, "event_types": ["job.succeeded"]}, headers=ks["admin"])
    assert made.status_code == 201
    job = submit(client, ks["submitter"], callback_url="https://callback.example.com/mine").get_json()
    finish(settings, job["id"])
    deliveries = client.get(f"/v1/jobs/{job['id']}/deliveries", headers=ks["admin"]).get_json()["deliveries"]
    sub = [d for d in deliveries if d["subscription_id"]]
    assert len(sub) == 1 and sub[0]["url"] == SECRET_URL
    return client, ks, job["id"], sub[0]["id"]


@pytest.mark.parametrize("role", ["reviewer", "submitter"])
def test_non_admin_does_not_see_subscription_urls(hooked, role):
    client, ks, job_id, _ = hooked
    resp = client.get(f"/v1/jobs/{job_id}/deliveries", headers=ks[role])
    assert resp.status_code == 200
    assert "s3cr3t-token-4711" not in resp.get_data(as_text=True)
    assert "hooks.example.com" not in resp.get_data(as_text=True)
    sub = [d for d in resp.get_json()["deliveries"] if d["subscription_id"]]
    assert len(sub) == 1 and sub[0]["url"] is None


@pytest.mark.parametrize("role", ["reviewer", "submitter"])
def test_non_admin_does_not_see_a_subscriptions_errors(settings, hooked, role):
    """A receiver's error names its host and quotes its answer: the subscription's business too."""
    from db.models import WebhookAttempt, WebhookDelivery
    from db.session import session_scope
    from db.models import utcnow

    client, ks, job_id, delivery_id = hooked
    error = "HTTP 500: bad token s3cr3t-token-4711 at hooks.example.com"
    with session_scope(settings.database_url) as s:
        s.get(WebhookDelivery, delivery_id).last_error = error
        s.add(WebhookAttempt(delivery_id=delivery_id, attempted_at=utcnow(), status_code=500, error=error))
    body = client.get(f"/v1/jobs/{job_id}/deliveries", headers=ks[role]).get_data(as_text=True)
    assert "s3cr3t" not in body and "hooks.example.com" not in body
    admin = client.get(f"/v1/jobs/{job_id}/deliveries", headers=ks["admin"]).get_data(as_text=True)
    assert "s3cr3t-token-4711" in admin


def test_submitter_cannot_replay_a_subscription_delivery(hooked):
    client, ks, _, delivery_id = hooked
    resp = client.post(f"/v1/deliveries/{delivery_id}/replay", headers=ks["submitter"])
    assert resp.status_code == 403 and resp.mimetype == "application/problem+json"
    assert resp.get_json()["code"] == "forbidden"


def test_reviewer_cannot_replay_a_delivery(hooked):
    client, ks, _, delivery_id = hooked
    assert client.post(f"/v1/deliveries/{delivery_id}/replay", headers=ks["reviewer"]).status_code == 403


def test_submitter_cannot_replay_even_its_own_callback(hooked):
    client, ks, job_id, _ = hooked
    own = [d for d in client.get(f"/v1/jobs/{job_id}/deliveries", headers=ks["submitter"]).get_json()["deliveries"]
           if not d["subscription_id"]]
    assert len(own) == 1
    assert client.post(f"/v1/deliveries/{own[0]['id']}/replay", headers=ks["submitter"]).status_code == 403


def test_admin_still_sees_urls_and_replays(hooked):
    client, ks, job_id, delivery_id = hooked
    replayed = client.post(f"/v1/deliveries/{delivery_id}/replay", headers=ks["admin"])
    assert replayed.status_code == 202 and replayed.get_json()["url"] == SECRET_URL


def test_submitter_still_sees_its_own_callback_url(hooked):
    """A job's callback_url is the submitter's own (and already in the job's JSON)."""
    client, ks, job_id, _ = hooked
    deliveries = client.get(f"/v1/jobs/{job_id}/deliveries", headers=ks["submitter"]).get_json()["deliveries"]
    assert [d["url"] for d in deliveries if not d["subscription_id"]] == ["https://callback.example.com/mine"]


def test_another_tenants_admin_cannot_replay(settings, hooked):
    client, _, _, delivery_id = hooked
    other = key(settings, "admin", "elsewhere")
    assert client.post(f"/v1/deliveries/{delivery_id}/replay", headers=other).status_code == 404


def test_subscription_urls_are_not_in_the_job_json_for_non_admins(hooked):
    client, ks, job_id, _ = hooked
    for role in ("reviewer", "submitter"):
        assert "s3cr3t" not in json.dumps(client.get(f"/v1/jobs/{job_id}", headers=ks[role]).get_json())
