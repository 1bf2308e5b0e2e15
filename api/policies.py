"""Policies that each tenant owns: versions, validation, simulation, activation, re-decision.
Thin routes over docket/policies.py, docket/simulation.py and docket/redecide.py."""
from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, request, url_for

from api import context, visibility
from api.auth import authenticate, principal, require
from db.models import PolicyRun
from docket import policies, redecide, runs, simulation
from docket.errors import DocketError, NotFound
from docket.queues import CPU_QUEUE, POLICY_RUN_TASK

bp = Blueprint("policies", __name__, url_prefix="/v1")
bp.before_request(authenticate)

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _tenant() -> str:
    return principal().tenant_id


def _known(name: str) -> str:
    if not NAME.match(name) or not policies.known_name(context.db(), _tenant(), name, context.rules()):
        raise NotFound(f"No policy {name}.")
    return name


def _json_body(required: bool = False) -> dict[str, Any]:
    if not request.get_data(cache=True):
        if required:
            raise DocketError("Send a JSON object.", code="invalid_json", status=400, title="Bad request")
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise DocketError("The body is not a JSON object.", code="invalid_json", status=400, title="Bad request")
    return body


def _publish(run: PolicyRun) -> None:
    """After the run row committed: its message (when the broker is down the sweeper sends it)."""
    try:
        context.celery().send_task(POLICY_RUN_TASK, args=[run.id], queue=CPU_QUEUE, retry=False)
    except Exception:  # noqa: BLE001 - kombu raises OperationalError and socket errors alike
        return
    runs.mark_published(context.db(), run.id)


@bp.post("/rules/<name>/versions")
@require("admin")
def push_version(name: str):
    if request.mimetype in YAML_TYPES:
        source: Any = request.get_data(cache=False)
    elif request.is_json:
        source = _json_body(required=True).get("source")
        if not isinstance(source, str):
            raise policies.InvalidRule("Send the policy's YAML as 'source' (a string), or the YAML itself with "
                                       "Content-Type: application/yaml.")
    else:
        raise DocketError("Send the policy's YAML (Content-Type: application/yaml) or JSON {\"source\": \"...\"}.",
                          code="unsupported_content_type", status=415, title="Unsupported media type")
    if not NAME.match(name):
        raise policies.InvalidRule(f"{name!r} is not a policy name (lowercase letters, digits and _).", key="name")
    who = principal()
    session = context.db()
    view, created = policies.push(session, who.tenant_id, name, source, actor=who.display_name,
                                  actor_key_id=who.key_id)
    session.commit()
    location = url_for("policies.get_version", name=name, version=view.version)
    return view.to_json(), 201 if created else 200, {"Location": location}


@bp.get("/rules/<name>/versions")
@require("read")
def list_versions(name: str):
    session, tenant = context.db(), _tenant()
    _known(name)
    views = policies.versions(session, tenant, name, context.rules())
    active = next((v.version for v in views if v.status == "active"), None)
    return {"name": name, "active": active, "versions": [v.to_json() for v in views],
            "activations": policies.activations(session, tenant, name)}


@bp.get("/rules/<name>/versions/<version>")
@require("read")
def get_version(name: str, version: str):
    session, tenant = context.db(), _tenant()
    _known(name)
    view = policies.find(session, tenant, name, version, context.rules())
    rule = policies.find_rule(session, tenant, name, view.version, context.rules())
    return {**view.to_json(with_source=True), **{k: v for k, v in policies.rule_json(rule).items() if k != "checks"},
            "params": rule.params, "prompt": rule.prompt,
            "checks": [{"id": c.id, "expr": c.expr, "outcome": c.outcome, "message": c.message} for c in rule.checks]}


@bp.get("/rules/<name>/diff")
@require("read")
def diff_versions(name: str):
    session, tenant, builtins = context.db(), _tenant(), context.rules()
    _known(name)
    a_ref, b_ref = request.args.get("from"), request.args.get("to")
    if not a_ref or not b_ref:
        raise DocketError("Name the two versions: ?from=VERSION&to=VERSION.", code="invalid_query", status=400,
                          title="Invalid query")
    a, b = policies.find(session, tenant, name, a_ref, builtins), policies.find(session, tenant, name, b_ref, builtins)
    return policies.diff(a.source, policies.find_rule(session, tenant, name, a.version, builtins),
                         b.source, policies.find_rule(session, tenant, name, b.version, builtins))


