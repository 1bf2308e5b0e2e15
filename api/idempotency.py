"""`Idempotency-Key` on submissions: the same key and request replay the first response; the
same key with a different request is a 409. Keys expire after DOCKET_IDEMPOTENCY_TTL seconds."""
from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from flask import request
from sqlalchemy.orm import Session

from db.models import IdempotencyKey, utcnow
from db.queries import as_utc
from docket.errors import DocketError

HEADER = "Idempotency-Key"


def key_from_request() -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise DocketError(f"{HEADER} must be 1-255 printable characters.", code="invalid_idempotency_key")
    return key


def fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def replay(session: Session, tenant_id: str, key: str, fp: str):
    """The stored response for this key, None when the key is new (or expired), 409 on mismatch."""
    row = session.get(IdempotencyKey, (tenant_id, key))
    if row is None:
        return None
    if as_utc(row.expires_at) <= utcnow():
        session.delete(row)
        session.flush()
        return None
    if row.fingerprint != fp:
        raise DocketError(f"{HEADER} {key!r} was already used for a different request.",
                          code="idempotency_conflict", status=409, title="Idempotency key reused")
    headers = {"Idempotent-Replayed": "true"}
    if row.location:
        headers["Location"] = row.location
    return row.response, row.status_code, headers


def remember(session: Session, tenant_id: str, key: str, fp: str, ttl: int, status: int, body: dict,
             location: str | None) -> None:
    """Stored in the caller's transaction, so the key exists exactly when the job does."""
    session.add(IdempotencyKey(tenant_id=tenant_id, key=key, fingerprint=fp, status_code=status, response=body,
                               location=location, expires_at=utcnow() + timedelta(seconds=ttl)))
