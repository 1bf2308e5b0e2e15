"""Live job state: a Redis pub/sub nudge per job, the database as the truth (issue 12).

The core publishes a tiny message on the job's channel right *after* the transaction that
changed the job commits (docket/lifecycle.py: claimed, released, reclaimed, succeeded, failed).
A message says only "look again": waiters and event streams subscribe first and then read the
row, so a change committed before the subscription is still seen, and a lost message (Redis
down for a moment) costs at most one slow re-check (`RECHECK_S`), never a wrong answer.

A running attempt's stage (`reading`: pages, OCR or the model; `checking`: the policy rules) is
progress, not a fact worth a database write: the worker keeps it in Redis only, under the job's
key with the attempt it belongs to (`stage_changed`), and nudges like a status change. A stage
left by an earlier attempt is ignored; without Redis there is no stage, nothing else changes.

Event ids come from that state, not from a log: a job's `sequence` grows with every change (for
attempt count a: queued 4a, running 4a-3, reading 4a-2, checking 4a-1, finished 4a+4), and a
batch's is the sum of its jobs'. A client that reconnects with `Last-Event-ID` therefore gets the
current state when it is newer than what it saw — nothing is missed, nothing has to be kept.

Streams and waits hold a server thread each for up to minutes; `hold()` caps them per process
(`DOCKET_LIVE_LIMIT`, set from the thread count by gunicorn.conf.py) so that ordinary requests
always find a thread: beyond the cap a stream is refused (503) and a wait is not applied.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from functools import lru_cache
from typing import Callable, Iterable, Iterator, NamedTuple

import redis

from docket import broker

log = logging.getLogger(__name__)

PREFIX = "docket:live:job:"
STAGE_PREFIX = "docket:live:stage:"
STAGES = ("reading", "checking")  # in order, within one running attempt
STAGE_TTL_S = 3600  # outlives an attempt (time limit 300 s by default), without a key per job for a day
MAX_WAIT_S = 60
KEEPALIVE_S = 15.0
RECHECK_S = 5.0  # a safety net for a lost message: the row is read again at most this often
FINISHED = ("succeeded", "failed")


def channel(job_id: str) -> str:
    return PREFIX + job_id


def job_changed(job_id: str, status: str, redis_url: str | None = None, *,
                stage: tuple[str, int] | None = None) -> None:
    """Tell subscribers that the job's row changed (call after the commit). Best effort: the
    change is committed already, and waiters re-read the database anyway. `stage`: (stage,
    attempt) the job enters with the change (a claim goes straight to `reading`), recorded and
    nudged in the same round trip as `stage_changed` would."""
    if stage is not None:
        _check_stage(stage[0])
    url = redis_url or os.environ.get("DOCKET_REDIS_URL")
    if not url:
        return
    try:
        if stage is None:
            broker.client(url).publish(channel(job_id), status)
            return
        pipe = broker.client(url).pipeline(transaction=False)  # one round trip
        pipe.publish(channel(job_id), status)
        _enter(pipe, job_id, *stage)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - never fail a committed transition over a nudge
        log.debug("live event for job %s not published: %s", job_id, exc)


def stage_changed(job_id: str, stage: str, attempt: int, redis_url: str | None = None) -> None:
    """Record that attempt `attempt` of the running job entered `stage` (one of STAGES), and
    nudge its subscribers. Redis only, best effort: a lost stage costs a progress event, never
    the job."""
    _check_stage(stage)
    url = redis_url or os.environ.get("DOCKET_REDIS_URL")
    if not url:
        return
    try:
        pipe = broker.client(url).pipeline(transaction=False)  # one round trip
        _enter(pipe, job_id, stage, attempt)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - progress is never worth failing the analysis
        log.debug("stage %s of job %s not recorded: %s", stage, job_id, exc)


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")


def _enter(pipe, job_id: str, stage: str, attempt: int) -> None:
    """Add to `pipe`: the attempt's stage, kept under the job's key, and the nudge."""
    pipe.set(STAGE_PREFIX + job_id, f"{attempt}:{stage}", ex=STAGE_TTL_S)
    pipe.publish(channel(job_id), stage)


def stages(redis_url: str | None, running: Iterable[tuple[str, int]]) -> dict[str, str]:
    """The current stage of each running (job id, attempt) that has one, in one MGET; a stage
    recorded by another attempt is not this one's."""
    running = list(running)
    if not redis_url or not running:
        return {}
    try:
        values = broker.client(redis_url).mget([STAGE_PREFIX + job_id for job_id, _ in running])
    except Exception as exc:  # noqa: BLE001 - events go on with status changes only
        log.debug("job stages not read: %s", exc)
        return {}
    found = {}
    for (job_id, attempt), value in zip(running, values):
        if value is not None:
            recorded, _, stage = value.decode().partition(":")
            if recorded == str(attempt) and stage in STAGES:
                found[job_id] = stage
    return found


