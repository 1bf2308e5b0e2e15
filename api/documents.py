"""A job's document: the uploaded bytes, and each page as the analyzer saw it (PNG)."""
from __future__ import annotations

from flask import Blueprint, send_file

from api import context
from api.auth import authenticate, require
from api.jobs import tenant_job
from docket import page_cache, storage
from docket.errors import NotFound

bp = Blueprint("documents", __name__, url_prefix="/v1")
bp.before_request(authenticate)


def document_response(job):
    settings = context.settings()
    name = job.filename or job.document.sha256
    source = storage.open_stream(settings, job.document)
    body, length = source if isinstance(source, tuple) else (source, None)
    # A local file, or an object store's response body streamed through in chunks.
    response = send_file(body, mimetype=job.document.mime_type, download_name=name,
                         max_age=3600, etag=job.document.sha256)
    if length is not None and response.status_code == 200:
        response.content_length = length
    # The type was sniffed from the bytes at upload; browsers must not guess another one.
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def page_response(job, number: int):
    """Page `number` (1-based) as a PNG, in the coordinates of the decision's evidence boxes."""
    if number < 1:
        raise NotFound("Pages are numbered from 1.")
    try:
        path = page_cache.page_png(context.settings(), job.document, number - 1)
    except IndexError:
        raise NotFound(f"The document has no page {number}.") from None
    return send_file(path, mimetype="image/png", max_age=3600)


@bp.get("/jobs/<job_id>/document")
@require("read")
def get_document(job_id: str):
    return document_response(tenant_job(job_id))


@bp.get("/jobs/<job_id>/pages/<int:number>")
@require("read")
def get_page(job_id: str, number: int):
    return page_response(tenant_job(job_id), number)
