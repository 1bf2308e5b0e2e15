"""RFC 9457 problem details for every error the API returns: a stable `type`/`code`."""
from __future__ import annotations

from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from docket import database
from docket.errors import DocketError
from docket.problem_text import localize

PROBLEM_BASE = "https://docket.dev/problems/"
MEDIA_TYPE = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, **extra):
    # In the request's language (Accept-Language: zh-Hans…); the code never changes.
    title, detail = localize(code, title, detail)
    body = {"type": PROBLEM_BASE + code, "code": code, "title": title, "status": status, "detail": detail, **extra}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = MEDIA_TYPE
    return response


def database_unavailable(detail: str | None = None, **extra):
    """503 with Retry-After: the database is unreachable, restarting or failing over. Retryable,
    unlike a 500: nothing was recorded, and the same request later will be."""
    retry_after = current_app.extensions["docket"]["settings"].database_retry_after
    response = problem(503, "database_unavailable", "Database unavailable",
                       detail or "The database cannot be reached right now; nothing was recorded. Retry after "
                       f"{retry_after} s.", **extra)
    response.headers["Retry-After"] = str(retry_after)
    response.docket_retry_after = str(retry_after)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.after_request
    def _keep_retry_after(response):
        # flask-limiter stamps its own window's reset (up to a minute) as Retry-After on every
        # response; an unavailable database asks for its own, shorter wait. Registered before the
        # limiter, this runs after it.
        fixed = getattr(response, "docket_retry_after", None)
        if fixed is not None:
            response.headers["Retry-After"] = fixed
        return response

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
        if database.unavailable(exc) or database.unavailable(getattr(exc, "__cause__", None) or exc):
            app.logger.warning("database unavailable: %s", database.describe(exc))
            return database_unavailable()
        app.logger.exception("unhandled error")
        return problem(500, "internal_error", "Internal server error",
                       "An unexpected error occurred; it has been logged.")

