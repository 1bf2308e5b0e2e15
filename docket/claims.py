"""Expense claims: the header an employee gives, the claim's documents (jobs, submitted as a
batch is), and the claim's decision, made once its last document was decided.

The decision is driven by the job-finished event (docket/events.py calls `complete_claim` in the
transaction that finished the job), never by polling; the sweeper's housekeeping calls it again
for claims left open by two last jobs finishing at once, as for batches. It applies the policy's
claim checks (docket/rules/claim_checks.py) over the header and every document, and records
`claim.decided` in the webhook outbox in the same transaction.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from db.claims import Claim, ClaimReview
from db.models import DECISIONS, Job, utcnow
from db.queries import as_utc
from db.review_queue import invoice_key
from docket import database, duplicates, fx, policies
from docket.errors import DocketError, NotFound
from docket.representation import current_fields, job_json
from docket.rules import Rule, default_rules_dir, load_rules
from docket.rules.claim_checks import MAX_CLAIM_DOCUMENTS, evaluate_claim, localized

log = logging.getLogger(__name__)
_SEVERITY = {d: i for i, d in enumerate(DECISIONS)}
MAX_COMMENT = 5000
#: A claim checks at most this many of the tenant's claimed documents for look-alike images.
NEAR_DUPLICATE_WINDOW = 5000


class InvalidClaim(DocketError):
    status = 422
    code = "invalid_claim"
    title = "Invalid claim"


# --- the header ---------------------------------------------------------------------------------

def _text(value: Any, name: str, limit: int, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidClaim(f"The claim needs '{name}'.")
        return None
    if not isinstance(value, str):
        raise InvalidClaim(f"'{name}' must be text.")
    text = " ".join("".join(ch for ch in value if ch.isprintable() or ch in "\n\t").split())
    if len(text) > limit:
        raise InvalidClaim(f"'{name}' is longer than {limit} characters.")
    if required and not text:
        raise InvalidClaim(f"The claim needs '{name}'.")
    return text or None


def _day(value: Any, name: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidClaim(f"'{name}' must be a date, YYYY-MM-DD.") from None


def _amount(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidClaim("'claimed_amount' must be a number.")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidClaim("'claimed_amount' must be a number.") from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        raise InvalidClaim("'claimed_amount' must be a number from 0 to 10^12.")
    return str(amount.quantize(Decimal("0.01"), ROUND_HALF_UP))


def parse_header(raw: Any) -> dict[str, Any]:
    """The claim's header from the request: a JSON object (or its text), checked and bounded.
    Returns the Claim columns."""
    if isinstance(raw, str):
        if len(raw) > 20_000:
            raise InvalidClaim("'claim' is longer than 20,000 characters.")
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidClaim("'claim' must be a JSON object: {\"employee\", \"purpose\", \"trip\": {\"start\", "
                               "\"end\", \"destination\", \"origin\"?}, \"cost_center\"?, \"claimed_amount\"?}.") from None
    if not isinstance(raw, dict):
        raise InvalidClaim("Send the claim's header as 'claim', a JSON object with at least 'employee'.")
    unknown = set(raw) - {"employee", "purpose", "trip", "cost_center", "claimed_amount"}
    if unknown:
        raise InvalidClaim(f"Unknown claim keys: {', '.join(sorted(map(str, unknown))[:10])}.")
    trip = raw.get("trip") or {}
    if not isinstance(trip, dict):
        raise InvalidClaim("'trip' must be an object: {\"start\", \"end\", \"destination\", \"origin\"?}.")
    unknown = set(trip) - {"start", "end", "destination", "origin"}
    if unknown:
        raise InvalidClaim(f"Unknown trip keys: {', '.join(sorted(map(str, unknown))[:10])}.")
    start, end = _day(trip.get("start"), "trip.start"), _day(trip.get("end"), "trip.end")
    if (start is None) != (end is None):
        raise InvalidClaim("A trip needs both 'start' and 'end'.")
    if start is not None and not start <= end:
        raise InvalidClaim("The trip's 'end' is before its 'start'.")
    if start is not None and (end - start).days > 366:
        raise InvalidClaim("A trip lasts at most a year.")
    return {
        "employee": _text(raw.get("employee"), "employee", 200, required=True),
        "purpose": _text(raw.get("purpose"), "purpose", 2000),
        "trip_start": start, "trip_end": end,
        "destination": _text(trip.get("destination"), "trip.destination", 100),
        "origin": _text(trip.get("origin"), "trip.origin", 100),
        "cost_center": _text(raw.get("cost_center"), "cost_center", 100),
        "claimed_amount": _amount(raw.get("claimed_amount")),
    }


def header_fingerprint(header: dict[str, Any]) -> str:
    return json.dumps({k: (v.isoformat() if isinstance(v, date) else v) for k, v in header.items()}, sort_keys=True)


_CITY_SUFFIX = re.compile(r"(市|City)$", re.IGNORECASE)


def header_json(claim: Claim) -> dict[str, Any]:
    """The header as the API shows it (the request's shape)."""
    trip = None
    if claim.trip_start or claim.destination or claim.origin:
        trip = {"start": claim.trip_start.isoformat() if claim.trip_start else None,
                "end": claim.trip_end.isoformat() if claim.trip_end else None,
                "destination": claim.destination, "origin": claim.origin}
    return {"employee": claim.employee, "purpose": claim.purpose, "trip": trip, "cost_center": claim.cost_center,
            "claimed_amount": float(claim.claimed_amount) if claim.claimed_amount is not None else None}


def header_facts(claim: Claim) -> dict[str, Any]:
    """`claim` as the claim checks see it: the header, the destination's city and the trip's
    days (first to last, inclusive) and nights."""
    trip: dict[str, Any] = {"destination": claim.destination, "origin": claim.origin}
    if claim.destination:
        trip["city"] = _CITY_SUFFIX.sub("", claim.destination.strip()).strip()
    if claim.trip_start and claim.trip_end:
        trip.update(start=claim.trip_start.isoformat(), end=claim.trip_end.isoformat(),
                    days=(claim.trip_end - claim.trip_start).days + 1, nights=(claim.trip_end - claim.trip_start).days)
    return {"employee": claim.employee, "purpose": claim.purpose, "cost_center": claim.cost_center,
            "claimed_amount": float(claim.claimed_amount) if claim.claimed_amount is not None else None, "trip": trip}


# --- creating and adding ------------------------------------------------------------------------

def check_size(documents: int) -> None:
    """413 for more documents than one claim may hold (checked before any file is stored)."""
    if documents > MAX_CLAIM_DOCUMENTS:
        raise DocketError(f"A claim holds at most {MAX_CLAIM_DOCUMENTS} documents.", code="claim_too_large",
                          status=413, title="Claim too large")


def new_claim(session: Session, header: dict[str, Any], rule: Rule, *, tenant_id: str, submitted_by: str | None,
              callback_url: str | None) -> Claim:
    claim = Claim(tenant_id=tenant_id, rule_name=rule.name, rule_version=rule.version, status="open",
                  submitted_by=submitted_by, callback_url=callback_url, review_rank=1, **header)
    session.add(claim)
    session.flush()
    return claim


def open_for_documents(session: Session, claim: Claim, adding: int) -> Claim:
    """The claim, locked against its decision while documents are added (Postgres: FOR UPDATE);
    409 when it was decided already, 413 past the documents a claim may hold."""
    locked = session.scalar(select(Claim).where(Claim.id == claim.id).with_for_update().execution_options(
        populate_existing=True))
    if locked is None or locked.status != "open":
        raise DocketError("Documents can be added to an open claim only; this one is decided.",
                          code="claim_decided", status=409, title="Claim decided")
    held = session.scalar(select(func.count()).select_from(Job).where(Job.claim_id == claim.id))
    if held + adding > MAX_CLAIM_DOCUMENTS:
        raise DocketError(f"A claim holds at most {MAX_CLAIM_DOCUMENTS} documents.", code="claim_too_large",
                          status=413, title="Claim too large")
    return locked


# --- the decision ---------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _builtin_rules() -> dict[str, Rule]:
    return load_rules(default_rules_dir())


def claim_rule(session: Session, claim: Claim, builtins: dict[str, Rule] | None = None) -> Rule | None:
    """The exact policy version the claim was submitted under."""
    return policies.submitted_rule(session, claim.tenant_id, claim.rule_name, claim.rule_version,
                                   builtins if builtins is not None else _builtin_rules())


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


_LODGING_ITEM = re.compile(r"住宿|房费|房費|客房|lodging|room|accommodation", re.IGNORECASE)


def _nights(fields: dict[str, Any]) -> int | None:
    """Nights printed on a hotel invoice: the quantity of its lodging line (住宿费 × 2)."""
    for item in fields.get("items") or ():
        if isinstance(item, dict) and _LODGING_ITEM.search(str(item.get("description") or "")):
            quantity = item.get("quantity")
            if isinstance(quantity, (int, float)) and not isinstance(quantity, bool) and float(quantity).is_integer() \
                    and 1 <= quantity <= 366:
                return int(quantity)
    return None


def _document_date(fields: dict[str, Any]) -> str | None:
    day = fields.get("transaction_date")
    travel = fields.get("travel") if isinstance(fields.get("travel"), dict) else {}
    if fields.get("document_kind") == "train_ticket" and isinstance(travel.get("departure"), str):
        day = travel["departure"][:10]
    if isinstance(day, str):
        try:
            return date.fromisoformat(day).isoformat()
        except ValueError:
            return None
    return None


def document_line(job: Job, rule: Rule, rates: fx.Rates) -> dict[str, Any]:
    """One document as the claim checks, totals and export see it, from its fields as they stand
    (a reviewer's corrections included): amounts in the policy's currency at the document's date."""
    target = fx.policy_currency(rule)
    fields = current_fields(job) if job.status == "succeeded" else {}
    fields = fields if isinstance(fields, dict) else {}
    total, currency = _decimal(fields.get("total")), fields.get("currency")
    currency = currency if isinstance(currency, str) and currency else (rule.default_currency or target)
    amount = rate = None
    if total is not None:
        if currency == target or target is None:
            amount, rate = total, Decimal(1)
        else:
            conversion = fx.conversion(rates, rule, {**fields, "currency": currency})
            if conversion is not None:
                amount, rate = conversion.amount, conversion.rate
    kind = fields.get("document_kind") if isinstance(fields.get("document_kind"), str) else "other"
    vat = None  # deductible input VAT, in the document's currency
    tax = _decimal(fields.get("tax"))
    if kind == "vat_invoice" and tax is not None and tax > 0:
        vat = tax
    elif kind == "train_ticket" and total is not None and total > 0:
        vat = total / Decimal("1.09") * Decimal("0.09")  # passenger transport: fare / (1 + 9%) x 9%
    unit = Decimal(1).scaleb(-fx.minor_unit(target)) if target else Decimal("0.01")
    decision = job.current_decision if job.status == "succeeded" else None
    nights = _nights(fields)
    travel = fields.get("travel") if isinstance(fields.get("travel"), dict) else None
    return {
        "job_id": job.id, "filename": job.filename or job.id, "status": job.status,
        "decision": decision or ("needs_review" if job.status == "failed" else None),
        "kind": kind, "category": fields.get("expense_category") or "other",
        "date": _document_date(fields), "seller": fields.get("merchant_name"),
        "invoice_number": fields.get("invoice_number"), "invoice_code": fields.get("invoice_code"),
        "total": float(total) if total is not None else None, "currency": currency,
        "amount": float(amount.quantize(unit, ROUND_HALF_UP)) if amount is not None else None,
        "deductible_vat": (float((vat * rate).quantize(unit, ROUND_HALF_UP))
                           if vat is not None and rate is not None else None),
        "travel": travel, "nights": nights,
        "nights_shown": f"{nights} night(s) on the invoice" if nights else "nights from the trip",
        "fields": fields,
    }


def totals_of(lines: list[dict[str, Any]], currency: str | None) -> dict[str, Any]:
    amount, vat, by_category = Decimal(0), Decimal(0), {}
    for line in lines:
        if line["amount"] is not None:
            value = Decimal(str(line["amount"]))
            amount += value
            by_category[line["category"]] = by_category.get(line["category"], Decimal(0)) + value
        if line["deductible_vat"] is not None:
            vat += Decimal(str(line["deductible_vat"]))
    return {"currency": currency, "amount": float(amount), "by_category": {k: float(v) for k, v in by_category.items()},
            "deductible_vat": float(vat)}


def _duplicates(session: Session, claim: Claim, jobs: list[Job], lines: list[dict[str, Any]],
                distance: int) -> dict[str, list[str]]:
    """job id -> the other claims of the tenant (not rejected) holding the same invoice (seller +
    code + number), the same file, or a first page within `distance` bits of its image hash."""
    keys = {j.id: invoice_key(line["fields"]) for j, line in zip(jobs, lines)}
    found: dict[str, set[str]] = {j.id: set() for j in jobs}
    # Claims made before this one (so a simulation sees what the decision saw), not rejected.
    others = and_(Job.tenant_id == claim.tenant_id, Job.claim_id.is_not(None), Job.claim_id != claim.id,
                  exists().where(and_(Claim.id == Job.claim_id, Claim.created_at < claim.created_at,
                                      or_(Claim.current_decision.is_(None), Claim.current_decision != "reject"))))
    wanted_keys = {k for k in keys.values() if k}
    shas = {j.document_sha256 for j in jobs}
    conditions = [Job.document_sha256.in_(shas)] + ([Job.invoice_key.in_(wanted_keys)] if wanted_keys else [])
    for other_claim, key, sha in session.execute(select(Job.claim_id, Job.invoice_key, Job.document_sha256)
                                                 .where(others, or_(*conditions))):
        for job in jobs:
            if job.document_sha256 == sha or (keys[job.id] and keys[job.id] == key):
                found[job.id].add(other_claim)
    hashed = [j for j in jobs if j.phash]
    if hashed:
        rows = session.execute(select(Job.claim_id, Job.phash).where(others, Job.phash.is_not(None))
                               .order_by(Job.created_at.desc()).limit(NEAR_DUPLICATE_WINDOW)).all()
        if rows:
            for job in hashed:
                near = duplicates.hamming(job.phash, [r.phash for r in rows]) <= distance
                found[job.id].update(rows[i].claim_id for i in near.nonzero()[0])
    return {k: sorted(v) for k, v in found.items()}


def evaluate(session: Session, claim: Claim, rule: Rule, *, duplicate_distance: int = 6,
             now: datetime | None = None) -> tuple[str, list[dict], dict, list[dict]]:
    """The claim's decision, reasons, totals and lines under `rule`, from its jobs as they stand."""
    jobs = list(session.scalars(select(Job).where(Job.claim_id == claim.id).order_by(Job.created_at, Job.id)))
    rates = fx.Rates(session, claim.tenant_id)
    lines = [document_line(job, rule, rates) for job in jobs]
    for line, dups in zip(lines, _duplicates(session, claim, jobs, lines, duplicate_distance).values()):
        line["duplicate_claims"] = dups
    totals = totals_of(lines, fx.policy_currency(rule))
    reasons = evaluate_claim(rule, header_facts(claim), lines, totals, now=now)
    decision = "approve"
    document_reasons = []
    for job, line in zip(jobs, lines):
        outcome = line["decision"] or "needs_review"
        if outcome == "approve":
            continue
        if job.status == "failed":
            why = f" (not read: {job.error_code})"
        else:
            checks = sorted({r.get("check") for r in ((job.decision.reasons if job.decision else None) or [])
                             if isinstance(r, dict) and r.get("check") and r.get("outcome") != "approve"})
            why = f" ({', '.join(checks[:8])})" if checks else ""
        document_reasons.append({"check": "document_decision", "outcome": outcome, "job_ids": [job.id],
                                 "message": f"{line['filename']}: {outcome}{why}"})
    reasons = document_reasons + reasons
    for reason in reasons:
        if _SEVERITY.get(reason["outcome"], 1) > _SEVERITY[decision]:
            decision = reason["outcome"]
    if not jobs:
        decision = "needs_review"
    for line in lines:  # stored with the claim: not the fields, nor a passenger's journey (personal data)
        line.pop("fields", None)
        line.pop("travel", None)
    return decision, reasons, totals, lines


def complete_claim(session: Session, claim_id: str, *, duplicate_distance: int = 6) -> bool:
    """Decide the claim and record claim.decided, once, when none of its jobs is left to run.
    Called in the transaction that finished a job (nothing is committed here)."""
    from docket.webhooks.outbox import record_event

    unfinished = exists().where(and_(Job.claim_id == claim_id, Job.status.in_(("queued", "running"))))
    has_jobs = exists().where(Job.claim_id == claim_id)
    now = utcnow()
    result = session.execute(update(Claim).where(Claim.id == claim_id, Claim.status == "open", has_jobs, ~unfinished)
                             .values(status="decided", decided_at=now).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    # Documents added while this statement waited on the claim's row lock are newer than its
    # snapshot: look again, and leave the claim open for them.
    if session.scalar(select(unfinished)):
        session.execute(update(Claim).where(Claim.id == claim_id).values(status="open", decided_at=None)
                        .execution_options(synchronize_session=False))
        return False
    claim = session.get(Claim, claim_id, populate_existing=True)
    rule = claim_rule(session, claim)
    if rule is None:
        decision, reasons, totals, lines = "needs_review", [{
            "check": "unknown_rule", "outcome": "needs_review", "job_ids": [j.id for j in claim.jobs],
            "message": f"The claim's policy {claim.rule_name} {claim.rule_version} is recorded nowhere"}], None, []
    else:
        try:
            with session.begin_nested():  # reads only; a failure here must not fail the job that finished
                decision, reasons, totals, lines = evaluate(session, claim, rule,
                                                            duplicate_distance=duplicate_distance, now=now)
        except Exception as exc:  # a person decides rather than a job that cannot finish
            if database.unavailable(exc):
                raise
            log.exception("claim %s could not be evaluated", claim_id)
            decision, reasons, totals, lines = "needs_review", [{
                "check": "claim_evaluation", "outcome": "needs_review", "job_ids": [j.id for j in claim.jobs],
                "message": f"The claim checks could not be evaluated ({type(exc).__name__}): a person must decide"}], \
                None, []
    claim.decision, claim.reasons, claim.totals, claim.lines = decision, reasons, totals, lines
    if claim.reviewed_at is None:
        claim.current_decision = decision
        claim.review_rank = 0 if decision == "needs_review" else 1
    session.flush()
    record_event(session, tenant_id=claim.tenant_id, event_type="claim.decided", data=claim_json(session, claim),
                 callback_url=claim.callback_url, now=now)
    return True


#: Claims one simulation re-evaluates at most (the newest first).
SIMULATE_LIMIT = 2000


def simulate(session: Session, tenant_id: str, candidate: Rule, *, since: datetime | None = None,
             until: datetime | None = None, duplicate_distance: int = 6, limit: int = SIMULATE_LIMIT) -> dict[str, Any]:
    """What `candidate`'s claim checks would decide for the tenant's decided claims of that policy
    (the documents as they stand, the moment each claim was decided); nothing is written."""
    query = select(Claim).where(Claim.tenant_id == tenant_id, Claim.rule_name == candidate.name,
                                Claim.status == "decided")
    if since is not None:
        query = query.where(Claim.created_at >= since)
    if until is not None:
        query = query.where(Claim.created_at <= until)
    rows = list(session.scalars(query.order_by(Claim.created_at.desc(), Claim.id.desc()).limit(limit + 1)))
    transitions: dict[str, int] = {}
    checks: dict[str, dict[str, int]] = {}
    examples: list[dict[str, Any]] = []
    for claim in rows[:limit]:
        before = claim.decision or "needs_review"
        before_checks = {r.get("check") for r in claim.reasons or () if r.get("check") != "document_decision"}
        after, reasons, _, _ = evaluate(session, claim, candidate, duplicate_distance=duplicate_distance,
                                        now=claim.decided_at)
        after_checks = {r["check"] for r in reasons if r["check"] != "document_decision"}
        for check in after_checks - before_checks:
            checks.setdefault(check, {"more": 0, "fewer": 0})["more"] += 1
        for check in before_checks - after_checks:
            checks.setdefault(check, {"more": 0, "fewer": 0})["fewer"] += 1
        if after != before:
            key = f"{before}→{after}"
            transitions[key] = transitions.get(key, 0) + 1
            if len(examples) < 20:
                examples.append({"claim_id": claim.id, "before": before, "after": after,
                                 "checks": sorted(after_checks)})
    evaluated = min(len(rows), limit)
    return {"evaluated": evaluated, "changed": sum(transitions.values()), "transitions": transitions,
            "checks": checks, "examples": examples, "truncated": len(rows) > limit}


def redecide(session: Session, tenant_id: str, candidate: Rule, *, run_id: str, since: datetime | None = None,
             until: datetime | None = None, duplicate_distance: int = 6, limit: int = SIMULATE_LIMIT) -> dict[str, Any]:
    """A re-decision run's last step (docket/redecide.py): the tenant's decided claims of the
    policy are decided again under `candidate` from their documents as they now stand. A claim a
    person reviewed keeps the reviewer's decision (as a job's review stands). Each claim whose
    decision changed gets `claim.redecided`, in this transaction (the caller commits)."""
    from docket.webhooks.outbox import record_event

    query = select(Claim).where(Claim.tenant_id == tenant_id, Claim.rule_name == candidate.name,
                                Claim.status == "decided")
    if since is not None:
        query = query.where(Claim.created_at >= since)
    if until is not None:
        query = query.where(Claim.created_at <= until)
    rows = list(session.scalars(query.order_by(Claim.created_at, Claim.id).limit(limit)))
    now = utcnow()
    transitions: dict[str, int] = {}
    for claim in rows:
        before = claim.decision
        decision, reasons, totals, lines = evaluate(session, claim, candidate, duplicate_distance=duplicate_distance,
                                                    now=now)
        claim.decision, claim.reasons, claim.totals, claim.lines = decision, reasons, totals, lines
        claim.rule_version = candidate.version
        if claim.reviewed_at is None:
            claim.current_decision, claim.review_rank = decision, 0 if decision == "needs_review" else 1
        if decision == before:
            continue
        key = f"{before}→{decision}"
        transitions[key] = transitions.get(key, 0) + 1
        session.flush()
        data = claim_json(session, claim)
        data["redecision"] = {"id": run_id, "from": before, "to": decision,
                              "rule": {"name": candidate.name, "version": candidate.version},
                              "review_stands": claim.reviewed_at is not None}
        record_event(session, tenant_id=tenant_id, event_type="claim.redecided", data=data,
                     callback_url=claim.callback_url, now=now)
    session.flush()
    return {"evaluated": len(rows), "changed": sum(transitions.values()), "transitions": transitions}


def reconsider(session: Session, claim_id: str, job_id: str, *, duplicate_distance: int = 6) -> bool:
    """A document of a decided claim was reviewed (its decision or fields changed): the claim's
    checks run again on the documents as they now stand, under the claim's own policy version.
    A claim a person reviewed keeps the reviewer's decision. `claim.redecided` when the decision
    changed; True then. Called in the review's transaction (nothing is committed here)."""
    from docket.webhooks.outbox import record_event

    claim = session.get(Claim, claim_id)
    if claim is None or claim.status != "decided":
        return False  # an open claim is decided when its last document is, from what stands then
    rule = claim_rule(session, claim)
    if rule is None:
        return False
    before = claim.decision
    decision, reasons, totals, lines = evaluate(session, claim, rule, duplicate_distance=duplicate_distance,
                                                now=utcnow())
    claim.decision, claim.reasons, claim.totals, claim.lines = decision, reasons, totals, lines
    if claim.reviewed_at is None:
        claim.current_decision, claim.review_rank = decision, 0 if decision == "needs_review" else 1
    session.flush()
    if decision == before:
        return False
    data = claim_json(session, claim)
    data["redecision"] = {"id": None, "cause": "document_review", "job_id": job_id, "from": before, "to": decision,
                          "rule": {"name": rule.name, "version": rule.version},
                          "review_stands": claim.reviewed_at is not None}
    record_event(session, tenant_id=claim.tenant_id, event_type="claim.redecided", data=data,
                 callback_url=claim.callback_url)
    return True


def open_claims(session: Session, limit: int = 200) -> list[str]:
    return list(session.scalars(select(Claim.id).where(Claim.status == "open").order_by(Claim.created_at)
                                .limit(limit)))


# --- reviews --------------------------------------------------------------------------------------

def add_review(session: Session, claim: Claim, *, decision: Any, comment: Any, reviewer: str,
               reviewer_key_id: str | None) -> ClaimReview:
    """A person's decision on the whole claim, on the record (nothing is committed)."""
    from docket.webhooks.outbox import record_event

    if claim.status != "decided":
        raise DocketError("Only a decided claim can be reviewed; this one is still open.", code="not_reviewable",
                          status=409, title="Not reviewable")
    if decision not in DECISIONS:
        raise DocketError(f"'decision' must be one of {', '.join(DECISIONS)}.", code="invalid_review", status=422,
                          title="Invalid review")
    if not isinstance(comment, str) or not comment.strip():
        raise DocketError("A review needs a 'comment' saying why.", code="invalid_review", status=422,
                          title="Invalid review")
    if len(comment) > MAX_COMMENT:
        raise DocketError(f"'comment' is longer than {MAX_COMMENT} characters.", code="invalid_review", status=422,
                          title="Invalid review")
    now = utcnow()
    review = ClaimReview(tenant_id=claim.tenant_id, claim_id=claim.id, reviewer=reviewer[:200],
                         reviewer_key_id=reviewer_key_id, decision_before=claim.current_decision or claim.decision,
                         decision_after=decision, comment=comment.strip(), created_at=now)
    session.add(review)
    claim.reviews.append(review)
    claim.current_decision, claim.review_rank, claim.reviewed_at = decision, 0 if decision == "needs_review" else 1, now
    session.flush()
    record_event(session, tenant_id=claim.tenant_id, event_type="claim.reviewed", data=claim_json(session, claim),
                 callback_url=claim.callback_url, now=now)
    return review


# --- representation -----------------------------------------------------------------------------

def _time(value):
    value = as_utc(value)
    return value.isoformat() if value else None


def review_json(review: ClaimReview) -> dict[str, Any]:
    return {"id": review.id, "claim_id": review.claim_id, "reviewer": review.reviewer,
            "reviewer_key_id": review.reviewer_key_id, "decision_before": review.decision_before,
            "decision_after": review.decision_after, "comment": review.comment,
            "created_at": _time(review.created_at)}


def claim_json(session: Session, claim: Claim, *, jobs: list[Job] | None = None) -> dict[str, Any]:
    """A claim as the API, the webhook and `docket claim --json` show it."""
    if jobs is None:
        jobs = list(session.scalars(select(Job).where(Job.claim_id == claim.id).order_by(Job.created_at, Job.id)))
    latest = claim.reviews[-1] if claim.reviews else None
    return {
        "id": claim.id,
        "status": claim.status,
        "decision": latest.decision_after if latest else claim.decision,
        "checks_decision": claim.decision,
        "reasons": [localized(r) for r in claim.reasons or []],  # in the reader's language
        "totals": ({k: claim.totals[k] for k in ("currency", "amount", "by_category", "deductible_vat")}
                   if claim.totals else None),
        "documents": claim.lines or [],
        "claim": header_json(claim),
        "rule": {"name": claim.rule_name, "version": claim.rule_version},
        "submitted_by": claim.submitted_by,
        "created_at": _time(claim.created_at),
        "decided_at": _time(claim.decided_at),
        "reviewed_at": _time(claim.reviewed_at),
        "reviews": [review_json(r) for r in claim.reviews],
        "job_ids": [j.id for j in jobs],
        "jobs": [job_json(j) for j in jobs],
    }


def get_claim(session: Session, claim_id: str, tenant_id: str) -> Claim:
    claim = session.get(Claim, claim_id)
    if claim is None or claim.tenant_id != tenant_id:
        raise NotFound(f"No claim {claim_id}.")
    return claim


@dataclass
class Intake:
    """What a claim's submission adds to a batch's (api/batches.accept_batch): a new claim's
    header, or the open claim documents are added to."""
    header: dict[str, Any] | None = None
    claim: Claim | None = None

    @property
    def endpoint(self) -> str:
        return f"POST /v1/claims/{self.claim.id}/documents" if self.claim is not None else "POST /v1/claims"

    @property
    def fingerprint(self) -> str:
        return header_fingerprint(self.header) if self.header is not None else self.claim.id
