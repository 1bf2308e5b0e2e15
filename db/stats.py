"""Numbers for the overview: decisions per day and rule, the review backlog, time to decision."""
from __future__ import annotations

import statistics
from datetime import datetime

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session, aliased

from db.models import Decision, Job, Review


def _day(session: Session, column):
    # Days are UTC days, whatever the database session's time zone.
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def _median_seconds(session: Session, where) -> float | None:
    if session.get_bind().dialect.name == "postgresql":
        seconds = func.extract("epoch", Job.decided_at - Job.created_at)
        value = session.scalar(select(func.percentile_cont(0.5).within_group(seconds)).where(*where))
        return round(float(value), 3) if value is not None else None
    # SQLite (the embedded, small-scale default) has no percentile: compute it here.
    seconds = (func.julianday(Job.decided_at) - func.julianday(Job.created_at)) * 86400.0
    values = list(session.scalars(select(seconds).where(*where)))
    return round(statistics.median(values), 3) if values else None


def overview(session: Session, tenant: str, since: datetime, until: datetime, rule: str | None = None,
             submitted_by: str | None = None) -> dict:
    """Stats of the tenant's jobs decided in [since, until) (the backlog is as of now); with
    `submitted_by`, of that key's submissions only."""
    mine = [Job.submitted_by == submitted_by] if submitted_by is not None else []
    decided = [Job.tenant_id == tenant, Job.decided_at.is_not(None), Job.decided_at >= since, Job.decided_at < until,
               *mine]
    if rule:
        decided.append(Job.rule_name == rule)
    day = _day(session, Job.decided_at).label("day")
    per_day: dict[tuple[str, str], dict] = {}
    rows = session.execute(select(day, Job.rule_name, Job.current_decision, func.count())
                           .where(*decided).group_by(day, Job.rule_name, Job.current_decision))
    for d, rule_name, decision, n in rows:
        key = (str(d), rule_name)
        entry = per_day.setdefault(key, {"day": str(d), "rule": rule_name, "approve": 0, "needs_review": 0,
                                         "reject": 0, "total": 0})
        entry[decision] = entry.get(decision, 0) + n
        entry["total"] += n
    by_decision = {"approve": 0, "needs_review": 0, "reject": 0}
    for entry in per_day.values():
        for decision in by_decision:
            by_decision[decision] += entry[decision]
    backlog_where = [Job.tenant_id == tenant, Job.current_decision == "needs_review", *mine]
    if rule:
        backlog_where.append(Job.rule_name == rule)
    backlog = session.scalar(select(func.count()).select_from(Job).where(*backlog_where))
    oldest = session.scalar(select(func.min(Job.created_at)).where(*backlog_where))
    status_where = [Job.tenant_id == tenant, Job.created_at >= since, Job.created_at < until, *mine]
    if rule:
        status_where.append(Job.rule_name == rule)
    by_status = {s: 0 for s in ("queued", "running", "succeeded", "failed")}
    by_status.update(dict(session.execute(select(Job.status, func.count()).where(*status_where).group_by(Job.status)).all()))
    review_where = [Review.tenant_id == tenant, Review.created_at >= since, Review.created_at < until]
    if submitted_by is not None:
        review_where.append(Review.job_id.in_(select(Job.id).where(Job.tenant_id == tenant, *mine)))
    reviews = session.scalar(select(func.count()).select_from(Review).where(*review_where))
    automatic = _automatic(session, decided)
    corrections = _corrections(session, review_where, tenant, rule)
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "rule": rule,
        "decided": sum(by_decision.values()),
        "by_decision": by_decision,
        "by_status": by_status,
        "per_day": sorted(per_day.values(), key=lambda e: (e["day"], e["rule"])),
        "review_backlog": backlog,
        "oldest_in_backlog": oldest,
        "reviews": reviews,
        "median_seconds_to_decision": _median_seconds(session, decided),
        # Quality (issue 20): the share of decided jobs the policy decided alone (its newest machine
        # decision approve or reject), and the fields reviewers corrected: reading quality drifting.
        "automation_rate": round(automatic / sum(by_decision.values()), 4) if sum(by_decision.values()) else None,
        "corrections": corrections,
    }


def _automatic(session: Session, decided: list) -> int:
    """Decided jobs whose newest machine decision (analysis or re-decision) needed no person."""
    newer = aliased(Decision)
    newest = select(func.max(newer.id)).where(newer.job_id == Job.id).correlate(Job).scalar_subquery()
    return session.scalar(select(func.count()).select_from(Job)
                          .join(Decision, (Decision.job_id == Job.id) & (Decision.id == newest))
                          .where(*decided, Decision.decision.in_(("approve", "reject")))) or 0


def _corrections(session: Session, review_where: list, tenant: str, rule: str | None) -> dict[str, int]:
    """Field -> how many reviews in the window changed it (reviewers' corrections are the live
    system's ground truth), most corrected first."""
    where = list(review_where)
    if rule:
        where.append(Review.job_id.in_(select(Job.id).where(Job.tenant_id == tenant, Job.rule_name == rule)))
    counts: dict[str, int] = {}
    for before, after in session.execute(select(Review.fields_before, Review.fields_after).where(*where)):
        before, after = before if isinstance(before, dict) else {}, after if isinstance(after, dict) else {}
        for name in set(before) | set(after):
            if before.get(name) != after.get(name):
                counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
