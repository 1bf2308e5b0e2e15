"""Who is signed in to the dashboard: a submitter, reviewer or admin API key, remembered in the session.

The cookie holds the key's id, never the key; every request checks the key still exists and is
not revoked, so revoking a key signs its sessions out at once. What each role may see is
api/dashboard/access.py's business; metrics keys cannot sign in.
"""
from __future__ import annotations

import functools
from datetime import timedelta

from flask import abort, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from api import context
from api.auth import Principal
from db.models import ApiKey
from docket import tenants

SIGN_IN_ROLES = ("submitter", "reviewer", "admin")


class SignInRefused(Exception):
    pass


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, minus building a signing serializer for every request that
    has no session cookie at all (every API call, which authenticates with a bearer key)."""

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()  # what Flask's open_session returns then
        return super().open_session(app, request)


def configure(app, settings) -> None:
    from docket.session_key import session_key

    app.secret_key = session_key(settings)
    app.session_interface = CookieSessions()
    app.config.update(
        SESSION_COOKIE_NAME="docket_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        # CSRF tokens are checked on the dashboard's forms only (the API uses bearer keys).
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=settings.session_hours * 3600,
        WTF_CSRF_SSL_STRICT=settings.secure_cookies,
    )


def sign_in(plaintext: str) -> Principal:
    """Check the key and start a fresh session for it; raises SignInRefused with the reason."""
    key = tenants.lookup(context.db(), plaintext.strip()) if plaintext.strip() else None
    if key is None:
        raise SignInRefused("Unknown or revoked key.")
    if key.role not in SIGN_IN_ROLES:
        raise SignInRefused(f"A {key.role} key cannot sign in to the dashboard; use a submitter, reviewer or admin key.")
    session.clear()  # a new session id for a new identity (no fixation)
    session.permanent = True
    session["key_id"] = key.id
    return Principal(key.id, key.tenant_id, key.role, key.name)


def sign_out() -> None:
    session.clear()


def current() -> Principal | None:
    """The signed-in key's principal, re-checked against the database on every request."""
    if "dashboard_principal" in g:
        return g.dashboard_principal
    who = None
    key_id = session.get("key_id")
    if key_id:
        key = context.db().get(ApiKey, key_id)
        if key is not None and key.revoked_at is None and key.role in SIGN_IN_ROLES:
            who = Principal(key.id, key.tenant_id, key.role, key.name)
        else:
            session.clear()
    g.dashboard_principal = who
    # The API's role checks and the rate limiter read g.principal.
    if who is not None:
        g.principal = who
    return who


def wants_data() -> bool:
    """A script's request (the upload's XHR, an EventSource), not a page a person opened."""
    best = request.accept_mimetypes.best
    return best in ("application/json", "text/event-stream")


def signed_in(view):
    """Route decorator: the page needs a signed-in key; otherwise, the sign-in form (401 for a
    script, which a redirect to an HTML form would only confuse)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current() is None:
            if wants_data():
                abort(401, "Not signed in (or the session ended): sign in again.")
            return redirect(url_for("dashboard.index", next=request.full_path.rstrip("?") if request.method == "GET" else None))
        return view(*args, **kwargs)

    return wrapper
