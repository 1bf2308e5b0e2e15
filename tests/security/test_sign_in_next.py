"""The sign-in form's `next` (review item 8): CR/LF gave a 500; anything that is not plainly one of
the dashboard's own paths goes to the dashboard's home instead, never to another site."""
from __future__ import annotations

import dataclasses
import re

import pytest

from api import create_app
from db.session import session_scope
from docket.tenants import create_key

HOME = "/dashboard/"


@pytest.fixture(scope="module")
def app_and_key(tmp_path_factory):
    """One migrated database and app for the module: each case only signs in."""
    from db.migrate import upgrade
    from docket.config import Settings

    with pytest.MonkeyPatch.context() as env:
        env.delenv("DOCKET_DATABASE_URL", raising=False)
        env.setenv("DOCKET_DATA_DIR", str(tmp_path_factory.mktemp("next")))
        settings = dataclasses.replace(Settings.from_env(), login_rate_limit="100000/minute")
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as s:
        plaintext = create_key(s, "next", "admin")[1]
    return create_app(settings, broker_url="memory://"), plaintext


@pytest.fixture
def client(app_and_key):
    return app_and_key[0].test_client()  # a browser of its own: no cookie from another case


@pytest.fixture
def plaintext(app_and_key) -> str:
    return app_and_key[1]


def sign_in(client, plaintext: str, target: str):
    page = client.get("/dashboard").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/dashboard/sign-in", data={"key": plaintext, "csrf_token": token, "next": target})


UNSAFE = {
    "crlf": "/dashboard\r\nSet-Cookie: planted=1",
    "crlf-in-path": "/dashboard/jobs/x\r\nLocation: https://evil.example/",
    "lf-only": "/dashboard/\nX-Injected: 1",
    "cr-only": "/dashboard/\rX-Injected: 1",
    "encoded-crlf": "/dashboard/%0d%0aSet-Cookie:%20planted=1",
    "encoded-crlf-upper": "/dashboard%0D%0ASet-Cookie:planted=1",
    "tab": "/dashboard/\tjobs",
    "nul": "/dashboard/\x00",
    "encoded-nul": "/dashboard/%00",
    "unicode-line-separator": "/dashboard/\u2028x",
    "non-ascii": "/dashboard/jobs/\u00e9",
    "backslashes": "\\\\evil.example",
    "slash-backslash": "/\\evil.example",
    "dashboard-backslash": "/dashboard/\\evil.example",
    "encoded-backslash": "/dashboard/%5c%5cevil.example",
    "protocol-relative": "//evil.example",
    "triple-slash": "///evil.example",
    "scheme-without-slashes": "https:evil.example",
    "absolute": "https://evil.example/dashboard",
    "absolute-dashboard-lookalike": "https://evil.example/dashboard/",
    "javascript": "javascript:alert(1)",
    "data": "data:text/html,<script>alert(1)</script>",
    "leading-space": " //evil.example",
    "userinfo": "/dashboard@evil.example",
    "lookalike-prefix": "/dashboardevil",
    "outside-dashboard": "/v1/jobs",
}


@pytest.mark.parametrize("target", UNSAFE.values(), ids=UNSAFE.keys())
def test_unsafe_next_goes_home(client, plaintext, target):
    resp = sign_in(client, plaintext, target)
    assert resp.status_code == 302 and resp.headers["Location"] == HOME
    assert "planted" not in resp.headers.get("Set-Cookie", "") and "X-Injected" not in resp.headers


SAFE = ["/dashboard", "/dashboard/", "/dashboard/overview?days=7", "/dashboard/jobs/abc123",
        "/dashboard?status=queued&q=%E9%A4%90", "/dashboard/policies/expense_policy"]


@pytest.mark.parametrize("target", SAFE)
def test_the_dashboards_own_pages_are_followed(client, plaintext, target):
    resp = sign_in(client, plaintext, target)
    assert resp.status_code == 302 and resp.headers["Location"] == target


def test_a_refused_sign_in_with_crlf_in_next_shows_the_form(client):
    resp = sign_in(client, "dk_wrong_guess", "/dashboard\r\nSet-Cookie: planted=1")
    assert resp.status_code == 401 and 'type="password"' in resp.get_data(as_text=True)
