"""Tenants and their API keys. A key is shown once, at creation; only its SHA-256 is kept."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ROLES, ApiKey, Tenant, utcnow
from docket import broker
from docket.errors import DocketError
from docket.webhooks.signing import new_secret as new_webhook_secret

KEY_PREFIX = "dk_"


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a plain SHA-256 is enough (no password stretching needed).
    return hashlib.sha256(key.encode()).hexdigest()


def ensure_tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        if not tenant_id or len(tenant_id) > 64 or not tenant_id.replace("-", "").replace("_", "").isalnum():
            raise DocketError("A tenant id is 1-64 letters, digits, '-' or '_'.", code="invalid_tenant")
        tenant = Tenant(id=tenant_id, webhook_secret=new_webhook_secret())
        session.add(tenant)
        session.flush()
    return tenant


def create_key(session: Session, tenant_id: str, role: str, name: str | None = None) -> tuple[ApiKey, str]:
    """Returns the stored key and the plaintext, which exists only in this return value."""
    if role not in ROLES:
        raise DocketError(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    ensure_tenant(session, tenant_id)
    key_id = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(id=key_id, tenant_id=tenant_id, role=role, name=name, key_hash=hash_key(plaintext))
    session.add(key)
    session.flush()
    broker.access_changes_on_commit(session)
    return key, plaintext


def revoke_key(session: Session, key_id_or_key: str) -> ApiKey | None:
    key_id = key_id_or_key
    if key_id_or_key.startswith(KEY_PREFIX):
        key_id = key_id_or_key[len(KEY_PREFIX):].split("_", 1)[0]
    key = session.get(ApiKey, key_id)
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()
        broker.access_changes_on_commit(session)  # cached lookups stop accepting it at once
    return key


def lookup(session: Session, plaintext: str) -> ApiKey | None:
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext)))
    if key is None or key.revoked_at is not None:
        return None
    return key


def any_keys(session: Session) -> bool:
    return session.scalar(select(ApiKey.id).limit(1)) is not None
