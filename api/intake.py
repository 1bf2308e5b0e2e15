"""Reading submissions from requests: multipart files or JSON with base64 content."""
from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import BinaryIO

from flask import request

from docket.errors import DocketError
from docket import submission
from docket.submission import check_callback_url, resolve_analyzer

@dataclass
class Submitted:
    stream: BinaryIO
    filename: str | None


def bad_request(detail: str, code: str = "bad_request") -> DocketError:
    return DocketError(detail, code=code, status=400, title="Bad request")


def options() -> dict:
    """rule/analyzer from the form or the JSON body."""
    if request.mimetype == "multipart/form-data":
        source = request.form
    elif request.is_json:
        source = request.get_json(silent=True)
        if not isinstance(source, dict):
            raise bad_request("The body is not a JSON object.", "invalid_json")
    else:
        raise DocketError("Send multipart/form-data (field 'file', or 'files' for a batch), or JSON with "
                          "'content_base64'.", code="unsupported_content_type", status=415,
                          title="Unsupported media type")
    return {
        "rule": source.get("rule"),
        "analyzer": resolve_analyzer(source.get("analyzer") or "ocr"),
        "callback_url": check_callback_url(source.get("callback_url")),
        # The decision cache is on unless the request opts out (cache=false).
        "cache": str(source.get("cache", "true")).lower() not in ("false", "0", "no", "off"),
        "note": _note(source.get("note")),
    }


NOTE_MAX_CHARS = 2000


def _note(value) -> str | None:
    """The submitter's free-text note on a batch (what the claim is for), kept with it."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request("'note' must be text.", "invalid_note")
    note = "".join(ch for ch in value if ch.isprintable() or ch in "\n\t").strip()
    if len(note) > NOTE_MAX_CHARS:
        raise DocketError(f"The note is longer than {NOTE_MAX_CHARS} characters.", code="note_too_long", status=422,
                          title="Note too long")
    return note or None


def single_document(max_bytes: int) -> Submitted:
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise bad_request("Send the document as the multipart field 'file'.", "missing_file")
        return Submitted(upload.stream, submission.clean_filename(upload.filename))
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise bad_request("The body is not a JSON object.", "invalid_json")
        content = body.get("content_base64")
        if not isinstance(content, str):
            raise bad_request("Send the document base64-encoded as 'content_base64'.", "missing_file")
        if len(content) * 3 // 4 > max_bytes + 3:
            raise DocketError(f"The file is larger than the {max_bytes}-byte limit.", code="file_too_large",
                              status=413, title="File too large")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("'content_base64' is not valid base64.", "invalid_base64") from None
        filename = body.get("filename")
        return Submitted(io.BytesIO(data), submission.clean_filename(filename) if isinstance(filename, str) else None)
    raise DocketError("Send multipart/form-data with a 'file' field, or JSON with 'content_base64'.",
                      code="unsupported_content_type", status=415, title="Unsupported media type")


def many_documents() -> list[Submitted]:
    if request.mimetype != "multipart/form-data":
        raise DocketError("Send a batch as multipart/form-data with repeated 'files' fields.",
                          code="unsupported_content_type", status=415, title="Unsupported media type")
    uploads = request.files.getlist("files")
    if not uploads:
        raise bad_request("Send the documents as repeated multipart fields 'files'.", "missing_file")
    return [Submitted(u.stream, submission.clean_filename(u.filename)) for u in uploads]
