"""The dashboard: server-rendered pages over the same queries as the API.

Every list and number here is also an API route (GET /v1/jobs, /v1/stats, /v1/jobs/export.csv,
/v1/jobs/{id}/reviews, POST /v1/batches, /v1/batches/{id}/events…); the pages only add a session
cookie, CSRF-checked forms and HTML. Reviewers and admins see their tenant; submitters upload and
follow their own submissions (api/dashboard/access.py).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import unquote, urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from api import context, job_filters
from api.dashboard import presenters, streams, uploads
from api.dashboard.access import tenant_wide, tenant_wide_only, visible_batch, visible_job
from api.dashboard.session import (SignInRefused, current, sign_in, sign_out, sign_out_everywhere, signed_in,
                                   wants_data)
from api.auth import Forbidden
from api.documents import document_response, page_response, redacted_response, redacts_for
from api.export import csv_response
from api.jobs import event_stream
from api.problems import problem
from db import queries, stats
from db.models import DECISIONS, JOB_STATUSES, Job
from docket import reviews
from docket.errors import DocketError
from babel.dates import format_date

from docket import i18n
from docket.problem_text import localize

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
csrf = CSRFProtect()

FILTER_NAMES = ("status", "decision", "rule", "batch", "created_since", "created_until", "merchant",
                "amount_min", "amount_max", "q", "reviewed", "sort")
MAX_PAGES_SHOWN = 10


@bp.before_request
def check_csrf():
    if request.method == "POST":
        csrf.protect()


@bp.after_request
def security_headers(response):
    # No inline script or style anywhere in these pages, so the policy can forbid both.
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'; "
                                "frame-src 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# The upload page's script reads problems as JSON (its `rejected` list too); people get a page.
@bp.errorhandler(CSRFError)
def csrf_refused(error):
    if wants_data():
        return problem(400, "csrf_failed", "Form expired or forged", f"The form was refused: {error.description} "
                       "Reload the page and try again.")
    title, message = localize("csrf_failed", "Form expired or forged",
                              f"The form was refused: {error.description} Reload the page and try again.")
    return render_template("dashboard/error.html", title=title, message=message), 400


@bp.errorhandler(HTTPException)
def http_error(error):
    if wants_data():
        return problem(error.code or 500, (error.name or "error").lower().replace(" ", "_"), error.name,
                       error.description or error.name)
    title, message = localize((error.name or "error").lower().replace(" ", "_"), error.name, error.description)
    return render_template("dashboard/error.html", title=title, message=message), error.code


@bp.errorhandler(DocketError)
def docket_error(error):
    if wants_data():
        response = problem(error.status, error.code, error.title, error.detail, **error.extra)
        response.headers.update(error.headers)
        return response
    title, message = localize(error.code, error.title, error.detail)
    return render_template("dashboard/error.html", title=title, message=message), error.status


def _tenant() -> str:
    return current().tenant_id


def _safe_next(target: str | None) -> str:
    """Only our own pages: never an open redirect to another site, nor a header a control
    character could break (CR/LF gave a 500). Anything doubtful goes to the dashboard's home."""
    if not target or not target.isascii():  # a Location header is ASCII; anything else could not be sent
        return url_for("dashboard.index")
    for form in (target, unquote(target)):  # %0d%0a, %5c: what a browser or proxy might decode
        parts = urlsplit(form)
        if (not form.isprintable() or "\\" in form or parts.scheme or parts.netloc
                or not (parts.path == "/dashboard" or parts.path.startswith("/dashboard/"))):
            return url_for("dashboard.index")
    return target


@bp.get("")
@bp.get("/")
def index():
    who = current()
    if who is None:
        return render_template("dashboard/sign_in.html", next=request.args.get("next", ""))
    if not tenant_wide(who):
        return redirect(url_for("dashboard.upload"))  # a submitter's home: the queue is not theirs
    return queue()


@bp.post("/sign-in")
def sign_in_post():
    try:
        sign_in(request.form.get("key", ""))
    except SignInRefused as refused:
        return render_template("dashboard/sign_in.html", error=str(refused), next=request.form.get("next", "")), 401
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/sign-out")
def sign_out_post():
    sign_out()
    return redirect(url_for("dashboard.index"))


@bp.post("/sign-out-everywhere")
def sign_out_everywhere_post():
    """Ends every session of the signed-in key: other browsers and any copied cookie too."""
    sign_out_everywhere()
    return redirect(url_for("dashboard.index"))


