"""Policies as data: each tenant's versions of a policy, which one is active, and the exact
version any job or decision used.

- The files in `rules/` are the built-in policies every tenant starts from. Each built-in file
  that was ever deployed is archived by version (`builtin_policies`), so a decision made under
  an old file can still be explained after the file changed.
- A tenant pushes its own versions (`policy_versions`): validated by the same strict loader as
  the files, stored immutable as `draft`, identified by the SHA-256 of their canonical source.
  Activating one makes new submissions of that tenant use it (the previous active one is
  `retired`); rolling back is activating an older one, the built-in included. Every activation
  is recorded (`policy_activations`: who, when, from which version). At most one version is
  active per tenant and name (a partial unique index); without one, the built-in applies.
- `resolve` finds the exact (tenant, name, version) a job was submitted under or a decision
  was made with: the current built-in, the tenant's stored version, or an archived built-in.
"""
from __future__ import annotations

import difflib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import BuiltinPolicy, Job, PolicyActivation, PolicyVersion, utcnow
from db.queries import as_utc
from docket import broker
from docket.errors import DocketError, NotFound
from docket.rules import Rule, RuleError, canonical_source, load_rule_source
from docket.rules.bounded_yaml import MAX_SOURCE_BYTES  # the loader's bound, checked early for a clear message

log = logging.getLogger(__name__)

BUILTIN_AUTHOR = "built-in"


class InvalidRule(DocketError):
    status = 422
    code = "invalid_rule"
    title = "Invalid rule"


def invalid(exc: RuleError) -> InvalidRule:
    """The loader's error as a problem: the message, and the line and key it names."""
    return InvalidRule(str(exc), line=exc.line, key=exc.key)


# --- compiling stored versions ------------------------------------------------------------------

_COMPILED: OrderedDict[str, Rule] = OrderedDict()
_COMPILED_MAX = 256
_LOCK = threading.Lock()


def compile_source(name: str, version: str, source: str) -> Rule:
    """The loaded rule of a stored source, compiled once per process (a version is the hash of its
    source, so the same version is the same rule for every tenant). `version` is the one it is
    known by: an archived built-in keeps its file's hash."""
    key = f"{name}\0{version}"
    with _LOCK:
        rule = _COMPILED.get(key)
        if rule is not None:
            _COMPILED.move_to_end(key)
            return rule
    rule = load_rule_source(source, name=name, where=f"{name}@{version[:19]}", version=version)
    with _LOCK:
        _COMPILED[key] = rule
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    return rule


def builtin_source(rule: Rule) -> str:
    return rule.path.read_text(encoding="utf-8")


def archive_builtins(session: Session, builtins: dict[str, Rule]) -> int:
    """Record each built-in file's source under its version, once (the caller commits). Called
    where the built-ins are loaded at start-up (migrate, serve, worker)."""
    known = set(session.scalars(select(BuiltinPolicy.version).where(
        BuiltinPolicy.version.in_([r.version for r in builtins.values()]))))
    added = 0
    for rule in builtins.values():
        if rule.version in known:
            continue
        try:
            with session.begin_nested():
                session.add(BuiltinPolicy(version=rule.version, name=rule.name, source=builtin_source(rule)))
            added += 1
        except IntegrityError:  # another process recorded it first
            pass
    return added


# --- which rule applies -------------------------------------------------------------------------

def active_rows(session: Session, tenant_id: str) -> list[PolicyVersion]:
    return list(session.scalars(select(PolicyVersion).where(PolicyVersion.tenant_id == tenant_id,
                                                            PolicyVersion.status == "active")))


def active_rules(session: Session, tenant_id: str, builtins: dict[str, Rule]) -> dict[str, Rule]:
    """The policies new submissions of the tenant use: the built-ins, each replaced by the
    tenant's active version of that name where it has one (and its own policies beside them)."""
    rules = dict(builtins)
    for row in active_rows(session, tenant_id):
        try:
            rules[row.name] = compile_source(row.name, row.version, row.source)
        except RuleError:  # validated when pushed; an engine upgrade may refuse it later
            log.exception("stored policy %s %s of tenant %s no longer loads", row.name, row.version, tenant_id)
            rules.pop(row.name, None)
    return rules


def resolve(session: Session, tenant_id: str, name: str, version: str, builtins: dict[str, Rule]) -> Rule | None:
    """The exact policy version (tenant, name, version): the current built-in file, the tenant's
    stored version, or an archived built-in; None when it is none of these."""
    builtin = builtins.get(name)
    if builtin is not None and builtin.version == version:
        return builtin
    row = session.scalar(select(PolicyVersion).where(PolicyVersion.tenant_id == tenant_id,
                                                     PolicyVersion.name == name, PolicyVersion.version == version))
    if row is not None:
        return compile_source(name, version, row.source)
    archived = session.get(BuiltinPolicy, version)
    if archived is not None and archived.name == name:
        return compile_source(name, version, archived.source)
    return None


