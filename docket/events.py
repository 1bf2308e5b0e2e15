"""Domain events, recorded into the webhook outbox inside the transaction that caused them."""
from __future__ import annotations

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from db.models import Batch, Decision, Document, Job, utcnow
from db.queries import batch_counts


def job_finished(session: Session, job_id: str, known: tuple[Job, Decision, Document] | None = None) -> None:
    """Call after a job reached succeeded/failed, before the commit.

    `known`: the job as its finishing UPDATE returned it, the decision just added and the
    job's document — the event is then built from them without reading any of them again."""
    from docket.representation import job_json
    from docket.webhooks.outbox import record_event

    session.flush()
    if known is None:
        job = session.get(Job, job_id)
        session.refresh(job)
    else:
        job, decision, document = known
        set_committed_value(job, "decision", decision)
        set_committed_value(job, "document", session.merge(document, load=False))
        if job.reviewed_at is None:  # never reviewed: no review rows to read
            set_committed_value(job, "reviews", [])
    record_event(session, tenant_id=job.tenant_id, event_type=f"job.{job.status}", data=job_json(job),
                 job_id=job.id, batch_id=job.batch_id, callback_url=job.callback_url)
    if job.batch_id:
        complete_batch(session, job.batch_id)
    if job.claim_id:  # the claim's last document: the claim is decided in this same transaction
        from docket.claims import complete_claim
        from docket.config import Settings

        complete_claim(session, job.claim_id, duplicate_distance=Settings.from_env().duplicate_distance)


def complete_batch(session: Session, batch_id: str) -> bool:
    """Mark the batch completed and record batch.completed, once, when no job is left to run.

    Two last jobs finishing at once may each still see the other running; the sweeper calls
    this again for every open batch, so the event is late at worst, never lost or doubled.
    """
    from docket.webhooks.outbox import record_event

    unfinished = exists().where(and_(Job.batch_id == batch_id, Job.status.in_(("queued", "running"))))
    result = session.execute(update(Batch).where(Batch.id == batch_id, Batch.completed_at.is_(None), ~unfinished)
                             .values(completed_at=utcnow()))
    if result.rowcount != 1:
        return False
    batch = session.get(Batch, batch_id)
    record_event(session, tenant_id=batch.tenant_id, event_type="batch.completed", batch_id=batch.id,
                 callback_url=batch.callback_url,
                 data={"id": batch.id, "rule": batch.rule_name, "counts": batch_counts(session, batch.id)})
    return True


def open_batches(session: Session, limit: int = 200) -> list[str]:
    return list(session.scalars(select(Batch.id).where(Batch.completed_at.is_(None))
                                .order_by(Batch.created_at).limit(limit)))
