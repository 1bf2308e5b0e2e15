"""Personal data: erasure on request, retention purges, and redacted copies of pages.

Erasure (`erase`, DELETE /v1/jobs/{id}, `docket erase`) deletes a finished job's original, its
page images (local folder and object store), its extracted text, the fields its policy marks
personal (`personal_fields:`), the model's raw output and the filename — in its decisions, its
review trail and its webhook payloads — and records who, when, why and what. The job stays as a
tombstone with its decision, reasons, check ids, rule version and review trail (decisions and
comments), so what was decided can still be explained; its document and pages answer 410.

Retention (`purge_expired`, run by the housekeeping task): a policy's `retention:` says how long
originals and page images (`documents`) and extracted text and fields (`text`) are kept after a
job was submitted; the tenant's active version of the policy applies to all its jobs of that
policy. Expired content is purged like an erasure, kind by kind, and the job says when.

The bytes of a document are content-addressed and may back several jobs (the same file uploaded
twice, by one tenant or two): they are deleted when no job that still holds them is left, and a
job that lost them answers 410 whether or not the bytes still exist for another job.

What stays, on purpose: the job's perceptual hash (64 bits of the first page's low frequencies,
from which no image or text can be recovered) and its invoice key (issuer and invoice number,
a business's, not a person's): the duplicate checks need them to notice a receipt claimed again
after its first job was erased, and they name only the tombstone's id. Erased or purged jobs are
never a source for the decision cache, simulations, re-decisions or re-analyses (submission.py,
simulation.py), so nothing erased comes back through them; the same file uploaded again is a new
upload and is analysed afresh.
"""
from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta
from typing import Any, Iterable

from PIL import Image, ImageDraw
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from db.models import Decision, Document, IdempotencyKey, Job, Review, Tenant, WebhookDelivery, utcnow
from db.queries import as_utc
from db.review_queue import summarize
from docket import page_cache, storage
from docket.config import Settings
from docket.errors import DocketError, NotFound
from docket.representation import job_json, webhook_job_json
from docket.rules import Rule

log = logging.getLogger(__name__)

MAX_REASON = 2000
#: Evidence key of the boxes to black out in a redacted copy (the OCR boxes of the personal data
#: found), beside the per-field evidence; a page's boxes carry its 0-based index last.
REDACT_EVIDENCE = "_redact"
#: Payload keys that hold a job's fields (job JSON, review JSON) in webhook deliveries.
_FIELD_KEYS = ("fields", "analyzer_fields", "fields_before", "fields_after")


class Gone(DocketError):
    status = 410
    code = "erased"
    title = "Gone"


class NotFinished(DocketError):
    status = 409
    code = "job_not_finished"
    title = "Job not finished"


class InvalidErasure(DocketError):
    status = 400
    code = "invalid_erasure"
    title = "Invalid erasure request"


# --- what a job says about it (its JSON: docket/representation.py) --------------------------------

