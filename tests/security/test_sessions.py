"""Dashboard sessions end server-side (review item 2): a copy of the `docket_session` cookie taken
before sign-out, "sign out everywhere", a new sign-in or a revoked key opens nothing afterwards,
in any API process, on SQLite and on Postgres."""
from __future__ import annotations

import dataclasses
import re
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from api import create_app
from db.migrate import upgrade
from db.models import DashboardSession, utcnow
from db.session import session_scope
from docket.tenants import create_key, revoke_key
from tests.conftest import DOCKET, ROOT, base_env


@pytest.fixture(params=["sqlite", "postgres"])
def any_settings(request, settings):
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        upgrade(url)
        return dataclasses.replace(settings, database_url=url, login_rate_limit="1000/minute")
    return dataclasses.replace(settings, login_rate_limit="1000/minute")


@pytest.fixture
def app(any_settings):
    return create_app(any_settings, broker_url="memory://")


def key(settings, role: str = "reviewer", tenant: str = "sess") -> tuple[str, str]:
    with session_scope(settings.database_url) as s:
        found, plaintext = create_key(s, tenant, role)
        return found.id, plaintext


def csrf(client, path: str = "/dashboard") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def sign_in(client, plaintext: str) -> None:
    resp = client.post("/dashboard/sign-in", data={"key": plaintext, "csrf_token": csrf(client)})
    assert resp.status_code == 302, resp.get_data(as_text=True)


def cookie(client) -> str:
    return client.get_cookie("docket_session").value


def copy_of(app, value: str):
    """Another browser (or a thief) holding the same cookie."""
    other = app.test_client()
    other.set_cookie("docket_session", value)
    return other


def signed_in(client) -> bool:
    """Whether the cookie still opens a page that needs a session (JSON asked: 401 when not)."""
    status = client.get("/dashboard/mine", headers={"Accept": "application/json"}).status_code
    assert status in (200, 401), status
    return status == 200


def test_a_cookie_copied_before_sign_out_opens_nothing_after(app, any_settings):
    _, plaintext = key(any_settings)
    browser = app.test_client()
    sign_in(browser, plaintext)
    thief = copy_of(app, cookie(browser))
    assert signed_in(thief)
    browser.post("/dashboard/sign-out", data={"csrf_token": csrf(browser, "/dashboard/mine")})
    assert not signed_in(browser)
    assert not signed_in(thief)
    assert 'type="password"' in thief.get("/dashboard").get_data(as_text=True)  # the sign-in form, not the queue


def test_sign_out_in_one_process_ends_the_session_in_another(any_settings):
    first, second = (create_app(any_settings, broker_url="memory://") for _ in range(2))  # two API processes
    _, plaintext = key(any_settings)
    browser = first.test_client()
    sign_in(browser, plaintext)
    elsewhere = copy_of(second, cookie(browser))
    assert signed_in(elsewhere)
    browser.post("/dashboard/sign-out", data={"csrf_token": csrf(browser, "/dashboard/mine")})
    assert not signed_in(elsewhere)


def test_sign_out_everywhere_ends_every_session_of_the_key_only(app, any_settings):
    _, plaintext = key(any_settings)
    _, colleague_key = key(any_settings)
    laptop, phone, colleague = app.test_client(), app.test_client(), app.test_client()
    sign_in(laptop, plaintext)
    sign_in(phone, plaintext)
    sign_in(colleague, colleague_key)
    stolen = copy_of(app, cookie(phone))
    page = laptop.get("/dashboard/mine").get_data(as_text=True)
    assert 'action="/dashboard/sign-out-everywhere"' in page  # the signed-in user has the button
    resp = laptop.post("/dashboard/sign-out-everywhere", data={"csrf_token": csrf(laptop, "/dashboard/mine")})
    assert resp.status_code == 302
    assert not signed_in(laptop) and not signed_in(phone) and not signed_in(stolen)
    assert signed_in(colleague)  # another key's sessions are not this key's to end


