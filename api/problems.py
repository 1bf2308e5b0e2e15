"""RFC 9457 problem details for every error the API returns: a stable `type`/`code`."""
from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from docket.errors import DocketError

PROBLEM_BASE = "https://docket.dev/problems/"
MEDIA_TYPE = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, **extra):
    body = {"type": PROBLEM_BASE + code, "code": code, "title": title, "status": status, "detail": detail, **extra}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = MEDIA_TYPE
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DocketError)
    def _docket_error(exc: DocketError):
        response = problem(exc.status, exc.code, exc.title, exc.detail, **exc.extra)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        # flask-limiter adds Retry-After and X-RateLimit-* to 429s after this handler runs.
        return problem(exc.code or 500, code, exc.name, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return problem(500, "internal_error", "Internal server error",
                       "An unexpected error occurred; it has been logged.")

