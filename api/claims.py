"""Expense claims: an employee's documents under one header, decided together (docket/claims.py)."""
from __future__ import annotations

import base64
import binascii
import csv
import io
from datetime import datetime

from flask import Blueprint, Response, request, stream_with_context
from sqlalchemy import select

from api import context, idempotency, intake, visibility
from api.auth import authenticate, principal, require
from api.batches import accept_batch
from api.jobs import event_stream
from api.job_filters import invalid, limit, text_arg, time_arg
from db.claims import CLAIM_STATUSES, Claim
from db.models import DECISIONS, Job
from docket import claims, fx, live
from docket.errors import DocketError, NotFound

bp = Blueprint("claims", __name__, url_prefix="/v1")
bp.before_request(authenticate)


def tenant_claim(claim_id: str) -> Claim:
    """The caller's claim, or 404 (another tenant's, or a colleague's for a submitter)."""
    claim, who = context.db().get(Claim, claim_id), principal()
    if claim is None or claim.tenant_id != who.tenant_id or not visibility.may_read(who, claim.submitted_by):
        raise NotFound(f"No claim {claim_id}.")
    return claim


def _header():
    if request.mimetype != "multipart/form-data":
        raise DocketError("Send a claim as multipart/form-data: 'claim' (JSON), 'rule' and repeated 'files'.",
                          code="unsupported_content_type", status=415, title="Unsupported media type")
    return claims.parse_header(request.form.get("claim"))


@bp.post("/claims")
@require("submit")
def create_claim():
    header = _header()  # a bad header is refused before any file is stored
    opts = intake.options()
    documents = intake.many_documents()
    claims.check_size(len(documents))
    return accept_batch(documents, opts, principal(), idempotency.key_from_request(),
                        claim=claims.Intake(header=header))


@bp.post("/claims/<claim_id>/documents")
@require("submit")
def add_documents(claim_id: str):
    claim = tenant_claim(claim_id)
    if claim.status != "open":
        raise DocketError("Documents can be added to an open claim only; this one is decided.",
                          code="claim_decided", status=409, title="Claim decided")
    opts = intake.options()
    return accept_batch(intake.many_documents(), opts, principal(), idempotency.key_from_request(),
                        claim=claims.Intake(claim=claim))


@bp.get("/claims/<claim_id>")
@require("read")
def get_claim(claim_id: str):
    return claims.claim_json(context.db(), tenant_claim(claim_id))


@bp.post("/claims/<claim_id>/reviews")
@require("review")
def review_claim(claim_id: str):
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise DocketError("Send a JSON object: {\"decision\", \"comment\"}.", code="invalid_review", status=422,
                          title="Invalid review")
    claim, who = tenant_claim(claim_id), principal()
    review = claims.add_review(context.db(), claim, decision=body.get("decision"), comment=body.get("comment"),
                               reviewer=who.display_name, reviewer_key_id=who.key_id)
    context.db().commit()
    return {"review": claims.review_json(review), "claim": claims.claim_json(context.db(), claim)}, 201


def _cursor(value: str | None) -> tuple[datetime, str] | None:
    if not value:
        return None
    try:
        when, _, claim_id = base64.urlsafe_b64decode(value.encode() + b"==").decode().partition("|")
        return datetime.fromisoformat(when), claim_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise DocketError("'cursor' is not one this API gave out.", code="invalid_cursor", status=400,
                          title="Invalid cursor") from None


def _choice(name: str, allowed) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise invalid(f"'{name}' must be one of {', '.join(allowed)}.")
    return value


def _filtered():
    """The tenant's claims the caller may read, filtered as jobs are: status, decision,
    submitted_by=me, employee, needs_review=true (the reviewers' queue), rule, created_since/until."""
    who = principal()
    query = select(Claim).where(Claim.tenant_id == who.tenant_id)
    if (own := visibility.own_submissions(who)) is not None:
        query = query.where(Claim.submitted_by == own)
    if request.args.get("submitted_by"):
        if request.args["submitted_by"] != "me" or who.key_id is None:
            raise invalid("'submitted_by' must be 'me' (and the caller needs a key).")
        query = query.where(Claim.submitted_by == who.key_id)
    if status := _choice("status", CLAIM_STATUSES):
        query = query.where(Claim.status == status)
    if decision := _choice("decision", DECISIONS):
        query = query.where(Claim.current_decision == decision)
    if _choice("needs_review", ("true", "false")) == "true":
        query = query.where(Claim.review_rank == 0, Claim.status == "decided")
    if employee := text_arg(request.args, "employee"):
        query = query.where(Claim.employee == employee)
    if rule := text_arg(request.args, "rule", 100):
        query = query.where(Claim.rule_name == rule)
    if since := time_arg(request.args, "created_since"):
        query = query.where(Claim.created_at >= since)
    if until := time_arg(request.args, "created_until"):
        query = query.where(Claim.created_at <= until)
    return query


