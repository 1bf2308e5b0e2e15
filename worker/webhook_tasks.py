"""Celery tasks that send webhook deliveries from the outbox.

The database decides: a message only says "look at this delivery". Retries are not scheduled with
countdowns; a failed attempt sets the row's `next_attempt_at` and `docket.sweep_webhooks` (on the
beat schedule) publishes every delivery whose time has come, including those recorded while the
broker was down. Duplicated or redelivered messages are harmless: the claim in
`attempt_delivery` lets exactly one through per attempt.
"""
from __future__ import annotations

import logging
from typing import Iterable

from sqlalchemy.exc import OperationalError as DatabaseUnavailable

from db.session import session_scope
from docket.config import Settings
from docket.queues import DELIVER_WEBHOOK_TASK, SWEEP_WEBHOOKS_TASK
from docket.webhooks.delivery import attempt_delivery, due_deliveries
from docket.webhooks.settings import WebhookSettings
from worker.celery_app import celery

log = logging.getLogger(__name__)

SWEEP_BATCH = 500


@celery.task(name=DELIVER_WEBHOOK_TASK, acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: str) -> str:
    """One attempt at one delivery, if it is still pending and due (idempotent)."""
    database_url = Settings.from_env().database_url
    try:
        with session_scope(database_url) as session:
            return attempt_delivery(session, delivery_id, WebhookSettings.from_env())
    except DatabaseUnavailable:
        # The row is unchanged or its lease runs out; the sweeper publishes it again.
        log.warning("webhook %s: database unavailable, left for the sweeper", delivery_id)
        return "deferred"


@celery.task(name=SWEEP_WEBHOOKS_TASK, acks_late=True, ignore_result=True)
def sweep_webhooks(limit: int = SWEEP_BATCH) -> int:
    """Publish `docket.deliver_webhook` for every pending delivery whose time has come."""
    with session_scope(Settings.from_env().database_url) as session:
        due = due_deliveries(session, limit=limit)
    for delivery_id in due:
        deliver_webhook.delay(delivery_id)
    if due:
        log.info("webhook sweeper published %d delivery(ies)", len(due))
    return len(due)


def enqueue(delivery_ids: Iterable[str]) -> int:
    """Publish deliveries right after the transaction that recorded them committed. A broker
    error is logged, not raised: the rows are already safe and the sweeper sends them."""
    published = 0
    for delivery_id in delivery_ids:
        try:
            deliver_webhook.delay(delivery_id)
            published += 1
        except Exception as exc:  # broker down: the outbox row waits for the sweeper
            log.warning("webhook %s not published (%s); the sweeper will", delivery_id, exc)
            break
    return published


# In worker processes, deliveries recorded with a job's outcome go out as soon as it commits.
from docket.webhooks.outbox import publish_after_commit  # noqa: E402

publish_after_commit(enqueue)
