"""Jobs: submit one document, read one job, list jobs — always within the caller's tenant."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, request, url_for
from sqlalchemy.exc import IntegrityError

from api import context, idempotency, intake
from api.auth import authenticate, principal, require
from api.limits import check_queue_depth
from api.serialize import job_json
from db import queries
from db.models import DECISIONS, JOB_STATUSES, Job
from docket import submission
from docket.errors import DocketError, NotFound

bp = Blueprint("jobs", __name__, url_prefix="/v1")
bp.before_request(authenticate)


def tenant_job(job_id: str) -> Job:
    """The caller's job, or 404 — also for another tenant's id, so ids reveal nothing."""
    job = context.db().get(Job, job_id)
    if job is None or job.tenant_id != principal().tenant_id:
        raise NotFound(f"No job {job_id}.")
    return job


@bp.post("/jobs")
@require("submit")
def create_job():
    settings, tenant = context.settings(), principal().tenant_id
    opts = intake.options()
    rule = submission.resolve_rule(context.rules(), opts["rule"])
    key = idempotency.key_from_request()
    doc = intake.single_document(settings.max_upload_bytes)
    session = context.db()
    document = submission.store_document(session, settings, doc.stream, doc.filename)
    fp = idempotency.fingerprint("POST /v1/jobs", rule.name, opts, doc.filename, document.sha256)
    if key and (earlier := idempotency.replay(session, tenant, key, fp)):
        return earlier
    cached = (submission.cached_decision(session, tenant, document.sha256, rule, opts["analyzer"])
              if opts["cache"] else None)
    if cached is None:
        check_queue_depth()
    job = submission.new_job(session, document, rule, doc.filename, analyzer=opts["analyzer"], tenant_id=tenant,
                             callback_url=opts["callback_url"])
    if cached is not None:
        submission.reuse_decision(session, job, cached)
    body, location = job_json(job), url_for("jobs.get_job", job_id=job.id)
    if key:
        idempotency.remember(session, tenant, key, fp, settings.idempotency_ttl, 202, body, location)
    try:
        session.commit()  # the job exists before any message does
    except IntegrityError:
        session.rollback()
        if not key:
            raise
        return idempotency.replay(session, tenant, key, fp)  # a concurrent twin won the race
    if cached is None:
        submission.publish(context.celery(), session, [job])
    return body, 202, {"Location": location}


@bp.get("/jobs/<job_id>")
@require("read")
def get_job(job_id: str):
    return job_json(tenant_job(job_id))


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
@require("read")
def list_jobs():
    try:
        limit = int(request.args.get("limit", 50))
    except ValueError:
        limit = -1
    if not 1 <= limit <= 500:
        raise DocketError("'limit' must be an integer from 1 to 500.", code="invalid_query", status=400,
                          title="Invalid query")
    flt = queries.JobFilter(
        tenant=principal().tenant_id,
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