@bp.get("/claims")
@require("read")
def list_claims():
    n, after = limit(request.args), _cursor(request.args.get("cursor"))
    query = _filtered()
    if after is not None:
        query = query.where((Claim.created_at < after[0]) | ((Claim.created_at == after[0]) & (Claim.id < after[1])))
    session = context.db()
    rows = list(session.scalars(query.order_by(Claim.created_at.desc(), Claim.id.desc()).limit(n + 1)))
    next_cursor = None
    if len(rows) > n:
        rows, last = rows[:n], rows[n - 1]
        stamp = claims.as_utc(last.created_at).isoformat()
        next_cursor = base64.urlsafe_b64encode(f"{stamp}|{last.id}".encode()).decode().rstrip("=")
    return {"claims": [claims.claim_json(session, c) for c in rows], "next_cursor": next_cursor}


def claim_snapshot(claim_id: str) -> live.Snapshot:
    session = context.db()
    session.rollback()  # what is committed now
    session.expire_all()
    claim = session.get(Claim, claim_id, populate_existing=True)
    body = claims.claim_json(session, claim)
    states = [(j["id"], j["status"], j["attempts"]) for j in body["jobs"]]
    session.rollback()
    running = live.stages(context.settings().redis_url, [(i, a) for i, s, a in states if s == "running"])
    for job in body["jobs"]:
        job["stage"] = running.get(job["id"])
    seq = sum(live.sequence(s, a, running.get(i)) for i, s, a in states) + (1 if body["status"] == "decided" else 0)
    return live.Snapshot(seq, body["status"] == "decided", body)


@bp.get("/claims/<claim_id>/events")
@require("read")
def claim_events(claim_id: str):
    """Server-Sent Events: the claim at each change of one of its jobs (`status`), then `done`
    once it is decided (its decision, reasons and totals in the data)."""
    claim = tenant_claim(claim_id)
    claim_id = claim.id
    job_ids = list(context.db().scalars(select(Job.id).where(Job.claim_id == claim_id)))
    last = live.last_event_id(request.headers.get("Last-Event-ID"))
    events = live.stream(context.settings().redis_url, job_ids, lambda: claim_snapshot(claim_id), last)
    return event_stream(events)


EXPORT_COLUMNS = ["claim", "employee", "cost_center", "job_id", "filename", "category", "date", "seller", "amount",
                  "currency", "converted_amount", "converted_currency", "deductible_vat", "decision",
                  "claim_decision"]


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text  # no formulas in a spreadsheet


@bp.get("/claims/export.csv")
@require("read")
def export_claims():
    """For accounting: one row per document of every claim the filter selects."""
    session = context.db()
    query = _filtered().order_by(Claim.created_at, Claim.id)
    builtins = context.rules()

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        yield "\ufeff" + buffer.getvalue()
        for claim in session.scalars(query.execution_options(yield_per=200)):
            lines, currency = claim.lines, (claim.totals or {}).get("currency")
            if claim.status != "decided" or lines is None:
                rule = claims.claim_rule(session, claim, builtins)
                jobs = session.scalars(select(Job).where(Job.claim_id == claim.id).order_by(Job.created_at, Job.id))
                rates = fx.Rates(session, claim.tenant_id)
                lines = [claims.document_line(j, rule, rates) for j in jobs] if rule is not None else []
                currency = fx.policy_currency(rule) if rule is not None else None
            buffer.seek(0)
            buffer.truncate()
            for line in lines:
                writer.writerow([_cell(v) for v in (
                    claim.id, claim.employee, claim.cost_center, line["job_id"], line["filename"], line["category"],
                    line["date"], line["seller"], line["total"], line["currency"], line["amount"], currency,
                    line["deductible_vat"], line["decision"], claim.current_decision)])
            yield buffer.getvalue()

    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="docket-claims.csv"'})
