"""Request bodies read into memory (JSON, YAML), within bounds.

Multipart uploads stream to disk, and the app's MAX_CONTENT_LENGTH is sized for a whole batch of
them (25 MB x 1,000 files by default). Any other body is read whole into memory, so it gets a
limit of its own: the largest such body Docket takes is one document as base64 in JSON.

Python's json module recurses once per nesting level: a body of 100,000 ``[`` raises
RecursionError, which no route expects (a 500), and a body just under the interpreter's limit
still reaches code that walks it recursively. Every request body goes through the app's JSON
provider (``request.get_json``), so bounding it here covers every route, present and future.
"""
from __future__ import annotations

import json
from typing import Any

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

from docket.errors import DocketError

#: Deepest nesting of arrays and objects a request body may have (Docket's own bodies reach 4).
MAX_DEPTH = 64


class TooDeep(DocketError):
    status = 400
    code = "invalid_json"
    title = "Bad request"


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's provider, except that ``loads`` refuses bodies nested deeper than MAX_DEPTH with a
    problem (raised through ``get_json(silent=True)`` too: silence is for malformed JSON, and a
    refusal should say why)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = json.loads(s, **kwargs)
        except RecursionError:
            raise _too_deep() from None
        if _depth_exceeds(value, MAX_DEPTH):
            raise _too_deep()
        return value


def _too_deep() -> TooDeep:
    return TooDeep(f"The JSON body is nested more than {MAX_DEPTH} levels deep.")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep; iterative, so it cannot recurse."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def limit_in_memory_bodies(app: Flask, max_upload_bytes: int) -> None:
    """Every request that is not multipart may send at most one base64 document and its JSON
    (4/3 of the upload limit, plus 64 KiB), never the batch-sized MAX_CONTENT_LENGTH: past it,
    413 before the body is read."""
    limit = max(1 << 20, -(-max_upload_bytes * 4 // 3) + (64 << 10))

    @app.before_request
    def _bound_body() -> None:
        if request.mimetype != "multipart/form-data":
            request.max_content_length = limit
