"""Signed, retried, SSRF-guarded webhooks (Standard Webhooks), sent from a database outbox.

- `outbox.record_event(...)` adds delivery rows in the caller's transaction;
- `delivery.attempt_delivery(...)` sends one due delivery (called by worker.webhook_tasks);
- `ssrf.resolve` / `ssrf.post` are the guard every outgoing request goes through;
- `signing.new_secret` / `signing.signed_headers` make and use `whsec_...` secrets.

See docs/webhooks.md.
"""
from docket.webhooks.delivery import attempt_delivery, due_deliveries, replay
from docket.webhooks.outbox import EVENT_TYPES, record_event
from docket.webhooks.settings import WebhookSettings
from docket.webhooks.signing import new_secret, signed_headers
from docket.webhooks.ssrf import BlockedDestination

__all__ = [
    "EVENT_TYPES", "BlockedDestination", "WebhookSettings", "attempt_delivery", "due_deliveries",
    "new_secret", "record_event", "replay", "signed_headers",
]
