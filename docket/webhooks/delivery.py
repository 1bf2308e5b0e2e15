"""Sending outbox rows: one attempt at a time, claimed so that two workers never send the same
attempt, every attempt recorded, exponential backoff with full jitter, then `dead`.

The database is the truth: a delivery is due when it is `pending` and its `next_attempt_at` has
come. Whoever calls `attempt_delivery` for a due delivery (the task published after the event,
a retry scheduled for its own due time, or the sweeper) claims it with a conditional UPDATE that
pushes `next_attempt_at` forward by a lease; only the caller whose UPDATE matched sends. A worker
that dies mid-attempt leaves the lease to run out, after which the sweeper publishes the delivery
again. Each retry goes out at its own jittered due time (`scheduled` lists what falls due soon,
so that it can be published with that time as its ETA), never in a burst on the sweep.
"""
from __future__ import annotations

import json
import logging
import random
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from db.models import Tenant, WebhookAttempt, WebhookDelivery, WebhookSubscription
from db.sealed import UnreadableSecret
from docket.webhooks import ssrf
from docket.webhooks.settings import WebhookSettings
from docket.webhooks.signing import signed_headers

log = logging.getLogger(__name__)

DELIVERED, PENDING, DEAD, SKIPPED = "delivered", "pending", "dead", "skipped"
_rng = random.Random()


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _now(now: datetime | None) -> datetime:
    return _utc(now) if now is not None else datetime.now(timezone.utc)


def backoff_delay(failed_attempts: int, settings: WebhookSettings,
                  rng: random.Random | None = None) -> float:
    """Seconds before the next try after `failed_attempts` (>= 1) failures: full jitter,
    uniform(0, min(cap, base * 2**(failed_attempts - 1)))."""
    exponent = min(max(failed_attempts - 1, 0), 62)
    ceiling = min(settings.backoff_cap, settings.backoff_base * (2 ** exponent))
    return (rng or _rng).uniform(0, max(ceiling, 0.0))


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact JSON, the same on every attempt."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def claim(session: Session, delivery_id: str, now: datetime, lease_seconds: float) -> bool:
    """Take the right to make the next attempt; True for exactly one caller while it is due."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING,
               or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= now))
        .values(next_attempt_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        session.commit()  # visible to other workers before the (slow) request goes out
        return True
    session.rollback()
    return False


def _signing_secret(session: Session, delivery: WebhookDelivery) -> tuple[str | None, str | None]:
    """(secret, None) or (None, why the delivery cannot be sent at all)."""
    if delivery.subscription_id is not None:
        sub = session.get(WebhookSubscription, delivery.subscription_id)
        if sub is None or sub.tenant_id != delivery.tenant_id:
            return None, f"subscription {delivery.subscription_id} no longer exists"
        if not sub.active:
            return None, f"subscription {sub.id} is inactive"
        return sub.secret, None
    tenant = session.get(Tenant, delivery.tenant_id)
    secret = tenant.webhook_secret if tenant is not None else None
    if not secret and not isinstance(secret, UnreadableSecret):  # an unreadable one reads as ""
        return None, f"tenant {delivery.tenant_id} has no webhook secret"
    return secret, None


def attempt_delivery(session: Session, delivery_id: str, settings: WebhookSettings,
                     now: datetime | None = None) -> str:
    """Make one attempt at a delivery if it is pending and due; returns its status afterwards
    ("delivered", "pending" with a retry scheduled, "dead") or "skipped" (not pending, not due,
    unknown, or claimed by another worker).

    Manages its own transactions on `session` (commits the claim before sending, then the
    outcome): give it a session of its own, not one holding the caller's pending changes.
    `now` drives scheduling (claim, backoff, timestamps of record); the `webhook-timestamp`
    header is always the real clock, since receivers check it against theirs.
    """
    now = _now(now)
    if not claim(session, delivery_id, now, settings.lease_seconds):
        return SKIPPED
    delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
    assert delivery is not None
    url, payload = delivery.url, delivery.payload
    secret, unsendable = _signing_secret(session, delivery)
    session.commit()  # no transaction held open while the request is in flight

    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    ok = False
    if unsendable:
        error = f"not sent: {unsendable}"
    elif isinstance(secret, UnreadableSecret):
        # A failed attempt, retried as usual: the keys may be put right before it is dead.
        error = f"not sent: the signing secret cannot be decrypted: {secret.reason}"
    else:
        body = body_bytes(payload)
        started = time.monotonic()
        try:
            headers = signed_headers(secret, delivery_id, datetime.now(timezone.utc), body)
            target = ssrf.resolve(url, settings.allow_hosts)
            result = ssrf.post(target, body, headers, connect_timeout=settings.connect_timeout,
                               read_timeout=settings.read_timeout,
                               max_response_bytes=settings.max_response_bytes)
        except ssrf.BlockedDestination as exc:
            error = f"blocked: {exc.reason}"
        except ssrf.DeliveryError as exc:
            latency_ms = (time.monotonic() - started) * 1000.0
            error = str(exc)
        except Exception as exc:  # a bad secret, an unexpected library error: still recorded
            latency_ms = (time.monotonic() - started) * 1000.0
            error = f"error: {type(exc).__name__}: {exc}"[:1000]
        else:
            status_code, latency_ms = result.status_code, result.latency_ms
            ok = 200 <= result.status_code < 300
            if 300 <= result.status_code < 400:
                error = (f"redirect not followed: HTTP {result.status_code} to "
                         f"{(result.location or '(no Location)')[:500]}")
            elif not ok:
                excerpt = result.body_excerpt[:300].decode("utf-8", "replace")
                error = f"HTTP {result.status_code}" + (f": {excerpt}" if excerpt else "")
            if result.truncated and not ok:
                error += f" (response cut at {settings.max_response_bytes} bytes)"

    delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
    session.add(WebhookAttempt(delivery_id=delivery_id, attempted_at=now, status_code=status_code,
                               latency_ms=latency_ms, error=error))
    delivery.attempts = (delivery.attempts or 0) + 1
    delivery.last_status_code = status_code
    delivery.last_error = error
    if ok:
        delivery.status = DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif unsendable or delivery.attempts >= settings.max_attempts:
        delivery.status = DEAD
        delivery.next_attempt_at = None
    else:
        delivery.status = PENDING
        delivery.next_attempt_at = now + timedelta(seconds=backoff_delay(delivery.attempts, settings))
    status = delivery.status
    session.commit()
    log.info("webhook %s to %s: attempt %d -> %s (%s)", delivery_id, url, delivery.attempts, status,
             status_code if status_code is not None else error)
    return status


def replay(session: Session, delivery_id: str, *, tenant_id: str | None = None,
           now: datetime | None = None) -> WebhookDelivery | None:
    """Send a delivery again, whatever its status: pending, due now, attempts back to 0, the same
    id (so receivers can tell it is the same event). Attempt history is kept. In the caller's
    transaction; None when there is no such delivery (in `tenant_id`, when given)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or (tenant_id is not None and delivery.tenant_id != tenant_id):
        return None
    delivery.status = PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = _now(now)
    delivery.delivered_at = None
    return delivery


