"""Dashboard sign-in rules that need no browser: throttling, revocation, redirects, headers."""
from __future__ import annotations

import dataclasses
import re

import pytest

from api import create_app
from db.session import session_scope
from docket.tenants import create_key, revoke_key


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, login_rate_limit="3/minute")


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
