"""Personal data through the API: erasure on request (admin) and redacted copies of pages.

`DELETE /v1/jobs/{id}` with JSON `{"reason"}` erases the job's personal data and answers the job
as it is afterwards (its `erased` record); `GET /v1/jobs/{id}/redacted/{n}` is page n with the
personal data blacked out, where the job's policy makes redacted copies (docket/privacy.py)."""
from __future__ import annotations

from flask import Blueprint, request

from api import context
from api.auth import authenticate, principal, require
from api.documents import redacted_response
from api.jobs import tenant_job
from docket import privacy
from docket.representation import job_json

bp = Blueprint("privacy", __name__, url_prefix="/v1")
bp.before_request(authenticate)


@bp.delete("/jobs/<job_id>")
@require("admin")
def erase_job(job_id: str):
    job = tenant_job(job_id)
    body = request.get_json(silent=True)
    reason = body.get("reason") if isinstance(body, dict) else None
    session = context.db()
    privacy.erase(session, context.settings(), job, context.job_rule(job), by=principal().display_name,
                  reason=reason)
    session.commit()
    return job_json(job, history=True)


@bp.get("/jobs/<job_id>/redacted/<int:number>")
@require("read")
def get_redacted(job_id: str, number: int):
    return redacted_response(tenant_job(job_id), number)
