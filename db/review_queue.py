"""The reviewer queue's columns on a job: its current decision and what people search it by.

They are copies (of the analyzer's decision, or of the latest review) kept on the jobs row so
the queue, its filters and the stats read one indexed table, even at 100,000s of jobs.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any


def summarize(fields: dict[str, Any] | None) -> tuple[str | None, float | None]:
    """(merchant, amount) of a document: a receipt's merchant and total, or a contract's parties
    and its largest amount; (None, None) where there are none (screenshots)."""
    fields = fields or {}
    merchant = fields.get("merchant_name")
    if not merchant and isinstance(fields.get("parties"), list):
        merchant = "; ".join(str(p) for p in fields["parties"] if p)
    amount = fields.get("total")
    if amount is None and isinstance(fields.get("amounts"), list):
        values = [a.get("value") for a in fields["amounts"] if isinstance(a, dict)]
        values = [v for v in values if isinstance(v, (int, float))]
        amount = max(values) if values else None
    if not isinstance(amount, (int, float)) or isinstance(amount, bool):
        amount = None
    return (str(merchant)[:300] if merchant else None), (float(amount) if amount is not None else None)


def queue_values(decision: str, fields: dict[str, Any] | None, decided_at: datetime | None = None) -> dict[str, Any]:
    """Column values for a job whose current decision is `decision` with `fields`."""
    merchant, amount = summarize(fields)
    values = {"current_decision": decision, "review_rank": 0 if decision == "needs_review" else 1,
              "merchant": merchant, "amount": amount}
    if decided_at is not None:
        values["decided_at"] = decided_at
    return values
