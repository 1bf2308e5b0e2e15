"""GET /v1/jobs/export.csv: the filtered job list as CSV (the same filters as GET /v1/jobs)."""
from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator

from flask import Blueprint, Response, request, stream_with_context

from api import context, job_filters
from api.auth import authenticate, principal, require
from db import queries
from db.queries import JobFilter, as_utc
from docket.reasons import localize_all
from docket.representation import current_fields

bp = Blueprint("export", __name__, url_prefix="/v1")
bp.before_request(authenticate)

COLUMNS = ("job_id", "created_at", "status", "rule", "rule_version", "filename", "decision", "analyzer_decision",
           "merchant", "amount", "reasons", "reviewed_at", "decided_at", "batch_id", "fields")
PAGE = 500
MAX_ROWS = 200_000


def _cell(value) -> str:
    if isinstance(value, (int, float)):
        return str(value)  # numbers stay numbers (a refund of -5.0 is not a formula)
    text = "" if value is None else str(value)
    # Spreadsheet formula injection: a cell starting with = + - @ would run as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_chunks(session, flt: JobFilter, sort: str) -> Iterator[str]:
    """Header, then one chunk per page of jobs: memory stays flat for any number of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    cursor, sent = None, 0
    while True:
        jobs, cursor = queries.list_jobs(session, flt, limit=PAGE, cursor=cursor, sort=sort)
        for job in jobs:
            decision = job.decision
            fields = current_fields(job) if decision else None
            reasons = "; ".join(f"{r.get('check')}: {r.get('message')}"  # in the caller's language
                                for r in localize_all(decision.reasons or [])) if decision else ""
            writer.writerow([_cell(v) for v in (
                job.id, as_utc(job.created_at).isoformat(), job.status, job.rule_name, job.rule_version, job.filename,
                job.current_decision, decision.decision if decision else None, job.merchant, job.amount, reasons,
                as_utc(job.reviewed_at).isoformat() if job.reviewed_at else None,
                as_utc(job.decided_at).isoformat() if job.decided_at else None, job.batch_id,
                json.dumps(fields, ensure_ascii=False) if fields is not None else None)])
        sent += len(jobs)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        session.expunge_all()  # a long export must not keep every row it has sent
        if cursor is None or sent >= MAX_ROWS:
            return


def csv_response(session, flt: JobFilter, sort: str, filename: str = "docket-jobs.csv") -> Response:
    chunks = csv_chunks(session, flt, sort)
    # The first page is read before answering, so a bad query is an error status, not a
    # truncated 200. UTF-8 with a byte-order mark: Excel then shows Chinese text correctly.
    first = next(chunks)
    body = stream_with_context(_with_bom(itertools.chain([first], chunks)))
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _with_bom(chunks: Iterator[str]) -> Iterator[bytes]:
    yield "\ufeff".encode()
    for chunk in chunks:
        yield chunk.encode()


@bp.get("/jobs/export.csv")
@require("read")
def export_jobs():
    args = request.args
    return csv_response(context.db(), job_filters.callers_filter(args, principal()), job_filters.sort(args))
