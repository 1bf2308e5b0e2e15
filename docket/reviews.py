"""A person overrides a decision: validated, appended to the job's trail, announced to webhooks.

The analyzer's decision row is never changed (it explains what the machine saw and why); the
job's current decision and fields are the latest review's, or the analyzer's when none exists.
"""
from __future__ import annotations

import copy
from typing import Any

from sqlalchemy.orm import Session

from db.models import DECISIONS, Job, Review, utcnow
from db.review_queue import queue_values
from db.queries import as_utc
from docket import duplicates, fx, invoice_facts
from docket.errors import DocketError
from docket.representation import current_fields, job_json, webhook_job_json
from docket.rules import Rule, evaluate
from docket.webhooks.outbox import record_event

MAX_COMMENT = 4000


class InvalidReview(DocketError):
    status = 422
    code = "invalid_review"
    title = "Invalid review"


def corrected_fields(job: Job, corrections: Any, rule: Rule | None) -> dict[str, Any]:
    """The current fields with `corrections` applied (a key set to null removes the field),
    checked against the rule's field schema so a correction cannot store nonsense."""
    fields = copy.deepcopy(current_fields(job))
    if corrections is None:
        return fields
    if not isinstance(corrections, dict):
        raise InvalidReview("'fields' must be an object of field names to corrected values.")
    for name, value in corrections.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    if rule is not None:
        errors = sorted(rule.validator().iter_errors(fields), key=lambda e: list(e.absolute_path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "(fields)"
            raise InvalidReview(f"Corrected fields do not fit rule {rule.name}: {where}: {errors[0].message}",
                                errors=[{"path": "/".join(str(p) for p in e.absolute_path), "message": e.message}
                                        for e in errors[:20]])
    return fields


def policy_on(session: Session, job: Job, fields: dict[str, Any], rule: Rule, duplicate_distance: int) -> dict:
    """The rule's checks applied to `fields` as they were to the analyzer's: same document
    facts, same moment (the job's submission, so age limits do not drift with review time)."""
    document = job.document
    facts: dict[str, Any] = {"text": job.decision.text or "", "pages": document.page_count,
                             "mime_type": document.mime_type, "filename": job.filename or ""}
    if document.phash and duplicates.read_by(rule):
        facts.update(duplicates.facts(duplicates.earlier_near_duplicates(
            session, job, document.phash, duplicate_distance, most=duplicates.NEAREST)))
    qr = (job.decision.model_output or {}).get("qr")
    facts.update(invoice_facts.facts(session, job, fields, qr, with_history=invoice_facts.reads_history(rule)))
    facts.update(fx.facts(fx.Rates(session, job.tenant_id), rule, fields))  # a corrected total converts too
    verdict = evaluate(rule, fields, facts, now=as_utc(job.created_at))
    return {"decision": verdict.decision, "reasons": verdict.reasons, "rule_version": rule.version}


def add_review(session: Session, job: Job, *, decision: Any, comment: Any, fields: Any = None,
               reviewer: str, reviewer_key_id: str | None, rule: Rule | None,
               duplicate_distance: int = 6) -> Review:
    """Append a review to `job` in the caller's transaction (nothing is committed)."""
    if job.status != "succeeded" or job.decision is None:
        raise DocketError("Only a decided job can be reviewed; this one is "
                          f"{job.status}.", code="not_reviewable", status=409, title="Not reviewable")
    if decision not in DECISIONS:
        raise InvalidReview(f"'decision' must be one of {', '.join(DECISIONS)}.")
    if not isinstance(comment, str) or not comment.strip():
        raise InvalidReview("A review needs a 'comment' saying why.")
    if len(comment) > MAX_COMMENT:
        raise InvalidReview(f"'comment' is longer than {MAX_COMMENT} characters.")
    after = corrected_fields(job, fields, rule)
    before = current_fields(job)
    policy = policy_on(session, job, after, rule, duplicate_distance) if rule is not None and after != before else None
    now = utcnow()
    review = Review(tenant_id=job.tenant_id, job_id=job.id, reviewer=reviewer[:200], reviewer_key_id=reviewer_key_id,
                    decision_before=job.current_decision or job.decision.decision, decision_after=decision,
                    fields_before=before, fields_after=after, policy_after=policy, comment=comment.strip(),
                    created_at=now)
    session.add(review)
    job.reviews.append(review)
    for column, value in queue_values(decision, after).items():
        setattr(job, column, value)
    job.reviewed_at = now
    job.second_look_at = job.second_look_reason = None  # a person has looked again
    session.flush()

    record_event(session, tenant_id=job.tenant_id, event_type="review.updated", data=webhook_job_json(job),
                 job_id=job.id, batch_id=job.batch_id, callback_url=job.callback_url, now=now)
    if job.claim_id:  # a decided claim's checks look again at what the reviewer made of its document
        from docket import claims

        claims.reconsider(session, job.claim_id, job.id, duplicate_distance=duplicate_distance)
    return review
