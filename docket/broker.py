"""The broker seen from Docket's side: a plain Redis client for what Celery does not say (queue
contents, unacknowledged messages, heartbeats, the access stamp), and a per-process memory that
the broker is down.

Celery's Redis transport keeps a queue as a list named after it (priorities 3, 6, 9 in lists
suffixed with "\\x06\\x16<n>"), and every delivered, unacknowledged message in the hash `unacked`
(with its delivery time in the sorted set `unacked_index`) until it is acknowledged.
"""
from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterable, Iterator

import redis
from sqlalchemy import event

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


# --- the access stamp: whether API keys or active policies changed ------------------------------

ACCESS_STAMP = "docket:access-stamp"
#: Even with the stamp unchanged, a cached read is used for at most this long: the bound when a
#: change could not reach Redis (the stamp is written after the commit, best effort).
ACCESS_MAX_AGE_S = 30.0

_changes = 0  # changes committed by this process: seen at once, Redis or not
_changes_lock = threading.Lock()
_stamp_urls: set[str] = set()  # the Redis servers this process's readers check


def access_stamp(url: str | None, retry_after: float) -> tuple | None:
    """The stamp to tag cached reads of API keys and active policies with (read it before
    reading the database), or None when it cannot be known (no Redis, Redis down, the stamp
    lost in a restart or a flush): then nothing may be read from a cache. One GET. `url` is the
    broker's: a failure here closes its gate (BrokerGate) like a failed publish, and a gate
    closed by either makes the other wait too, so an outage costs one connect timeout."""
    if not url:
        return None
    changes = _changes
    _stamp_urls.add(url)
    door = gate(url)
    if not door.may_try(retry_after):
        return None
    try:
        token = client(url).get(ACCESS_STAMP)
        if token is None:  # a new or emptied Redis: a fresh stamp, which no cached read carries
            client(url).set(ACCESS_STAMP, secrets.token_hex(8), nx=True)
    except redis.RedisError:
        door.failed(retry_after)
        return None
    door.succeeded()
    return (changes, token) if token is not None else None


def access_changed() -> None:
    """Void every process's cached reads of API keys and active policies: a new stamp, written
    after the change is committed (a reader that saw the old stamp may have read the old rows).
    Redis unreachable: logged; other processes then notice within ACCESS_MAX_AGE_S."""
    global _changes
    with _changes_lock:
        _changes += 1
    token = secrets.token_hex(8)
    for url in _stamp_urls | _configured_redis():
        try:
            client(url).set(ACCESS_STAMP, token)
        except redis.RedisError as exc:
            log.warning("API keys or policies changed, but Redis at %s was not told (%s): other processes may "
                        "use what they cached for up to %.0f s", url, exc, ACCESS_MAX_AGE_S)


def access_changes_on_commit(session) -> None:
    """`access_changed()` once `session` commits what the caller is changing now."""
    event.listen(session, "after_commit", lambda _session: access_changed(), once=True)


def _configured_redis() -> set[str]:
    """Where the API processes of this deployment read the stamp: DOCKET_REDIS_URL, else the
    embedded server of the data directory, if one runs (a CLI beside `docket serve`)."""
    from docket.config import Settings
    from docket.embedded import EmbeddedRedis

    settings = Settings.from_env()
    if settings.redis_url:
        return {settings.redis_url}
    try:
        url = json.loads(EmbeddedRedis(settings.data_dir).state_file.read_text()).get("url")
    except (OSError, ValueError):
        return set()
    return {url} if isinstance(url, str) and url else set()
