"""Batches: many documents under one rule, one job each."""
from __future__ import annotations

from flask import Blueprint, url_for

from api import context, intake
from api.serialize import batch_json
from db import queries
from db.models import Batch
from docket import submission
from docket.errors import DocketError, NotFound

bp = Blueprint("batches", __name__, url_prefix="/v1")


@bp.post("/batches")
def create_batch():
    settings = context.settings()
    opts = intake.options()
    rule = submission.resolve_rule(context.rules(), opts["rule"])
    documents = intake.many_documents()
    if len(documents) > settings.max_batch_files:
        raise DocketError(f"A batch holds at most {settings.max_batch_files} files.", code="batch_too_large",
                          status=413, title="Batch too large")
    session = context.db()
    batch = Batch(rule_name=rule.name)
    session.add(batch)
    jobs, rejected = [], []
    for index, doc in enumerate(documents):
        try:
            document = submission.store_document(session, settings, doc.stream, doc.filename)
        except DocketError as exc:
            # One unreadable file must not sink 499 good ones: report it, accept the rest.
            rejected.append({"index": index, "filename": doc.filename, "code": exc.code, "status": exc.status,
                             "detail": exc.detail})
            continue
        jobs.append(submission.new_job(session, document, rule, doc.filename, analyzer=opts["analyzer"],
                                       batch=batch))
    if not jobs:
        session.rollback()
        raise DocketError("No file in the batch could be accepted.", code="invalid_batch", status=422,
                          title="Invalid batch", rejected=rejected)
    session.commit()
    submission.publish(context.celery(), session, jobs)
    body = {"id": batch.id, "rule": rule.name, "job_ids": [j.id for j in jobs], "rejected": rejected}
    return body, 202, {"Location": url_for("batches.get_batch", batch_id=batch.id)}


@bp.get("/batches/<batch_id>")
def get_batch(batch_id: str):
    session = context.db()
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"No batch {batch_id}.")
    return batch_json(batch, queries.batch_counts(session, batch_id), batch.jobs)
