"""Engines and sessions. One engine per database URL per process."""
from __future__ import annotations

import select
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.private_files import private_sqlite


@lru_cache(maxsize=None)
def get_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        private_sqlite(url)  # 0600 before SQLite creates it with the umask's mode
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):
            # WAL lets the API read while a worker writes; foreign keys are off by default.
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = create_engine(url)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling without a round trip per transaction (`pool_pre_ping`
    cost a third of a busy worker's round trips). A connection is pinged when it sat in the pool
    for a while, or when its socket has something to read: an idle connection is sent nothing,
    so that is the server hanging up (a restart, a terminated backend), seen with one syscall.
    A server lost without a word within that moment (a cut cable) fails the statement as a
    disconnect; SQLAlchemy then drops the pool's older connections, and the callers' database
    waits (docket/database.py) try again."""
    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _stamp(_dbapi_connection, record):
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, _proxy):
        if time.monotonic() - record.info.get("checked_in", 0.0) <= PING_AFTER_IDLE_S \
                and not _server_spoke(dbapi_connection):
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(f"ping failed: {error}") from error
        if not alive:
            raise exc.DisconnectionError("ping failed")


def _server_spoke(dbapi_connection) -> bool:
    """Whether the idle connection's socket is readable (data or the end of the stream)."""
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except Exception:  # noqa: BLE001 - closed, or no socket to look at: let the ping tell
        return True
    return bool(readable)


@lru_cache(maxsize=None)
def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def one_statement_transactions(session: Session) -> None:
    """Let each statement of this session commit by itself (autocommit), on Postgres: for work
    that is a single atomic statement (the worker's claim, the API's mark that a message went
    out), the BEGIN and COMMIT around it were two of its three round trips. Call while the
    session has no transaction open; the pool puts the connection back to transactions when it
    is returned."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
