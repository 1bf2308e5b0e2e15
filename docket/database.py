"""The database being away — unreachable, restarting, failing over — told apart from every other
database error, and waited out where waiting is the right answer (workers); the API answers
503 `database_unavailable` instead (api/problems.py)."""
from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from sqlalchemy import exc as sa

log = logging.getLogger(__name__)
T = TypeVar("T")

#: What a lost or refused connection raises through SQLAlchemy (psycopg's OperationalError for
#: "connection refused", "the database system is starting up/shutting down", "terminating
#: connection due to administrator command", "server closed the connection unexpectedly";
#: InterfaceError for a connection already closed; TimeoutError for an exhausted pool).
UNAVAILABLE = (sa.OperationalError, sa.InterfaceError, sa.TimeoutError, sa.DisconnectionError)


def unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database cannot be reached right now (worth retrying later)."""
    if isinstance(exc, UNAVAILABLE):
        orig = getattr(exc, "orig", None)
        if type(orig).__module__ == "sqlite3":  # SQLite calls a missing table "operational" too
            return any(word in str(orig).lower() for word in ("locked", "unable to open", "disk i/o"))
        return True
    return isinstance(exc, sa.DBAPIError) and bool(getattr(exc, "connection_invalidated", False))


def describe(exc: BaseException) -> str:
    """One line naming what went wrong underneath (the driver's error, not SQLAlchemy's wrapper)."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())[:200]
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__


def wait_for(action: Callable[[], T], wait: float, what: str, *, first_delay: float = 0.25,
             max_delay: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `action`; while the database is unavailable, try again (0.25 s, doubling to 2 s) for up
    to `wait` seconds, then re-raise. Other errors pass through at once. A failover of N seconds
    costs about N seconds, not a dropped message."""
    deadline = time.monotonic() + wait
    delay = first_delay
    warned = False
    while True:
        try:
            return action()
        except Exception as exc:
            if not unavailable(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            if not warned:
                log.warning("database unavailable during %s (%s); waiting up to %.0f s", what, describe(exc), left)
                warned = True
            sleep(min(delay, left))
            delay = min(max_delay, delay * 2)
