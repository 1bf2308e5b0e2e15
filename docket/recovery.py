"""The sweeper's share of "a job is never lost": every pass (each `sweep_interval`, 10 s) it

1. reclaims the running jobs of worker processes that are gone or no longer work on them, judged
   by their heartbeats (docket/liveness.py explains how a dead worker is told from a slow job);
2. publishes queued jobs that have no message yet: recorded while the broker was down, or just
   reclaimed (and, as a backstop, those published longer than `requeue_after` ago);
3. republishes queued jobs whose message the broker lost: a restart without persistence, a
   FLUSHALL, a failover, or a message delivered to a worker that died before claiming it. The
   broker's epoch (run id + marker key) says when it lost everything; otherwise the queue is
   compared with the database — the job ids in the queue lists, plus those delivered and not yet
   acknowledged, plus those a live worker holds — against the jobs that wait for a message.

Publishing twice is harmless: only the claim (one conditional UPDATE) lets an attempt through,
and only the attempt that holds a job may record its decision.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import redis

from db import jobs as stored
from db.models import utcnow
from db.session import session_scope
from docket import broker, lifecycle, liveness
from docket.analyzers import known, route
from docket.config import Settings
from docket.queues import ANALYZE_TASK

log = logging.getLogger(__name__)

#: A job published less than this long ago may not be visible in the broker yet.
SETTLE = 2.0
#: Up to this many waiting messages the queue is read and compared id by id on every pass;
#: beyond, only when the counts say that messages are missing.
PRECISE_LIMIT = 2000
PAGE = 500


@dataclass
class SweepReport:
    reclaimed: int = 0
    published: int = 0
    republished: int = 0
    broker_reset: bool = False

    @property
    def total(self) -> int:
        return self.published + self.republished


def sweep_jobs(settings: Settings, celery) -> SweepReport:
    """One pass of the job sweeper (see the module's docstring)."""
    report = SweepReport()
    r = broker.client(str(celery.conf.broker_url))
    try:
        epoch = liveness.broker_epoch(r)
        beats = liveness.all_beats(r)  # read before the jobs: a claim seen later is never judged by an older beat
    except redis.RedisError as exc:
        log.warning("sweeper: broker unreachable (%s); publishing left for the next pass", exc)
        epoch, beats = None, {}
    if epoch is not None:
        report.broker_reset = epoch.changed
        if epoch.changed:
            log.warning("sweeper: the broker's data is new (run id %s): checking every queued job's message",
                        epoch.run_id)
        report.reclaimed = _reclaim(settings, epoch, beats)
    report.published = _publish_unsent(settings, celery)
    if epoch is not None:
        report.republished = _republish_missing(settings, celery, r, epoch, beats)
    if report.reclaimed or report.total:
        log.info("sweeper: reclaimed %d, published %d, republished %d", report.reclaimed, report.published,
                 report.republished)
    return report


def _reclaim(settings: Settings, epoch: liveness.Epoch, beats: dict) -> int:
    with session_scope(settings.database_url) as session:
        running = stored.running(session)
    if not running:
        return 0
    # A missing key proves death only once every live process has had time to write its key
    # again since the broker last lost its data.
    trusted = epoch.age >= settings.heartbeat_ttl + settings.heartbeat_interval
    current = {row.worker: beats.get(row.worker) for row in running if row.worker}
    reclaimed = 0
    for orphan in liveness.orphans(running, current, now=time.time(), ttl=settings.heartbeat_ttl,
                                   trusted=trusted):
        with session_scope(settings.database_url) as session:
            if lifecycle.reclaim(session, orphan.job_id, orphan.attempt, orphan.worker):
                reclaimed += 1
                log.warning("sweeper: job %s (attempt %d) taken back from %s: %s", orphan.job_id, orphan.attempt,
                            orphan.worker, orphan.why)
    return reclaimed


def _send(celery, job_id: str, analyzer: str) -> None:
    task, queue = route(analyzer)
    celery.send_task(task, args=[job_id], queue=queue)


def _publish_unsent(settings: Settings, celery) -> int:
    published, after = 0, None
    while True:
        with session_scope(settings.database_url) as session:
            now = utcnow()
            due = stored.needing_publish(session, now=now, settle=SETTLE, requeue_after=settings.requeue_after,
                                         stale_after=settings.stale_after, limit=PAGE, after=after)
            sent = []
            for job in due:
                _send(celery, job.id, job.analyzer)
                if job.status == "queued":
                    sent.append(job.id)
            stored.mark_published(session, sent, utcnow())
            published += len(due)
            if len(due) < PAGE:
                return published
            after = (due[-1].created_at, due[-1].id)


def _republish_missing(settings: Settings, celery, r, epoch: liveness.Epoch, beats: dict) -> int:
    before = utcnow() - timedelta(seconds=SETTLE)
    with session_scope(settings.database_url) as session:
        expected = stored.count_published_queued(session, before)
    if not expected:
        return 0
    queues = sorted({route(name)[1] for name in known()})
    # Queue lists first, then the delivered ones: a message moving between them is seen once.
    length = broker.queue_length(r, queues)
    listed = broker.queued_jobs(r, queues, ANALYZE_TASK) if (epoch.changed or length <= PRECISE_LIMIT) else None
    delivered = broker.unacked_jobs(r, ANALYZE_TASK)
    # A delivered message is as good as waiting while a live worker says it holds the job (it
    # lists it from before the claim, waiting for the database included), or while it is too
    # fresh for a beat to have listed it. Older and unheld, it sits with a dead worker (taken,
    # never claimed) and would come back only after the visibility timeout.
    held = set().union(*(b.jobs for b in beats.values())) if beats else set()
    grace = 3 * settings.heartbeat_interval + 2.0
    fresh = {job_id for job_id, at in delivered.items() if at > time.time() - grace}
    if listed is None:
        if expected <= length + len(fresh | held):
            return 0  # a long queue and no shortfall: nothing to look for
        listed = broker.queued_jobs(r, queues, ANALYZE_TASK)
    present = listed | fresh | held
    republished, after = 0, None
    while True:
        with session_scope(settings.database_url) as session:
            page = stored.published_queued(session, before, after=after, limit=PAGE)
            missing = [(job_id, analyzer) for _, job_id, analyzer in page if job_id not in present]
            for job_id, analyzer in missing:
                _send(celery, job_id, analyzer)
            stored.mark_published(session, [job_id for job_id, _ in missing], utcnow())
        republished += len(missing)
        if len(page) < PAGE:
            break
        after = (page[-1][0], page[-1][1])
    if republished:
        log.warning("sweeper: %d queued job(s) had no message in the broker; published again", republished)
    return republished
