"""Who may see what on the dashboard.

Reviewers and admins see everything in their tenant. A submitter sees only what its own key
submitted: the Upload page, My submissions, those batches and jobs (without the review form);
the queue, overview, export and policies answer 403, anyone else's job or batch 404 — the same
answer as another tenant's, so ids reveal nothing.
"""
from __future__ import annotations

import functools

from flask import abort

from api.auth import Principal
from api.batches import tenant_batch
from api.dashboard.session import current, signed_in
from api.jobs import tenant_job
from db.models import Batch, Job
from docket.errors import NotFound

TENANT_WIDE_ROLES = ("reviewer", "admin")


def tenant_wide(who: Principal | None) -> bool:
    return who is not None and who.role in TENANT_WIDE_ROLES


def check_tenant_wide() -> None:
    """403 for a signed-in submitter; a signed-out visitor is left to `signed_in` (sign-in form)."""
    who = current()
    if who is not None and not tenant_wide(who):
        abort(403, f"A {who.role} key may use Upload and My submissions only.")


def tenant_wide_only(view):
    """Route decorator: a page over the whole tenant (reviewers and admins)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        check_tenant_wide()
        return view(*args, **kwargs)

    return signed_in(wrapper)


def _visible(submitted_by: str | None) -> bool:
    who = current()
    return tenant_wide(who) or (who is not None and who.key_id is not None and submitted_by == who.key_id)


def visible_job(job_id: str) -> Job:
    job = tenant_job(job_id)
    if not _visible(job.submitted_by):
        raise NotFound(f"No job {job_id}.")
    return job


def visible_batch(batch_id: str) -> Batch:
    batch = tenant_batch(batch_id)
    if not _visible(batch.submitted_by):
        raise NotFound(f"No batch {batch_id}.")
    return batch
