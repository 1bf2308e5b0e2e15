"""Expense claims (报销单): one employee's documents approved together (docket/claims.py decides them).

The models live in db/models.py with the others (jobs.claim_id refers to claims); this module is
where claim code imports them from."""
from __future__ import annotations

from db.models import CLAIM_STATUSES, Claim, ClaimReview

__all__ = ["CLAIM_STATUSES", "Claim", "ClaimReview"]