def test_sign_out_everywhere_refuses_a_forged_form(app, any_settings):
    _, plaintext = key(any_settings)
    browser, other = app.test_client(), app.test_client()
    sign_in(browser, plaintext)
    sign_in(other, plaintext)
    assert browser.post("/dashboard/sign-out-everywhere", data={}).status_code == 400  # no CSRF token
    assert signed_in(browser) and signed_in(other)


def test_sign_out_everywhere_with_an_ended_session_ends_nothing_else(app, any_settings):
    _, plaintext = key(any_settings)
    browser, other = app.test_client(), app.test_client()
    sign_in(browser, plaintext)
    sign_in(other, plaintext)
    token = csrf(browser, "/dashboard/mine")
    thief = copy_of(app, cookie(browser))
    browser.post("/dashboard/sign-out", data={"csrf_token": token})
    # The copied cookie (signed out) still carries a valid CSRF token, but no session any more.
    thief.post("/dashboard/sign-out-everywhere", data={"csrf_token": token})
    assert signed_in(other)


def test_signing_in_again_ends_the_previous_session(app, any_settings):
    _, first_key = key(any_settings)
    _, second_key = key(any_settings, "admin")
    browser = app.test_client()
    sign_in(browser, first_key)
    before = cookie(browser)
    sign_in(browser, second_key)  # rotation: a new session, the old one is over
    assert cookie(browser) != before and signed_in(browser)
    assert not signed_in(copy_of(app, before))


def test_revoking_the_key_ends_a_copied_session(app, any_settings):
    _, plaintext = key(any_settings)
    browser = app.test_client()
    sign_in(browser, plaintext)
    thief = copy_of(app, cookie(browser))
    with session_scope(any_settings.database_url) as s:
        revoke_key(s, plaintext)
    assert not signed_in(thief) and not signed_in(browser)


def test_a_session_past_its_expiry_opens_nothing_whatever_the_cookie_says(app, any_settings):
    key_id, plaintext = key(any_settings)
    browser = app.test_client()
    sign_in(browser, plaintext)
    with session_scope(any_settings.database_url) as s:
        s.execute(update(DashboardSession).where(DashboardSession.key_id == key_id)
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert not signed_in(browser)


def test_a_cookie_naming_a_key_id_signs_nobody_in(app, any_settings):
    """The pre-0011 cookie named the key's id: signed with the real secret, it is refused now."""
    key_id, _ = key(any_settings)
    forged = app.session_interface.get_signing_serializer(app).dumps({"key_id": key_id, "_permanent": True})
    assert not signed_in(copy_of(app, forged))
    made_up = app.session_interface.get_signing_serializer(app).dumps({"sid": "made-up-session-token"})
    assert not signed_in(copy_of(app, made_up))


def test_the_database_keeps_no_usable_session_token(app, any_settings):
    key_id, plaintext = key(any_settings)
    browser = app.test_client()
    sign_in(browser, plaintext)
    token = app.session_interface.get_signing_serializer(app).loads(cookie(browser))["sid"]
    with session_scope(any_settings.database_url) as s:
        ids = s.scalars(select(DashboardSession.id).where(DashboardSession.key_id == key_id)).all()
    assert len(ids) == 1 and token not in ids[0]  # only its SHA-256: reading the table signs nobody in


def test_the_cli_signs_a_key_out_everywhere(settings):
    app = create_app(settings, broker_url="memory://")
    key_id, plaintext = key(settings)
    browser = app.test_client()
    sign_in(browser, plaintext)
    env = {**base_env(settings.data_dir), "DOCKET_DATABASE_URL": settings.database_url}
    env.pop("DOCKET_REDIS_URL", None)
    out = subprocess.run([DOCKET, "keys", "sign-out", key_id], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60)
    assert "1 session" in out.stdout
    assert not signed_in(browser)
