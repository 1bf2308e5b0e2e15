"""Pooled connections are checked before use only after sitting idle (db/session.py): a busy
process pays no ping per transaction, and a connection whose server side went away while it sat
in the pool is replaced before anyone uses it."""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import exc, text

from db import session as db_session
from tests import services


@pytest.fixture
def url(postgres_admin_url):
    url, drop = services.fresh_database(postgres_admin_url)
    yield url
    db_session.get_engine(url).dispose()
    drop()


def _pooled_backend(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar()


def _terminate(admin_url: str, pid: int) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


def test_an_idle_connection_that_died_is_replaced_before_use(url, postgres_admin_url, monkeypatch):
    monkeypatch.setattr(db_session, "PING_AFTER_IDLE_S", 0.0)  # every checkout counts as idle
    engine = db_session.get_engine(url)
    pid = _pooled_backend(engine)
    _terminate(postgres_admin_url, pid)
    assert _pooled_backend(engine) != pid  # pinged, found dead, replaced: the caller saw nothing


def test_a_connection_used_a_moment_ago_is_not_pinged(url, postgres_admin_url, monkeypatch):
    monkeypatch.setattr(db_session, "PING_AFTER_IDLE_S", 3600.0)  # nothing counts as idle
    engine = db_session.get_engine(url)
    pid = _pooled_backend(engine)
    _terminate(postgres_admin_url, pid)
    # No ping: the statement meets the dead connection, as a disconnect the callers' waits retry...
    with pytest.raises(exc.OperationalError) as raised:
        _pooled_backend(engine)
    assert raised.value.connection_invalidated
    assert _pooled_backend(engine) != pid  # ...and the pool has let it go