@bp.post("/rules/<name>/versions/<version>/simulate")
@require("review")
def simulate(name: str, version: str):
    session, tenant, builtins = context.db(), _tenant(), context.rules()
    _known(name)
    body = dict(_json_body())
    background = body.pop("background", False)
    if not isinstance(background, bool):
        raise simulation.InvalidFilter("'background' must be true or false.")
    if "filter" in body and len(body) > 1:
        raise simulation.InvalidFilter("Send the filter's keys at the top level, or only {\"filter\": {...}}.")
    flt = simulation.PolicyFilter.parse(body["filter"] if "filter" in body else body)
    candidate = policies.find_rule(session, tenant, name, version, builtins)
    total = simulation.count(session, tenant, name, flt)
    if background or total > simulation.SYNC_LIMIT:
        who = principal()
        run = runs.create(session, tenant_id=tenant, kind="simulation", rule_name=name,
                          rule_version=candidate.version, filter=flt.to_json(), actor=who.display_name,
                          actor_key_id=who.key_id, total=total)
        session.commit()
        _publish(run)
        return runs.run_json(run), 202, {"Location": url_for("policies.get_simulation", run_id=run.id)}
    return simulation.simulate(session, tenant, candidate, flt, builtins,
                               duplicate_distance=context.settings().duplicate_distance)


def _tenant_run(run_id: str, kinds: tuple[str, ...]) -> PolicyRun:
    # A run reads the whole tenant's jobs (counts, example job ids): not a submitter's to read.
    if not visibility.tenant_wide(principal()):
        raise NotFound("No such run.")
    return runs.tenant_run(context.db(), _tenant(), run_id, kinds)


@bp.get("/simulations/<run_id>")
@require("read")
def get_simulation(run_id: str):
    return runs.run_json(_tenant_run(run_id, ("simulation",)))


@bp.post("/rules/<name>/versions/<version>/activate")
@require("admin")
def activate(name: str, version: str):
    who = principal()
    session = context.db()
    _known(name)
    body = policies.activate(session, who.tenant_id, name, version, context.rules(), actor=who.display_name,
                             actor_key_id=who.key_id)
    session.commit()
    return body


@bp.post("/redecisions")
@require("admin")
def create_redecision():
    who = principal()
    session, builtins = context.db(), context.rules()
    body = _json_body(required=True)
    name = body.get("rule")
    if not isinstance(name, str) or not name:
        raise DocketError("Name the policy: {\"rule\", \"version\", \"filter\"}.", code="missing_rule", status=400,
                          title="Missing rule")
    _known(name)
    version = body.get("version")
    if version is None:
        candidate = context.tenant_rules(who.tenant_id).get(name)
        if candidate is None:
            raise NotFound(f"No active version of policy {name}.")
    elif isinstance(version, str):
        candidate = policies.find_rule(session, who.tenant_id, name, version, builtins)
    else:
        raise simulation.InvalidFilter("'version' must be a version string.")
    reanalyze = body.get("reanalyze", False)
    if not isinstance(reanalyze, bool):
        raise simulation.InvalidFilter("'reanalyze' must be true or false.")
    flt = simulation.PolicyFilter.parse(body.get("filter"))
    run = redecide.start(session, who.tenant_id, candidate, flt, builtins, reanalyze=reanalyze,
                         actor=who.display_name, actor_key_id=who.key_id)
    session.commit()
    _publish(run)
    return runs.run_json(run), 202, {"Location": url_for("policies.get_redecision", run_id=run.id)}


@bp.get("/redecisions/<run_id>")
@require("read")
def get_redecision(run_id: str):
    return runs.run_json(_tenant_run(run_id, ("redecision", "reanalysis")))
