"""Who is calling: `Authorization: Bearer KEY` on every route but /healthz.

Roles: `submitter` submits and reads its tenant's jobs, `reviewer` reads and overrides
decisions, `admin` does everything in its tenant. Nothing here ever crosses tenants.

One exception keeps the embedded default easy: on the embedded SQLite database, while no API
key exists at all, unauthenticated calls act as the `default` tenant's admin (a laptop with
no setup). Creating the first key (`docket keys create …`) ends that for good; a configured
database (Postgres) never allows it; DOCKET_AUTH=required turns it off everywhere.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from flask import current_app, g, request

from api import context
from db.models import DEFAULT_TENANT
from docket import logs, tenants
from docket.errors import DocketError

PERMISSIONS = {
    "submitter": {"submit", "read"},
    "reviewer": {"read", "review"},
    "admin": {"submit", "read", "review", "admin", "metrics"},
    # For Prometheus: reads /metrics and nothing else.
    "metrics": {"metrics"},
}


@dataclass(frozen=True)
class Principal:
    key_id: str | None
    tenant_id: str
    role: str
    name: str | None = None

    @property
    def display_name(self) -> str:
        """Who, as a review records it: the key's name, else its id."""
        if self.key_id is None:
            return "local admin (no keys yet)"
        return f"{self.name} ({self.key_id})" if self.name else f"key {self.key_id}"

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]


class Unauthorized(DocketError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(DocketError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class TooManyFailures(DocketError):
    # The same problem code as the rate limiter's own 429s: a client handles both alike.
    status = 429
    code = "too_many_requests"
    title = "Too Many Requests"


def open_bootstrap_allowed() -> bool:
    settings = context.settings()
    return settings.database_url.startswith("sqlite") and settings.auth_mode != "required"


def authenticate() -> None:
    """before_request for the API blueprints: sets g.principal or refuses with 401."""
    if not request.headers.get("Authorization", ""):
        if open_bootstrap_allowed() and not tenants.any_keys(context.db()):
            g.principal = Principal(None, DEFAULT_TENANT, "admin")
            return
        raise Unauthorized("Send 'Authorization: Bearer <API key>'. Create a key with "
                           "`docket keys create --role submitter --tenant <tenant>`.")
    who = bearer()
    if isinstance(who, DocketError):
        raise who
    g.principal = who
    logs.bind(tenant=who.tenant_id)  # undone with the request's other ids at teardown


def bearer() -> Principal | DocketError | None:
    """The Authorization header's verdict, reached once per request (the rate limiter asks before
    authenticate does, to count against the key's id): the key's principal, the refusal to
    answer, or None without a header. Refusals count against the client address's budget of
    failures (api/limits.py); past it, keys not already known good are not even looked up."""
    if "docket_bearer" in g:
        return g.docket_bearer
    header = request.headers.get("Authorization", "")
    verdict: Principal | DocketError | None = None
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""  # "bearer K", "Bearer  K": one key
        digest = tenants.hash_key(token) if token else None
        failures = current_app.extensions.get("docket_auth_failures")
        # A key that authenticated here before is no guess: it skips the failure budget's read.
        wait = failures.exceeded() if failures is not None and not failures.known(digest) else None
        if wait is not None:  # no lookup: a throttled guesser learns nothing, right or wrong
            verdict = TooManyFailures(f"Too many failed authentications from this address; retry in {wait} s.",
                                      headers={"Retry-After": str(wait)})
        else:
            verdict = (key_principal(token) if token else None) or Unauthorized(
                "Unknown or revoked API key." if token else "The Authorization header must be 'Bearer <API key>'.")
            if failures is not None and isinstance(verdict, Unauthorized):
                failures.count()
            elif failures is not None:
                failures.vouch(digest)
    g.docket_bearer = verdict
    return verdict


def key_principal(plaintext: str) -> Principal | None:
    """Who the key is, None when unknown or revoked: from this process's cache while the access
    stamp says no key changed (api/context.py), else from the database. Misses are not kept."""
    stamp, kept, digest = context.access_stamp(), context.cache("keys"), tenants.hash_key(plaintext)
    who = kept.get(digest, stamp)
    if who is None:
        key = tenants.lookup(context.db(), plaintext)
        if key is None:
            return None
        who = Principal(key.id, key.tenant_id, key.role, key.name)
        kept.put(digest, stamp, who)
    return who


def principal() -> Principal:
    return g.principal


def require(permission: str):
    """Route decorator: the caller's role must grant `permission`."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            who = principal()
            if not who.can(permission):
                raise Forbidden(f"The {who.role} role may not do this (needs '{permission}').")
            return view(*args, **kwargs)

        return wrapper

    return decorate
