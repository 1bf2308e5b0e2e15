"""Jobs: submit one document, read one job, list jobs."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, request, url_for

from api import context, intake
from api.serialize import job_json
from db import queries
from db.models import DECISIONS, JOB_STATUSES, Job
from docket import submission
from docket.errors import DocketError, NotFound

bp = Blueprint("jobs", __name__, url_prefix="/v1")


@bp.post("/jobs")
def create_job():
    settings = context.settings()
    opts = intake.options()
    rule = submission.resolve_rule(context.rules(), opts["rule"])
    doc = intake.single_document(settings.max_upload_bytes)
    session = context.db()
    document = submission.store_document(session, settings, doc.stream, doc.filename)
    job = submission.new_job(session, document, rule, doc.filename, analyzer=opts["analyzer"])
    session.commit()  # the job exists before any message does
    submission.publish(context.celery(), session, [job])
    location = url_for("jobs.get_job", job_id=job.id)
    return job_json(job), 202, {"Location": location}


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    job = context.db().get(Job, job_id)
    if job is None:
        raise NotFound(f"No job {job_id}.")
    return job_json(job)


def _choice(name: str, allowed) -> str | None:
    value = request.args.get(name)
    if value is not None and value not in allowed:
        raise DocketError(f"'{name}' must be one of {', '.join(allowed)}.", code="invalid_query", status=400,
                          title="Invalid query")
    return value


def _time(name: str) -> datetime | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DocketError(f"'{name}' must be an ISO 8601 date or time.", code="invalid_query", status=400,
                          title="Invalid query") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@bp.get("/jobs")
def list_jobs():
    try:
        limit = int(request.args.get("limit", 50))
    except ValueError:
        limit = -1
    if not 1 <= limit <= 500:
        raise DocketError("'limit' must be an integer from 1 to 500.", code="invalid_query", status=400,
                          title="Invalid query")
    flt = queries.JobFilter(
        status=_choice("status", JOB_STATUSES),
        decision=_choice("decision", DECISIONS),
        rule=request.args.get("rule"),
        batch=request.args.get("batch"),
        created_since=_time("created_since"),
        created_until=_time("created_until"),
    )
    try:
        jobs, next_cursor = queries.list_jobs(context.db(), flt, limit=limit, cursor=request.args.get("cursor"))
    except ValueError as exc:
        raise DocketError(str(exc), code="invalid_cursor", status=400, title="Invalid cursor") from None
    return {"jobs": [job_json(j) for j in jobs], "next_cursor": next_cursor}
