"""Who may see what on the dashboard.

Reviewers and admins see everything in their tenant. A submitter sees only what its own key
submitted: the Upload page, My submissions, those batches and jobs (without the review form);
the queue, overview, export and policies answer 403, anyone else's job or batch 404 — the same
answer as another tenant's, so ids reveal nothing. The read rule is the API's (api/visibility.py).
"""
from __future__ import annotations

import functools

from flask import abort

from api.batches import tenant_batch
from api.dashboard.session import current, signed_in
from api.jobs import tenant_job
from api.visibility import tenant_wide
from db.models import Batch, Job
from docket.errors import NotFound


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


def visible_job(job_id: str) -> Job:
    # current() makes the signed-in key the principal that the API's lookup checks.
    if current() is None:
        raise NotFound(f"No job {job_id}.")
    return tenant_job(job_id)


def visible_batch(batch_id: str) -> Batch:
    if current() is None:
        raise NotFound(f"No batch {batch_id}.")
    return tenant_batch(batch_id)
