"""The broker seen from Docket's side: a plain Redis client for what Celery does not say (queue
contents, unacknowledged messages, heartbeats), and a per-process memory that the broker is down.

Celery's Redis transport keeps a queue as a list named after it (priorities 3, 6, 9 in lists
suffixed with "\\x06\\x16<n>"), and every delivered, unacknowledged message in the hash `unacked`
(with its delivery time in the sorted set `unacked_index`) until it is acknowledged.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterable, Iterator

import redis

log = logging.getLogger(__name__)

_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"


@lru_cache(maxsize=None)
def client(url: str) -> redis.Redis:
    """One client per URL per process (redis-py's pool starts afresh in a forked child), with
    timeouts short enough that a dead broker never hangs a sweep or a heartbeat."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=15)


def _queue_keys(queue: str) -> list[str]:
    return [queue] + [f"{queue}{_PRIORITY_SEP}{p}" for p in _PRIORITY_STEPS]


def queue_length(r: redis.Redis, queues: Iterable[str]) -> int:
    pipe = r.pipeline(transaction=False)
    for queue in queues:
        for key in _queue_keys(queue):
            pipe.llen(key)
    return sum(pipe.execute())


def _job_of(message: dict, task: str) -> str | None:
    """The job id a Celery (protocol 2) message for `task` carries, else None."""
    try:
        if message.get("headers", {}).get("task") != task:
            return None
        body = message.get("body")
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0]) if args else None
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def _loads(raw):
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return None


def queued_jobs(r: redis.Redis, queues: Iterable[str], task: str, chunk: int = 1000) -> set[str]:
    """Ids of the jobs that have a message for `task` waiting in `queues`."""
    found: set[str] = set()
    for queue in queues:
        for key in _queue_keys(queue):
            start = 0
            while True:
                items = r.lrange(key, start, start + chunk - 1)
                for raw in items:
                    message = _loads(raw)
                    if isinstance(message, dict) and (job_id := _job_of(message, task)) is not None:
                        found.add(job_id)
                if len(items) < chunk:
                    break
                start += chunk
    return found


def unacked_jobs(r: redis.Redis, task: str) -> dict[str, float]:
    """Job id -> delivery time (Unix seconds) of every delivered, unacknowledged `task` message."""
    delivered = {tag.decode() if isinstance(tag, bytes) else tag: score
                 for tag, score in r.zrange(UNACKED_INDEX, 0, -1, withscores=True)}
    found: dict[str, float] = {}
    for tag, raw in r.hgetall(UNACKED).items():
        entry = _loads(raw)  # [message, exchange, routing_key]
        message = entry[0] if isinstance(entry, list) and entry else None
        job_id = _job_of(message, task) if isinstance(message, dict) else None
        if job_id is not None:
            tag = tag.decode() if isinstance(tag, bytes) else tag
            found[job_id] = max(found.get(job_id, 0.0), delivered.get(tag, 0.0))
    return found


class BrokerGate:
    """Remembers, per process, that publishing just failed, so that requests do not each pay the
    broker's connect timeout (2 s) while it is down: for `retry_after` seconds nobody tries, then
    one caller probes while the others still skip. Whatever is skipped stays recorded in the
    database and is published by the sweeper."""

    def __init__(self):
        self._lock = threading.Lock()
        self._closed_until = 0.0  # monotonic time before which nobody tries

    def may_try(self, retry_after: float) -> bool:
        with self._lock:
            now = time.monotonic()
            if now < self._closed_until:
                return False
            if self._closed_until:  # the broker was down: this caller probes, the others wait
                self._closed_until = now + retry_after
            return True

    def failed(self, retry_after: float) -> None:
        with self._lock:
            self._closed_until = time.monotonic() + retry_after

    def succeeded(self) -> None:
        with self._lock:
            self._closed_until = 0.0

    @property
    def down(self) -> bool:
        with self._lock:
            return time.monotonic() < self._closed_until


_gates: dict[str, BrokerGate] = {}
_gates_lock = threading.Lock()


def gate(url: str) -> BrokerGate:
    with _gates_lock:
        return _gates.setdefault(url, BrokerGate())


class HeldProducers:
    """Producers kept, with their channel, between publishes. Celery's own producer pool opens a
    new channel on every acquire (about 1.5 ms a message on Redis, against 0.4 ms on a held
    one). At most `keep` wait idle; one whose publish failed is closed, never reused."""

    def __init__(self, celery, keep: int = 16):
        self._celery, self._keep = celery, keep
        self._idle: list = []
        self._lock = threading.Lock()

    @contextmanager
    def producer(self) -> Iterator:
        with self._lock:
            producer = self._idle.pop() if self._idle else None
        if producer is None:
            producer = self._celery.amqp.Producer(self._celery.connection_for_write())
        try:
            yield producer
        except BaseException:
            _close(producer)
            raise
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(producer)
                return
        _close(producer)


def _close(producer) -> None:
    try:
        producer.connection.release()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close as well
        pass


_held: dict[int, HeldProducers] = {}


def held_producers(celery) -> HeldProducers:
    with _gates_lock:
        return _held.setdefault(id(celery), HeldProducers(celery))


def try_send(celery, task: str, args: list, queue: str, retry_after: float) -> bool:
    """Publish one message, on a producer this process holds (HeldProducers), unless the broker
    is remembered as down; False when not published (then or now). Never raises: the caller's
    rows are already committed and the sweeper publishes whatever this skips."""
    door = gate(str(celery.conf.broker_url))
    if not door.may_try(retry_after):
        return False
    try:
        with held_producers(celery).producer() as producer:
            celery.send_task(task, args=args, queue=queue, retry=False, producer=producer)
    except Exception as exc:  # kombu raises OperationalError and socket errors alike
        door.failed(retry_after)
        log.warning("broker unavailable for %.0f s (%s); the sweeper publishes what waits", retry_after, exc)
        return False
    door.succeeded()
    return True
