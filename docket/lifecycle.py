"""A job's lifecycle: each state transition, and the event it emits, in one transaction.

db/jobs.py stores the conditional UPDATEs; this module decides what goes with them. A job that
reaches `succeeded` or `failed` records its webhook outbox rows (and its batch's completion) in
the same commit, so an event is never lost or sent for a change that did not happen.
"""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db import jobs as stored
from db.models import Decision, Job
from docket import live, metrics
from docket.events import job_finished


def claim(session: Session, job_id: str, stale_after: int, worker: str | None = None) -> int | None:
    """Mark the job running for a new attempt held by `worker` (its heartbeat id) and commit; the
    attempt number, or None when another worker holds the job or it is already finished."""
    attempt = stored.claim(session, job_id, stale_after, worker)
    session.commit()
    if attempt is not None:
        live.job_changed(job_id, "running")
    return attempt


def succeed(session: Session, job_id: str, attempt: int, decision: Decision) -> bool:
    """Store the decision, finish the job and record its event in one transaction; False when
    this attempt no longer owns the job or a decision already exists (a redelivery)."""
    try:
        if not stored.mark_succeeded(session, job_id, attempt, decision):
            session.rollback()
            return False
        job_finished(session, job_id)
        session.commit()
        live.job_changed(job_id, "succeeded")
        _observe(session, job_id, "succeeded", decision)
        return True
    except IntegrityError:
        session.rollback()
        return False


def fail(session: Session, job_id: str, code: str, message: str, attempt: int | None = None) -> bool:
    """Fail the job with an error code and record its event in one transaction; False when it
    was not this attempt's (or was already finished)."""
    failed = stored.mark_failed(session, job_id, code, message, attempt)
    if failed:
        job_finished(session, job_id)
    session.commit()
    if failed:
        live.job_changed(job_id, "failed")
        _observe(session, job_id, "failed")
    return failed


def _observe(session: Session, job_id: str, status: str, decision: Decision | None = None) -> None:
    """Count the finished job and its time per stage (after the commit: only what happened)."""
    job = session.get(Job, job_id)
    if job is None:
        return
    metrics.job_finished(status, decision.decision if decision is not None else None, job.rule_name)
    if decision is not None:
        for stage in ("preprocess", "analyze", "rules"):
            metrics.stage(stage, (decision.timings or {}).get(f"{stage}_s"))
        if job.started_at is not None:
            metrics.stage("queue_wait", (job.started_at - (job.enqueued_at or job.created_at)).total_seconds())
    if job.finished_at is not None:
        metrics.stage("total", (job.finished_at - job.created_at).total_seconds())


def release(session: Session, job_id: str, attempt: int) -> None:
    """Give the job back to the queue (a transient error; a retry follows)."""
    stored.release(session, job_id, attempt)
    session.commit()
    live.job_changed(job_id, "queued")


def reclaim(session: Session, job_id: str, attempt: int, worker: str | None) -> bool:
    """Take a running job back from a worker that died or dropped it (docket/recovery.py decides
    which); it is queued again, unpublished, for the sweeper to publish. No event: the job did
    not finish. Commits; False when that attempt no longer holds the job."""
    reclaimed = stored.reclaim(session, job_id, attempt, worker)
    session.commit()
    if reclaimed:
        live.job_changed(job_id, "queued")
    return reclaimed
