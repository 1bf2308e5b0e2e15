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

from flask import g, request

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


def open_bootstrap_allowed() -> bool:
    settings = context.settings()
    return settings.database_url.startswith("sqlite") and settings.auth_mode != "required"


def authenticate() -> None:
    """before_request for the API blueprints: sets g.principal or refuses with 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        if open_bootstrap_allowed() and not tenants.any_keys(context.db()):
            g.principal = Principal(None, DEFAULT_TENANT, "admin")
            return
        raise Unauthorized("Send 'Authorization: Bearer <API key>'. Create a key with "
                           "`docket keys create --role submitter --tenant <tenant>`.")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <API key>'.")
    who = key_principal(token.strip())
    if who is None:
        raise Unauthorized("Unknown or revoked API key.")
    g.principal = who
    logs.bind(tenant=who.tenant_id)  # undone with the request's other ids at teardown


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
