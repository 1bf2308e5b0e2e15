"""Reviews: a reviewer overrides a job's decision; everyone who may read the job sees the trail."""
from __future__ import annotations

from flask import Blueprint, request

from api import context
from api.auth import authenticate, principal, require
from api.jobs import tenant_job
from docket.representation import job_json, review_json
from docket import reviews
from docket.errors import DocketError

bp = Blueprint("reviews", __name__, url_prefix="/v1")
bp.before_request(authenticate)


@bp.post("/jobs/<job_id>/reviews")
@require("review")
def create_review(job_id: str):
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise DocketError("Send a JSON object: {\"decision\", \"comment\", \"fields\"?}.", code="invalid_review",
                          status=422, title="Invalid review")
    job = tenant_job(job_id)
    who = principal()
    review = reviews.add_review(context.db(), job, decision=body.get("decision"), comment=body.get("comment"),
                                fields=body.get("fields"), reviewer=who.display_name,
                                reviewer_key_id=who.key_id, rule=context.job_rule(job),
                                duplicate_distance=context.settings().duplicate_distance)
    context.db().commit()
    return {"review": review_json(review), "job": job_json(job, history=True)}, 201


@bp.get("/jobs/<job_id>/reviews")
@require("read")
def list_reviews(job_id: str):
    job = tenant_job(job_id)
    return {"job_id": job.id, "reviews": [review_json(r) for r in job.reviews]}
