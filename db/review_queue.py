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


def invoice_key(fields: dict[str, Any] | None) -> str | None:
    """"<issuer>|<number>" of an invoice or ticket, for exact duplicate claims: the issuer is the
    seller's tax id, else the invoice code, else the seller's name (whitespace and case folded)."""
    fields = fields or {}
    number = "".join(str(fields.get("invoice_number") or "").split()).upper()
    issuer = next((str(fields[k]) for k in ("seller_tax_id", "invoice_code", "merchant_name") if fields.get(k)), "")
    issuer = "".join(issuer.split()).upper()
    return f"{issuer}|{number}"[:300] if number and issuer else None


def queue_values(decision: str, fields: dict[str, Any] | None, decided_at: datetime | None = None) -> dict[str, Any]:
    """Column values for a job whose current decision is `decision` with `fields`."""
    merchant, amount = summarize(fields)
    values = {"current_decision": decision, "review_rank": 0 if decision == "needs_review" else 1,
              "merchant": merchant, "amount": amount, "invoice_key": invoice_key(fields)}
    if decided_at is not None:
        values["decided_at"] = decided_at
    return values
