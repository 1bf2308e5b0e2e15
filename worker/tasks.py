"""Celery tasks: small and idempotent. The job row decides whether work is needed, so a
redelivered or duplicated message never produces a second decision."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from celery.exceptions import Reject, SoftTimeLimitExceeded
from sqlalchemy import update

from docket import database, fx, invoice_facts, lifecycle, live, policies, recovery
from db import jobs as job_state
from db.models import Decision, Document, Job
from db.session import one_statement_transactions, session_scope
from docket.config import Settings
from docket.errors import DocumentError
from docket.queues import ANALYZE_TASK, SWEEP_TASK
from docket.rules import Rule, evaluate, load_rules, default_rules_dir
from docket import duplicates as duplicate_scan
from worker import heartbeat
from worker.analyzers import get_analyzer
from worker.analyzers.base import Analysis
from worker.celery_app import celery
from docket.pages import PreparedDocument, prepare
from docket import storage

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
    """Claim, analyze, record — while this process's heartbeat lists the job (worker/heartbeat.py),
    so the sweeper can tell this attempt from one whose worker died (docket/liveness.py).

    The database being away costs time, never the job: the claim waits for it (up to
    `database_wait`), then hands the message back to the queue (Reject, requeue) to wait again on
    its next delivery; the outcome, once analysed, is written as soon as the database answers.
    Should a write still fail, the job stays `running` without a holder and the sweeper takes it
    back when the database returns."""
    beat = heartbeat.current()
    with beat.holding(job_id) as worker:
        return _attempt(self, job_id, worker)


def _attempt(task, job_id: str, worker: str) -> str:
    url = settings.database_url

    tried = []

    def claim():
        # The job and its document come back with the claim: no second transaction to read them.
        with session_scope(url) as session:
            one_statement_transactions(session)  # the claim is one statement on Postgres
            if tried:  # the connection failed last time, perhaps after the claim had committed
                held = job_state.row_held_by(session, job_id, worker)
                if held is not None:  # its events may not have gone out: tell them now
                    live.job_changed(job_id, "running", stage=("reading", held.attempts))
                    return held, session.get(Document, held.document_sha256)
            tried.append(True)
            # The attempt starts reading at once: "running" and "reading" go out together.
            return lifecycle.claim_with_document(session, job_id, settings.stale_after, worker, stage="reading")

    try:
        claimed = database.wait_for(claim, _claim_wait(), f"the claim of job {job_id}")
    except Exception as exc:
        if not database.unavailable(exc):
            raise
        log.warning("job %s: database still unavailable; message handed back to the queue", job_id)
        raise Reject(exc, requeue=True) from None
    if claimed is None:
        return "skipped"  # finished already, or another worker holds it
    job, document = claimed  # detached rows: their columns as claimed
    attempt = job.attempts
    if attempt > settings.max_attempts:
        return _record(job_id, "failed", lambda s: lifecycle.fail(
            s, job_id, "worker_lost", f"gave up after {attempt - 1} attempts that ended without a result "
            "(worker killed, out of memory or time limit)", attempt))
    try:
        reading = database.wait_for(lambda: _read(job, document), settings.database_wait,
                                    f"the analysis of job {job_id}")
        live.stage_changed(job_id, "checking", attempt)
        # Earlier submissions are looked up, the policy decides and the outcome is recorded in
        # one transaction: a database that drops out meanwhile costs a re-check, not a re-read.
        return _record(job_id, "succeeded", lambda s: _check(s, job, document, reading, attempt))
    except DocumentError as exc:
        code, detail = exc.code, exc.detail
        return _record(job_id, "failed", lambda s: lifecycle.fail(s, job_id, code, detail, attempt))
    except SoftTimeLimitExceeded:
        return _record(job_id, "failed", lambda s: lifecycle.fail(
            s, job_id, "timeout", f"analysis took longer than {settings.task_soft_time_limit} s", attempt))
    except TransientError as exc:
        if task.request.retries >= task.max_retries:
            message = f"retries exhausted: {exc}"
            return _record(job_id, "failed", lambda s: lifecycle.fail(s, job_id, "transient_error", message, attempt))
        _record(job_id, "released", lambda s: lifecycle.release(s, job_id, attempt))
        raise task.retry(exc=exc, countdown=_backoff(task.request.retries))
    except Exception as exc:  # a bug or an analyzer crash: record it, never leave the job hanging
        if database.unavailable(exc):  # waited database_wait in vain: the sweeper takes it back later
            log.warning("job %s: database unavailable during the analysis; left for the sweeper", job_id)
            return "deferred"
        log.exception("job %s failed", job_id)
        message = f"{type(exc).__name__}: {exc}"
        return _record(job_id, "failed", lambda s: lifecycle.fail(s, job_id, "analysis_error", message, attempt))


def _claim_wait() -> float:
    # Leave the analysis most of the soft time limit even after a long wait for the database.
    return max(0.0, min(settings.database_wait, settings.task_soft_time_limit / 2))


def _record(job_id: str, outcome: str, write) -> str:
    """Write an outcome, waiting for the database as long as `database_wait`; the outcome, or
    "skipped" when this attempt no longer owns the job, or "deferred" when the database never
    answered (the job is then left to the sweeper: `running`, and no longer in our heartbeat)."""
    def attempt():
        with session_scope(settings.database_url) as session:
            return write(session)

    try:
        done = database.wait_for(attempt, settings.database_wait, f"recording job {job_id} as {outcome}")
    except SoftTimeLimitExceeded:
        log.warning("job %s: time limit reached while waiting for the database; left for the sweeper", job_id)
        return "deferred"
    except Exception as exc:
        if not database.unavailable(exc):
            raise
        log.warning("job %s: database unavailable, %s not recorded; left for the sweeper", job_id, outcome)
        return "deferred"
    result = outcome if done in (True, None) else "skipped"
    log.info("job %s %s", job_id, result)  # carries job_id, request_id (docket/logs.py)
    return result


def _backoff(retries: int) -> int:
    return min(60, 2 ** retries)


@dataclass
class Reading:
    """What the reading stage produced: the policy version, the pages and the analysis."""
    rule: Rule
    prepared: PreparedDocument
    analysis: Analysis
    timings: dict[str, float]


def _read(job: Job, document: Document) -> Reading:
    """The pages and the analyzer's reading of them (the `reading` stage, told with the claim);
    no database work but the policy version's lookup (once per process)."""
    rule = _submitted_rule(job)
    if rule is None:
        raise DocumentError(f"the rule {job.rule_name!r} no longer exists", code="unknown_rule")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:  # the local folder, or a local copy fetched once from the object store
        source = storage.local_path(settings, document.storage_path)
    except storage.StorageUnavailable as exc:
        raise TransientError(exc.detail) from exc
    prepared = prepare(source, document.mime_type, max_side=settings.max_image_side,
                       max_pages=settings.ocr_pdf_pages, filename=job.filename)
    timings["preprocess_s"] = round(time.perf_counter() - started, 4)
    analyzer = get_analyzer(job.analyzer)
    started = time.perf_counter()
    analysis = analyzer.analyze(prepared, rule)
    timings["analyze_s"] = round(time.perf_counter() - started, 4)
    timings.update(analysis.timings)
    return Reading(rule, prepared, analysis, timings)


