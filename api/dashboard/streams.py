"""Live pages: the same Server-Sent Events as /v1/jobs/{id}/events and /v1/batches/{id}/events,
for the dashboard's session (an EventSource cannot send a bearer key).

Each stream ends after `event_stream_max_s` (DOCKET_EVENT_STREAM_MAX_S): the browser reconnects
by itself with Last-Event-ID and is sent only what is newer than the last event it saw, so a cap
(or a proxy that cuts idle connections) costs a reconnect, never an event missed or repeated.
"""
from __future__ import annotations

import time
from typing import Iterator

from flask import request

from api import context
from api.batches import batch_snapshot
from api.jobs import job_snapshot
from docket import live


def capped(events: Iterator[str], seconds: float) -> Iterator[str]:
    """`events` until `seconds` have passed (checked at each chunk: keep-alives come at least
    that often, see `_open`), then the end of the response."""
    deadline = time.monotonic() + seconds
    try:
        for chunk in events:
            yield chunk
            if time.monotonic() >= deadline:
                return
    finally:
        events.close()  # unsubscribes at once, not when the generator is collected


def _open(job_ids: list[str], snapshot) -> Iterator[str]:
    settings = context.settings()
    limit = settings.event_stream_max_s
    events = live.stream(settings.redis_url, job_ids, snapshot, live.last_event_id(request.headers.get("Last-Event-ID")),
                         keepalive=min(live.KEEPALIVE_S, limit))
    return capped(events, limit)


def job_events(job_id: str) -> Iterator[str]:
    return _open([job_id], lambda: job_snapshot(job_id))


def batch_events(batch_id: str, job_ids: list[str]) -> Iterator[str]:
    return _open(job_ids, lambda: batch_snapshot(batch_id))
