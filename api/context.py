"""Access to the app's settings, rules, broker and a request-scoped database session."""
from __future__ import annotations

from celery import Celery
from flask import current_app, g
from sqlalchemy.orm import Session

from db.models import Job
from db.session import session_factory
from docket import policies
from docket.config import Settings
from docket.rules import Rule


def settings() -> Settings:
    return current_app.extensions["docket"]["settings"]


def rules() -> dict[str, Rule]:
    """The built-in policies (rules/), as loaded at start-up."""
    return current_app.extensions["docket"]["rules"]


def tenant_rules(tenant_id: str) -> dict[str, Rule]:
    """The policies the tenant's new submissions use: built-ins, or its active versions."""
    cache = g.setdefault("tenant_rules", {})
    if tenant_id not in cache:
        cache[tenant_id] = policies.active_rules(db(), tenant_id, rules())
    return cache[tenant_id]


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
