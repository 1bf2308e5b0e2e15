"""Webhook subscriptions and deliveries of the caller's tenant."""
from __future__ import annotations

from flask import Blueprint, request, url_for
from sqlalchemy import select

from api import context
from api.auth import authenticate, principal, require
from api.jobs import tenant_job
from db.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from db.queries import as_utc
from docket.errors import DocketError, NotFound
from docket import i18n
from docket.submission import check_callback_url
from docket.webhooks.outbox import EVENT_TYPES
from docket.webhooks.signing import new_secret as new_webhook_secret

bp = Blueprint("webhooks", __name__, url_prefix="/v1")
bp.before_request(authenticate)


def _time(value):
    value = as_utc(value)
    return value.isoformat() if value else None


def subscription_json(sub: WebhookSubscription, secret: bool = False) -> dict:
    body = {"id": sub.id, "url": sub.url, "event_types": sub.event_types, "active": sub.active,
            "language": i18n.tag(sub.locale or i18n.DEFAULT), "created_at": _time(sub.created_at)}
    if secret:
        body["secret"] = sub.secret  # shown at creation only
    return body


def delivery_json(delivery: WebhookDelivery, attempts: list[WebhookAttempt], admin: bool) -> dict:
    """A delivery and its attempts. A subscription's URL (often with a token in it) and its
    errors (they name the host and quote the receiver) are shown to admins only; a job's own
    callback_url is already in the job's JSON."""
    hidden = delivery.subscription_id is not None and not admin

    def error(text):
        return None if hidden else text

    return {
        "id": delivery.id, "event_type": delivery.event_type, "url": None if hidden else delivery.url,
        "status": delivery.status,
        "subscription_id": delivery.subscription_id, "job_id": delivery.job_id, "batch_id": delivery.batch_id,
        "attempts": delivery.attempts, "next_attempt_at": _time(delivery.next_attempt_at),
        "last_status_code": delivery.last_status_code, "last_error": error(delivery.last_error),
        "created_at": _time(delivery.created_at), "delivered_at": _time(delivery.delivered_at),
        "attempt_log": [{"attempted_at": _time(a.attempted_at), "status_code": a.status_code,
                         "latency_ms": a.latency_ms, "error": error(a.error)} for a in attempts],
    }


@bp.post("/webhooks")
@require("admin")
def create_subscription():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise DocketError("Send JSON {\"url\", \"event_types\"}.", code="invalid_json")
    url = check_callback_url(body.get("url"))
    events = body.get("event_types") or list(EVENT_TYPES)
    if not url or not isinstance(events, list) or not events or any(e not in EVENT_TYPES for e in events):
        raise DocketError(f"'url' is required and 'event_types' must be a non-empty list of {', '.join(EVENT_TYPES)}.",
                          code="invalid_subscription", status=422, title="Invalid subscription")
    # The language of the reasons in its payloads: "en" (as stored) or "zh-Hans" (docket/reasons.py).
    language = body.get("language")
    locale = i18n.normalize(language) if language is not None else i18n.DEFAULT
    if locale is None:
        raise DocketError(f"'language' must be one of {', '.join(i18n.TAGS.values())}.",
                          code="invalid_subscription", status=422, title="Invalid subscription")
    sub = WebhookSubscription(tenant_id=principal().tenant_id, url=url, event_types=sorted(set(events)),
                              secret=new_webhook_secret(), locale=None if locale == i18n.DEFAULT else locale)
    session = context.db()
    session.add(sub)
    session.commit()
    return subscription_json(sub, secret=True), 201, {"Location": url_for("webhooks.get_subscription",
                                                                          sub_id=sub.id)}


def _subscription(sub_id: str) -> WebhookSubscription:
    sub = context.db().get(WebhookSubscription, sub_id)
    if sub is None or sub.tenant_id != principal().tenant_id:
        raise NotFound(f"No webhook subscription {sub_id}.")
    return sub


@bp.get("/webhooks")
@require("admin")
def list_subscriptions():
    subs = context.db().scalars(select(WebhookSubscription).where(
        WebhookSubscription.tenant_id == principal().tenant_id).order_by(WebhookSubscription.created_at))
    return {"webhooks": [subscription_json(s) for s in subs]}


@bp.get("/webhooks/<sub_id>")
@require("admin")
def get_subscription(sub_id: str):
    return subscription_json(_subscription(sub_id))


@bp.delete("/webhooks/<sub_id>")
@require("admin")
def delete_subscription(sub_id: str):
    sub = _subscription(sub_id)
    sub.active = False  # deliveries already recorded keep their history
    context.db().commit()
    return "", 204


def _deliveries_json(deliveries) -> list[dict]:
    session, admin = context.db(), principal().can("admin")
    out = []
    for d in deliveries:
        attempts = list(session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == d.id)
                                        .order_by(WebhookAttempt.attempted_at)))
        out.append(delivery_json(d, attempts, admin))
    return out


@bp.get("/jobs/<job_id>/deliveries")
@require("read")
def job_deliveries(job_id: str):
    job = tenant_job(job_id)
    deliveries = context.db().scalars(select(WebhookDelivery).where(
        WebhookDelivery.tenant_id == job.tenant_id, WebhookDelivery.job_id == job.id)
        .order_by(WebhookDelivery.created_at))
    return {"deliveries": _deliveries_json(deliveries)}


@bp.post("/deliveries/<delivery_id>/replay")
@require("admin")  # sending a subscription's payload again is the subscription owner's call
def replay_delivery(delivery_id: str):
    from docket.webhooks.delivery import replay

    session = context.db()
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.tenant_id != principal().tenant_id:
        raise NotFound(f"No delivery {delivery_id}.")
    replay(session, delivery_id)
    session.commit()
    try:
        context.celery().send_task("docket.deliver_webhook", args=[delivery_id], queue="cpu", retry=False)
    except Exception:  # broker down: the webhook sweeper sends due deliveries anyway
        pass
    session.refresh(delivery)
    return _deliveries_json([delivery])[0], 202
