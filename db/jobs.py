"""Job state changes as stored. Each is one conditional UPDATE, so two workers (or a redelivered
message) racing on the same job cannot both win, on SQLite and Postgres alike. Nothing here
commits: docket/lifecycle.py does each transition with its event in one transaction."""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import String, and_, bindparam, cast, func, insert, literal, or_, select, true, update
from sqlalchemy.orm import Session

from db.models import Decision, Document, Job, utcnow
from db.review_queue import queue_values
from db.rows import as_loaded

TERMINAL = ("succeeded", "failed")


def claim(session: Session, job_id: str, stale_after: int, worker: str | None = None) -> int | None:
    """Mark the job running for this attempt, held by `worker`; returns the attempt number, or
    None if it is running elsewhere or already finished. The caller commits.

    Only a `queued` job is claimed. A running job that names its worker is taken back only by
    the sweeper, once that worker's heartbeat says it is gone or no longer works on the job
    (docket/recovery.py); a redelivered message never steals it, however long it runs. Rows
    claimed without a worker id (before migration 0005) fall back to `stale_after`."""
    return session.scalar(_claim().returning(Job.__table__.c.attempts), _claim_values(job_id, stale_after, worker))


def claim_row(session: Session, job_id: str, stale_after: int, worker: str | None = None) -> Job | None:
    """`claim`, returning the claimed row itself (its `attempts` the attempt number), so the
    worker reads the job with the claim instead of in a transaction of its own. The caller commits."""
    row = session.connection().execute(_claim_row(), _claim_values(job_id, stale_after, worker)).first()
    return as_loaded(session, Job, row._asdict()) if row is not None else None


def claim_with_document(session: Session, job_id: str, stale_after: int,
                        worker: str | None = None) -> tuple[Job, Document] | None:
    """`claim_row` and the job's document. On Postgres one statement (the claim's UPDATE in a
    WITH, joined to the document); SQLite has no UPDATE inside WITH, so there it is two. The
    caller commits."""
    if session.get_bind().dialect.name != "postgresql":
        job = claim_row(session, job_id, stale_after, worker)
        return (job, session.get(Document, job.document_sha256)) if job is not None else None
    row = session.connection().execute(_claim_with_document(), _claim_values(job_id, stale_after, worker)).first()
    if row is None:
        return None
    job, document = _job_then(session, row)  # the job's columns, then the document's
    return job, as_loaded(session, Document, dict(zip(Document.__table__.c.keys(), document)))


def _job_then(session: Session, row) -> tuple[Job, tuple]:
    """A row that starts with the jobs table's columns: the job, as loaded, and the rest of the row."""
    width = len(Job.__table__.c)
    return as_loaded(session, Job, dict(zip(Job.__table__.c.keys(), row[:width]))), tuple(row[width:])


@lru_cache(maxsize=1)
def _claim():
    # Core, built once with bound parameters (_claim_values): building the statement, and the
    # ORM's handling of it, cost more CPU than running it.
    jobs = Job.__table__
    return (update(jobs)
            .where(jobs.c.id == bindparam("job_id"),
                   or_(jobs.c.status == "queued",
                       and_(jobs.c.status == "running", jobs.c.worker.is_(None),
                            jobs.c.started_at < bindparam("stale_before"))))
            .values(status="running", attempts=jobs.c.attempts + 1, started_at=bindparam("now"),
                    worker=bindparam("worker"), error_code=None, error_message=None))


@lru_cache(maxsize=1)
def _claim_row():
    return _claim().returning(*Job.__table__.c)


@lru_cache(maxsize=1)
def _claim_with_document():
    claimed = _claim_row().cte("claimed")
    documents = Document.__table__
    return select(*claimed.c, *documents.c).join_from(claimed, documents,
                                                      documents.c.sha256 == claimed.c.document_sha256)


def _claim_values(job_id: str, stale_after: int, worker: str | None) -> dict:
    now = utcnow()
    return {"job_id": job_id, "now": now, "worker": worker, "stale_before": now - timedelta(seconds=stale_after)}


