"""Jobs: submit one document, read one job, list jobs — always within the caller's tenant."""
from __future__ import annotations

from flask import Blueprint, Response, g, request, stream_with_context, url_for
from sqlalchemy.exc import IntegrityError

from api import context, idempotency, intake, job_filters, visibility
from api.auth import authenticate, principal, require
from api.limits import check_queue_depth
from api.problems import problem
from docket.representation import job_json
from db import queries
from db.models import Job
from docket import i18n, live, submission
from docket.errors import DocketError, NotFound

bp = Blueprint("jobs", __name__, url_prefix="/v1")
bp.before_request(authenticate)


def tenant_job(job_id: str) -> Job:
    """The caller's job, or 404 — also for another tenant's id, or a job a submitter may not
    read (api/visibility.py), so ids reveal nothing."""
    job, who = context.db().get(Job, job_id), principal()
    if job is None or job.tenant_id != who.tenant_id or not visibility.may_read(who, job.submitted_by):
        raise NotFound(f"No job {job_id}.")
    return job


@bp.post("/jobs")
@require("submit")
def create_job():
    settings, tenant = context.settings(), principal().tenant_id
    opts = intake.options()
    rule = submission.resolve_rule(context.tenant_rules(tenant), opts["rule"])
    key = idempotency.key_from_request()
    doc = intake.single_document(settings.max_upload_bytes)
    session = context.db()
    document = submission.store_document(session, settings, doc.stream, doc.filename)
    fp = idempotency.fingerprint("POST /v1/jobs", rule.name, opts, doc.filename, document.sha256) if key else None
    if key and (earlier := idempotency.replay(session, tenant, key, fp)):
        return earlier
    cached = (submission.cached_decision(session, tenant, document.sha256, rule, opts["analyzer"])
              if opts["cache"] else None)
    if cached is None:
        check_queue_depth()
    job = submission.new_job(session, document, rule, doc.filename, analyzer=opts["analyzer"], tenant_id=tenant,
                             callback_url=opts["callback_url"], submitted_by=principal().key_id)
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
        submission.publish(context.celery(), session, [job], settings.broker_retry_after)
    headers = {"Location": location}
    if (waited := _wait_for(job.id)) is not None:
        return waited[0], 200, {**headers, **waited[1]}
    return body, 202, headers


@bp.get("/jobs/<job_id>")
@require("read")
def get_job(job_id: str):
    job = tenant_job(job_id)
    if (waited := _wait_for(job.id)) is not None:
        return waited
    return job_json(job, history=True)


def _fresh_job(job_id: str) -> Job | None:
    """The job's row as committed now (a new transaction, nothing cached from before)."""
    session = context.db()
    session.rollback()
    session.expire_all()
    return session.get(Job, job_id, populate_existing=True)


def _wait_for(job_id: str) -> tuple[dict, dict] | None:
    """RFC 7240 `Prefer: wait=N`: hold until the job ends (at most N ≤ 60 s); its body and the
    `Preference-Applied` header when it ended, else None (the caller answers as usual)."""
    seconds = live.wait_seconds(request.headers.get("Prefer"))
    if seconds is None:
        return None
    release = live.hold(_live_owner())
    if release is None:
        return None  # the process holds all the waits it may: a preference, answered at once

    def finished() -> bool:
        job = _fresh_job(job_id)
        done = job is not None and job.status in live.FINISHED
        context.db().rollback()  # hold no database connection while waiting
        return done

    try:
        if not live.wait_until_finished(context.settings().redis_url, job_id, seconds, finished):
            return None
    finally:
        release()
    return job_json(_fresh_job(job_id), history=True), {"Preference-Applied": f"wait={seconds}"}


def job_snapshot(job_id: str) -> live.Snapshot:
    """The job JSON plus `stage` (a running attempt's progress, else null), and its sequence."""
    job = _fresh_job(job_id)
    data, status, attempts = job_json(job, history=True), job.status, job.attempts
    context.db().rollback()  # before Redis: no connection held for the stage read
    running = [(job_id, attempts)] if status == "running" else []
    data["stage"] = live.stages(context.settings().redis_url, running).get(job_id)
    return live.Snapshot(live.sequence(status, attempts, data["stage"]), status in live.FINISHED, data)


@bp.get("/jobs/<job_id>/events")
@require("read")
def job_events(job_id: str):
    """Server-Sent Events: the job's status changes (`status`), then `done`; ids for Last-Event-ID."""
    job_id = tenant_job(job_id).id
    last = live.last_event_id(request.headers.get("Last-Event-ID"))
    events = live.stream(context.settings().redis_url, [job_id], lambda: job_snapshot(job_id), last)
    return event_stream(events)


def _live_owner() -> str:
    """Whose place a long-lived request takes: the caller's key (API or dashboard session),
    else its address (the first-run admin has no key)."""
    who = g.get("principal")
    return f"key:{who.key_id}" if who is not None and who.key_id else f"ip:{request.remote_addr}"


def event_stream(events) -> Response:
    """The stream as a response, holding one of the process's live places until it is closed;
    503 with Retry-After when none is free (ordinary requests keep their threads)."""
    release = live.hold(_live_owner())
    if release is None:
        events.close()
        refused = problem(503, "too_many_streams", "Too many event streams",
                          f"This server holds all the event streams it may; retry in {live.RETRY_AFTER_S} s.")
        # docket_retry_after: kept over the rate limiter's own Retry-After (api/problems.py)
        refused.headers["Retry-After"] = refused.docket_retry_after = str(live.RETRY_AFTER_S)
        return refused
    # Each event is built when it happens, in the language of the request that opened the stream.
    events = _speaking(events, i18n.current())
    response = Response(stream_with_context(_releasing(events, release)), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(release)  # a response closed before its first chunk (HEAD, an early error)
    return response


def _speaking(events, locale: str):
    """`events`, each built under `locale` (a stream outlives the request's own language setting)."""
    try:
        while True:
            with i18n.using(locale):
                try:
                    item = next(events)
                except StopIteration:
                    return
            yield item
    finally:
        events.close()


def _releasing(events, release):
    """`events`, giving the place back when they end or are closed: werkzeug's server skips the
    response's close() when the client resets the connection, so close alone is not enough."""
    try:
        yield from events
    finally:
        release()


@bp.get("/jobs")
@require("read")
def list_jobs():
    args = request.args
    flt = job_filters.callers_filter(args, principal())
    sort = job_filters.sort(args)
    session = context.db()
    try:
        jobs, next_cursor = queries.list_jobs(session, flt, limit=job_filters.limit(args),
                                              cursor=args.get("cursor"), sort=sort)
    except ValueError as exc:
        raise DocketError(str(exc), code="invalid_cursor", status=400, title="Invalid cursor") from None
    body = {"jobs": [job_json(j) for j in jobs], "next_cursor": next_cursor}
    if args.get("counts") == "true":
        # Per current decision, for the same filter without its decision part (the queue's tabs).
        flt.decision = None
        body["counts"] = queries.decision_counts(session, flt)
    return body
