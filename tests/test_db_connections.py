"""Pooled connections are checked before use only after sitting idle (db/session.py): a busy
process pays no ping per transaction, and a connection whose server side went away while it sat
in the pool is replaced before anyone uses it."""
from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import text

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


def _count_pings(engine, monkeypatch) -> list:
    pings = []
    real = engine.dialect.do_ping

    def ping(dbapi_connection):
        pings.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", ping)
    return pings


def test_a_connection_used_a_moment_ago_is_not_pinged(url, monkeypatch):
    monkeypatch.setattr(db_session, "PING_AFTER_IDLE_S", 3600.0)  # nothing counts as idle
    engine = db_session.get_engine(url)
    pid = _pooled_backend(engine)
    pings = _count_pings(engine, monkeypatch)
    assert [_pooled_backend(engine) for _ in range(5)] == [pid] * 5
    assert pings == []


def test_a_server_that_hung_up_a_moment_ago_is_noticed_without_waiting(url, postgres_admin_url, monkeypatch):
    """A fast restart: the connection was used a moment ago, but the server's goodbye is on its
    socket, so it is pinged, found dead and replaced before anyone uses it."""
    monkeypatch.setattr(db_session, "PING_AFTER_IDLE_S", 3600.0)
    engine = db_session.get_engine(url)
    pid = _pooled_backend(engine)
    pings = _count_pings(engine, monkeypatch)
    _terminate(postgres_admin_url, pid)
    time.sleep(0.2)  # the goodbye reaches the socket
    assert _pooled_backend(engine) != pid
    assert len(pings) == 1
