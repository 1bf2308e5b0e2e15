"""Access to the app's settings, rules, broker and a request-scoped database session."""
from __future__ import annotations

import threading
import time
from typing import Any, Hashable

from celery import Celery
from flask import current_app, g
from sqlalchemy.orm import Session

from db.models import Job
from db.session import session_factory
from docket import broker, policies
from docket.config import Settings
from docket.rules import Rule


def settings() -> Settings:
    return current_app.extensions["docket"]["settings"]


def rules() -> dict[str, Rule]:
    """The built-in policies (rules/), as loaded at start-up."""
    return current_app.extensions["docket"]["rules"]


class StampedCache:
    """Reads of API keys or active policies that this process keeps while the access stamp
    (docket/broker.py) is unchanged, for at most ACCESS_MAX_AGE_S: every change writes a new
    stamp once committed, so a revoked key or a replaced policy is never served after that."""

    def __init__(self, max_entries: int = 1024):
        self._entries: dict[Hashable, tuple[Any, float, Any]] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: Hashable, stamp) -> Any | None:
        entry = self._entries.get(key) if stamp is not None else None
        if entry is None or entry[0] != stamp or time.monotonic() - entry[1] > broker.ACCESS_MAX_AGE_S:
            return None
        return entry[2]

    def put(self, key: Hashable, stamp, value: Any) -> None:
        if stamp is None:  # the stamp is unknown: nothing could tell this entry is out of date
            return
        with self._lock:
            self._entries.pop(key, None)
            if len(self._entries) >= self._max:
                del self._entries[next(iter(self._entries))]  # the oldest
            self._entries[key] = (stamp, time.monotonic(), value)


def cache(name: str) -> StampedCache:
    """The app's cache `name` ("keys", "rules")."""
    return current_app.extensions["docket"]["caches"][name]


def access_stamp():
    """The access stamp, read once per request and before any cached read is used (the rows
    read after it are at least as new as it says). None, so no caching, when the request's
    transaction began first: its snapshot may be older than the stamp (SQLite keeps one)."""
    if "access_stamp" not in g:
        began = "db" in g and g.db.in_transaction()
        g.access_stamp = None if began else broker.access_stamp(current_app.extensions["docket"]["stamp_url"],
                                                                settings().broker_retry_after)
    return g.access_stamp


def tenant_rules(tenant_id: str) -> dict[str, Rule]:
    """The policies the tenant's new submissions use: built-ins, or its active versions (the
    same dict for every caller: read it, never change it)."""
    found = g.setdefault("tenant_rules", {})
    if tenant_id not in found:
        stamp, kept = access_stamp(), cache("rules")
        active = kept.get(tenant_id, stamp)
        if active is None:
            active = policies.active_rules(db(), tenant_id, rules())
            kept.put(tenant_id, stamp, active)
        found[tenant_id] = active
    return found[tenant_id]


def job_rule(job: Job) -> Rule | None:
    """The exact policy version the job's current decision was made with."""
    return policies.rule_for_job(db(), job, rules())


def celery() -> Celery:
    return current_app.extensions["docket"]["celery"]


def db() -> Session:
    if "db" not in g:
        g.db = session_factory(settings().database_url)()
    return g.db


def close_db(_exc=None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
