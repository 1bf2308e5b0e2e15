"""Job state changes as stored. Each is one conditional UPDATE, so two workers (or a redelivered
message) racing on the same job cannot both win, on SQLite and Postgres alike. Nothing here
commits: docket/lifecycle.py does each transition with its event in one transaction."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from db.models import Decision, Job, utcnow
from db.review_queue import queue_values

TERMINAL = ("succeeded", "failed")


def claim(session: Session, job_id: str, stale_after: int) -> int | None:
    """Mark the job running for this attempt; returns the attempt number, or None if another
    worker holds it or it is already finished. The caller commits."""
    now = utcnow()
    return session.scalar(
        update(Job)
        .where(Job.id == job_id,
               or_(Job.status == "queued",
                   and_(Job.status == "running", Job.started_at < now - timedelta(seconds=stale_after))))
        .values(status="running", attempts=Job.attempts + 1, started_at=now,
                error_code=None, error_message=None)
        .returning(Job.attempts)
    )


def _owned(job_id: str, attempt: int):
    # Only the attempt that claimed the job may finish it: a worker that was presumed dead
    # and comes back late must not overwrite the newer attempt.
    return and_(Job.id == job_id, Job.status == "running", Job.attempts == attempt)


def mark_succeeded(session: Session, job_id: str, attempt: int, decision: Decision) -> bool:
    """Finish the job and add its decision (the caller commits); False when this attempt no
    longer owns the job: nothing is written. A second decision for the job (a redelivery)
    fails at flush with IntegrityError (one decision per job)."""
    now = utcnow()
    tenant_id = session.scalar(update(Job).where(_owned(job_id, attempt))
                               .values(status="succeeded", finished_at=now,
                                       **queue_values(decision.decision, decision.fields, now))
                               .returning(Job.tenant_id))
    if tenant_id is None:
        return False
    decision.tenant_id = tenant_id
    session.add(decision)
    session.flush()
    return True


def mark_failed(session: Session, job_id: str, code: str, message: str, attempt: int | None = None) -> bool:
    """Fail the job (only the owning attempt's, when given; else any unfinished one); the caller commits."""
    where = _owned(job_id, attempt) if attempt is not None else and_(Job.id == job_id, Job.status.not_in(TERMINAL))
    result = session.execute(update(Job).where(where).values(
        status="failed", error_code=code, error_message=message[:4000], finished_at=utcnow()))
    return result.rowcount == 1


def release(session: Session, job_id: str, attempt: int) -> None:
    """Give the job back to the queue (a transient error; a retry follows). The caller commits."""
    session.execute(update(Job).where(_owned(job_id, attempt)).values(status="queued", enqueued_at=utcnow()))


def needing_publish(session: Session, *, now: datetime, settle: float, requeue_after: int,
                    stale_after: int, limit: int = 500) -> list[Job]:
    """Jobs whose queue message is missing or presumed lost:
    queued and never published (broker was down), queued and published long ago, or running
    on a worker that stopped answering (older than stale_after)."""
    return list(session.scalars(
        select(Job).where(or_(
            and_(Job.status == "queued", Job.enqueued_at.is_(None),
                 Job.created_at < now - timedelta(seconds=settle)),
            and_(Job.status == "queued", Job.enqueued_at < now - timedelta(seconds=requeue_after)),
            and_(Job.status == "running", Job.started_at < now - timedelta(seconds=stale_after)),
        )).order_by(Job.created_at).limit(limit)
    ))
