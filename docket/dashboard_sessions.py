"""Dashboard sessions, kept in the database so that every API process sees an ended one at once.

The signed cookie carries a random token; the row is found by the token's SHA-256 (one primary-key
lookup per dashboard request). Ending a session marks the row, so a copy of the cookie taken
before sign-out opens nothing. Bearer-key API calls never read this table.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from db.models import ApiKey, DashboardSession, utcnow


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def start(session: Session, key_id: str, hours: float) -> str:
    """A new session for the key; returns the token for the cookie (it exists nowhere else)."""
    now = utcnow()
    # This key's ended sessions are of no further use: the table stays the size of the live ones.
    session.execute(delete(DashboardSession).where(
        DashboardSession.key_id == key_id,
        or_(DashboardSession.revoked_at.is_not(None), DashboardSession.expires_at < now)))
    token = secrets.token_urlsafe(32)
    session.add(DashboardSession(id=_digest(token), key_id=key_id, created_at=now,
                                 expires_at=now + timedelta(hours=hours)))
    session.flush()
    return token


def find(session: Session, token: str) -> ApiKey | None:
    """The key of a live session: not ended, not expired, its key not revoked; else None."""
    if not token or not isinstance(token, str):
        return None
    row = session.execute(select(DashboardSession, ApiKey).join(ApiKey, ApiKey.id == DashboardSession.key_id)
                          .where(DashboardSession.id == _digest(token))).first()
    if row is None:
        return None
    found, key = row
    if found.revoked_at is not None or _utc(found.expires_at) <= utcnow() or key.revoked_at is not None:
        return None
    return key


def end(session: Session, token: str) -> None:
    """Sign-out: this session only."""
    if token and isinstance(token, str):
        session.execute(update(DashboardSession).where(DashboardSession.id == _digest(token),
                                                       DashboardSession.revoked_at.is_(None)).values(revoked_at=utcnow()))


def end_all(session: Session, key_id: str) -> int:
    """Sign out everywhere: every live session of the key; returns how many were ended."""
    result = session.execute(update(DashboardSession).where(DashboardSession.key_id == key_id,
                                                            DashboardSession.revoked_at.is_(None))
                             .values(revoked_at=utcnow()))
    return result.rowcount or 0
