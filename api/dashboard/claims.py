"""Expense claims on the dashboard: a submitter creates one (header + files, accepted exactly as
POST /v1/claims accepts them) and watches it fill in; reviewers see the claims that need a person;
the claim page shows the header, each document, the claim checks with the documents they name,
totals by category and the review form. Routes of the dashboard's blueprint (its session, CSRF
check, error pages and headers); the reads are the API's (api/claims.py)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from api import context, intake, visibility
from api.batches import accept_batch
from api.claims import claim_snapshot, tenant_claim
from api.dashboard import bp
from api.dashboard.session import current, signed_in
from api.dashboard.uploads import ACCEPT, page_limits, refused_summary
from api.jobs import event_stream
from db.claims import Claim
from db.models import DECISIONS, Job
from docket import claims, i18n, live
from docket.errors import DocketError, NotFound
from docket.problem_text import localize


def visible_claim(claim_id: str) -> Claim:
    if current() is None:  # current() makes the signed-in key the principal the API's lookup checks
        raise NotFound(f"No claim {claim_id}.")
    return tenant_claim(claim_id)


@bp.get("/claims")
@signed_in
def claims_list():
    """Claims: a reviewer's queue (needs_review, the default for reviewers), all, or my own."""
    who = current()
    show = request.args.get("show") or ("review" if visibility.tenant_wide(who) else "mine")
    query = select(Claim).where(Claim.tenant_id == who.tenant_id)
    if (own := visibility.own_submissions(who)) is not None or show == "mine":
        query = query.where(Claim.submitted_by == (own or who.key_id))
        show = "mine"
    elif show == "review":
        query = query.where(Claim.review_rank == 0, Claim.status == "decided")
    session = context.db()
    rows = list(session.scalars(query.order_by(Claim.created_at.desc()).limit(200)))
    counts = dict(session.execute(select(Job.claim_id, func.count()).where(Job.claim_id.in_([c.id for c in rows]))
                                  .group_by(Job.claim_id)).all()) if rows else {}
    return render_template("dashboard/claims.html", claims=rows, counts=counts, show=show,
                           tenant_wide=visibility.tenant_wide(who))


@bp.get("/claims/new")
@signed_in
def claim_new():
    return render_template("dashboard/claim_new.html", rules=sorted(context.tenant_rules(current().tenant_id)),
                           limits=page_limits(), accept=ACCEPT, employee=current().name or "")


def _header_from_form() -> dict:
    form = request.form
    trip = {k: form.get(f"trip_{k}") or None for k in ("start", "end", "destination", "origin")}
    return claims.parse_header({"employee": form.get("employee"), "purpose": form.get("purpose") or None,
                                "trip": trip if any(trip.values()) else None,
                                "cost_center": form.get("cost_center") or None,
                                "claimed_amount": form.get("claimed_amount") or None})


@bp.post("/claims/new")
@signed_in
def claim_create():
    header = _header_from_form()
    documents = intake.many_documents()
    claims.check_size(len(documents))
    body, _, _ = accept_batch(documents, intake.options(), current(), claim=claims.Intake(header=header))
    if body["rejected"]:
        flash(refused_summary(body["rejected"]), "error")
    return redirect(url_for("dashboard.claim_page", claim_id=body["id"]), code=303)


@bp.get("/claims/<claim_id>")
@signed_in
def claim_page(claim_id: str):
    claim = visible_claim(claim_id)
    body = claims.claim_json(context.db(), claim)
    names = {j["id"]: j["filename"] or j["id"] for j in body["jobs"]}
    lines = {d["job_id"]: d for d in body["documents"]}
    done = sum(1 for j in body["jobs"] if j["status"] in live.FINISHED)
    return render_template("dashboard/claim.html", claim=claim, body=body, names=names, lines=lines, done=done,
                           can_review=current().can("review") and claim.status == "decided",
                           can_add=claim.status == "open" and current().can("submit"), decisions=DECISIONS,
                           accept=ACCEPT)


@bp.get("/claims/<claim_id>/events")
@signed_in
def claim_events(claim_id: str):
    """The claim page's live updates: as GET /v1/claims/{id}/events sends them."""
    claim = visible_claim(claim_id)
    claim_id = claim.id
    job_ids = list(context.db().scalars(select(Job.id).where(Job.claim_id == claim_id)))
    last = live.last_event_id(request.headers.get("Last-Event-ID"))
    return event_stream(live.stream(context.settings().redis_url, job_ids, lambda: claim_snapshot(claim_id), last))


@bp.post("/claims/<claim_id>/documents")
@signed_in
def claim_add(claim_id: str):
    claim = visible_claim(claim_id)
    body, _, _ = accept_batch(intake.many_documents(), intake.options(), current(), claim=claims.Intake(claim=claim))
    if body["rejected"]:
        flash(refused_summary(body["rejected"]), "error")
    return redirect(url_for("dashboard.claim_page", claim_id=claim.id), code=303)


@bp.post("/claims/<claim_id>/reviews")
@signed_in
def claim_review(claim_id: str):
    claim, who = visible_claim(claim_id), current()
    if not who.can("review"):
        abort(403)
    session = context.db()
    try:
        claims.add_review(session, claim, decision=request.form.get("decision"), comment=request.form.get("comment"),
                          reviewer=who.display_name, reviewer_key_id=who.key_id)
    except DocketError as refused:
        session.rollback()
        flash(localize(refused.code, refused.title, refused.detail)[1], "error")
        return redirect(url_for("dashboard.claim_page", claim_id=claim.id))
    session.commit()
    flash(i18n.gettext("Saved: the claim is now %(decision)s.", decision=claim.current_decision.replace("_", " ")),
          "ok")
    return redirect(url_for("dashboard.claim_page", claim_id=claim.id))
