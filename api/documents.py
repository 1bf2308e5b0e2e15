"""A job's document: the uploaded bytes, and each page as the analyzer saw it (PNG)."""
from __future__ import annotations

import io
import os
import tempfile

from flask import Blueprint, send_file

from api import context
from api.auth import authenticate, require
from api.jobs import tenant_job
from docket.errors import NotFound
from worker.preprocess import page_image

bp = Blueprint("documents", __name__, url_prefix="/v1")
bp.before_request(authenticate)


def document_response(job):
    settings = context.settings()
    path = settings.documents_dir / job.document.storage_path
    return send_file(path, mimetype=job.document.mime_type, download_name=job.filename or job.document.sha256,
                     max_age=3600, etag=job.document.sha256)


def page_response(job, index: int):
    """Pages are rendered on request and cached by content address (documents never change)."""
    settings = context.settings()
    document = job.document
    cached = settings.data_dir / "pages" / document.sha256[:2] / f"{document.sha256}-{settings.max_image_side}-{index}.png"
    if not cached.exists():
        try:
            image = page_image(settings.documents_dir / document.storage_path, document.mime_type, index,
                               max_side=settings.max_image_side)
        except IndexError:
            raise NotFound(f"The document has no page {index + 1}.") from None
        cached.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".tmp", delete=False) as tmp:
            tmp.write(buffer.getvalue())
        os.replace(tmp.name, cached)  # atomic: a concurrent reader sees all of it or nothing
    return send_file(cached, mimetype="image/png", max_age=3600)


@bp.get("/jobs/<job_id>/document")
@require("read")
def get_document(job_id: str):
    return document_response(tenant_job(job_id))


@bp.get("/jobs/<job_id>/pages/<int:number>")
@require("read")
def get_page(job_id: str, number: int):
    """Page `number` (1-based) as a PNG, in the coordinates of the decision's evidence boxes."""
    if number < 1:
        raise NotFound("Pages are numbered from 1.")
    return page_response(tenant_job(job_id), number - 1)
