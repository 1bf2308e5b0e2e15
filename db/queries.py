"""Read-side queries for the API: job listing with filters and keyset (cursor) pagination."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from db.models import Decision, Job


@dataclass
class JobFilter:
    tenant: str
    status: str | None = None
    decision: str | None = None
    rule: str | None = None
    batch: str | None = None
    created_since: datetime | None = None
    created_until: datetime | None = None


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything Docket stores is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def encode_cursor(job: Job) -> str:
    raw = json.dumps([as_utc(job.created_at).isoformat(), job.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError on anything that is not a cursor this API issued."""
    try:
        created, job_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created), str(job_id)
    except Exception as exc:
        raise ValueError("malformed cursor") from exc


def list_jobs(session: Session, flt: JobFilter, *, limit: int, cursor: str | None = None) -> tuple[list[Job], str | None]:
    """Newest first. Returns a page of jobs and the cursor of the next page (None at the end)."""
    query = (select(Job).options(selectinload(Job.decision), selectinload(Job.document))
             .where(Job.tenant_id == flt.tenant))
    if flt.status:
        query = query.where(Job.status == flt.status)
    if flt.rule:
        query = query.where(Job.rule_name == flt.rule)
    if flt.batch:
        query = query.where(Job.batch_id == flt.batch)
    if flt.created_since:
        query = query.where(Job.created_at >= flt.created_since)
    if flt.created_until:
        query = query.where(Job.created_at < flt.created_until)
    if flt.decision:
        query = query.join(Decision, Decision.job_id == Job.id).where(Decision.decision == flt.decision)
    if cursor:
        created, job_id = decode_cursor(cursor)
        query = query.where(or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id)))
    rows = list(session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def batch_counts(session: Session, batch_id: str) -> dict[str, int]:
    rows = session.execute(select(Job.status, func.count()).where(Job.batch_id == batch_id).group_by(Job.status))
    counts = {status: 0 for status in ("queued", "running", "succeeded", "failed")}
    counts.update({status: n for status, n in rows})
    return counts
