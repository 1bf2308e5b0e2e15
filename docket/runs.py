"""Background policy runs (simulations, re-decisions, re-analyses) as stored rows with progress.

A run row is committed before its queue message is published (like a job), and a run is worked
in chunks: each chunk's writes, the run's progress and its `cursor` (where the chunk ended)
commit together. So a message delivered twice, or a worker that dies half way, never does a
chunk twice: the next attempt claims the run (one conditional UPDATE, like a job's claim) and
resumes at the cursor. Only the attempt that claimed the run may record progress.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from db.models import PolicyRun, utcnow
from db.queries import as_utc
from db.session import session_factory
from docket.errors import NotFound

log = logging.getLogger(__name__)

KINDS = ("simulation", "redecision", "reanalysis")
#: A running run whose heartbeat is older than this is presumed abandoned by a dead worker.
STALE_AFTER = 120


def create(session: Session, *, tenant_id: str, kind: str, rule_name: str, rule_version: str, filter: dict,
           actor: str, actor_key_id: str | None = None, total: int = 0) -> PolicyRun:
    """Record a queued run (the caller commits, then publishes it)."""
    assert kind in KINDS
    run = PolicyRun(tenant_id=tenant_id, kind=kind, rule_name=rule_name, rule_version=rule_version, filter=filter,
                    status="queued", total=total, processed=0, changed=0, flagged=0, attempts=0,
                    created_by=actor[:200], created_by_key_id=actor_key_id, created_at=utcnow())
    session.add(run)
    session.flush()
    return run


def tenant_run(session: Session, tenant_id: str, run_id: str, kinds: tuple[str, ...]) -> PolicyRun:
    run = session.get(PolicyRun, run_id)
    if run is None or run.tenant_id != tenant_id or run.kind not in kinds:
        raise NotFound(f"No such run {run_id}.")
    return run


def mark_published(session: Session, run_id: str) -> None:
    session.execute(update(PolicyRun).where(PolicyRun.id == run_id, PolicyRun.status == "queued")
                    .values(enqueued_at=utcnow()))
    session.commit()


def needing_publish(session: Session, *, settle: float = 2.0, requeue_after: int = 900) -> list[PolicyRun]:
    """Runs whose message never went out (broker down), went out long ago and was not taken, or
    whose worker stopped beating: the sweeper publishes them again."""
    now = utcnow()
    return list(session.scalars(select(PolicyRun).where(or_(
        and_(PolicyRun.status == "queued", PolicyRun.enqueued_at.is_(None),
             PolicyRun.created_at < now - timedelta(seconds=settle)),
        and_(PolicyRun.status == "queued", PolicyRun.enqueued_at < now - timedelta(seconds=requeue_after)),
        and_(PolicyRun.status == "running", PolicyRun.heartbeat_at < now - timedelta(seconds=STALE_AFTER)),
    )).order_by(PolicyRun.created_at).limit(100)))


def claim(session: Session, run_id: str) -> int | None:
    """Take the run for a new attempt (queued, or running with a stale heartbeat) and commit;
    the attempt number, or None when it is finished or another worker holds it."""
    now = utcnow()
    attempt = session.scalar(
        update(PolicyRun)
        .where(PolicyRun.id == run_id,
               or_(PolicyRun.status == "queued",
                   and_(PolicyRun.status == "running",
                        PolicyRun.heartbeat_at < now - timedelta(seconds=STALE_AFTER))))
        .values(status="running", attempts=PolicyRun.attempts + 1, heartbeat_at=now,
                started_at=now)
        .returning(PolicyRun.attempts))
    session.commit()
    return attempt


def _owned(run_id: str, attempt: int):
    return and_(PolicyRun.id == run_id, PolicyRun.status == "running", PolicyRun.attempts == attempt)


@dataclass
class Step:
    """What one chunk did: how many jobs it went through, where it ended (None: the end was
    reached), the run's new counters and result, and what to do once it committed."""

    processed: int
    cursor: list | None
    changed: int = 0
    flagged: int = 0
    result: dict[str, Any] | None = None
    after_commit: Callable[[], None] | None = None
    done: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def drive(database_url: str, run_id: str, step: Callable[[Session, PolicyRun], Step], *,
          progress: Callable[[PolicyRun], None] | None = None, attempt: int | None = None,
          budget: float | None = None) -> str:
    """Claim the run (unless `attempt` says it is claimed already) and work it chunk by chunk
    with `step(session, run)`, which adds its writes to the session; each chunk commits with the
    run's progress, only while this attempt still owns the run. Returns the final status,
    "skipped" when the run was not this attempt's to work, or "paused" when `budget` seconds
    ran out first: the run is queued again (unpublished) for the caller, or the sweeper, to
    publish — a task stays short whatever the run's size."""
    factory = session_factory(database_url)
    deadline = time.monotonic() + budget if budget is not None else None
    if attempt is None:
        with factory() as session:
            attempt = claim(session, run_id)
        if attempt is None:
            return "skipped"
    while True:
        session = factory()
        try:
            run = session.get(PolicyRun, run_id)
            if run is None or run.status != "running" or run.attempts != attempt:
                return "skipped"
            started = time.perf_counter()
            outcome = step(session, run)
            values: dict[str, Any] = {
                "processed": PolicyRun.processed + outcome.processed, "changed": PolicyRun.changed + outcome.changed,
                "flagged": PolicyRun.flagged + outcome.flagged, "cursor": outcome.cursor, "heartbeat_at": utcnow(),
            }
            if outcome.result is not None:
                values["result"] = outcome.result
            if outcome.done:
                values.update(status="succeeded", finished_at=utcnow())
            values.update(outcome.extra)
            stored = session.execute(update(PolicyRun).where(_owned(run_id, attempt)).values(**values))
            if stored.rowcount != 1:  # another attempt took over: drop this chunk's writes
                session.rollback()
                return "skipped"
            session.commit()
            log.debug("run %s: chunk of %d in %.2fs", run_id, outcome.processed, time.perf_counter() - started)
        except Exception as exc:
            session.rollback()
            log.exception("run %s failed", run_id)
            session.execute(update(PolicyRun).where(_owned(run_id, attempt)).values(
                status="failed", error=f"{type(exc).__name__}: {exc}"[:4000], finished_at=utcnow()))
            session.commit()
            return "failed"
        finally:
            session.close()
        if outcome.after_commit is not None:
            outcome.after_commit()
        if progress is not None:
            with factory() as s:
                progress(s.get(PolicyRun, run_id))
        if outcome.done:
            return "succeeded"
        if deadline is not None and time.monotonic() > deadline:
            with factory() as session:
                paused = session.execute(update(PolicyRun).where(_owned(run_id, attempt))
                                         .values(status="queued", enqueued_at=None)).rowcount
                session.commit()
            return "paused" if paused else "skipped"


def run_json(run: PolicyRun) -> dict[str, Any]:
    def when(value):
        value = as_utc(value)
        return value.isoformat() if value else None

    body = {"id": run.id, "kind": run.kind, "status": run.status,
            "rule": {"name": run.rule_name, "version": run.rule_version}, "filter": run.filter,
            "total": run.total, "processed": run.processed,
            "progress": round(run.processed / run.total, 4) if run.total else (1.0 if run.status == "succeeded" else 0.0),
            "changed": run.changed, "flagged": run.flagged, "created_by": run.created_by,
            "created_at": when(run.created_at), "started_at": when(run.started_at),
            "finished_at": when(run.finished_at), "error": run.error}
    result = dict(run.result or {})
    state = result.pop("state", None)
    if run.kind == "simulation":
        # Finished: the simulation's answer; until then, the counts so far.
        body["result"] = result if run.status == "succeeded" else None
        body["partial"] = ({k: state.get(k) for k in ("evaluated", "changed", "transitions")}
                           if state and run.status != "succeeded" else None)
    else:
        body["result"] = result or None
    return body
