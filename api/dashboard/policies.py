"""The dashboard's Policies pages: every version with who and when, each version's YAML, a diff
between any two, simulations (chart, transitions with example jobs), and — for admins — pushing
a new version, activating and rolling back. Reviewers see and simulate, submitters get 403; the
same core functions serve the API (api/policies.py)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from api import context
from api.dashboard import csrf, csrf_refused, docket_error, http_error, security_headers
from api.dashboard.access import check_tenant_wide
from api.dashboard.presenters import simulation_chart
from api.dashboard.session import current, signed_in
from db.models import DECISIONS
from docket import i18n, policies, runs, simulation
from docket.errors import DocketError
from docket.i18n import N_
from docket.problem_text import localize
from docket.queues import CPU_QUEUE, POLICY_RUN_TASK

bp = Blueprint("dashboard_policies", __name__, url_prefix="/dashboard/policies")
bp.after_request(security_headers)
bp.register_error_handler(CSRFError, csrf_refused)
bp.register_error_handler(HTTPException, http_error)
bp.register_error_handler(DocketError, docket_error)


@bp.before_request
def check_csrf():
    if request.method == "POST":
        csrf.protect()


# Policies are the tenant's, not a submitter's business (reviewers simulate, admins change them).
bp.before_request(check_tenant_wide)


def _tenant() -> str:
    return current().tenant_id


def _require(permission: str) -> None:
    if not current().can(permission):
        abort(403, f"The {current().role} role may not do this.")


def _name(name: str) -> str:
    if not policies.known_name(context.db(), _tenant(), name, context.rules()):
        abort(404, f"No policy {name}.")
    return name


@bp.get("")
@bp.get("/")
@signed_in
def index():
    session, tenant, builtins = context.db(), _tenant(), context.rules()
    active = context.tenant_rules(tenant)
    names = sorted(set(active) | set(builtins))
    rows = []
    for name in names:
        versions = policies.versions(session, tenant, name, builtins)
        rule = active.get(name)
        rows.append({"name": name, "active": rule.version if rule else None, "count": len(versions),
                     "builtin": rule is not None and builtins.get(name) is rule,
                     "description": rule.description if rule else ""})
    return render_template("dashboard/policies.html", policies=rows)


def _policy_page(name: str, *, source: str = "", error: dict | None = None, status: int = 200):
    session, tenant, builtins = context.db(), _tenant(), context.rules()
    versions = policies.versions(session, tenant, name, builtins)
    active = next((v for v in versions if v.status == "active"), None)
    return render_template("dashboard/policy.html", name=name, versions=versions, active=active,
                           activations=policies.activations(session, tenant, name, limit=20),
                           can_admin=current().can("admin"), source=source or (active.source if active else ""),
                           error=error), status


@bp.get("/<name>")
@signed_in
def policy(name: str):
    return _policy_page(_name(name))


@bp.post("/<name>/versions")
@signed_in
def push(name: str):
    _require("admin")
    who = current()
    source = request.form.get("source", "").replace("\r\n", "\n")
    session = context.db()
    try:
        view, created = policies.push(session, who.tenant_id, name, source, actor=who.display_name,
                                      actor_key_id=who.key_id)
    except policies.InvalidRule as refused:
        session.rollback()
        return _policy_page(name, source=source, status=422,
                            error={"detail": refused.detail, **refused.extra})
    session.commit()
    flash(i18n.gettext("Stored %(name)s %(version)s as a %(status)s.", name=name, version=view.version[:19],
                       status=i18n.value_word(view.status)) if created
          else i18n.gettext("That source is already version %(version)s (%(status)s).", version=view.version[:19],
                            status=i18n.value_word(view.status)), "ok")
    return redirect(url_for("dashboard_policies.version_page", name=name, version=view.version))


@bp.get("/<name>/versions/<version>")
@signed_in
def version_page(name: str, version: str):
    session, tenant, builtins = context.db(), _tenant(), context.rules()
    _name(name)
    view = policies.find(session, tenant, name, version, builtins)
    rule = policies.find_rule(session, tenant, name, view.version, builtins)
    return render_template("dashboard/policy_version.html", name=name, view=view, rule=rule,
                           lines=list(enumerate((view.source or "").splitlines(), start=1)),
                           can_admin=current().can("admin"), can_simulate=current().can("review"),
                           decisions=DECISIONS)


@bp.get("/<name>/diff")
@signed_in
def diff(name: str):
    session, tenant, builtins = context.db(), _tenant(), context.rules()
    _name(name)
    versions = policies.versions(session, tenant, name, builtins)
    a_ref = request.args.get("from") or (versions[1].version if len(versions) > 1 else "")
    b_ref = request.args.get("to") or (versions[0].version if versions else "")
    if not a_ref or not b_ref:
        abort(400, N_("Pick two versions to compare."))  # shown translated (docket/problem_text.py)
    a, b = policies.find(session, tenant, name, a_ref, builtins), policies.find(session, tenant, name, b_ref, builtins)
    changes = policies.diff(a.source, policies.find_rule(session, tenant, name, a.version, builtins),
                            b.source, policies.find_rule(session, tenant, name, b.version, builtins))
    return render_template("dashboard/policy_diff.html", name=name, a=a, b=b, changes=changes, versions=versions)


@bp.post("/<name>/versions/<version>/activate")
@signed_in
def activate(name: str, version: str):
    _require("admin")
    who = current()
    session = context.db()
    _name(name)
    done = policies.activate(session, who.tenant_id, name, version, context.rules(), actor=who.display_name,
                             actor_key_id=who.key_id)
    session.commit()
    said = {"rollback": N_("Rolled back to %(name)s %(version)s; new submissions use it."),
            "activate": N_("Activated %(name)s %(version)s; new submissions use it."),
            "unchanged": N_("Already active: %(name)s %(version)s; new submissions use it.")}[done["action"]]
    flash(i18n.gettext(said, name=name, version=done["version"][:19]), "ok")
    return redirect(url_for("dashboard_policies.policy", name=name))


@bp.post("/<name>/versions/<version>/simulate")
@signed_in
def simulate(name: str, version: str):
    _require("review")
    session, tenant, builtins = context.db(), _tenant(), context.rules()
    _name(name)
    form = {k: request.form.get(k) or None for k in ("since", "until", "batch", "decision")}
    try:
        flt = simulation.PolicyFilter.parse({k: v for k, v in form.items() if v})
    except DocketError as refused:
        flash(localize(refused.code, refused.title, refused.detail)[1], "error")
        return redirect(url_for("dashboard_policies.version_page", name=name, version=version))
    candidate = policies.find_rule(session, tenant, name, version, builtins)
    total = simulation.count(session, tenant, name, flt)
    if total > simulation.SYNC_LIMIT or request.form.get("background"):
        who = current()
        run = runs.create(session, tenant_id=tenant, kind="simulation", rule_name=name, rule_version=candidate.version,
                          filter=flt.to_json(), actor=who.display_name, actor_key_id=who.key_id, total=total)
        session.commit()
        try:
            context.celery().send_task(POLICY_RUN_TASK, args=[run.id], queue=CPU_QUEUE, retry=False)
            runs.mark_published(session, run.id)
        except Exception:  # noqa: BLE001 - the sweeper publishes it
            pass
        return redirect(url_for("dashboard_policies.simulation_page", run_id=run.id))
    result = simulation.simulate(session, tenant, candidate, flt, builtins,
                                 duplicate_distance=context.settings().duplicate_distance)
    return _result_page(name, candidate.version, result, flt.to_json())


def _result_page(name: str, version: str, result: dict, flt: dict, run=None):
    return render_template("dashboard/policy_simulation.html", name=name, version=version, result=result,
                           filter=flt, chart=simulation_chart(result) if result else None, run=run)


@bp.get("/simulations/<run_id>")
@signed_in
def simulation_page(run_id: str):
    run = runs.tenant_run(context.db(), _tenant(), run_id, ("simulation",))
    body = runs.run_json(run)
    return _result_page(run.rule_name, run.rule_version, body["result"], run.filter, run=body)
