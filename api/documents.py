"""A job's document: the uploaded bytes, and each page as the analyzer saw it (PNG)."""
from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from flask import Blueprint, Response, send_file

from api import context
from api.auth import Forbidden, authenticate, principal, require
from api.jobs import tenant_job
from docket import page_cache, privacy, storage
from docket.documents import OFD_TYPE, SUPPORTED, XML_TYPE
from docket.errors import NotFound

bp = Blueprint("documents", __name__, url_prefix="/v1")
bp.before_request(authenticate)


# The extension a download of each type intake accepts (docket.documents.SUPPORTED, decided from
# the bytes) gets. Any other stored type (an older row, another tool's) goes out as opaque bytes:
# never one a browser runs.
EXTENSIONS = {
    "image/jpeg": (".jpg", ".jpeg"), "image/png": (".png",), "image/webp": (".webp",),
    "image/tiff": (".tif", ".tiff"), "image/bmp": (".bmp",), "image/gif": (".gif",),
    "application/pdf": (".pdf",), OFD_TYPE: (".ofd",), XML_TYPE: (".xml",),
}
OPAQUE = "application/octet-stream"
# Uploaded bytes are the tenant's, not ours: should a browser ever render them (attachment
# ignored, a plugin), they get a sandboxed, unique origin with nothing allowed. `navigate-to`
# would forbid a meta refresh but no browser implements it: the download is what stops one.
ORIGINAL_POLICY = ("sandbox; default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
                   "form-action 'none'")
# Pages are PNGs Docket drew; shown inline (also opened alone), still with nothing to run.
PAGE_POLICY = "sandbox; default-src 'none'; img-src 'self'; frame-ancestors 'none'"
_UNSAFE_IN_NAME = re.compile(r'[\\/:*?"<>|]')  # path and shell-ish characters
_ASCII_FALLBACK = re.compile(r"[^A-Za-z0-9._()+\- ]")
MAX_DOWNLOAD_NAME = 150


def served_type(mime_type: str | None) -> str:
    return mime_type if mime_type in SUPPORTED else OPAQUE


def download_name(filename: str | None, mime_type: str | None, sha256: str) -> str:
    """The stored filename made safe to save: no path, quotes, separators or control characters,
    no leading dot, and ending in the extension of the type it is served as (so
    "invoice.html" that is a PNG saves as "invoice.html.png", and opens as one)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    name = _UNSAFE_IN_NAME.sub("_", name).strip(" .")
    extensions = EXTENSIONS.get(served_type(mime_type), (".bin",))
    stem, dot, ext = name.rpartition(".")
    if dot and stem and "." + ext.lower() in extensions:
        suffix = "." + ext
    else:
        stem, suffix = name, extensions[0]
    return (stem[:MAX_DOWNLOAD_NAME].rstrip(" .") or f"document-{sha256[:12]}") + suffix


def attachment(name: str) -> str:
    """RFC 6266: an ASCII `filename` for old clients, the exact name as UTF-8 in `filename*`."""
    fallback = _ASCII_FALLBACK.sub("_", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode())
    stem, _, ext = fallback.rpartition(".")
    if not stem.strip("_ "):  # nothing ASCII left of the name
        fallback = f"document.{ext}"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='!#$&+-.^_`|~')}"


def _locked_down(response, policy: str):
    response.headers["X-Content-Type-Options"] = "nosniff"  # the type we send, never a guess
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"  # no embedding by other sites
    # A tenant's document: never kept by a shared cache.
    response.cache_control.public = False
    response.cache_control.private = True
    return response


def document_response(job):
    """The uploaded bytes, always as a download: a hostile upload (XHTML with a meta refresh,
    SVG, a PDF's JavaScript, an xml-stylesheet) must never run or navigate on our origin."""
    settings = context.settings()
    privacy.check_content(job)  # erased or purged: 410
    document = job.document
    source = storage.open_stream(settings, document)
    body, length = source if isinstance(source, tuple) else (source, None)
    # A local file, or an object store's response body streamed through in chunks.
    response = send_file(body, mimetype=served_type(document.mime_type), max_age=3600, etag=document.sha256)
    if length is not None and response.status_code == 200:
        response.content_length = length
    response.headers["Content-Disposition"] = attachment(
        download_name(job.filename or document.original_filename, document.mime_type, document.sha256))
    return _locked_down(response, ORIGINAL_POLICY)


def page_response(job, number: int):
    """Page `number` (1-based) as a PNG, in the coordinates of the decision's evidence boxes."""
    privacy.check_content(job)  # erased or purged: 410
    if number < 1:
        raise NotFound("Pages are numbered from 1.")
    try:
        path = page_cache.page_png(context.settings(), job.document, number - 1)
    except IndexError:
        raise NotFound(f"The document has no page {number}.") from None
    response = send_file(path, mimetype="image/png", max_age=3600)
    response.headers["Content-Disposition"] = f'inline; filename="page-{number}.png"'
    return _locked_down(response, PAGE_POLICY)


def redacted_response(job, number: int) -> Response:
    """Page `number` with the personal data blacked out (docket/privacy.py), as a PNG."""
    png = privacy.redacted_png(context.settings(), job, context.job_rule(job), number)
    response = Response(png, mimetype="image/png")
    response.headers["Content-Disposition"] = f'inline; filename="page-{number}-redacted.png"'
    return _locked_down(response, PAGE_POLICY)


def redacts_for(job, role: str) -> bool:
    """Whether the job's policy shows its pages to `role` only as redacted copies (any role but
    admin's): the API and the dashboard alike."""
    rule = context.job_rule(job)
    return rule is not None and rule.redact and role != "admin"


@bp.get("/jobs/<job_id>/document")
@require("read")
def get_document(job_id: str):
    job = tenant_job(job_id)
    if redacts_for(job, principal().role):  # the original shows what the redacted copies black out
        raise Forbidden("This policy shows its documents to keys that are not admin keys as redacted copies "
                        f"only: /v1/jobs/{job.id}/redacted/N.")
    return document_response(job)


@bp.get("/jobs/<job_id>/pages/<int:number>")
@require("read")
def get_page(job_id: str, number: int):
    job = tenant_job(job_id)
    if redacts_for(job, principal().role):  # personal data blacked out for anyone not an admin, as in the dashboard
        return redacted_response(job, number)
    return page_response(job, number)
