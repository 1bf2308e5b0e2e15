"""Turning an upload into a recorded job, then telling the workers about it.

The order is the guarantee: the document is kept and the job row committed *before* any
message is published. If the broker is down, the job stays `queued` with no `enqueued_at`
and the sweeper publishes it later — a job is never lost.
"""
from __future__ import annotations

import logging
from typing import BinaryIO, Iterable
from urllib.parse import urlsplit

from celery import Celery
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from db import documents as documents_db
from db.models import DEFAULT_TENANT, Batch, Decision, Document, Job, utcnow
from db.review_queue import queue_values
from db.rows import as_loaded
from db.session import one_statement_transactions
from docket import broker, database, duplicates, invoice_facts, metrics, privacy, storage
from docket.analyzers import known, route
from docket.config import Settings
from docket.documents import inspect
from docket.errors import DocketError
from docket.rules import Rule

log = logging.getLogger(__name__)

class UnknownRule(DocketError):
    status = 422
    code = "unknown_rule"
    title = "Unknown rule"


def resolve_rule(rules: dict[str, Rule], name: str | None) -> Rule:
    if not name:
        raise UnknownRule(f"A rule is required; available: {', '.join(sorted(rules))}.",
                          code="missing_rule", status=400, title="Missing rule")
    try:
        return rules[name]
    except KeyError:
        raise UnknownRule(f"No rule named {name!r}; available: {', '.join(sorted(rules))}.") from None


def resolve_analyzer(name: str) -> str:
    if name not in known():
        raise DocketError(f"Unknown analyzer {name!r}; available: {', '.join(known())}.",
                          code="unknown_analyzer", status=422, title="Unknown analyzer")
    return name


MAX_FILENAME = 255


def clean_filename(name: str | None) -> str | None:
    """A user's filename, kept but made safe to store and show: no path, no control characters
    (NUL included), no lone surrogates (undecodable bytes), at most MAX_FILENAME characters
    (the extension kept). Never fails; None when nothing printable is left."""
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in name if ch.isprintable()).strip()
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        ext = dot + ext if dot and 0 < len(ext) <= 16 else ""
        name = (stem if ext else name)[: MAX_FILENAME - len(ext) - 1] + "…" + ext
    return name or None


def store_document(session: Session, settings: Settings, stream: BinaryIO, filename: str | None) -> Document:
    """Receive, inspect and keep the bytes; returns the (possibly existing) Document row."""
    filename = clean_filename(filename)
    upload = storage.receive(stream, settings.uploads_dir, settings.max_upload_bytes)
    try:
        info = inspect(upload.temp_path, max_pixels=settings.max_image_pixels, max_pages=settings.max_pdf_pages)
    except BaseException:
        storage.discard(upload)
        raise
    storage_path = storage.put(settings, upload)  # the local folder, or the object store
    return documents_db.add_once(session, sha256=upload.sha256, mime_type=info.mime_type, size=upload.size,
                                 page_count=info.page_count, original_filename=filename,
                                 storage_path=storage_path, created_at=utcnow())


def check_callback_url(url: str | None) -> str | None:
    """Shape only; where it may point is decided at delivery time by the SSRF guard."""
    if url in (None, ""):
        return None
    try:
        parts = urlsplit(url) if isinstance(url, str) and url.isprintable() else None
    except ValueError:  # e.g. a bracketed host that is no IPv6 address
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise DocketError("callback_url must be an absolute http(s) URL of at most 2000 characters.",
                          code="invalid_callback_url", status=422, title="Invalid callback URL")
    return url


def new_job(session: Session, document: Document, rule: Rule, filename: str | None,
            analyzer: str = "ocr", batch: Batch | None = None, tenant_id: str = DEFAULT_TENANT,
            callback_url: str | None = None, submitted_by: str | None = None) -> Job:
    return new_jobs(session, [(filename, document)], rule, analyzer=analyzer, batch=batch, tenant_id=tenant_id,
                    callback_url=callback_url, submitted_by=submitted_by)[0]


_INSERT_JOBS = insert(Job.__table__)  # built once


def new_jobs(session: Session, documents: list[tuple[str | None, Document]], rule: Rule, *,
             analyzer: str = "ocr", batch: Batch | None = None, tenant_id: str = DEFAULT_TENANT,
             callback_url: str | None = None, submitted_by: str | None = None,
             claim_id: str | None = None) -> list[Job]:
    """One queued job per (filename, document), in that order, inserted with one statement (a
    multi-row INSERT for a batch instead of a round trip per file). The caller commits.
    `claim_id`: the expense claim the documents back (docket/claims.py)."""
    session.flush()  # whatever is pending first (a new batch: the jobs refer to its row)
    rows = [dict(document_sha256=document.sha256, phash=document.phash, filename=clean_filename(filename),
                 rule_name=rule.name, rule_version=rule.version, analyzer=analyzer, status="queued",
                 batch_id=batch.id if batch is not None else None, tenant_id=tenant_id,
                 callback_url=callback_url, submitted_by=submitted_by, claim_id=claim_id,
                 created_at=utcnow())  # stamped here, one by one: a batch's jobs keep their order
            for filename, document in documents]
    # A Core INSERT instead of the unit of work (whose flush machinery cost more CPU than the
    # statement); what it inserted (defaults included) becomes loaded Job objects. One row (a
    # single submission) is a plain execute, a batch one executemany.
    jobs = []
    if rows:
        inserted = session.execute(_INSERT_JOBS, rows if len(rows) > 1 else rows[0]).last_inserted_params()
        for (_, document), values in zip(documents, inserted if len(rows) > 1 else [inserted]):
            job = as_loaded(session, Job, values)
            set_committed_value(job, "document", document)
            set_committed_value(job, "decision", None)  # known to have none: showing the job needs no query
            if batch is not None:
                set_committed_value(job, "batch", batch)
            jobs.append(job)
    for _ in jobs:
        metrics.job_submitted(tenant_id, rule.name, analyzer)
    return jobs


