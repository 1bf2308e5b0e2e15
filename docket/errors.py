"""Errors with a stable code, shared by the API (problem+json) and the worker (job failures)."""
from __future__ import annotations


class DocketError(Exception):
    """A failure the caller can act on: `code` is stable, `detail` is for people."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None,
                 title: str | None = None, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        if code:
            self.code = code
        if status:
            self.status = status
        if title:
            self.title = title
        self.extra = extra


class DocumentError(DocketError):
    """The document itself is unusable: retrying cannot help."""

    status = 422
    code = "invalid_document"
    title = "Unusable document"


class NotFound(DocketError):
    status = 404
    code = "not_found"
    title = "Not found"
