"""GET /v1/stats: the overview's numbers, for the dashboard and anyone's own tools."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, request

from api import context, job_filters, visibility
from api.auth import authenticate, principal, require
from db import stats
from db.queries import as_utc

bp = Blueprint("stats", __name__, url_prefix="/v1")
bp.before_request(authenticate)

MAX_DAYS = 366


def window(args) -> tuple[datetime, datetime]:
    """[since, until): the last 30 days unless the query says otherwise; at most a year."""
    until = job_filters.time_arg(args, "until") or datetime.now(timezone.utc)
    try:
        since = job_filters.time_arg(args, "since") or until - timedelta(days=30)
    except OverflowError:
        raise job_filters.invalid("'until' is too early for a 30-day window; give 'since' too.") from None
    if since >= until:
        raise job_filters.invalid("'since' must be before 'until'.")
    if until - since > timedelta(days=MAX_DAYS):
        raise job_filters.invalid(f"The window may span at most {MAX_DAYS} days.")
    return since, until


@bp.get("/stats")
@require("read")
def get_stats():
    since, until = window(request.args)
    who = principal()
    body = stats.overview(context.db(), who.tenant_id, since, until,
                          rule=job_filters.text_arg(request.args, "rule", 100),
                          submitted_by=visibility.own_submissions(who))  # a submitter's own only
    oldest = as_utc(body["oldest_in_backlog"])
    body["oldest_in_backlog"] = oldest.isoformat() if oldest else None
    return body