def submitted_rule(session: Session, tenant_id: str, name: str, version: str,
                   builtins: dict[str, Rule]) -> Rule | None:
    """The rule a worker decides a job with: exactly the version it was submitted under. Only a
    job from before versions were kept (its built-in version recorded nowhere) falls back to the
    current built-in file of that name, as before; the decision records the version it used."""
    rule = resolve(session, tenant_id, name, version, builtins)
    if rule is None and name in builtins:
        log.warning("policy %s %s is not recorded anywhere; deciding with the current built-in %s",
                    name, version, builtins[name].version)
        rule = builtins[name]
    return rule


def rule_for_job(session: Session, job: Job, builtins: dict[str, Rule]) -> Rule | None:
    """The rule the job's current decision was made with (else the one it was submitted under);
    for a decision whose version is recorded nowhere (from before versions were kept), the
    tenant's current version of that policy."""
    decision = job.decision
    for name, version in ((decision.rule_name, decision.rule_version) if decision else (None, None),
                          (job.rule_name, job.rule_version)):
        if name is not None:
            rule = resolve(session, job.tenant_id, name, version, builtins)
            if rule is not None:
                return rule
    return active_rules(session, job.tenant_id, builtins).get(job.rule_name)


def needs_reanalysis(candidate: Rule, used: Rule | None) -> list[str]:
    """What stored fields cannot answer: the parts of the policy that shape what the analyzer
    extracts (the model's prompt, the fields schema) and that differ from the version the
    fields were extracted under."""
    if used is None:
        return ["unknown version"]
    out = []
    if candidate.prompt != used.prompt:
        out.append("prompt")
    if candidate.fields_schema != used.fields_schema:
        out.append("fields")
    if candidate.document_type != used.document_type:
        out.append("document_type")
    return out


# --- versions as the API shows them -------------------------------------------------------------

@dataclass
class VersionView:
    name: str
    version: str
    status: str
    builtin: bool
    created_by: str
    created_at: datetime | None
    activated_at: datetime | None = None
    activated_by: str | None = None
    source: str | None = None

    def to_json(self, *, with_source: bool = False) -> dict[str, Any]:
        body = {"name": self.name, "version": self.version, "status": self.status, "builtin": self.builtin,
                "created_by": self.created_by, "created_at": _time(self.created_at),
                "activated_at": _time(self.activated_at), "activated_by": self.activated_by}
        if with_source:
            body["source"] = self.source
        return body


def _time(value):
    value = as_utc(value)
    return value.isoformat() if value else None


def _row_view(row: PolicyVersion) -> VersionView:
    return VersionView(name=row.name, version=row.version, status=row.status, builtin=row.builtin,
                       created_by=row.created_by, created_at=row.created_at, activated_at=row.activated_at,
                       activated_by=row.activated_by, source=row.source)


def versions(session: Session, tenant_id: str, name: str, builtins: dict[str, Rule]) -> list[VersionView]:
    """Every version of `name` the tenant can see, newest first: its own, the current built-in
    and the archived built-ins. A built-in not stored by the tenant is `active` while the tenant
    has no active version of its own (it is the default), else `retired`."""
    rows = list(session.scalars(select(PolicyVersion).where(PolicyVersion.tenant_id == tenant_id,
                                                            PolicyVersion.name == name)
                                .order_by(PolicyVersion.created_at.desc(), PolicyVersion.id.desc())))
    views = [_row_view(r) for r in rows]
    own = {r.version for r in rows}
    has_active = any(r.status == "active" for r in rows)
    builtin = builtins.get(name)
    archived = list(session.scalars(select(BuiltinPolicy).where(BuiltinPolicy.name == name)
                                    .order_by(BuiltinPolicy.recorded_at.desc())))
    if builtin is not None and builtin.version not in own and builtin.version not in {a.version for a in archived}:
        views.append(VersionView(name=name, version=builtin.version, status="retired" if has_active else "active",
                                 builtin=True, created_by=BUILTIN_AUTHOR, created_at=None,
                                 source=builtin_source(builtin)))
    for entry in archived:
        if entry.version in own:
            continue
        current = builtin is not None and entry.version == builtin.version
        views.append(VersionView(name=name, version=entry.version,
                                 status="active" if current and not has_active else "retired", builtin=True,
                                 created_by=BUILTIN_AUTHOR, created_at=entry.recorded_at, source=entry.source))
    views.sort(key=lambda v: as_utc(v.created_at) or _EPOCH, reverse=True)
    return views


