"""Standard Webhooks signatures (https://www.standardwebhooks.com), via the `standardwebhooks`
library, so receivers can verify with the same library: `Webhook(secret).verify(body, headers)`."""
from __future__ import annotations

import base64
import secrets
from datetime import datetime, timezone
from math import floor

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret: `whsec_` + standard base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def signed_headers(secret: str, msg_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` sent as message `msg_id` at `timestamp`."""
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=timezone.utc)
    # The library formats the timestamp with .replace(tzinfo=utc): hand it a UTC value.
    timestamp = timestamp.astimezone(timezone.utc)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body.decode("utf-8"))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(floor(timestamp.timestamp())),
        "webhook-signature": signature,
    }