def due_deliveries(session: Session, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Ids of pending deliveries whose time has come, oldest first."""
    return [delivery_id for delivery_id, _ in scheduled(session, until=now, limit=limit)]


def scheduled(session: Session, *, until: datetime | None = None, limit: int = 500,
              after: tuple[datetime, str] | None = None) -> list[tuple[str, datetime | None]]:
    """(id, due time) of pending deliveries due by `until` (default: now), earliest first, in
    keyset pages: `after` is the previous page's last (due time, id). Overdue ones first, so a
    long backlog is worked through in order and none starves."""
    until = _now(until)
    query = select(WebhookDelivery.id, WebhookDelivery.next_attempt_at).where(
        WebhookDelivery.status == PENDING,
        or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= until))
    due, ident = WebhookDelivery.next_attempt_at, WebhookDelivery.id
    if after is not None and after[0] is None:  # (no due time: sorted first, "now")
        query = query.where(or_(due.is_not(None), and_(due.is_(None), ident > after[1])))
    elif after is not None:
        query = query.where(due.is_not(None), or_(due > after[0], and_(due == after[0], ident > after[1])))
    rows = session.execute(query.order_by(due.asc().nulls_first(), ident).limit(limit))
    return [(delivery_id, _utc(due)) for delivery_id, due in rows]


def due_at(session: Session, delivery_id: str) -> datetime | None:
    """When a pending delivery is to be tried next (None: not pending)."""
    row = session.execute(select(WebhookDelivery.status, WebhookDelivery.next_attempt_at)
                          .where(WebhookDelivery.id == delivery_id)).first()
    if row is None or row.status != PENDING:
        return None
    return _utc(row.next_attempt_at) or _now(None)