def known_name(session: Session, tenant_id: str, name: str, builtins: dict[str, Rule]) -> bool:
    return name in builtins or session.scalar(
        select(PolicyVersion.id).where(PolicyVersion.tenant_id == tenant_id, PolicyVersion.name == name).limit(1)
    ) is not None


def find(session: Session, tenant_id: str, name: str, version: str, builtins: dict[str, Rule]) -> VersionView:
    """One version the tenant can see, by its full version or an unambiguous prefix of at least
    8 hex digits (`sha256:` optional); 404 otherwise (another tenant's versions included)."""
    wanted = version if version.startswith("sha256:") else "sha256:" + version
    found = versions(session, tenant_id, name, builtins)
    exact = [v for v in found if v.version == wanted]
    if exact:
        return exact[0]
    if len(wanted) >= len("sha256:") + 8:
        matches = [v for v in found if v.version.startswith(wanted)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise DocketError(f"Version prefix {version!r} matches {len(matches)} versions of {name}; give more digits.",
                              code="ambiguous_version", status=409, title="Ambiguous version")
    raise NotFound(f"No version {version} of policy {name}.")


def find_rule(session: Session, tenant_id: str, name: str, version: str, builtins: dict[str, Rule]) -> Rule:
    view = find(session, tenant_id, name, version, builtins)
    rule = resolve(session, tenant_id, name, view.version, builtins)
    if rule is None:  # pragma: no cover - find() only lists versions resolve() knows
        raise NotFound(f"No version {version} of policy {name}.")
    return rule


def activations(session: Session, tenant_id: str, name: str, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.scalars(select(PolicyActivation).where(PolicyActivation.tenant_id == tenant_id,
                                                          PolicyActivation.name == name)
                           .order_by(PolicyActivation.id.desc()).limit(limit))
    return [{"action": r.action, "version": r.version, "previous_version": r.previous_version, "by": r.actor,
             "at": _time(r.created_at)} for r in rows]


# --- changing versions --------------------------------------------------------------------------

def push(session: Session, tenant_id: str, name: str, source: str | bytes, *, actor: str,
         actor_key_id: str | None = None) -> tuple[VersionView, bool]:
    """Validate `source` with the strict loader and store it as a draft of the tenant's policy
    `name`; (the version, True) — or (the existing version, False) when the tenant already has
    exactly this source. Nothing is stored when it is invalid (InvalidRule, 422). The caller
    commits."""
    if len(source) > MAX_SOURCE_BYTES:
        raise InvalidRule(f"A policy source is at most {MAX_SOURCE_BYTES // 1024} KiB.")
    try:
        text = canonical_source(source)
        rule = load_rule_source(text, name=name)
    except RuleError as exc:
        raise invalid(exc) from None
    existing = session.scalar(select(PolicyVersion).where(PolicyVersion.tenant_id == tenant_id,
                                                          PolicyVersion.name == name,
                                                          PolicyVersion.version == rule.version))
    if existing is not None:
        return _row_view(existing), False
    row = PolicyVersion(tenant_id=tenant_id, name=name, version=rule.version, source=text, status="draft",
                        builtin=False, created_by=actor[:200], created_by_key_id=actor_key_id, created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # the same push, concurrently
        existing = session.scalar(select(PolicyVersion).where(PolicyVersion.tenant_id == tenant_id,
                                                              PolicyVersion.name == name,
                                                              PolicyVersion.version == rule.version))
        return _row_view(existing), False
    return _row_view(row), True


def activate(session: Session, tenant_id: str, name: str, version: str, builtins: dict[str, Rule], *,
             actor: str, actor_key_id: str | None = None) -> dict[str, Any]:
    """Make a version the tenant's active one for `name` (recorded: who, when, instead of what).
    Activating an older version is a roll-back; a built-in version is stored for the tenant
    first. Other tenants are never touched. The caller commits."""
    view = find(session, tenant_id, name, version, builtins)
    row = session.scalar(select(PolicyVersion).where(PolicyVersion.tenant_id == tenant_id,
                                                     PolicyVersion.name == name,
                                                     PolicyVersion.version == view.version))
    if row is None:  # a built-in the tenant never stored: keep its own copy, so it stays put
        try:
            with session.begin_nested():
                row = PolicyVersion(tenant_id=tenant_id, name=name, version=view.version, source=view.source,
                                    status="draft", builtin=True, created_by=BUILTIN_AUTHOR, created_at=utcnow())
                session.add(row)
        except IntegrityError:  # a concurrent activation stored it first
            row = session.scalar(select(PolicyVersion).where(PolicyVersion.tenant_id == tenant_id,
                                                             PolicyVersion.name == name,
                                                             PolicyVersion.version == view.version))
    current = session.scalar(select(PolicyVersion).where(PolicyVersion.tenant_id == tenant_id,
                                                         PolicyVersion.name == name, PolicyVersion.status == "active"))
    builtin = builtins.get(name)
    previous = current.version if current is not None else (builtin.version if builtin else None)
    if current is not None and current.id == row.id:
        return {**_row_view(row).to_json(), "previous_version": previous, "action": "unchanged"}
    ever_active = session.scalar(select(PolicyActivation.id).where(
        PolicyActivation.tenant_id == tenant_id, PolicyActivation.name == name,
        PolicyActivation.version == row.version).limit(1)) is not None
    action = "rollback" if ever_active or row.builtin else "activate"
    now = utcnow()
    try:
        with session.begin_nested():
            session.execute(update(PolicyVersion).where(PolicyVersion.tenant_id == tenant_id,
                                                        PolicyVersion.name == name, PolicyVersion.status == "active")
                            .values(status="retired"))
            session.execute(update(PolicyVersion).where(PolicyVersion.id == row.id)
                            .values(status="active", activated_at=now, activated_by=actor[:200]))
            session.add(PolicyActivation(tenant_id=tenant_id, name=name, version=row.version, previous_version=previous,
                                         action=action, actor=actor[:200], actor_key_id=actor_key_id, created_at=now))
    except IntegrityError:
        raise DocketError(f"Another activation of {name} happened at the same time; try again.",
                          code="conflict", status=409, title="Conflict") from None
    broker.access_changes_on_commit(session)  # cached active rules are replaced at once
    session.refresh(row)
    return {**_row_view(row).to_json(), "previous_version": previous, "action": action}


# --- comparing two versions ---------------------------------------------------------------------

def diff(a_source: str, a: Rule, b_source: str, b: Rule) -> dict[str, Any]:
    """What changed from version `a` to `b`: the line diff of the sources (`lines`: each
    [kind, old line number, new line number, text] with kind ' ', '-', '+' or '@' for a hunk
    header), the params and checks that changed, and whether the prompt or fields schema did
    (then stored fields cannot show the effect; see `needs_reanalysis`)."""
    old, new = a_source.splitlines(), b_source.splitlines()
    lines: list[list[Any]] = []
    for group in difflib.SequenceMatcher(None, old, new, autojunk=False).get_grouped_opcodes(3):
        first, last = group[0], group[-1]
        lines.append(["@", first[1] + 1, first[3] + 1, f"@@ -{first[1] + 1},{last[2] - first[1]} "
                                                       f"+{first[3] + 1},{last[4] - first[3]} @@"])
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [[" ", i + 1, j1 + (i - i1) + 1, old[i]] for i in range(i1, i2)]
                continue
            lines += [["-", i + 1, None, old[i]] for i in range(i1, i2)]
            lines += [["+", None, j + 1, new[j]] for j in range(j1, j2)]
    params = {}
    for key in sorted(set(a.params) | set(b.params)):
        before, after = a.params.get(key, _ABSENT), b.params.get(key, _ABSENT)
        if before != after:
            params[key] = {"from": None if before is _ABSENT else before, "to": None if after is _ABSENT else after,
                           "change": "added" if before is _ABSENT else "removed" if after is _ABSENT else "changed"}
    a_checks, b_checks = {c.id: c for c in a.checks}, {c.id: c for c in b.checks}
    checks = {}
    for check_id in list(a_checks) + [c for c in b_checks if c not in a_checks]:
        before, after = a_checks.get(check_id), b_checks.get(check_id)
        if before is None:
            checks[check_id] = {"change": "added", "to": _check_json(after)}
        elif after is None:
            checks[check_id] = {"change": "removed", "from": _check_json(before)}
        elif _check_json(before) != _check_json(after):
            changed = [k for k in ("expr", "outcome", "message") if getattr(before, k) != getattr(after, k)]
            checks[check_id] = {"change": "changed", "fields": changed, "from": _check_json(before),
                                "to": _check_json(after)}
    return {"from": a.version, "to": b.version, "lines": lines, "params": params, "checks": checks,
            "prompt_changed": a.prompt != b.prompt, "fields_changed": a.fields_schema != b.fields_schema,
            "document_type_changed": a.document_type != b.document_type,
            "reanalysis_needed": needs_reanalysis(b, a)}


_ABSENT = object()
_EPOCH = datetime.min.replace(tzinfo=timezone.utc)


def _check_json(check) -> dict[str, str]:
    return {"expr": check.expr, "outcome": check.outcome, "message": check.message}


def rule_json(rule: Rule) -> dict[str, Any]:
    """A loaded policy as GET /v1/rules describes it."""
    return {"name": rule.name, "version": rule.version, "document_type": rule.document_type,
            "description": rule.description, "fields": rule.fields_schema,
            "checks": [{"id": c.id, "outcome": c.outcome, "message": c.message} for c in rule.checks]}