def depends_on_history(rule: Rule) -> bool:
    """A rule that looks at earlier submissions (duplicates) is not a pure function of the bytes."""
    return duplicates.read_by(rule) or invoice_facts.reads_history(rule)


def cached_decision(session: Session, tenant_id: str, sha256: str, rule: Rule, analyzer: str) -> Decision | None:
    """The decision of an identical earlier job: same tenant, bytes, analyzer, rule and rule version."""
    if depends_on_history(rule):
        return None
    return session.scalar(
        select(Decision).join(Job, Job.id == Decision.job_id)
        .where(Job.tenant_id == tenant_id, Job.document_sha256 == sha256, Job.rule_name == rule.name,
               Job.rule_version == rule.version, Job.analyzer == analyzer, Job.status == "succeeded",
               Decision.run_id.is_(None),  # an analyzer's decision, never a re-decision's
               ~privacy.content_gone())  # never what was erased or purged (docket/privacy.py)
        .order_by(Decision.created_at.desc()).limit(1))


def cached_decisions(session: Session, tenant_id: str, sha256s: list[str], rule: Rule,
                     analyzer: str) -> dict[str, Decision]:
    """`cached_decision` for many documents at once (a batch): sha256 -> the newest analyzer
    decision of an identical earlier job, in one query per 500 documents instead of one per file."""
    if depends_on_history(rule):
        return {}
    found: dict[str, Decision] = {}
    wanted = list(dict.fromkeys(sha256s))
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(Job.document_sha256, Decision).join(Job, Job.id == Decision.job_id)
            .where(Job.tenant_id == tenant_id, Job.document_sha256.in_(wanted[start:start + 500]),
                   Job.rule_name == rule.name, Job.rule_version == rule.version, Job.analyzer == analyzer,
                   Job.status == "succeeded", Decision.run_id.is_(None), ~privacy.content_gone())
            .order_by(Decision.created_at.desc()))
        for sha256, decision in rows:
            found.setdefault(sha256, decision)  # newest first: the first seen is the one
    return found


def reuse_decision(session: Session, job: Job, earlier: Decision) -> None:
    """Finish `job` at once with a copy of `earlier` (no queue, no worker), and say so."""
    now = utcnow()
    job.status, job.started_at, job.finished_at, job.cached_from = "succeeded", now, now, earlier.job_id
    for column, value in queue_values(earlier.decision, earlier.fields, now).items():
        setattr(job, column, value)
    copy = Decision(job_id=job.id, tenant_id=job.tenant_id, decision=earlier.decision, fields=earlier.fields,
                    reasons=earlier.reasons, confidence=earlier.confidence, evidence=earlier.evidence,
                    sources=earlier.sources, rule_name=earlier.rule_name, rule_version=earlier.rule_version,
                    analyzer=earlier.analyzer, model=earlier.model,
                    timings={"cached": True, "cached_from": earlier.job_id}, text=earlier.text)
    session.add(copy)
    session.flush()
    set_committed_value(job, "decision", copy)  # new_jobs marked it as having none
    from docket.events import job_finished

    job_finished(session, job.id)


# Built once (a Core UPDATE: no ORM bulk-update machinery, no cache key to compute per call);
# one job (a single submission) by its id, with no IN list to render per execution.
_MARK_ENQUEUED = (update(Job.__table__).where(Job.__table__.c.id.in_(bindparam("ids", expanding=True)))
                  .values(enqueued_at=bindparam("now")))
_MARK_ONE_ENQUEUED = update(Job.__table__).where(Job.__table__.c.id == bindparam("job_id")).values(
    enqueued_at=bindparam("now"))


def publish(celery: Celery, session: Session, jobs: Iterable[Job], retry_after: float | None = None) -> int:
    """Publish a message per job (after its row is committed); returns how many went out.

    A broker failure is logged, not raised: the jobs stay queued for the sweeper. After one, this
    process leaves publishing to the sweeper for `broker_retry_after` seconds (docket/broker.py)
    instead of making every request wait for the broker's connect timeout. Recording that the
    messages went out is best effort too: the job is committed and its message sent, so a
    database that drops the connection now costs at most a duplicate message, never a 5xx that
    would make the client submit the document again. `retry_after`: the settings' broker_retry_after
    (read from the environment when not given).
    """
    if retry_after is None:
        retry_after = Settings.from_env().broker_retry_after
    sent = []
    for job in jobs:  # each on a producer held between publishes (docket/broker.py)
        task, queue = route(job.analyzer)
        if not broker.try_send(celery, task, [job.id], queue, retry_after):
            break  # the broker is down: the rest stay queued for the sweeper as well
        sent.append(job)
    if sent:
        try:
            now = utcnow()
            if not session.in_transaction():  # one statement, atomic by itself: no BEGIN and COMMIT
                one_statement_transactions(session)
            if len(sent) == 1:
                session.execute(_MARK_ONE_ENQUEUED, {"job_id": sent[0].id, "now": now})
            else:
                session.execute(_MARK_ENQUEUED, {"ids": [job.id for job in sent], "now": now})
            for job in sent:  # the loaded rows say so too, as the UPDATE left them
                set_committed_value(job, "enqueued_at", now)
            session.commit()
        except Exception as exc:
            if not database.unavailable(exc):
                raise
            session.rollback()
            log.warning("published %d job(s) but could not record it (%s); the sweeper may publish them again",
                        len(sent), type(exc).__name__)
    return len(sent)
