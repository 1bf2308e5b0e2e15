"""Periodic upkeep that keeps promises made elsewhere: batch.completed is recorded even when
two last jobs raced, expired idempotency keys are dropped, and page images nobody looked at
for a week are deleted (they are rendered again on demand); originals, pages, text and fields past
their policy's retention are purged (docket/privacy.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete

from db.models import IdempotencyKey, utcnow
from db.session import session_scope
from docket import claims
from docket import events, page_cache, policies, privacy
from docket.rules import default_rules_dir, load_rules
from docket.config import Settings
from docket.queues import HOUSEKEEPING_TASK
from worker.celery_app import celery


@celery.task(name=HOUSEKEEPING_TASK, acks_late=True)
def housekeeping() -> dict:
    settings = Settings.from_env()
    url = settings.database_url
    completed = decided = 0
    with session_scope(url) as session:
        for batch_id in events.open_batches(session):
            completed += events.complete_batch(session, batch_id)
        for claim_id in claims.open_claims(session):  # two last documents finished at once
            decided += claims.complete_claim(session, claim_id, duplicate_distance=settings.duplicate_distance)
        purged = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < utcnow())).rowcount
    retention = purge_expired_content(settings)
    return {"batches_completed": completed, "claims_decided": decided, "idempotency_keys_purged": purged,
            "page_images_pruned": page_cache.prune(settings),
            "documents_purged": retention["documents"], "text_purged": retention["text"]}


def purge_expired_content(settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """Retention (docket/privacy.py): originals, pages, text and fields past the period the
    tenant's active version of each policy keeps them; committed as one transaction."""
    builtins = load_rules(settings.rules_dir or default_rules_dir())
    active: dict[str, dict] = {}

    def rules_of(tenant_id: str) -> dict:
        if tenant_id not in active:
            active[tenant_id] = policies.active_rules(session, tenant_id, builtins)
        return active[tenant_id]

    with session_scope(settings.database_url) as session:
        counts = privacy.purge_expired(session, settings, rules_of, now=now)
        session.commit()
    return counts
