"""Periodic upkeep that keeps promises made elsewhere: batch.completed is recorded even when
two last jobs raced, expired idempotency keys are dropped, and page images nobody looked at
for a week are deleted (they are rendered again on demand)."""
from __future__ import annotations

from sqlalchemy import delete

from db.models import IdempotencyKey, utcnow
from db.session import session_scope
from docket import events, page_cache
from docket.config import Settings
from docket.queues import HOUSEKEEPING_TASK
from worker.celery_app import celery


@celery.task(name=HOUSEKEEPING_TASK, acks_late=True)
def housekeeping() -> dict:
    settings = Settings.from_env()
    url = settings.database_url
    completed = 0
    with session_scope(url) as session:
        for batch_id in events.open_batches(session):
            completed += events.complete_batch(session, batch_id)
        purged = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < utcnow())).rowcount
    return {"batches_completed": completed, "idempotency_keys_purged": purged,
            "page_images_pruned": page_cache.prune(settings)}
