"""Batches: many documents under one rule, one job each, in the caller's tenant."""
from __future__ import annotations

from flask import Blueprint, request, url_for
from sqlalchemy.exc import IntegrityError

from api import context, idempotency, intake, visibility
from api.jobs import event_stream
from api.auth import Principal, authenticate, principal, require
from api.limits import check_queue_depth
from docket.representation import batch_json
from db import queries
from db.models import Batch
from docket import claims, events, live, submission
from docket.errors import DocketError, NotFound
from docket.problem_text import localize

bp = Blueprint("batches", __name__, url_prefix="/v1")
bp.before_request(authenticate)


@bp.post("/batches")
@require("submit")
def create_batch():
    opts = intake.options()
    return accept_batch(intake.many_documents(), opts, principal(), idempotency.key_from_request())


def accept_batch(documents: list[intake.Submitted], opts: dict, who: Principal,
                 key: str | None = None, claim: claims.Intake | None = None) -> tuple[dict, int, dict]:
    """Store the files, record the batch and its jobs, commit, then publish: body, status (202,
    or a replayed one) and headers (Location). Shared by POST /v1/batches, the claims' routes
    (`claim`: a new claim's header, or an open claim to add to) and the dashboard's upload page.
    Files that cannot be accepted are listed in `rejected` (their problem each); raises when none can."""
    settings, tenant = context.settings(), who.tenant_id
    if claim is not None and claim.claim is not None:  # documents added to a claim: the claim's policy version
        rule = claims.claim_rule(context.db(), claim.claim, context.rules())
        if rule is None:
            raise submission.UnknownRule(f"The claim's policy {claim.claim.rule_name} is recorded nowhere.")
    else:
        rule = submission.resolve_rule(context.tenant_rules(tenant), opts["rule"])
    if len(documents) > settings.max_batch_files:
        raise DocketError(f"A batch holds at most {settings.max_batch_files} files.", code="batch_too_large",
                          status=413, title="Batch too large")
    session = context.db()
    stored, rejected = [], []
    for index, doc in enumerate(documents):
        try:
            stored.append((doc.filename, submission.store_document(session, settings, doc.stream, doc.filename)))
        except DocketError as exc:
            # One unreadable file must not sink 499 good ones: report it, accept the rest.
            rejected.append({"index": index, "filename": doc.filename, "code": exc.code, "status": exc.status,
                             "detail": localize(exc.code, exc.title, exc.detail)[1]})  # the caller's language
    fp = idempotency.fingerprint(claim.endpoint if claim else "POST /v1/batches", rule.name, opts,
                                 [(n, d.sha256) for n, d in stored], [(r["index"], r["code"]) for r in rejected],
                                 *([claim.fingerprint] if claim else []))
    if key and (earlier := idempotency.replay(session, tenant, key, fp)):
        return earlier
    if not stored:
        session.rollback()
        raise DocketError("No file in the batch could be accepted.", code="invalid_batch", status=422,
                          title="Invalid batch", rejected=rejected)
    check_queue_depth(len(stored))
    submitter = who.key_id
    batch = Batch(rule_name=rule.name, tenant_id=tenant, callback_url=opts["callback_url"], submitted_by=submitter,
                  note=opts.get("note"))
    session.add(batch)
    claimed = None
    if claim is not None:
        claimed = (claims.open_for_documents(session, claim.claim, len(stored)) if claim.claim is not None else
                   claims.new_claim(session, claim.header, rule, tenant_id=tenant, submitted_by=submitter,
                                    callback_url=opts["callback_url"]))
    # In bulk: one INSERT of all the jobs, one query for the decisions that can be reused.
    jobs = submission.new_jobs(session, stored, rule, analyzer=opts["analyzer"], batch=batch, tenant_id=tenant,
                               callback_url=opts["callback_url"], submitted_by=submitter,
                               claim_id=claimed.id if claimed is not None else None)
    cached = (submission.cached_decisions(session, tenant, [d.sha256 for _, d in stored], rule, opts["analyzer"])
              if opts["cache"] else {})
    to_publish = []
    for job in jobs:
        if (earlier := cached.get(job.document_sha256)) is not None:
            submission.reuse_decision(session, job, earlier)
        else:
            to_publish.append(job)
    if not to_publish:
        events.complete_batch(session, batch.id)
    body = {"id": batch.id, "rule": rule.name, "job_ids": [j.id for j in jobs], "rejected": rejected}
    location = url_for("batches.get_batch", batch_id=batch.id)
    if claimed is not None:
        body = {"id": claimed.id, "batch_id": batch.id, "rule": rule.name, "job_ids": body["job_ids"],
                "rejected": rejected}
        location = url_for("claims.get_claim", claim_id=claimed.id)
    if key:
        idempotency.remember(session, tenant, key, fp, settings.idempotency_ttl, 202, body, location)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if not key:
            raise
        return idempotency.replay(session, tenant, key, fp)
    submission.publish(context.celery(), session, to_publish, settings.broker_retry_after)
    return body, 202, {"Location": location}


def tenant_batch(batch_id: str) -> Batch:
    """The caller's batch, or 404 — also for another tenant's id, or a batch a submitter may
    not read (api/visibility.py), so ids reveal nothing."""
    batch, who = context.db().get(Batch, batch_id), principal()
    if batch is None or batch.tenant_id != who.tenant_id or not visibility.may_read(who, batch.submitted_by):
        raise NotFound(f"No batch {batch_id}.")
    return batch


@bp.get("/batches/<batch_id>")
@require("read")
def get_batch(batch_id: str):
    batch = tenant_batch(batch_id)
    return batch_json(batch, queries.batch_counts(context.db(), batch_id), batch.jobs)


def batch_snapshot(batch_id: str) -> live.Snapshot:
    session = context.db()
    session.rollback()  # a fresh read of what is committed now
    session.expire_all()
    batch = session.get(Batch, batch_id, populate_existing=True)
    counts = queries.batch_counts(session, batch_id)
    body = batch_json(batch, counts, batch.jobs)
    states = [(j.id, j.status, j.attempts) for j in batch.jobs]  # the order of body["jobs"]
    session.rollback()  # before Redis: no connection held for the stage read
    running = live.stages(context.settings().redis_url, [(i, a) for i, s, a in states if s == "running"])
    for job in body["jobs"]:
        job["stage"] = running.get(job["id"])  # a running attempt's progress, else null
    seq = sum(live.sequence(s, a, running.get(i)) for i, s, a in states)
    return live.Snapshot(seq, body["done"], body)


@bp.get("/batches/<batch_id>/events")
@require("read")
def batch_events(batch_id: str):
    """Server-Sent Events: the batch (counts and jobs) at each change of a job (`status`), then `done`."""
    batch = tenant_batch(batch_id)
    batch_id, job_ids = batch.id, [j.id for j in batch.jobs]
    last = live.last_event_id(request.headers.get("Last-Event-ID"))
    events = live.stream(context.settings().redis_url, job_ids, lambda: batch_snapshot(batch_id), last)
    return event_stream(events)
