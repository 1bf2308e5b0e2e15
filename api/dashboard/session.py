"""Who is signed in to the dashboard: a submitter, reviewer or admin API key, remembered in the session.

The cookie holds a random session token, never the key; every request finds its session in the
database (docket/dashboard_sessions.py) and checks it was not ended and its key is not revoked,
so sign-out, "sign out everywhere" and revoking a key end it at once, in every API process. What
each role may see is api/dashboard/access.py's business; metrics keys cannot sign in.
"""
from __future__ import annotations

import functools
from datetime import timedelta

from flask import abort, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from api import context
from api.auth import Principal
from docket import dashboard_sessions, i18n, tenants

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
        raise SignInRefused(i18n.gettext("Unknown or revoked key."))
    if key.role not in SIGN_IN_ROLES:
        raise SignInRefused(i18n.gettext("A %(role)s key cannot sign in to the dashboard; use a submitter, reviewer or "
                                         "admin key.", role=key.role))
    db = context.db()
    dashboard_sessions.end(db, session.get("sid"))  # whatever this browser had before is over
    token = dashboard_sessions.start(db, key.id, context.settings().session_hours)
    db.commit()
    # The language chosen before signing in stays; else the one this key chose last time.
    lang = session.get("lang") or getattr(key, "locale", None)
    session.clear()  # a new session id for a new identity (no fixation)
    if lang:
        session["lang"] = lang
    session.permanent = True
    session["sid"] = token
    g.pop("dashboard_principal", None)
    return Principal(key.id, key.tenant_id, key.role, key.name)


def sign_out() -> None:
    """Ends this session server-side: a copy of the cookie opens nothing afterwards."""
    db = context.db()
    dashboard_sessions.end(db, session.get("sid"))
    db.commit()
    session.clear()
    g.pop("dashboard_principal", None)


def sign_out_everywhere() -> int:
    """Ends every session of the signed-in key (other browsers, copied cookies); returns how many."""
    who = current()
    db = context.db()
    ended = dashboard_sessions.end_all(db, who.key_id) if who is not None else 0
    db.commit()
    session.clear()
    g.pop("dashboard_principal", None)
    return ended


def current() -> Principal | None:
    """The signed-in key's principal, re-checked against the database on every request."""
    if "dashboard_principal" in g:
        return g.dashboard_principal
    who = None
    if session:
        key = dashboard_sessions.find(context.db(), session.get("sid"))
        if key is not None and key.role in SIGN_IN_ROLES:
            who = Principal(key.id, key.tenant_id, key.role, key.name)
        elif "sid" in session or "key_id" in session:  # ended, expired, or a cookie from before 0011
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
                abort(401, i18n.N_("Not signed in (or the session ended): sign in again."))
            return redirect(url_for("dashboard.index", next=request.full_path.rstrip("?") if request.method == "GET" else None))
        return view(*args, **kwargs)

    return wrapper
