"""Dashboard sign-in rules that need no browser: throttling, revocation, redirects, headers,
what each role may open, and the event streams' Last-Event-ID."""
from __future__ import annotations

import dataclasses
import io
import re

import pytest

from api import create_app
from tests.conftest import SAMPLES
from db.session import session_scope
from docket.tenants import create_key, revoke_key


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, login_rate_limit="3/minute", event_stream_max_s=0.5)


@pytest.fixture
def client(settings):
    return create_app(settings, broker_url="memory://").test_client()


def key(settings, role: str) -> str:
    with session_scope(settings.database_url) as s:
        return create_key(s, "acme", role)[1]


def token(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/dashboard").get_data(as_text=True)).group(1)


def sign_in(client, plaintext: str, **extra):
    return client.post("/dashboard/sign-in", data={"key": plaintext, "csrf_token": token(client), **extra})


def test_sign_in_attempts_are_throttled(client, settings):
    for _ in range(3):
        assert sign_in(client, "dk_wrong_guess").status_code == 401
    resp = sign_in(client, "dk_wrong_guess")
    assert resp.status_code == 429 and "Retry-After" in resp.headers


def test_revoked_key_is_signed_out_on_its_next_request(client, settings):
    plaintext = key(settings, "reviewer")
    assert sign_in(client, plaintext).status_code == 302
    page = client.get("/dashboard")
    assert 'id="queue"' in page.get_data(as_text=True)
    cookie = page.request.headers.get("Cookie", "") or ""
    assert "docket_session" in cookie and plaintext not in cookie  # the key itself is never in the cookie
    with session_scope(settings.database_url) as s:
        revoke_key(s, plaintext)
    assert 'type="password"' in client.get("/dashboard").get_data(as_text=True)
    assert client.get("/dashboard/overview").status_code == 302


def test_only_dashboard_paths_are_followed_after_sign_in(client, settings):
    plaintext = key(settings, "admin")
    assert sign_in(client, plaintext, next="https://evil.example/phish").headers["Location"] == "/dashboard/"
    assert sign_in(client, plaintext, next="//evil.example/").headers["Location"] == "/dashboard/"
    assert sign_in(client, plaintext, next="/dashboard/overview").headers["Location"] == "/dashboard/overview"


def test_pages_forbid_inline_script_and_framing(client, settings):
    resp = client.get("/dashboard")
    policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert resp.headers["X-Content-Type-Options"] == "nosniff" and resp.headers["Cache-Control"] == "no-store"
    assert "<script>" not in resp.get_data(as_text=True)  # only <script src=…>


def test_submitters_get_upload_and_their_own_submissions_only(client, settings):
    assert "cannot sign in" in sign_in(client, key(settings, "metrics")).get_data(as_text=True)
    assert sign_in(client, key(settings, "submitter")).status_code == 302
    assert client.get("/dashboard").headers["Location"] == "/dashboard/upload"  # not the queue
    page = client.get("/dashboard/upload").get_data(as_text=True)
    nav = re.search(r"<nav>(.*?)</nav>", page, re.S).group(1)
    assert re.findall(r">([^<]+)</a>", nav) == ["Upload", "My submissions", "Claims"]
    for path in ("/dashboard/overview", "/dashboard/export.csv", "/dashboard/policies",
                 "/dashboard/policies/expense_policy"):
        assert client.get(path).status_code == 403, path
    assert client.get("/dashboard/mine").status_code == 200


def upload(client, files, **form):
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/dashboard/upload").get_data(as_text=True)).group(1)
    return client.post("/dashboard/upload", headers={"Accept": "application/json"}, content_type="multipart/form-data",
                       data={"csrf_token": csrf, "rule": "expense_policy", "files": files, **form})


def events(client, path, **headers):
    resp = client.get(path, headers={"Accept": "text/event-stream", **headers})
    body = resp.get_data(as_text=True)  # the stream ends by itself: capped at event_stream_max_s
    return resp.status_code, re.findall(r"^id: (\d+)\nevent: (\w+)$", body, re.M)


def test_upload_answers_json_and_streams_resume_from_last_event_id(client, settings):
    sign_in(client, key(settings, "submitter"))
    png = (SAMPLES / "receipt-en.png").read_bytes()
    resp = upload(client, [(io.BytesIO(png), "receipt.png"), (io.BytesIO(b"plain text"), "notes.txt")], note="Trip")
    assert resp.status_code == 202, resp.get_data(as_text=True)
    body = resp.get_json()
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "unsupported_type")]
    assert body["note"] == "Trip" and body["links"]["events"] == f"/dashboard/batches/{body['id']}/events"
    assert "Trip" in client.get(body["links"]["batch"]).get_data(as_text=True)
    # No worker here: the job stays queued. The current state first, then nothing it has seen.
    assert events(client, body["links"]["events"]) == (200, [("0", "status")])
    assert events(client, body["links"]["events"], **{"Last-Event-ID": "0"}) == (200, [])
    job_events = f"/dashboard/jobs/{body['job_ids'][0]}/events"
    assert events(client, job_events) == (200, [("0", "status")])
    assert events(client, job_events, **{"Last-Event-ID": "0"}) == (200, [])
    # The form posted without the page's script (no JSON asked for) lands on the batch's page.
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/dashboard/upload").get_data(as_text=True)).group(1)
    plain = client.post("/dashboard/upload", content_type="multipart/form-data",
                        data={"csrf_token": csrf, "rule": "expense_policy", "files": [(io.BytesIO(png), "again.png")]})
    assert plain.status_code == 303 and plain.headers["Location"].startswith("/dashboard/batches/")
    # Nothing acceptable: 422 with each file's problem, as JSON for the page's script.
    refused = upload(client, [(io.BytesIO(b"plain text"), "notes.txt")])
    assert refused.status_code == 422 and refused.get_json()["rejected"][0]["code"] == "unsupported_type"
    # Another submitter of the tenant: 404, as for another tenant's ids; signed out: 401.
    other = create_app(settings, broker_url="memory://").test_client()
    sign_in(other, key(settings, "submitter"))
    assert other.get(body["links"]["events"], headers={"Accept": "text/event-stream"}).status_code == 404
    assert other.get(f"/dashboard/jobs/{body['job_ids'][0]}").status_code == 404
    signed_out = create_app(settings, broker_url="memory://").test_client()
    assert signed_out.get(body["links"]["events"], headers={"Accept": "text/event-stream"}).status_code == 401