def queue():
    args = request.args
    flt = job_filters.job_filter(args, _tenant())
    sort = job_filters.sort(args, default="queue")
    session = context.db()
    try:
        jobs, next_cursor = queries.list_jobs(session, flt, limit=job_filters.limit(args, default=50, maximum=200),
                                              cursor=args.get("cursor"), sort=sort)
    except ValueError:
        raise DocketError("That page link is out of date; start from the first page.", code="invalid_cursor",
                          status=400, title="Invalid cursor") from None
    decision = flt.decision
    flt.decision = None
    counts = queries.decision_counts(session, flt)
    filters = {name: args.get(name, "") for name in FILTER_NAMES}
    filters["sort"] = sort
    return render_template("dashboard/queue.html", jobs=jobs, next_cursor=next_cursor, counts=counts,
                           filters=filters, active_decision=decision, statuses=JOB_STATUSES, decisions=DECISIONS,
                           rules=sorted(context.tenant_rules(_tenant())), query={k: v for k, v in filters.items() if v})


@bp.get("/upload")
@signed_in
def upload():
    return render_template("dashboard/upload.html", rules=sorted(context.tenant_rules(_tenant())),
                           limits=uploads.page_limits())


@bp.post("/upload")
@signed_in
def upload_post():
    """One batch from the page's files (sent by its script as one multipart request): JSON for
    the script; without it, the form's plain post lands on the batch's page."""
    body, status = uploads.accept(current())
    if wants_data():
        return body, status
    if body["rejected"]:
        flash(uploads.refused_summary(body["rejected"]), "error")
    return redirect(body["links"]["batch"], code=303)


@bp.get("/mine")
@signed_in
def mine():
    """My submissions: the jobs this key submitted (API and dashboard alike), newest first."""
    args = request.args
    # The queue's filters apply too (as on GET /v1/jobs?submitted_by=me); a dashboard principal
    # always has a key (only keys sign in), so this never widens to the whole tenant.
    flt = job_filters.job_filter(args, _tenant(), current().key_id)
    flt.submitted_by = current().key_id
    try:
        jobs, next_cursor = queries.list_jobs(context.db(), flt, limit=50, cursor=args.get("cursor"), sort="newest")
    except ValueError:
        raise DocketError("That page link is out of date; start from the first page.", code="invalid_cursor",
                          status=400, title="Invalid cursor") from None
    return render_template("dashboard/mine.html", jobs=jobs, next_cursor=next_cursor, status=flt.status,
                           statuses=JOB_STATUSES)


@bp.get("/jobs/<job_id>")
@signed_in
def job_page(job_id: str):
    job = visible_job(job_id)
    rule = context.job_rule(job)
    active = context.tenant_rules(_tenant()).get(job.rule_name)
    rows = presenters.field_rows(job, rule)
    return render_template("dashboard/job.html", job=job, rows=rows, trail=presenters.trail(job),
                           decisions=DECISIONS, next_job=_next_in_queue(job) if tenant_wide(current()) else None,
                           pages=range(1, min(job.document.page_count or 1, MAX_PAGES_SHOWN) + 1),
                           rule_current=(rule is not None and active is not None and rule.version == active.version),
                           can_review=current().can("review"), source_titles=presenters.SOURCE_TITLES,
                           redacted=_redacted_for_viewer(job))


@bp.get("/jobs/<job_id>/events")
@signed_in
def job_events(job_id: str):
    """The job page's live updates: Server-Sent Events as GET /v1/jobs/{id}/events sends them."""
    return event_stream(streams.job_events(visible_job(job_id).id))


def _next_in_queue(job: Job) -> Job | None:
    """The next item in the reviewers' queue order after `job` (wraps to the head)."""
    session = context.db()
    flt = queries.JobFilter(tenant=_tenant(), decision="needs_review")
    after, _ = queries.list_jobs(session, flt, limit=1, cursor=queries.encode_cursor(job, "queue"), sort="queue")
    if after:
        return after[0]
    head, _ = queries.list_jobs(session, flt, limit=2, sort="queue")
    return next((j for j in head if j.id != job.id), None)


