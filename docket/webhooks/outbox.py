"""The webhook outbox: deliveries are rows written in the same transaction as the event itself,
so an event is never lost to a broker outage and never announced for a rolled-back change.

Each row's id is the Standard Webhooks `webhook-id`: it stays the same on every retry and on
replay, so receivers de-duplicate on it (delivery is at least once).
"""
from __future__ import annotations

import logging
import uuid
from functools import lru_cache
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session

from db.models import WebhookDelivery, WebhookSubscription
from docket import i18n
from docket.reasons import localize_all

EVENT_TYPES = ("job.succeeded", "job.failed", "batch.completed", "review.updated", "job.redecided", "job.erased",
               "claim.decided", "claim.reviewed", "claim.redecided")
log = logging.getLogger(__name__)

# Deliveries recorded in a session's open transaction, published once it commits.
_PENDING = "docket_webhook_deliveries"
_publisher: Callable[[list[str]], Any] | None = None


def publish_after_commit(publisher: Callable[[list[str]], Any] | None) -> None:
    """Set this process's way to queue deliveries (a Celery send). Then a delivery goes out right
    after the transaction that recorded it commits, instead of at the sweeper's next pass; the
    sweeper still sends whatever this misses (broker down, process killed in between)."""
    global _publisher
    _publisher = publisher


@event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    ids = session.info.pop(_PENDING, None)
    if ids and _publisher is not None:
        try:
            _publisher(list(ids))
        except Exception as exc:  # the rows are safe; the sweeper sends them
            log.warning("webhook deliveries not published now (%s); the sweeper will", exc)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _remember(session: Session, ids: Iterable[str]) -> None:
    session.info.setdefault(_PENDING, []).extend(ids)


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)


@lru_cache(maxsize=1)
def _active_subscriptions():
    # Core, built once: every finished job runs it, and building it cost more than running it.
    subscriptions = WebhookSubscription.__table__
    return (select(subscriptions.c.id, subscriptions.c.url, subscriptions.c.event_types, subscriptions.c.locale)
            .where(subscriptions.c.tenant_id == bindparam("tenant_id"), subscriptions.c.active.is_(True))
            .order_by(subscriptions.c.created_at, subscriptions.c.id))


def in_language(payload: dict, locale: str | None) -> dict:
    """The payload with its reasons in the subscription's language (a copy; None: English, as
    stored). Reasons as stored carry how to show them in other languages (docket/reasons.py)."""
    return {**payload, "data": _localized(payload.get("data"), i18n.normalize(locale) or i18n.DEFAULT)}


def _localized(value: Any, locale: str) -> Any:
    if isinstance(value, dict):
        return {k: (localize_all(v, locale) if k == "reasons" and isinstance(v, list) else _localized(v, locale))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_localized(v, locale) for v in value]
    return value


def record_event(session: Session, *, tenant_id: str, event_type: str, data: dict[str, Any],
                 job_id: str | None = None, batch_id: str | None = None,
                 callback_url: str | None = None, now: datetime | None = None,
                 ) -> list[WebhookDelivery]:
    """Add the deliveries for one event to the caller's transaction (nothing is committed).

    One delivery for the per-request `callback_url` (signed with the tenant's secret) and one per
    active subscription of the tenant that asked for `event_type` (signed with its own secret).
    After committing, the caller may publish `docket.deliver_webhook` for each (see
    worker.webhook_tasks.enqueue); if it does not, or the broker is down, the sweeper does.
    `now` defaults to the current time (payload timestamp, created_at, first due time).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}; expected one of {EVENT_TYPES}")
    now = _utc(now)
    payload = {"type": event_type, "timestamp": now.isoformat(), "data": data}
    targets: list[tuple[str, str | None, str | None]] = []
    if callback_url:
        targets.append((callback_url, None, None))
    for sub in session.connection().execute(_active_subscriptions(), {"tenant_id": tenant_id}):
        # event_types is a JSON list: filtered here, the same on SQLite and Postgres.
        if event_type in (sub.event_types or ()):
            targets.append((sub.url, sub.id, sub.locale))
    deliveries = []
    for url, subscription_id, locale in targets:
        delivery = WebhookDelivery(
            id=new_message_id(), tenant_id=tenant_id, event_type=event_type, job_id=job_id,
            batch_id=batch_id, subscription_id=subscription_id, url=url, payload=in_language(payload, locale),
            status="pending", attempts=0, next_attempt_at=now, created_at=now)
        session.add(delivery)
        deliveries.append(delivery)
    _remember(session, [d.id for d in deliveries])
    return deliveries

