"""A job's lifecycle: each state transition, and the event it emits, in one transaction.

db/jobs.py stores the conditional UPDATEs; this module decides what goes with them. A job that
reaches `succeeded` or `failed` records its webhook outbox rows (and its batch's completion) in
the same commit, so an event is never lost or sent for a change that did not happen.
"""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db import jobs as stored
from db.models import Decision, Document, Job
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


def claim_with_document(session: Session, job_id: str, stale_after: int,
                        worker: str | None = None, stage: str | None = None) -> tuple[Job, Document] | None:
    """`claim`, returning the claimed job (`attempts`: this attempt's number) and its document,
    both read in the claim's own transaction: one round of the database per claim instead of
    a claim and then a read. None when another worker holds the job or it is finished.
    `stage`: the stage the attempt starts in, told with the claim (docket/live.py)."""
    claimed = stored.claim_with_document(session, job_id, stale_after, worker)
    session.commit()
    if claimed is None:
        return None
    live.job_changed(job_id, "running", stage=(stage, claimed[0].attempts) if stage else None)
    return claimed


def succeed(session: Session, job_id: str, attempt: int, decision: Decision,
            document: Document | None = None) -> bool:
    """Store the decision, finish the job and record its event in one transaction; False when
    this attempt no longer owns the job or a decision already exists (a redelivery). With the
    job's `document` (as claimed), the event needs no read of the job, decision or document."""
    try:
        job = stored.succeeded_row(session, job_id, attempt, decision)  # held: the event reads it from the session
        if job is None:
            session.rollback()
            return False
        job_finished(session, job_id, (job, decision, document) if document is not None else None)
        session.commit()
        live.job_changed(job_id, "succeeded")
        _observe(job, "succeeded", decision)
        return True
    except IntegrityError:
        session.rollback()
        return False


def fail(session: Session, job_id: str, code: str, message: str, attempt: int | None = None) -> bool:
    """Fail the job with an error code and record its event in one transaction; False when it
    was not this attempt's (or was already finished)."""
    failed = stored.mark_failed(session, job_id, code, message, attempt)
    job = None
    if failed:
        job_finished(session, job_id)
        job = session.get(Job, job_id) if metrics.enabled() else None  # read now, counted after the commit
    session.commit()
    if failed:
        live.job_changed(job_id, "failed")
        _observe(job, "failed")
    return failed


def _observe(job: Job | None, status: str, decision: Decision | None = None) -> None:
    """Count the finished job and its time per stage (after the commit: only what happened)."""
    if job is None or not metrics.enabled():
        return
    metrics.job_finished(job.tenant_id, status, decision.decision if decision is not None else None, job.rule_name)
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