@bp.post("/jobs/<job_id>/reviews")
@signed_in
def review_post(job_id: str):
    job = visible_job(job_id)
    who = current()
    if not who.can("review"):
        abort(403)
    rule = context.job_rule(job)
    corrections = presenters.parse_corrections(request.form, presenters.field_rows(job, rule))
    if isinstance(corrections, str):
        flash(corrections, "error")
        return redirect(url_for("dashboard.job_page", job_id=job.id))
    session = context.db()
    try:
        review = reviews.add_review(session, job, decision=request.form.get("decision"),
                                    comment=request.form.get("comment"), fields=corrections or None,
                                    reviewer=who.display_name, reviewer_key_id=who.key_id, rule=rule,
                                    duplicate_distance=context.settings().duplicate_distance)
    except DocketError as refused:
        session.rollback()
        flash(localize(refused.code, refused.title, refused.detail)[1], "error")
        return redirect(url_for("dashboard.job_page", job_id=job.id))
    session.commit()
    flash(i18n.gettext("Saved: %(job)s is now %(decision)s.", job=job.filename or job.id,
                       decision=i18n.value_word(job.current_decision)), "ok")
    if review.policy_after and review.policy_after["decision"] != review.decision_after:
        flash(i18n.gettext("Note: on the corrected fields the %(rule)s checks say %(decision)s.", rule=rule.name,
                           decision=i18n.value_word(review.policy_after["decision"])), "warn")
    if request.form.get("then") == "next":
        following = _next_in_queue(job)
        if following is not None:
            return redirect(url_for("dashboard.job_page", job_id=following.id))
        return redirect(url_for("dashboard.index"))
    return redirect(url_for("dashboard.job_page", job_id=job.id))


@bp.get("/jobs/<job_id>/document")
@signed_in
def document(job_id: str):
    job = visible_job(job_id)
    if _redacted_for_viewer(job):  # the original shows what the redacted copies black out
        raise Forbidden("This policy shows its documents to people who are not admins as redacted copies only.")
    return document_response(job)


@bp.get("/jobs/<job_id>/pages/<int:number>")
@signed_in
def page(job_id: str, number: int):
    job = visible_job(job_id)
    if _redacted_for_viewer(job):  # personal data blacked out for anyone not an admin
        return redacted_response(job, number)
    return page_response(job, number)


def _redacted_for_viewer(job: Job) -> bool:
    return redacts_for(job, current().role)


@bp.get("/batches/<batch_id>")
@signed_in
def batch_page(batch_id: str):
    session = context.db()
    batch = visible_batch(batch_id)
    counts = queries.batch_counts(session, batch.id)
    total = sum(counts.values())
    done = counts["succeeded"] + counts["failed"]
    flt = queries.JobFilter(tenant=_tenant(), batch=batch.id)
    jobs, next_cursor = queries.list_jobs(session, flt, limit=200, cursor=request.args.get("cursor"), sort="oldest")
    decisions = queries.decision_counts(session, flt)
    return render_template("dashboard/batch.html", batch=batch, counts=counts, total=total, done=done,
                           percent=round(done / total * 100) if total else 100, jobs=jobs, decisions=decisions,
                           next_cursor=next_cursor)


@bp.get("/batches/<batch_id>/events")
@signed_in
def batch_events(batch_id: str):
    """The batch and upload pages' live updates: as GET /v1/batches/{id}/events sends them."""
    batch = visible_batch(batch_id)
    return event_stream(streams.batch_events(batch.id, [j.id for j in batch.jobs]))


@bp.get("/overview")
@tenant_wide_only
def overview():
    try:
        days = max(1, min(int(request.args.get("days", 30)), 366))
    except ValueError:
        days = 30
    until = datetime.now(timezone.utc)
    since = (until - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    rule = request.args.get("rule") or None
    numbers = stats.overview(context.db(), _tenant(), since, until, rule=rule)
    chart = presenters.day_bars(numbers["per_day"], since.date(), until.date())
    return render_template("dashboard/overview.html", stats=numbers, chart=chart, days=days, rule=rule,
                           rules=sorted(context.tenant_rules(_tenant())), per_rule=presenters.rule_totals(numbers["per_day"]))


@bp.get("/export.csv")
@tenant_wide_only
def export():
    args = request.args
    return csv_response(context.db(), job_filters.job_filter(args, _tenant()), job_filters.sort(args, default="queue"))


# Templates ask it to show only what the role may use (navigation, links to the queue and policies).
bp.add_app_template_global(tenant_wide, "sees_tenant")


@bp.app_template_filter("when")
def when(value) -> str:
    """A moment in UTC, written the reader's way (2026-12-07 15:04 UTC; 2026年12月7日 15:04 UTC)."""
    value = queries.as_utc(value)
    if not value:
        return ""
    if i18n.current() == i18n.DEFAULT:
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return f"{format_date(value, 'long', locale=i18n.babel_locale())} {value:%H:%M} UTC"


@bp.app_template_filter("size")
def size(value) -> str:
    value = float(value or 0)
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return i18n.gettext("%(n)s bytes", n=f"{value:.0f}")


@bp.app_template_filter("seconds")
def seconds(value) -> str:
    if value is None:
        return "–"
    value = float(value)
    if value < 120:
        return i18n.gettext("%(n)s s", n=f"{value:.1f}")
    if value < 7200:
        return i18n.gettext("%(n)s min", n=f"{value / 60:.1f}")
    return i18n.gettext("%(n)s h", n=f"{value / 3600:.1f}")