def _check(session, job: Job, document: Document, reading: Reading, attempt: int) -> bool:
    """Look up earlier submissions where the policy reads them, decide, and record the decision
    (lifecycle.succeed commits); False when this attempt no longer owns the job."""
    rule, analysis, filename = reading.rule, reading.analysis, job.filename
    duplicates = (_near_duplicates(session, job, document, reading.prepared.pages[0].image)
                  if duplicate_scan.read_by(rule) else [])
    with_history = invoice_facts.reads_history(rule)
    invoice = invoice_facts.facts(session if with_history else None, job, analysis.fields,
                                  analysis.extra.get("qr"), with_history=with_history)
    money = fx.facts(fx.Rates(session, job.tenant_id), rule, analysis.fields)  # caps in the policy's currency
    timings = dict(reading.timings)
    fallback = "model" if job.analyzer == "model" else "ocr"
    sources = {name: analysis.sources.get(name, fallback) for name in analysis.fields}
    started = time.perf_counter()
    # Confidences, evidence and sources go in too: the rule's `certainty` reads them (uncertain_field).
    verdict = evaluate(rule, analysis.fields,
                       {"text": analysis.text, "pages": document.page_count, "mime_type": document.mime_type,
                        "filename": filename or "", **duplicate_scan.facts(duplicates), **invoice, **money},
                       proposed=analysis.proposed, proposed_reasons=analysis.proposed_reasons,
                       confidence=analysis.confidence or {}, evidence=analysis.evidence, sources=sources)
    timings["rules_s"] = round(time.perf_counter() - started, 4)
    # A model analyzer's raw output, prompt hash and token counts, where the schema keeps them.
    recorded = {"model_output": analysis.extra} if analysis.extra else {}
    decision = Decision(job_id=job.id, decision=verdict.decision, fields=analysis.fields, reasons=verdict.reasons,
                        confidence=analysis.confidence, evidence=analysis.evidence, sources=sources,
                        rule_name=rule.name, rule_version=rule.version, analyzer=job.analyzer,
                        model=analysis.model, timings=timings, text=analysis.text,
                        converted=money.get("converted"), **recorded)
    return lifecycle.succeed(session, job.id, attempt, decision, document)