def _time(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat() if value else None


def check_content(job: Job) -> None:
    """410 when the job's original and pages are no longer kept (erased, or purged)."""
    if job.erased_at is not None:
        raise Gone(f"Job {job.id}'s document was erased on request ({_time(job.erased_at)}).")
    if job.documents_purged_at is not None:
        raise Gone(f"Job {job.id}'s document was deleted when its retention period ended "
                   f"({_time(job.documents_purged_at)}).", code="purged")


def content_gone() -> Any:
    """SQL condition: the job's personal content is gone (erased, or its text purged)."""
    return Job.erased_at.is_not(None) | Job.text_purged_at.is_not(None)


# --- deleting stored content ---------------------------------------------------------------------

def _held_elsewhere(session: Session, sha256: str, job_id: str) -> bool:
    """Whether another job (any tenant) still holds the document's bytes."""
    return bool(session.scalar(select(exists().where(
        Job.document_sha256 == sha256, Job.id != job_id, Job.erased_at.is_(None), Job.documents_purged_at.is_(None)))))


def delete_document(settings: Settings, document: Document) -> list[str]:
    """Delete a document's bytes and every rendered page of it, locally and in the object store;
    returns what was there to delete. Raises StorageUnavailable when the store does not answer
    (then nothing is recorded: the caller's transaction is rolled back, and it is asked again)."""
    removed = []
    if storage.delete(settings, document.storage_path):
        removed.append("document")
    if page_cache.forget(settings, document.sha256):
        removed.append("pages")
    return removed


def _release_document(session: Session, settings: Settings, job: Job) -> None:
    document = job.document
    # The row stays (jobs refer to it: type, size, page count), without the first uploader's
    # filename: other jobs of the same bytes keep their own.
    document.original_filename = None
    if not _held_elsewhere(session, document.sha256, job.id):
        delete_document(settings, document)


# --- scrubbing recorded values -------------------------------------------------------------------

def _scrub(fields: Any, names: frozenset[str] | None) -> Any:
    """`fields` without the named keys (None: without any)."""
    if not isinstance(fields, dict):
        return fields
    return {} if names is None else {k: v for k, v in fields.items() if k not in names}


def _scrub_payload(value: Any, names: frozenset[str] | None) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in _FIELD_KEYS:
                out[key] = _scrub(item, names)
            elif key == "filename":
                out[key] = None
            else:
                out[key] = _scrub_payload(item, names)
        return out
    if isinstance(value, list):
        return [_scrub_payload(item, names) for item in value]
    return value


def _scrub_entries(value: Any, job_id: str, names: frozenset[str] | None) -> Any:
    """`value` with the job JSON objects of job `job_id` in it scrubbed (a batch's list of jobs)."""
    if isinstance(value, dict):
        if value.get("id") == job_id:
            return _scrub_payload(value, names)
        return {key: _scrub_entries(item, job_id, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_entries(item, job_id, names) for item in value]
    return value


def _scrub_job(session: Session, job: Job, names: frozenset[str] | None) -> None:
    """Remove the text, the model's raw output and the named fields (None: all fields) from the
    job's decisions, review trail and webhook payloads, and its filename."""
    for decision in session.scalars(select(Decision).where(Decision.job_id == job.id)):
        decision.text = None
        decision.model_output = None
        decision.fields = _scrub(decision.fields, names)
        if names is not None and REDACT_EVIDENCE in (decision.evidence or {}):  # erased: no page to redact
            decision.evidence = {k: v for k, v in decision.evidence.items() if k != REDACT_EVIDENCE}
    for review in session.scalars(select(Review).where(Review.job_id == job.id)):
        review.fields_before = _scrub(review.fields_before, names)
        review.fields_after = _scrub(review.fields_after, names)
    for delivery in session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job.id,
                                                                  WebhookDelivery.tenant_id == job.tenant_id)):
        delivery.payload = _scrub_payload(delivery.payload, names)
    # Answers kept for Idempotency-Key replays: the job's own, and its entry in its batch's.
    places = [f"/v1/jobs/{job.id}"] + ([f"/v1/batches/{job.batch_id}"] if job.batch_id else [])
    for kept in session.scalars(select(IdempotencyKey).where(IdempotencyKey.tenant_id == job.tenant_id,
                                                             IdempotencyKey.location.in_(places))):
        kept.response = _scrub_entries(kept.response, job.id, names)
    job.filename = None
    session.flush()
    session.expire(job, ["decision", "decisions", "reviews"])
    fields = job.reviews[-1].fields_after if job.reviews else (job.decision.fields if job.decision else {})
    job.merchant = summarize(fields)[0]


# --- erasure on request --------------------------------------------------------------------------