def row_held_by(session: Session, job_id: str, worker: str) -> Job | None:
    """The running job's row if `worker` holds it (a claim whose commit went through although
    its caller saw the connection fail), else None."""
    return session.scalar(select(Job).where(Job.id == job_id, Job.status == "running", Job.worker == worker))


def _owned(job_id: str, attempt: int):
    # Only the attempt that claimed the job may finish it: a worker that was presumed dead
    # and comes back late must not overwrite the newer attempt.
    return and_(Job.id == job_id, Job.status == "running", Job.attempts == attempt)


def succeeded_row(session: Session, job_id: str, attempt: int, decision: Decision) -> Job | None:
    """Finish the job and add its decision (the caller commits); the finished row as updated, so
    that what follows in the transaction (the event, metrics) needs no SELECT of the job, or None
    when this attempt no longer owns the job: nothing is written. A second decision of the same
    analysis round (a redelivery) fails with IntegrityError (one per job and origin
    "analysis:<round>").

    Core statements built once, and the rows they return put in the session as if loaded: the
    ORM's bulk UPDATE and unit of work cost more CPU than the database spent on the job. On
    Postgres the decision's INSERT rides in the finish's statement (an UPDATE and an INSERT in a
    WITH: one round trip); SQLite has no UPDATE inside WITH, so there it is two."""
    now = utcnow()
    connection = session.connection()
    finish = {"job_id": job_id, "attempt": attempt, "finished_at": now,
              **{f"set_{name}": value for name, value in queue_values(decision.decision, decision.fields, now).items()}}
    decision.created_at = now
    stated = {column.key: getattr(decision, column.key) for column in _STATED_DECISION_COLUMNS}
    if connection.dialect.name == "postgresql":  # the job's columns come back, then the decision's id
        row = connection.execute(_succeeded_with_decision(), {**finish, **{f"d_{k}": v for k, v in stated.items()}}
                                 ).first()
    else:  # the job's columns only
        row = connection.execute(_succeeded(), finish).first()
    if row is None:
        return None
    job, rest = _job_then(session, row)
    decision_id = rest[0] if rest else None
    decision.tenant_id, decision.origin = job.tenant_id, f"analysis:{job.analysis_round}"
    values = {**stated, "tenant_id": decision.tenant_id, "origin": decision.origin}
    if decision_id is None:
        decision_id = connection.execute(_add_decision(), values).scalar_one()
    decision.id = decision_id
    as_loaded(session, Decision, {**values, "id": decision_id}, instance=decision)
    return job


@lru_cache(maxsize=1)
def _succeeded():
    # Built once with bound parameters (the queue columns' names are queue_values' keys; an
    # UPDATE takes a parameter named like a column as a value to set, hence the `set_` prefix).
    jobs = Job.__table__
    columns = queue_values("approve", {}, utcnow())
    return (update(jobs).where(_owned(bindparam("job_id"), bindparam("attempt")))
            .values(status="succeeded", finished_at=bindparam("finished_at"),
                    **{name: bindparam(f"set_{name}") for name in columns})
            .returning(*jobs.c))


# The decision's columns its maker states; the finished job gives its tenant and origin.
_STATED_DECISION_COLUMNS = [column for column in Decision.__table__.c if column.key not in ("id", "tenant_id", "origin")]


@lru_cache(maxsize=1)
def _add_decision():
    decisions = Decision.__table__
    return insert(decisions).returning(decisions.c.id)


@lru_cache(maxsize=1)
def _succeeded_with_decision():
    """Postgres: the finish's UPDATE and the decision's INSERT in one statement. The decision
    takes its tenant and origin from the row the UPDATE returns, so no row is added when the
    attempt no longer owns the job; the job's columns come back, then the decision's id."""
    decisions = Decision.__table__
    finished = _succeeded().cte("finished")
    stated = [column.key for column in _STATED_DECISION_COLUMNS]
    added = (insert(decisions)
             .from_select(["tenant_id", "origin", *stated],
                          select(finished.c.tenant_id,
                                 literal("analysis:") + cast(finished.c.analysis_round, String),
                                 *[bindparam(f"d_{column.key}", type_=column.type) for column in _STATED_DECISION_COLUMNS]))
             .returning(decisions.c.id)
             .cte("added"))
    return select(*finished.c, added.c.id).select_from(finished).join(added, true())


