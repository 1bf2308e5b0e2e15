"""The public representation of jobs, batches and reviews: what the API returns, what webhooks
carry and what `docket analyze` prints — one shape, built here, rendered by each of them."""
from __future__ import annotations

from typing import Any

from db.models import Batch, Job, Review
from db.queries import as_utc
from docket import i18n
from docket.reasons import localize_all


def current_fields(job: Job) -> dict[str, Any]:
    """The job's fields as they stand: the latest review's, else the analyzer's."""
    if job.reviews:
        return job.reviews[-1].fields_after
    return job.decision.fields if job.decision is not None else {}


def _time(value):
    value = as_utc(value)
    return value.isoformat() if value else None


def erased_json(job: Job) -> dict | None:
    """A job's erasure on request (docket/privacy.py): {at, by, reason, what}, or None."""
    if job.erased_at is None:
        return None
    return {"at": _time(job.erased_at), "by": job.erased_by, "reason": job.erased_reason,
            "what": list(job.erased_what or [])}


def purged_json(job: Job) -> dict | None:
    """What retention purged (docket/privacy.py) and when: {"documents": {"at", "what"}, "text": {...}}, or None."""
    out = {}
    if job.documents_purged_at is not None:
        out["documents"] = {"at": _time(job.documents_purged_at), "what": ["document", "pages"]}
    if job.text_purged_at is not None:
        out["text"] = {"at": _time(job.text_purged_at), "what": ["text", "fields"]}
    return out or None


def job_json(job: Job, *, history: bool = False) -> dict:
    """A job as the API shows it; `history` adds `decisions`, every decision it had, newest first
    (GET /v1/jobs/{id}; lists and webhook payloads leave it out)."""
    body = {
        "id": job.id,
        "status": job.status,
        "batch_id": job.batch_id,
        "filename": job.filename,
        "rule": {"name": job.rule_name, "version": job.rule_version},
        "analyzer": job.analyzer,
        "document": {
            "sha256": job.document.sha256,
            "mime_type": job.document.mime_type,
            "size": job.document.size,
            "page_count": job.document.page_count,
        },
        "attempts": job.attempts,
        "created_at": _time(job.created_at),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at),
        "error": {"code": job.error_code, "message": error_message(job)} if job.status == "failed" else None,
        "callback_url": job.callback_url,
        "submitted_by": job.submitted_by,
        "cached_from": job.cached_from,
        "second_look": ({"at": _time(job.second_look_at), "reason": job.second_look_reason}
                        if job.second_look_at else None),
        "decision": None,
        "fields": None,
        "reasons": None,
        # What the reviewer queue shows of the current decision: a receipt's merchant and total,
        # a contract's parties and largest amount (db/review_queue.py).
        "merchant": job.merchant,
        "amount": job.amount,
        # The total in the policy's currency when it was printed in another (docket/fx.py).
        "converted": None,
        # Personal data (docket/privacy.py): erased on request {at, by, reason, what}, and what
        # retention purged {documents: {at, what}, text: {at, what}}; None when nothing was.
        "erased": erased_json(job),
        "purged": purged_json(job),
    }
    decision = job.decision
    if decision is not None:
        latest = job.reviews[-1] if job.reviews else None
        body.update(
            # The current decision and fields: the latest review's, else the analyzer's.
            decision=latest.decision_after if latest else decision.decision,
            fields=current_fields(job),
            analyzer_decision=decision.decision,
            analyzer_fields=decision.fields if latest else None,
            reviewed_at=_time(job.reviewed_at),
            review_count=len(job.reviews),
            reasons=localize_all(decision.reasons),  # in the reader's language (docket/reasons.py)
            confidence=decision.confidence,
            converted=decision.converted,
            evidence=decision.evidence,
            sources=decision.sources or {},
            rule={"name": decision.rule_name, "version": decision.rule_version},
            analyzer=decision.analyzer,
            model=decision.model,
            timings=decision.timings,
            decided_at=_time(decision.created_at),
        )
    if history:
        body["decisions"] = decisions_json(job)
    return body


def webhook_job_json(job: Job) -> dict:
    """A job as a webhook payload carries it: its reasons as stored, whatever language the request
    that caused it speaks; each delivery renders them in its subscription's language
    (docket/webhooks/outbox.py: in_language)."""
    with i18n.using(i18n.DEFAULT):
        body = job_json(job)
    if job.decision is not None and isinstance(job.decision.reasons, list):
        body["reasons"] = [dict(r) if isinstance(r, dict) else r for r in job.decision.reasons]
    return body


def error_message(job: Job) -> str | None:
    """A failed job's message in the reader's language (its code's explanation; English as stored)."""
    if i18n.current() == i18n.DEFAULT or not job.error_code:
        return job.error_message
    from docket.problem_text import localize

    return localize(job.error_code, "", job.error_message or "")[1]


def decisions_json(job: Job) -> list[dict]:
    """The job's decision history, newest first: every analysis and re-decision, never edited."""
    current = job.decision.id if job.decision is not None else None
    return [{"id": d.id, "kind": d.kind, "current": d.id == current, "decision": d.decision,
             "rule": {"name": d.rule_name, "version": d.rule_version}, "reasons": localize_all(d.reasons), "fields": d.fields,
             "analyzer": d.analyzer, "model": d.model, "redecision_id": d.run_id, "created_by": d.created_by,
             "created_at": _time(d.created_at)}
            for d in job.decisions]


def _policy_after(advice):
    if isinstance(advice, dict) and isinstance(advice.get("reasons"), list):
        return {**advice, "reasons": localize_all(advice["reasons"])}
    return advice


def batch_json(batch: Batch, counts: dict[str, int], jobs: list[Job]) -> dict:
    return {
        "id": batch.id,
        "rule": batch.rule_name,
        "note": batch.note,
        "submitted_by": batch.submitted_by,
        "created_at": _time(batch.created_at),
        "total": sum(counts.values()),
        "counts": counts,
        "done": counts["queued"] == 0 and counts["running"] == 0,
        "jobs": [job_json(job) for job in jobs],
    }


def review_json(review: Review) -> dict:
    return {
        "id": review.id,
        "job_id": review.job_id,
        "reviewer": review.reviewer,
        "reviewer_key_id": review.reviewer_key_id,
        "decision_before": review.decision_before,
        "decision_after": review.decision_after,
        "fields_before": review.fields_before,
        "fields_after": review.fields_after,
        "changed_fields": review.changed_fields,
        "policy_after": _policy_after(review.policy_after),
        "comment": review.comment,
        "created_at": _time(review.created_at),
    }
