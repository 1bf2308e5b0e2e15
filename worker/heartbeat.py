"""This worker process's heartbeat: a thread that every `heartbeat_interval` seconds writes the
process's key (docket/liveness.py) with the jobs it is working on, for `heartbeat_ttl` seconds.

One heartbeat per process that runs tasks: each prefork child starts its own right after the fork
(`worker_process_init`); solo and thread pools start one on their first task. A clean shutdown
deletes the key; a killed process simply stops refreshing it, and the sweeper takes its jobs back
once it expires.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import redis
from celery.signals import worker_process_init, worker_process_shutdown, worker_shutdown

from docket import broker, liveness
from docket.config import Settings

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, broker_url: str, interval: float, ttl: float):
        self.id = liveness.new_worker_id()
        self.pid = os.getpid()
        self.interval, self.ttl = interval, ttl
        self._client = broker.client(broker_url)
        self._jobs: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="docket-heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        # The first beat is the thread's too: a broker that is slow to answer must not hold up
        # the process's start (Celery gives a pool process seconds to report ready).
        self._thread.start()
        return self

    def _run(self) -> None:
        self.beat()
        while not self._stop.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        at = time.time()  # taken before the list: a job claimed before `at` is in it (see liveness.orphans)
        with self._lock:
            jobs = list(self._jobs)
        try:
            liveness.beat(self._client, self.id, at, jobs, self.ttl)
        except redis.RedisError as exc:
            if not self._failing:
                log.warning("heartbeat of %s not written (%s); retrying every %g s", self.id, exc, self.interval)
            self._failing = True
        else:
            if self._failing:
                log.warning("heartbeat of %s written again", self.id)
            self._failing = False

    @contextmanager
    def holding(self, job_id: str) -> Iterator[str]:
        """While the body runs, this process's beats list `job_id` (from before its claim until
        after its outcome is recorded, or given up)."""
        with self._lock:
            self._jobs[job_id] = self._jobs.get(job_id, 0) + 1
        try:
            yield self.id
        finally:
            with self._lock:
                if self._jobs.get(job_id, 0) <= 1:
                    self._jobs.pop(job_id, None)
                else:
                    self._jobs[job_id] -= 1

    def jobs(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def stop(self) -> None:
        self._stop.set()
        try:
            liveness.forget(self._client, self.id)
        except redis.RedisError:
            pass


_current: Heartbeat | None = None
_lock = threading.Lock()


def current() -> Heartbeat:
    """This process's heartbeat, started on first use (and again in a forked child)."""
    global _current
    with _lock:
        if _current is None or _current.pid != os.getpid():
            from worker.celery_app import celery

            settings = Settings.from_env()
            _current = Heartbeat(str(celery.conf.broker_url), settings.heartbeat_interval,
                                 settings.heartbeat_ttl).start()
        return _current


@worker_process_init.connect
def _start_in_child(**_kwargs) -> None:
    current()


@worker_process_shutdown.connect
@worker_shutdown.connect
def _stop(**_kwargs) -> None:
    global _current
    with _lock:
        if _current is not None and _current.pid == os.getpid():
            _current.stop()
            _current = None
