"""What a caller may read in its tenant: one rule for the API and the dashboard.

Reviewers and admins read everything of their tenant. A submitter reads only what its own key
submitted (jobs, their documents, pages, events, reviews and deliveries, batches, list, export,
stats): employees do not read each other's receipts, and an integration that submits for
everyone reads what it submitted. Anything else answers 404, like another tenant's id. Jobs with
no submitting key (the CLI's) are never a submitter's.
"""
from __future__ import annotations

from api.auth import Forbidden, Principal

TENANT_WIDE_ROLES = ("reviewer", "admin")


def tenant_wide(who: Principal | None) -> bool:
    return who is not None and who.role in TENANT_WIDE_ROLES


def may_read(who: Principal | None, submitted_by: str | None) -> bool:
    """Whether `who` may read a job or batch its tenant holds, submitted by key `submitted_by`."""
    return tenant_wide(who) or (who is not None and who.key_id is not None and submitted_by == who.key_id)


def own_submissions(who: Principal) -> str | None:
    """None when `who` reads the whole tenant, else the key id every row it reads must carry."""
    if tenant_wide(who):
        return None
    if who.key_id is None:  # no such principal today (only the first-run admin has no key)
        raise Forbidden(f"A {who.role} without a key reads nothing.")
    return who.key_id
