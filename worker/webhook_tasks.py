"""Celery tasks that send webhook deliveries from the outbox.

The database decides: a message only says "look at this delivery". Each retry goes out at its
own due time — the row's `next_attempt_at`, exponential backoff with full jitter — as a message
with that time as its ETA, so the spread of the backoff reaches the receiver intact:

- `docket.sweep_webhooks` (each sweep interval) publishes every pending delivery due before a
  little after its next pass (its horizon, remembered in the broker): overdue ones (recorded
  while the broker was down, or whose message was lost) at once, the others with their own due
  time as ETA, each only once (those under the previous pass's horizon were published by it).
  It pages through all of them: no cap, no starving;
- a failed attempt whose next try falls under the horizon already swept publishes that try
  itself, with its ETA (a later one is the next pass's).

Duplicated or redelivered messages are harmless: the claim in `attempt_delivery` lets exactly one
through per attempt, and a message that arrives before its delivery is due does nothing.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Iterable

import redis

from db.session import session_scope
from docket import broker, database, metrics
from docket.config import Settings
from docket.queues import DELIVER_WEBHOOK_TASK, SWEEP_WEBHOOKS_TASK
from docket.webhooks.delivery import PENDING, attempt_delivery, due_at, scheduled
from docket.webhooks.settings import WebhookSettings
from worker.celery_app import celery

log = logging.getLogger(__name__)

SWEEP_BATCH = 500  # page size: every due delivery is published, page after page


HORIZON_KEY = "docket:webhooks:published-until"


def _swept_until() -> float | None:
    """Up to when (Unix seconds) the sweeper has published due deliveries; None if unknown."""
    try:
        raw = broker.client(str(celery.conf.broker_url)).get(HORIZON_KEY)
        return float(raw) if raw is not None else None
    except (redis.RedisError, ValueError):
        return None


def horizon(settings: Settings) -> float:
    """How far ahead retries are published with an ETA: a little beyond the next sweep. Far below
    the broker's visibility timeout, so a waiting ETA message is never redelivered meanwhile."""
    return settings.sweep_interval * 1.5 + 1.0


@celery.task(name=DELIVER_WEBHOOK_TASK, acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: str) -> str:
    """One attempt at one delivery, if it is still pending and due (idempotent); a retry that
    falls due soon is published at once with its due time as ETA."""
    settings = Settings.from_env()
    try:
        with session_scope(settings.database_url) as session:
            status = attempt_delivery(session, delivery_id, WebhookSettings.from_env())
            due = due_at(session, delivery_id) if status == PENDING else None
        # delivered, a failed attempt to be retried (pending), dead after the last; skipped: not ours
        metrics.webhook_delivery("retry" if status == PENDING else status)
    except Exception as exc:
        if not database.unavailable(exc):
            raise
        # The row is unchanged or its lease runs out; the sweeper publishes it again.
        log.warning("webhook %s: database unavailable, left for the sweeper", delivery_id)
        return "deferred"
    if due is not None:
        swept = _swept_until()
        if swept is None or due.timestamp() <= swept:
            _publish(delivery_id, due)  # else the next pass publishes it, before it is due
    return status


def _publish(delivery_id: str, due: datetime | None) -> None:
    if due is None or due <= datetime.now(timezone.utc):
        deliver_webhook.delay(delivery_id)
    else:
        deliver_webhook.apply_async(args=[delivery_id], eta=due)


@celery.task(name=SWEEP_WEBHOOKS_TASK, acks_late=True, ignore_result=True)
def sweep_webhooks(limit: int = SWEEP_BATCH) -> int:
    """Publish `docket.deliver_webhook` for every pending delivery due before the next pass:
    overdue ones now, the others with their own due time as ETA. Returns how many."""
    settings = Settings.from_env()
    now = datetime.now(timezone.utc)
    until = now + timedelta(seconds=horizon(settings))
    swept = _swept_until()
    published, after = 0, None
    try:
        while True:
            with session_scope(settings.database_url) as session:
                page = scheduled(session, until=until, limit=limit, after=after)
            for delivery_id, due in page:
                # Due later but under the last pass's horizon: that pass published it already.
                if due is not None and due > now and swept is not None and due.timestamp() <= swept:
                    continue
                _publish(delivery_id, due)
                published += 1
            if len(page) < limit:
                break
            after = page[-1][1], page[-1][0]
    except Exception as exc:
        if not database.unavailable(exc):
            raise
        log.warning("webhook sweeper: database unavailable; next pass in %.0f s", settings.sweep_interval)
        return published
    try:
        broker.client(str(celery.conf.broker_url)).set(HORIZON_KEY, until.timestamp(), ex=3600)
    except redis.RedisError:
        pass
    if published:
        log.info("webhook sweeper published %d delivery(ies)", published)
    return published


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
