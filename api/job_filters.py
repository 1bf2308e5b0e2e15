"""Query-string → JobFilter, shared by the job list, the CSV export and the dashboard, so every
page's query is also an API query with the same names."""
from __future__ import annotations

from datetime import datetime, timezone

from api.visibility import own_submissions
from db.models import DECISIONS, JOB_STATUSES
from db.queries import SORTS, JobFilter
from docket.errors import DocketError


def invalid(detail: str) -> DocketError:
    return DocketError(detail, code="invalid_query", status=400, title="Invalid query")


def _choice(args, name: str, allowed) -> str | None:
    value = args.get(name) or None
    if value is not None and value not in allowed:
        raise invalid(f"'{name}' must be one of {', '.join(allowed)}.")
    return value


def time_arg(args, name: str) -> datetime | None:
    value = args.get(name) or None
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"'{name}' must be an ISO 8601 date or time.") from None
    # One instant, whatever offset it was written with (SQLite compares stored UTC as text).
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _number(args, name: str) -> float | None:
    value = args.get(name) or None
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise invalid(f"'{name}' must be a number.") from None
    if number != number or abs(number) == float("inf"):
        raise invalid(f"'{name}' must be a finite number.")
    return number


def text_arg(args, name: str, limit: int = 200) -> str | None:
    value = (args.get(name) or "").strip()
    if len(value) > limit:
        raise invalid(f"'{name}' is longer than {limit} characters.")
    if "\x00" in value:  # Postgres text cannot hold NUL; no stored value contains one
        raise invalid(f"'{name}' must not contain NUL characters.")
    return value or None


def _submitter(args, me: str | None) -> str | None:
    """`submitted_by=me`: the caller's own submissions (by its key's id)."""
    value = args.get("submitted_by") or None
    if value is None:
        return None
    if value != "me":
        raise invalid("'submitted_by' must be 'me'.")
    if me is None:
        raise invalid("'submitted_by=me' needs a key: this caller has none.")
    return me


def job_filter(args, tenant: str, me: str | None = None) -> JobFilter:
    reviewed = _choice(args, "reviewed", ("true", "false"))
    return JobFilter(
        tenant=tenant,
        status=_choice(args, "status", JOB_STATUSES),
        decision=_choice(args, "decision", DECISIONS),
        rule=text_arg(args, "rule", 100),
        batch=text_arg(args, "batch", 32),
        created_since=time_arg(args, "created_since"),
        created_until=time_arg(args, "created_until"),
        merchant=text_arg(args, "merchant"),
        amount_min=_number(args, "amount_min"),
        amount_max=_number(args, "amount_max"),
        q=text_arg(args, "q"),
        reviewed=None if reviewed is None else reviewed == "true",
        submitted_by=_submitter(args, me),
    )


def callers_filter(args, who) -> JobFilter:
    """The query's filter for an API caller (a Principal), within what it may read: a submitter's
    is always limited to its own submissions (api/visibility.py)."""
    flt = job_filter(args, who.tenant_id, who.key_id)
    if (own := own_submissions(who)) is not None:
        flt.submitted_by = own
    return flt


def sort(args, default: str = "newest") -> str:
    return _choice(args, "sort", SORTS) or default


def limit(args, default: int = 50, maximum: int = 500) -> int:
    try:
        value = int(args.get("limit", default))
    except ValueError:
        value = -1
    if not 1 <= value <= maximum:
        raise invalid(f"'limit' must be an integer from 1 to {maximum}.")
    return value