def mark_failed(session: Session, job_id: str, code: str, message: str, attempt: int | None = None) -> bool:
    """Fail the job (only the owning attempt's, when given; else any unfinished one); the caller commits."""
    where = _owned(job_id, attempt) if attempt is not None else and_(Job.id == job_id, Job.status.not_in(TERMINAL))
    result = session.execute(update(Job).where(where).values(
        status="failed", error_code=code, error_message=message[:4000], finished_at=utcnow()))
    return result.rowcount == 1


def release(session: Session, job_id: str, attempt: int) -> None:
    """Give the job back to the queue (a transient error; a retry follows). The caller commits."""
    session.execute(update(Job).where(_owned(job_id, attempt)).values(status="queued", enqueued_at=utcnow(),
                                                                      worker=None))


def reclaim(session: Session, job_id: str, attempt: int, worker: str | None) -> bool:
    """Take a running job back from a worker that is gone (or no longer works on it): queued
    again and unpublished, so the sweeper publishes it. Only while that same attempt of that same
    worker still holds it; False otherwise. The attempt count stays (the next claim adds one,
    and max_attempts still ends a job that kills every worker). The caller commits."""
    holder = Job.worker.is_(None) if worker is None else Job.worker == worker
    result = session.execute(update(Job).where(_owned(job_id, attempt), holder)
                             .values(status="queued", enqueued_at=None, worker=None))
    return result.rowcount == 1


def running(session: Session, limit: int = 5000) -> list:
    """(id, worker, started_at, attempts) of running jobs, oldest first: at most the workers'
    total concurrency in normal operation."""
    return list(session.execute(
        select(Job.id, Job.worker, Job.started_at, Job.attempts).where(Job.status == "running")
        .order_by(Job.created_at).limit(limit)))


def count_published_queued(session: Session, before: datetime) -> int:
    """Queued jobs whose message went out before `before` (each should have one in the broker)."""
    return session.scalar(select(func.count()).select_from(Job).where(
        Job.status == "queued", Job.enqueued_at.is_not(None), Job.enqueued_at < before))


def published_queued(session: Session, before: datetime, *, after: tuple | None = None,
                     limit: int = 1000) -> list:
    """(created_at, id, analyzer) of queued jobs published before `before`, in keyset pages."""
    query = select(Job.created_at, Job.id, Job.analyzer).where(
        Job.status == "queued", Job.enqueued_at.is_not(None), Job.enqueued_at < before)
    if after is not None:
        query = query.where(or_(Job.created_at > after[0], and_(Job.created_at == after[0], Job.id > after[1])))
    return list(session.execute(query.order_by(Job.created_at, Job.id).limit(limit)))


def mark_published(session: Session, job_ids: list[str], now: datetime) -> None:
    """Record that messages for these (still queued) jobs went out. The caller commits."""
    if job_ids:
        session.execute(update(Job).where(Job.id.in_(job_ids), Job.status == "queued").values(enqueued_at=now)
                        .execution_options(synchronize_session=False))


def needing_publish(session: Session, *, now: datetime, settle: float, requeue_after: int,
                    stale_after: int, limit: int = 500, after: tuple | None = None) -> list[Job]:
    """Jobs whose queue message is missing or presumed lost:
    queued and never published (broker was down, or reclaimed from a dead worker), queued and
    published long ago (a backstop), or running without a worker id for longer than stale_after
    (rows from before migration 0005). Oldest first; `after` = (created_at, id) of the previous
    page's last row."""
    query = select(Job).where(or_(
        and_(Job.status == "queued", Job.enqueued_at.is_(None),
             Job.created_at < now - timedelta(seconds=settle)),
        and_(Job.status == "queued", Job.enqueued_at < now - timedelta(seconds=requeue_after)),
        and_(Job.status == "running", Job.worker.is_(None),
             Job.started_at < now - timedelta(seconds=stale_after)),
    ))
    if after is not None:
        query = query.where(or_(Job.created_at > after[0], and_(Job.created_at == after[0], Job.id > after[1])))
    return list(session.scalars(query.order_by(Job.created_at, Job.id).limit(limit)))
