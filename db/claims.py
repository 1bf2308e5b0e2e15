"""Expense claims (报销单): one employee's documents approved together (docket/claims.py decides them).

A claim's jobs point at it (jobs.claim_id); its row holds the header the employee gave, and,
once its last document was decided, the claim's decision, reasons and totals. Reviews of a claim
are a trail of their own, append-only as job reviews are."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models import DEFAULT_TENANT, Base, Job, new_id, utcnow

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
