"""Access to the app's settings, rules, broker and a request-scoped database session."""
from __future__ import annotations

from celery import Celery
from flask import current_app, g
from sqlalchemy.orm import Session

from db.session import session_factory
from docket.config import Settings
from docket.rules import Rule


def settings() -> Settings:
    return current_app.extensions["docket"]["settings"]


def rules() -> dict[str, Rule]:
    return current_app.extensions["docket"]["rules"]


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
