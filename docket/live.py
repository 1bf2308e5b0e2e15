"""Live job state: a Redis pub/sub nudge per job, the database as the truth (issue 12).

The core publishes a tiny message on the job's channel right *after* the transaction that
changed the job commits (docket/lifecycle.py: claimed, released, reclaimed, succeeded, failed).
A message says only "look again": waiters and event streams subscribe first and then read the
row, so a change committed before the subscription is still seen, and a lost message (Redis
down for a moment) costs at most one slow re-check (`RECHECK_S`), never a wrong answer.

Event ids come from the database state, not from Redis: a job's `sequence` grows with every
status change (for attempt count a: queued 2a, running 2a-1, finished 2a+2), and a batch's is
the sum of its jobs'. A client that reconnects with `Last-Event-ID` therefore gets the current
state when it is newer than what it saw — nothing is missed, nothing has to be kept in Redis.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Callable, Iterable, Iterator, NamedTuple

from docket import broker

log = logging.getLogger(__name__)

PREFIX = "docket:live:job:"
MAX_WAIT_S = 60
KEEPALIVE_S = 15.0
RECHECK_S = 5.0  # a safety net for a lost message: the row is read again at most this often
FINISHED = ("succeeded", "failed")


def channel(job_id: str) -> str:
    return PREFIX + job_id


def job_changed(job_id: str, status: str, redis_url: str | None = None) -> None:
    """Tell subscribers that the job's row changed (call after the commit). Best effort: the
    change is committed already, and waiters re-read the database anyway."""
    url = redis_url or os.environ.get("DOCKET_REDIS_URL")
    if not url:
        return
    try:
        broker.client(url).publish(channel(job_id), status)
    except Exception as exc:  # noqa: BLE001 - never fail a committed transition over a nudge
        log.debug("live event for job %s not published: %s", job_id, exc)


def sequence(status: str, attempts: int | None) -> int:
    """A number that grows with every status change of one job (see the module docstring)."""
    a = attempts or 0
    if status in FINISHED:
        return 2 * a + 2
    if status == "running":
        return 2 * a - 1  # a claim counts the attempt: running after queued 2(a-1)
    return 2 * a


def wait_seconds(prefer: str | None) -> int | None:
    """N from an RFC 7240 `Prefer: wait=N` header (capped at MAX_WAIT_S), else None."""
    if not prefer:
        return None
    match = re.search(r'(?:^|[,;\s])wait\s*=\s*"?(\d+)"?', prefer, re.IGNORECASE)
    if match is None:
        return None
    return min(int(match.group(1)), MAX_WAIT_S)


class _Subscription:
    """A pub/sub subscription to some jobs' channels; None-safe when Redis is not configured."""

    def __init__(self, redis_url: str | None, job_ids: Iterable[str]):
        self.pubsub = None
        ids = list(job_ids)
        if redis_url and ids:
            try:
                self.pubsub = broker.client(redis_url).pubsub(ignore_subscribe_messages=True)
                self.pubsub.subscribe(*[channel(j) for j in ids])
            except Exception as exc:  # noqa: BLE001 - fall back to the slow re-check
                log.warning("live events unavailable (%s); re-reading the database every %ss", exc, RECHECK_S)
                self.close()

    def wait(self, timeout: float) -> bool:
        """True when a message came within `timeout` seconds (drains what else is pending)."""
        if timeout <= 0:
            return False
        if self.pubsub is None:
            time.sleep(timeout)
            return False
        try:
            got = self.pubsub.get_message(timeout=timeout) is not None
            while got and self.pubsub.get_message(timeout=0) is not None:
                pass
            return got
        except Exception as exc:  # noqa: BLE001
            log.warning("live subscription lost (%s); re-reading the database every %ss", exc, RECHECK_S)
            self.close()
            return False

    def close(self) -> None:
        if self.pubsub is not None:
            try:
                self.pubsub.close()
            except Exception:  # noqa: BLE001
                pass
            self.pubsub = None


def wait_until_finished(redis_url: str | None, job_id: str, timeout: float,
                        is_finished: Callable[[], bool]) -> bool:
    """Hold until `is_finished()` (a fresh read of the row) is true or `timeout` seconds pass;
    subscribes before the first read so no change slips between them."""
    deadline = time.monotonic() + timeout
    sub = _Subscription(redis_url, [job_id])
    try:
        while True:
            if is_finished():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            sub.wait(min(left, RECHECK_S))
    finally:
        sub.close()


class Snapshot(NamedTuple):
    sequence: int
    done: bool
    data: dict


def format_event(event: str, event_id: int, data: dict) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def last_event_id(header: str | None) -> int:
    try:
        return int(header) if header is not None else -1
    except ValueError:
        return -1


def stream(redis_url: str | None, job_ids: Iterable[str], snapshot: Callable[[], Snapshot], last_id: int = -1,
           keepalive: float = KEEPALIVE_S, retry_ms: int = 2000) -> Iterator[str]:
    """Server-Sent Events for one job or batch: `status` whenever the state's sequence is newer
    than `last_id` (the current state first), then `done` and the end once it is finished; a
    keep-alive comment every `keepalive` seconds while nothing happens."""
    sub = _Subscription(redis_url, job_ids)
    try:
        yield f"retry: {retry_ms}\n\n"
        next_ping = time.monotonic() + keepalive
        while True:
            snap = snapshot()
            if snap.sequence > last_id:
                last_id = snap.sequence
                yield format_event("status", snap.sequence, snap.data)
                next_ping = time.monotonic() + keepalive
            if snap.done:
                yield format_event("done", snap.sequence, snap.data)
                return
            while True:
                left = next_ping - time.monotonic()
                if sub.wait(min(max(left, 0), RECHECK_S)):
                    break
                if time.monotonic() >= next_ping:
                    yield ": keep-alive\n\n"
                    next_ping = time.monotonic() + keepalive
                    break
                if left > RECHECK_S:
                    break  # the slow re-check
    finally:
        sub.close()
