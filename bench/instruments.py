"""Benchmark instruments, not product code: plugged in with DOCKET_EXTRA_ANALYZERS=bench.instruments.

`bench-instant` does no analysis at all, so a benchmark measures only what the pipeline adds
(HTTP, storage, database, queue, rules) around an analyzer; `bench-sleep` only takes time.
"""
from __future__ import annotations

import os
import time

import redis
from celery import Celery

from worker.analyzers import register
from worker.analyzers.base import Analysis


@register
class InstantAnalyzer:
    name = "bench-instant"

    def analyze(self, document, rule) -> Analysis:
        return Analysis(fields={}, model="bench-instant (benchmark instrument: no analysis)")


@register
class SleepAnalyzer:
    """`bench-sleep`: a long job that does nothing but take DOCKET_BENCH_SLEEP seconds (default 3):
    something to kill mid-run, or to outlive every heartbeat TTL on a live worker."""

    name = "bench-sleep"

    def analyze(self, document, rule) -> Analysis:
        time.sleep(float(os.environ.get("DOCKET_BENCH_SLEEP") or 3))
        return Analysis(fields={}, model="bench-sleep (benchmark instrument: sleeps, no analysis)")


# Raw Celery baseline: a no-op task on the same broker, recording when it ran.
raw = Celery("bench_raw", broker=os.environ.get("DOCKET_REDIS_URL", "redis://127.0.0.1:6379/0"))
raw.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, task_ignore_result=True,
                worker_hijack_root_logger=False)
_redis = None


@raw.task(name="bench.noop")
def noop(key: str) -> None:
    global _redis
    _redis = _redis or redis.Redis.from_url(raw.conf.broker_url)
    _redis.hset("bench:done", key, time.time())