def sequence(status: str, attempts: int | None, stage: str | None = None) -> int:
    """A number that grows with every change of one job (see the module docstring): four slots
    per attempt, so a claim (attempts + 1) lands above the queued state it left, and a job that
    finishes from any state of attempt a (even queued, by the sweeper) lands above them all."""
    a = attempts or 0
    if status in FINISHED:
        return 4 * a + 4
    if status == "running":
        return 4 * a - 3 + (STAGES.index(stage) + 1 if stage in STAGES else 0)
    return 4 * a


def wait_seconds(prefer: str | None) -> int | None:
    """N from an RFC 7240 `Prefer: wait=N` header (capped at MAX_WAIT_S), else None."""
    if not prefer:
        return None
    match = re.search(r'(?:^|[,;\s])wait\s*=\s*"?(\d+)"?', prefer, re.IGNORECASE)
    if match is None:
        return None
    return min(int(match.group(1)), MAX_WAIT_S)


class _Holds:
    """A per-process count of long-lived requests (event streams, waits) with a ceiling, and one
    per owner (an API key): one tenant's script opening streams in a loop must not take every
    place from the others."""

    def __init__(self):
        self._lock = threading.Lock()
        self._held = 0
        self._by_owner: dict[str, int] = {}

    def acquire(self, owner: str | None = None) -> bool:
        with self._lock:
            if self._held >= live_limit():
                return False
            if owner is not None:
                if self._by_owner.get(owner, 0) >= live_limit_per_owner():
                    return False
                self._by_owner[owner] = self._by_owner.get(owner, 0) + 1
            self._held += 1
            return True

    def release(self, owner: str | None = None) -> None:
        with self._lock:
            self._held -= 1
            if owner is not None:
                left = self._by_owner.get(owner, 1) - 1
                if left > 0:
                    self._by_owner[owner] = left
                else:
                    self._by_owner.pop(owner, None)


_holds = _Holds()
DEFAULT_LIVE_LIMIT = 256  # `docket serve`: 200 streams and some waits


def limit_for_threads(threads: int) -> int:
    """The DOCKET_LIVE_LIMIT for a process of `threads` server threads: all but a reserve of an
    eighth (at least 2) that long-lived requests never take (gunicorn.conf.py, `docket serve`)."""
    return max(0, threads - max(2, threads // 8))


def server_threads() -> int:
    """`docket serve`'s thread count (DOCKET_API_THREADS, else room for DEFAULT_LIVE_LIMIT long-lived
    requests and a reserve); sets DOCKET_LIVE_LIMIT to match unless it is set already."""
    threads = int(os.environ.get("DOCKET_API_THREADS") or 0)
    if not threads:
        threads = int(os.environ.get("DOCKET_LIVE_LIMIT") or DEFAULT_LIVE_LIMIT) + 32
    if not os.environ.get("DOCKET_LIVE_LIMIT"):
        os.environ["DOCKET_LIVE_LIMIT"] = str(limit_for_threads(threads))
    return threads


RETRY_AFTER_S = 5


def live_limit() -> int:
    """Long-lived requests this process may hold at once (DOCKET_LIVE_LIMIT)."""
    return int(os.environ.get("DOCKET_LIVE_LIMIT") or DEFAULT_LIVE_LIMIT)


def live_limit_per_owner() -> int:
    """Long-lived requests one owner (API key) may hold in this process (DOCKET_LIVE_PER_KEY,
    default a quarter of the process's, at least 2)."""
    return int(os.environ.get("DOCKET_LIVE_PER_KEY") or max(2, live_limit() // 4))


def hold(owner: str | None = None) -> Callable[[], None] | None:
    """A place for one long-lived request of `owner`: its release function (idempotent), or None
    when the process holds `live_limit()` already, or the owner `live_limit_per_owner()`."""
    if not _holds.acquire(owner):
        return None
    token = [True]

    def release() -> None:
        try:
            token.pop()  # atomic: a second call finds nothing to give back
        except IndexError:
            return
        _holds.release(owner)

    return release


@lru_cache(maxsize=None)
def _subscriber(url: str) -> redis.Redis:
    """A client whose pool has room for every subscription the process may hold (each keeps a
    connection for its whole life): with redis-py's default pool (100 connections) the 101st
    stream would find none and fall back to the slow re-check. Timeouts as in docket.broker."""
    return redis.Redis.from_url(url, max_connections=live_limit() + 100, socket_connect_timeout=2, socket_timeout=5,
                                health_check_interval=15)


class Subscription:
    """A pub/sub subscription to some jobs' channels; None-safe when Redis is not configured."""

    def __init__(self, redis_url: str | None, job_ids: Iterable[str]):
        self.pubsub = None
        ids = list(job_ids)
        if redis_url and ids:
            try:
                self.pubsub = _subscriber(redis_url).pubsub(ignore_subscribe_messages=True)
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
    sub = Subscription(redis_url, [job_id])
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
    sub = Subscription(redis_url, job_ids)
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
