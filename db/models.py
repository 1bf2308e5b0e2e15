"""The stored shape of Docket: documents, batches, jobs and their decisions."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JOB_STATUSES = ("queued", "running", "succeeded", "failed")
DECISIONS = ("approve", "needs_review", "reject")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON, list[Any]: JSON}


class Document(Base):
    """Uploaded bytes, content-addressed: the same file uploaded twice is one row, one file."""

    __tablename__ = "documents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    mime_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    page_count: Mapped[int] = mapped_column(Integer)
    original_filename: Mapped[str | None] = mapped_column(String(512))
    storage_path: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    rule_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    jobs: Mapped[list["Job"]] = relationship(back_populates="batch", order_by="Job.created_at")


class Job(Base):
    """One document under one rule. Its row is the truth about progress; queue messages are hints."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"))
    document_sha256: Mapped[str] = mapped_column(ForeignKey("documents.sha256"))
    filename: Mapped[str | None] = mapped_column(String(512))
    rule_name: Mapped[str] = mapped_column(String(100))
    rule_version: Mapped[str] = mapped_column(String(80))
    analyzer: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(80))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Null until a queue message was published: the sweeper publishes those.
    enqueued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    batch: Mapped[Batch | None] = relationship(back_populates="jobs")
    document: Mapped[Document] = relationship()
    decision: Mapped["Decision | None"] = relationship(back_populates="job", uselist=False)

    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_created_id", "created_at", "id"),
        Index("ix_jobs_batch", "batch_id"),
        Index("ix_jobs_rule", "rule_name"),
    )


class Decision(Base):
    """The structured outcome of a job; at most one per job (re-delivery never adds a second)."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
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
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="decision")

    __table_args__ = (Index("ix_decisions_decision", "decision"),)
