"""Facts about an invoice that policy checks read under `document` (CEL stays the policy
language; what CEL cannot compute comes in as facts, like `document.near_duplicate`):

- `invalid_tax_ids`: the seller's or buyer's unified social credit code (统一社会信用代码,
  GB 32100) whose check digit is wrong — a typo or a forged invoice;
- `qr_mismatches`: the printed fields that disagree with the invoice's QR code;
- `duplicate_invoice` / `duplicate_invoice_of`: the same issuer and invoice number already
  claimed in the tenant (exact, beside the near-duplicate image check).
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import uscc

from db.models import Job
from db.review_queue import invoice_key

# 18 characters of the code's alphabet (no I, O, Z, S, V): the shape of a USCC. Older 15- and
# 20-character taxpayer numbers carry no check digit and are not judged.
_USCC_SHAPE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")
TAX_ID_FIELDS = ("seller_tax_id", "buyer_tax_id")
HISTORY_KEYS = ("duplicate_invoice", "duplicate_invoice_of")


def invalid_tax_ids(fields: dict[str, Any]) -> list[str]:
    """The tax ids in `fields` that have the shape of a USCC but a wrong check digit."""
    bad = []
    for name in TAX_ID_FIELDS:
        value = "".join(str(fields.get(name) or "").split()).upper()
        if _USCC_SHAPE.match(value) and not uscc.is_valid(value):
            bad.append(value)
    return bad


def qr_mismatches(fields: dict[str, Any], qr: dict[str, Any] | None) -> list[str]:
    """Names of the fields whose printed value disagrees with the QR payload (`qr` as the
    analyzer recorded it: invoice_number, invoice_code, date (ISO), amount and which field
    the amount is, `amount_field`). Fields missing on either side are not compared."""
    if not qr:
        return []
    out = []
    for field, key in (("invoice_number", "invoice_number"), ("invoice_code", "invoice_code"),
                       ("transaction_date", "date")):
        printed, coded = _plain(fields.get(field)), _plain(qr.get(key))
        if printed and coded and printed != coded:
            out.append(field)
    amount_field = qr.get("amount_field") or "subtotal"
    printed, coded = fields.get(amount_field), qr.get("amount")
    if isinstance(printed, (int, float)) and isinstance(coded, (int, float)) and abs(printed - coded) > 0.01:
        out.append(amount_field)
    return out


def _plain(value: Any) -> str:
    return "".join(str(value or "").split()).upper()


def reads_history(rule) -> bool:
    return any(rule.reads_document(key) for key in HISTORY_KEYS)


def earlier_claim(session: Session, job: Job, fields: dict[str, Any]) -> str | None:
    """The id of the tenant's earliest other job (submitted before this one) whose current fields
    name the same issuer and invoice number, or None."""
    key = invoice_key(fields)
    if key is None:
        return None
    return session.scalar(
        select(Job.id).where(Job.tenant_id == job.tenant_id, Job.invoice_key == key, Job.id != job.id,
                             Job.created_at <= job.created_at)
        .order_by(Job.created_at, Job.id).limit(1))


def facts(session: Session | None, job: Job | None, fields: dict[str, Any], qr: dict[str, Any] | None,
          *, with_history: bool) -> dict[str, Any]:
    """Every invoice fact for `fields`; the history lookup only when the rule reads it."""
    out: dict[str, Any] = {"invalid_tax_ids": invalid_tax_ids(fields), "qr_mismatches": qr_mismatches(fields, qr)}
    if with_history and session is not None and job is not None:
        earlier = earlier_claim(session, job, fields)
        out.update(duplicate_invoice=earlier is not None, duplicate_invoice_of=earlier or "")
    return out
