"""Celery tasks: small and idempotent. The job row decides whether work is needed, so a
redelivered or duplicated message never produces a second decision."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError as DatabaseUnavailable

from db import jobs as job_state
from docket import invoice_facts, lifecycle
from db.models import Decision, Document, Job, utcnow
from db.session import session_scope
from docket.config import Settings
from docket.analyzers import route
from docket.errors import DocumentError
from docket.queues import ANALYZE_TASK, SWEEP_TASK
from docket.rules import evaluate, load_rules, default_rules_dir
from docket import duplicates as duplicate_scan
from worker.analyzers import get_analyzer
from worker.celery_app import celery
from docket.pages import prepare

log = logging.getLogger(__name__)
settings = Settings.from_env()
_rules = None


def rules():
    global _rules
    if _rules is None:
        _rules = load_rules(settings.rules_dir or default_rules_dir())
    return _rules


class TransientError(Exception):
    """Worth retrying: the next attempt may well succeed."""


@celery.task(name=ANALYZE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=settings.max_attempts)
def analyze_job(self, job_id: str) -> str:
    url = settings.database_url
    try:
        with session_scope(url) as session:
            attempt = lifecycle.claim(session, job_id, settings.stale_after)
    except DatabaseUnavailable as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries))
    if attempt is None:
        return "skipped"  # finished already, or another worker holds it
    if attempt > settings.max_attempts:
        with session_scope(url) as session:
            lifecycle.fail(session, job_id, "worker_lost",
                           f"gave up after {attempt - 1} attempts that ended without a result "
                           "(worker killed, out of memory or time limit)", attempt)
        return "failed"
    try:
        decision = _analyze(job_id)
    except DocumentError as exc:
        with session_scope(url) as session:
            lifecycle.fail(session, job_id, exc.code, exc.detail, attempt)
        return "failed"
    except SoftTimeLimitExceeded:
        with session_scope(url) as session:
            lifecycle.fail(session, job_id, "timeout",
                           f"analysis took longer than {settings.task_soft_time_limit} s", attempt)
        return "failed"
    except (TransientError, DatabaseUnavailable) as exc:
        if self.request.retries >= self.max_retries:
            with session_scope(url) as session:
                lifecycle.fail(session, job_id, "transient_error", f"retries exhausted: {exc}", attempt)
            return "failed"
        with session_scope(url) as session:
            lifecycle.release(session, job_id, attempt)
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries))
    except Exception as exc:  # a bug or an analyzer crash: record it, never leave the job hanging
        log.exception("job %s failed", job_id)
        with session_scope(url) as session:
            lifecycle.fail(session, job_id, "analysis_error", f"{type(exc).__name__}: {exc}", attempt)
        return "failed"
    with session_scope(url) as session:
        stored = lifecycle.succeed(session, job_id, attempt, decision)
    return "succeeded" if stored else "skipped"


def _backoff(retries: int) -> int:
    return min(60, 2 ** retries)


def _analyze(job_id: str) -> Decision:
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        document = session.get(Document, job.document_sha256)
        rule_name, analyzer_name, filename = job.rule_name, job.analyzer, job.filename
        mime, storage_path, pages = document.mime_type, document.storage_path, document.page_count
    rule = rules().get(rule_name)
    if rule is None:
        raise DocumentError(f"the rule {rule_name!r} no longer exists", code="unknown_rule")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    prepared = prepare(settings.documents_dir / Path(storage_path), mime, max_side=settings.max_image_side,
                       max_pages=settings.ocr_pdf_pages, filename=filename)
    timings["preprocess_s"] = round(time.perf_counter() - started, 4)
    analyzer = get_analyzer(analyzer_name)
    started = time.perf_counter()
    analysis = analyzer.analyze(prepared, rule)
    timings["analyze_s"] = round(time.perf_counter() - started, 4)
    timings.update(analysis.timings)
    duplicates = _near_duplicates(job_id, prepared.pages[0].image) if duplicate_scan.read_by(rule) else []
    with session_scope(settings.database_url) as session:
        invoice = invoice_facts.facts(session, session.get(Job, job_id), analysis.fields, analysis.extra.get("qr"),
                                      with_history=invoice_facts.reads_history(rule))
    started = time.perf_counter()
    verdict = evaluate(rule, analysis.fields,
                       {"text": analysis.text, "pages": pages, "mime_type": mime, "filename": filename or "",
                        **duplicate_scan.facts(duplicates), **invoice},
                       proposed=analysis.proposed, proposed_reasons=analysis.proposed_reasons)
    timings["rules_s"] = round(time.perf_counter() - started, 4)
    # A model analyzer's raw output, prompt hash and token counts, where the schema keeps them.
    recorded = {"model_output": analysis.extra} if analysis.extra else {}
    fallback = "model" if analyzer_name == "model" else "ocr"
    sources = {name: analysis.sources.get(name, fallback) for name in analysis.fields}
    return Decision(job_id=job_id, decision=verdict.decision, fields=analysis.fields, reasons=verdict.reasons,
                    confidence=analysis.confidence, evidence=analysis.evidence, sources=sources, rule_name=rule.name,
                    rule_version=rule.version, analyzer=analyzer_name, model=analysis.model,
                    timings=timings, text=analysis.text, **recorded)


def _near_duplicates(job_id: str, first_page) -> list[str]:
    """Earlier jobs of the same tenant whose first page looks the same (the double claim)."""
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        document = session.get(Document, job.document_sha256)
        if document.phash is None:
            document.phash = duplicate_scan.perceptual_hash(first_page)
        return duplicate_scan.earlier_near_duplicates(session, job, document.phash, settings.duplicate_distance)


@celery.task(name=SWEEP_TASK, acks_late=True)
def sweep() -> int:
    """Publish every job whose message is missing or presumed lost. Safe to run anywhere, any
    number of times: the claim in analyze_job lets only one attempt through."""
    with session_scope(settings.database_url) as session:
        due = job_state.needing_publish(session, now=utcnow(), settle=2.0, requeue_after=settings.requeue_after,
                                        stale_after=settings.stale_after)
        for job in due:
            task, queue = route(job.analyzer)
            celery.send_task(task, args=[job.id], queue=queue)
            if job.status == "queued":
                job.enqueued_at = utcnow()
        if due:
            log.info("sweeper published %d job(s)", len(due))
        return len(due)