def erase(session: Session, settings: Settings, job: Job, rule: Rule | None, *, by: str, reason: Any) -> Job:
    """Erase the job's personal data (see the module's doc) and record it; the caller commits.
    `rule`: the policy the job was decided with (its `personal_fields`); None: every field is
    treated as personal. Erasing an erased job again changes nothing."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON or not reason.isprintable():
        raise InvalidErasure(f"'reason' must be a printable text of 1 to {MAX_REASON} characters: why the data "
                             "is erased (it is kept on the record).")
    if job.erased_at is not None:
        return job
    if job.status in ("queued", "running"):
        raise NotFinished(f"Job {job.id} is {job.status}; erase it once it has ended (its analysis would "
                          "otherwise record what was just erased).")
    names = frozenset(rule.personal_fields) if rule is not None else None
    what = []
    if job.documents_purged_at is None:
        _release_document(session, settings, job)
        what += ["document", "pages"]
    what += ["text", "model_output", "filename"]
    what += [f"fields.{name}" for name in sorted(names)] if names is not None else ["fields"]
    _scrub_job(session, job, names)
    job.erased_at, job.erased_by, job.erased_reason, job.erased_what = utcnow(), by[:200], reason.strip(), what
    session.flush()
    from docket.webhooks.outbox import record_event

    record_event(session, tenant_id=job.tenant_id, event_type="job.erased", data=webhook_job_json(job),
                 job_id=job.id, batch_id=job.batch_id, callback_url=job.callback_url)
    return job


# --- retention -----------------------------------------------------------------------------------

def purge_documents(session: Session, settings: Settings, job: Job, now: datetime) -> None:
    if job.erased_at is None and job.documents_purged_at is None:
        _release_document(session, settings, job)
        job.documents_purged_at = now


def purge_text(session: Session, job: Job, now: datetime) -> None:
    if job.erased_at is None and job.text_purged_at is None:
        _scrub_job(session, job, None)
        job.text_purged_at = now


def purge_expired(session: Session, settings: Settings, rules_of, *, now: datetime | None = None,
                  limit: int = 500) -> dict[str, int]:
    """Purge what the policies' retention says has expired; the caller commits. `rules_of(tenant)`:
    the tenant's active rules by name. At most `limit` jobs per kind, policy and tenant per call
    (the task runs again). Returns how many jobs lost their documents, and their text."""
    now = now or utcnow()
    counts = {"documents": 0, "text": 0}
    finished = Job.status.in_(("succeeded", "failed"))
    # Only the policies that set a retention cost a query: each tenant's active ones (few tenants,
    # a handful of policies each), never a scan of every job.
    pairs = [(tenant_id, name, rule) for tenant_id in session.scalars(select(Tenant.id))
             for name, rule in rules_of(tenant_id).items() if rule.retention]
    for tenant_id, rule_name, rule in pairs:
        for kind, column, purge in (("documents", Job.documents_purged_at, purge_documents),
                                    ("text", Job.text_purged_at, lambda s, _settings, j, t: purge_text(s, j, t))):
            seconds = rule.retention.get(kind)
            if seconds is None:
                continue
            expired = session.scalars(select(Job).where(
                Job.tenant_id == tenant_id, Job.rule_name == rule_name, finished, Job.erased_at.is_(None),
                column.is_(None), Job.created_at < now - timedelta(seconds=seconds))
                .order_by(Job.created_at).limit(limit)).all()
            for job in expired:
                purge(session, settings, job, now)
                counts[kind] += 1
    return counts


# --- redacted copies -----------------------------------------------------------------------------

def redaction_boxes(decision: Decision | None, rule: Rule, page: int) -> list[tuple[float, float, float, float]] | None:
    """The boxes to black out on page `page` (0-based): the personal data's own boxes where the
    analyzer recorded them, else the evidence boxes of the policy's personal fields. None when
    personal data was found but where is not known (the whole page is then blacked out)."""
    evidence = (decision.evidence if decision is not None else None) or {}
    fields = (decision.fields if decision is not None else None) or {}
    if REDACT_EVIDENCE in evidence:
        boxes = evidence[REDACT_EVIDENCE] or []
    else:
        boxes = [box for name in rule.personal_fields for box in (evidence.get(name) or [])]
        found = any(fields.get(name) not in (None, "", [], {}) for name in rule.personal_fields if name != "text")
        if found and not boxes:
            return None
    return [tuple(float(v) for v in box[:4]) for box in boxes
            if isinstance(box, (list, tuple)) and len(box) >= 4 and (int(box[4]) if len(box) > 4 else 0) == page]


def redacted_png(settings: Settings, job: Job, rule: Rule | None, number: int) -> bytes:
    """Page `number` (1-based) with the personal data blacked out, as PNG bytes; 404 when the
    job's policy makes no redacted copies, 410 when the page is no longer kept."""
    if rule is None or not rule.redact:
        raise NotFound(f"The policy of job {job.id} makes no redacted copies.")
    check_content(job)
    if job.status != "succeeded" or job.decision is None:
        raise NotFound(f"Job {job.id} has no decision yet, so no redacted copy.")
    if number < 1:
        raise NotFound("Pages are numbered from 1.")
    try:
        path = page_cache.page_png(settings, job.document, number - 1)
    except IndexError:
        raise NotFound(f"The document has no page {number}.") from None
    boxes = redaction_boxes(job.decision, rule, number - 1)
    with Image.open(path) as page:
        image = page.convert("RGB")
    draw = ImageDraw.Draw(image)
    if boxes is None:
        draw.rectangle((0, 0, image.width, image.height), fill=(0, 0, 0))
    for x0, y0, x1, y1 in boxes or ():
        draw.rectangle((x0, y0, x1, y1), fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def personal_spans_boxes(lines: Iterable, spans: Iterable[tuple[int, int]], pad: float = 2.0) -> list[tuple]:
    """Boxes (x0, y0, x1, y1, 0) covering each character span of the text the `lines` (OCR lines:
    `text`, `box`) make joined by newlines: the part of its line a span covers, by the width its
    characters take (a CJK or full-width character counts two), padded by `pad` pixels and half
    a character each side, so that a slightly wider rendering is still covered."""
    lines = list(lines)
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line.text) + 1
    boxes = []
    for start, end in spans:
        for line, first in zip(lines, starts):
            last = first + len(line.text)
            if end <= first or start >= last:
                continue
            a, b = max(start, first) - first, min(end, last) - first
            widths = [_width(ch) for ch in line.text]
            total = sum(widths) or 1
            x0, y0, x1, y1 = (float(v) for v in line.box)
            unit = (x1 - x0) / total
            left = x0 + unit * (sum(widths[:a]) - 0.5) - pad
            right = x0 + unit * (sum(widths[:b]) + 0.5) + pad
            boxes.append((max(x0 - pad, left), y0 - pad, min(x1 + pad, right), y1 + pad, 0))
    return boxes


def _width(ch: str) -> int:
    import unicodedata

    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
