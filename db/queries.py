"""Read-side queries for the API and the dashboard: job listing with filters, sort orders and
keyset (cursor) pagination, and counts."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Select, func, select, tuple_, union
from sqlalchemy.orm import Session, selectinload

from db.models import Decision, Job


SORTS = ("newest", "oldest", "queue")


@dataclass
class JobFilter:
    tenant: str
    status: str | None = None
    decision: str | None = None  # the current decision (after reviews)
    rule: str | None = None
    batch: str | None = None
    created_since: datetime | None = None
    created_until: datetime | None = None
    merchant: str | None = None  # substring of the merchant (receipts) or a party (contracts)
    amount_min: float | None = None
    amount_max: float | None = None
    q: str | None = None  # substring of the extracted text or the merchant
    reviewed: bool | None = None
    submitted_by: str | None = None  # an API key's id


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything Docket stores is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _sort_key(job: Job, sort: str) -> list:
    created = as_utc(job.created_at).isoformat()
    return [job.review_rank, created, job.id] if sort == "queue" else [created, job.id]


def encode_cursor(job: Job, sort: str = "newest") -> str:
    raw = json.dumps([sort, *_sort_key(job, sort)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str = "newest") -> list:
    """Raises ValueError on anything that is not a cursor this API issued for this sort."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        issued_for, *key = values
        if issued_for != sort:
            raise ValueError
        if sort == "queue":
            return [int(key[0]), datetime.fromisoformat(key[1]), str(key[2])]
        return [datetime.fromisoformat(key[0]), str(key[1])]
    except Exception as exc:
        raise ValueError("malformed cursor (or one issued for another sort order)") from exc


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filtered(flt: JobFilter) -> Select:
    """SELECT of the tenant's jobs matching `flt` (no order, no limit)."""
    query = select(Job).where(Job.tenant_id == flt.tenant)
    if flt.status:
        query = query.where(Job.status == flt.status)
    if flt.decision:
        query = query.where(Job.current_decision == flt.decision)
    if flt.rule:
        query = query.where(Job.rule_name == flt.rule)
    if flt.batch:
        query = query.where(Job.batch_id == flt.batch)
    if flt.submitted_by:
        query = query.where(Job.submitted_by == flt.submitted_by)
    if flt.created_since:
        query = query.where(Job.created_at >= flt.created_since)
    if flt.created_until:
        query = query.where(Job.created_at < flt.created_until)
    if flt.merchant:
        query = query.where(Job.merchant.ilike(_like(flt.merchant), escape="\\"))
    if flt.amount_min is not None:
        query = query.where(Job.amount >= flt.amount_min)
    if flt.amount_max is not None:
        query = query.where(Job.amount <= flt.amount_max)
    if flt.reviewed is not None:
        query = query.where(Job.reviewed_at.is_not(None) if flt.reviewed else Job.reviewed_at.is_(None))
    if flt.q:
        # Two trigram-indexed id sets, each within the tenant, joined by UNION: an OR across the
        # two tables would instead filter every one of the tenant's jobs.
        hits = union(
            select(Decision.job_id).where(Decision.tenant_id == flt.tenant,
                                          Decision.text.ilike(_like(flt.q), escape="\\")),
            select(Job.id).where(Job.tenant_id == flt.tenant, Job.merchant.ilike(_like(flt.q), escape="\\")),
        )
        query = query.where(Job.id.in_(hits))
    return query


def list_jobs(session: Session, flt: JobFilter, *, limit: int, cursor: str | None = None,
              sort: str = "newest") -> tuple[list[Job], str | None]:
    """A page of jobs and the cursor of the next page (None at the end).

    Sorts: `newest` first (the API's default), `oldest` first, or `queue`: what needs a person
    first, oldest first (the reviewers' queue). Keyset pagination: stable while jobs arrive.
    """
    query = filtered(flt).options(selectinload(Job.decision), selectinload(Job.document),
                                  selectinload(Job.reviews))
    if sort == "queue":
        keys = (Job.review_rank, Job.created_at, Job.id)
        if cursor:
            query = query.where(tuple_(*keys) > tuple_(*decode_cursor(cursor, sort)))
        query = query.order_by(*keys)
    elif sort == "oldest":
        if cursor:
            query = query.where(tuple_(Job.created_at, Job.id) > tuple_(*decode_cursor(cursor, sort)))
        query = query.order_by(Job.created_at, Job.id)
    else:
        if cursor:
            query = query.where(tuple_(Job.created_at, Job.id) < tuple_(*decode_cursor(cursor, sort)))
        query = query.order_by(Job.created_at.desc(), Job.id.desc())
    rows = list(session.scalars(query.limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1], sort) if len(rows) > limit else None
    return rows[:limit], next_cursor


def decision_counts(session: Session, flt: JobFilter) -> dict[str, int]:
    """How many of the filtered jobs have each current decision (and how many have none yet)."""
    sub = filtered(flt).with_only_columns(Job.current_decision).subquery()
    counts = {"approve": 0, "needs_review": 0, "reject": 0, "undecided": 0}
    for decision, n in session.execute(select(sub.c.current_decision, func.count()).group_by(sub.c.current_decision)):
        counts[decision or "undecided"] = n
    return counts


def batch_counts(session: Session, batch_id: str) -> dict[str, int]:
    rows = session.execute(select(Job.status, func.count()).where(Job.batch_id == batch_id).group_by(Job.status))
    counts = {status: 0 for status in ("queued", "running", "succeeded", "failed")}
    counts.update({status: n for status, n in rows})
    return counts
