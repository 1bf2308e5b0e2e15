"""Correlated logs: every line says which request, job and tenant it is about, wherever known.

`DOCKET_LOG_FORMAT=json` gives one JSON object per line (`time`, `level`, `logger`, `message`,
and `request_id`, `job_id`, `tenant` when set); the default stays plain text, with the ids
appended. The ids live in context variables: the API sets them per request (X-Request-ID, taken
or made), the worker per task from the task's headers, so a job can be followed from the upload
through the worker to its webhook.
"""
from __future__ import annotations

import contextvars
import json
import logging
import os
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

FIELDS = ("request_id", "job_id", "tenant")
_context: dict[str, contextvars.ContextVar] = {name: contextvars.ContextVar(name, default=None) for name in FIELDS}
REQUEST_ID_HEADER = "X-Request-ID"
_MAX_ID = 128


def current() -> dict[str, str]:
    """The ids known here and now (only those that are set)."""
    return {name: var.get() for name, var in _context.items() if var.get()}


def bind(**values: str | None) -> dict[str, contextvars.Token]:
    return {name: _context[name].set(value) for name, value in values.items() if name in _context}


def unbind(tokens: dict[str, contextvars.Token]) -> None:
    for name, token in tokens.items():
        _context[name].reset(token)


@contextmanager
def bound(**values: str | None) -> Iterator[None]:
    tokens = bind(**values)
    try:
        yield
    finally:
        unbind(tokens)


def request_id(incoming: str | None) -> str:
    """The client's X-Request-ID when it is sane (printable, short), else a new one."""
    if incoming and incoming.isprintable() and len(incoming) <= _MAX_ID and incoming.strip():
        return incoming.strip()
    return uuid.uuid4().hex


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, _context[name].get())
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for name in FIELDS:
            value = getattr(record, name, None)
            if value:
                body[name] = value
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, None))
        return f"{line} [{ids}]" if ids else line


def configure(level: str | None = None, fmt: str | None = None) -> None:
    """Root logging for a Docket process, from DOCKET_LOG_LEVEL and DOCKET_LOG_FORMAT."""
    level = level or os.environ.get("DOCKET_LOG_LEVEL", "WARNING")
    fmt = (fmt or os.environ.get("DOCKET_LOG_FORMAT", "text")).lower()
    handler = logging.StreamHandler()
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