_policy_versions: dict[tuple[str, str, str], object] = {}


def _submitted_rule(job: Job):
    """The exact version the job was submitted under: built-in or the tenant's own. A version
    never changes once stored (it names its source), so each is looked up and compiled once per
    process; the current built-in needs no query at all."""
    builtin = rules().get(job.rule_name)
    if builtin is not None and builtin.version == job.rule_version:
        return builtin
    key = (job.tenant_id, job.rule_name, job.rule_version)
    if key not in _policy_versions:
        with session_scope(settings.database_url) as session:
            rule = policies.submitted_rule(session, job.tenant_id, job.rule_name, job.rule_version, rules())
        if rule is None or rule.version != job.rule_version:
            return rule  # missing, or the fallback to the current built-in: not a version to keep
        _policy_versions[key] = rule
    return _policy_versions[key]


def _near_duplicates(session, job: Job, document: Document, first_page) -> list[str]:
    """Earlier jobs of the same tenant whose first page looks the same (the double claim)."""
    phash = document.phash
    if phash is None:  # recorded with the decision (the claim's row stays as read: a retry starts over)
        phash = duplicate_scan.perceptual_hash(first_page)
        duplicate_scan.record_hash(session, document, phash)
    elif job.phash is None:  # submitted while another job was computing it: this job's copy
        session.execute(update(Job).where(Job.id == job.id).values(phash=phash)
                        .execution_options(synchronize_session=False))
    return duplicate_scan.earlier_near_duplicates(session, job, phash, settings.duplicate_distance,
                                                  most=duplicate_scan.NEAREST)


@celery.task(name=SWEEP_TASK, acks_late=True)
def sweep() -> int:
    """Reclaim the jobs of dead workers and publish every job whose message is missing or lost
    (docket/recovery.py). Safe to run anywhere, any number of times: the claim in analyze_job
    lets only one attempt through."""
    try:
        return recovery.sweep_jobs(settings, celery).total
    except Exception as exc:
        if not database.unavailable(exc):
            raise
        log.warning("sweeper: database unavailable (%s); next pass in %.0f s", type(exc).__name__,
                    settings.sweep_interval)
        return 0
