"""Claim checks: a policy's ``claim_checks:`` section, CEL over a whole expense claim.

A claim check sees, besides ``params`` and ``now``:

* ``claim``: the header (``employee``, ``purpose``, ``cost_center``, ``claimed_amount`` in the
  policy's currency, ``trip``: ``start``/``end`` as ``YYYY-MM-DD``, ``destination``, ``origin``,
  ``city`` (the destination without a trailing 市), ``days`` (first to last day, inclusive)
  and ``nights``); absent values are absent, so guard them with ``has()``;
* ``documents``: one map per document: ``job_id``, ``status``, ``decision`` (as it stands),
  ``kind`` (``document_kind``), ``category`` (``expense_category``), ``date``, ``seller``,
  ``total`` and ``currency`` as printed, ``amount`` (in the policy's currency), ``deductible_vat``,
  ``invoice_number``, ``travel`` (a ticket's ``from``/``to``/``departure``...), ``nights`` (read
  from a hotel invoice's lodging line, when printed), ``duplicate_claims`` (other claims of the
  tenant holding the same invoice: number + code + seller, the same file, or a near-duplicate
  image) and ``fields`` (all the fields);
* ``totals``: ``amount``, ``by_category`` and ``deductible_vat`` in the policy's currency.

A check with ``for_each: document`` runs once per document with ``doc`` bound to it; each
document for which it is false gives one reason naming that job. Any other check runs once; when
false, its reason names the jobs its ``jobs`` expression lists (a list of job ids), else every
job of the claim. TRUE means the claim passes, as for document checks; a check that cannot be
evaluated sends the claim to a person (``needs_review``), naming every job.

Messages may use ``{params.x}``, ``{claim.x}``, ``{totals.x}`` and (per document) ``{doc.x}``,
dotted paths included (``{claim.trip.destination}``, ``{doc.travel.to}``).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import cel

from docket.rules.compiler import MAX_COMPREHENSION_DEPTH, _call_problem, _comprehension_depth, _compile, \
    _compile_error_text
from docket.rules.engine import _FUNCTIONS, _KNOWN_FUNCTIONS, _TYPE_NAMES, _cel_error_text
from docket.rules.rewrite import _Typing
from docket.rules.syntax import _Call, _Ident, _is_comprehension, _scoped, _Select, _Unsupported
from docket.rules.text import _truncate
from docket.rules.values import _cel_type_name, _to_cel, _utc

#: Documents one claim may hold: the per-document checks' budget.
MAX_CLAIM_DOCUMENTS = 500
CLAIM_NAMES = frozenset({"claim", "documents", "totals", "params", "now"})
DOCUMENT_NAME = "doc"

_PLACEHOLDER = re.compile(r"\{(params|claim|totals|doc)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\}")


@dataclass(frozen=True)
class ClaimCheck:
    id: str
    expr: str
    outcome: str
    message: str
    for_each: bool = False
    jobs: str | None = None
    #: The message in other languages: docket.i18n locale (``zh_Hans``) -> template.
    messages: dict = field(default_factory=dict, compare=False)
    program: Any = field(default=None, compare=False, repr=False)
    jobs_program: Any = field(default=None, compare=False, repr=False)

    def runners(self):
        if self.program is None:
            object.__setattr__(self, "program", _compile(self.expr).program)
        if self.jobs and self.jobs_program is None:
            object.__setattr__(self, "jobs_program", _compile(self.jobs).program)
        return self.program, self.jobs_program

    def __deepcopy__(self, memo):
        return ClaimCheck(self.id, self.expr, self.outcome, self.message, self.for_each, self.jobs,
                          dict(self.messages), self.program, self.jobs_program)

    def __getstate__(self):  # compiled programs are not picklable; compiled again on first use
        return {**self.__dict__, "program": None, "jobs_program": None}

    def __setstate__(self, state):
        self.__dict__.update(state)


def _static_problem(compiled, *, params: dict, names: frozenset) -> str | None:
    """What the engine would only report when evaluating: unknown variables, functions and params."""
    tree = compiled.tree
    if _comprehension_depth(tree) > MAX_COMPREHENSION_DEPTH:
        return f"comprehensions (all, exists, exists_one, map, filter) nest at most {MAX_COMPREHENSION_DEPTH} deep"
    scoped = list(_scoped(tree))
    bound = {node.args[0].name for node, _ in scoped if _is_comprehension(node)}
    usable = ", ".join(sorted(names))
    for name in compiled.references.get("variables", ()):
        if name not in names and name not in bound and name not in _TYPE_NAMES:
            return f"unknown variable {name!r} (use {usable})"
    for name in compiled.references.get("functions", ()):
        if name not in _KNOWN_FUNCTIONS:
            return f"unknown function {name}()"
    for node, scope in scoped:
        if isinstance(node, _Ident) and node.name not in scope and node.name not in names | _TYPE_NAMES:
            return f"unknown variable {node.name!r} (use {usable})"
        if (isinstance(node, _Select) and isinstance(node.operand, _Ident) and node.operand.name == "params"
                and "params" not in scope and node.field not in params):
            return f"params.{node.field} is not defined in params"
        if isinstance(node, _Call):
            problem = _call_problem(node)
            if problem:
                return problem
    return None


def compile_claim_checks(items: list[dict], params: dict, fail: Callable[..., Exception]) -> tuple[ClaimCheck, ...]:
    """The ``claim_checks`` of a rule file (already shape-checked by the schema), compiled and
    statically checked; ``fail(message, *keys)`` builds the loader's error."""
    typing = _Typing(params=params, field_types={})
    checks, seen = [], set()
    for index, item in enumerate(items or ()):
        check_id = item["id"]
        if check_id in seen:
            raise fail(f"duplicate claim check id {check_id!r}", "claim_checks", index, "id")
        seen.add(check_id)
        for_each = item.get("for_each") == "document"
        names = CLAIM_NAMES | ({DOCUMENT_NAME} if for_each else set())
        programs = {}
        for key in ("expr", "jobs"):
            source = item.get(key)
            if source is None:
                continue
            if key == "jobs" and for_each:
                raise fail(f"claim check {check_id!r}: 'jobs' is for claim-wide checks (a for_each check "
                           "names the document it ran on)", "claim_checks", index, key)
            try:
                compiled = _compile(source, typing)
            except _Unsupported as exc:
                raise fail(f"claim check {check_id!r}: CEL that Docket cannot check ({exc})",
                           "claim_checks", index, key) from exc
            except Exception as exc:
                raise fail(f"claim check {check_id!r}: CEL does not compile{_compile_error_text(exc)}",
                           "claim_checks", index, key) from exc
            problem = _static_problem(compiled, params=params, names=frozenset(names))
            if problem:
                raise fail(f"claim check {check_id!r}: {problem}", "claim_checks", index, key)
            programs[key] = compiled.program
        templates = _templates(item["message"], check_id, index, fail)
        for locale, template in templates.items():
            for root, path in _PLACEHOLDER.findall(template):
                if root == "params" and path.split(".")[1] not in params:
                    raise fail(f"claim check {check_id!r}: message refers to unknown params{path}",
                               "claim_checks", index, "message")
                if root == "doc" and not for_each:
                    raise fail(f"claim check {check_id!r}: {{doc...}} is only known to a for_each: document check",
                               "claim_checks", index, "message")
        english = templates.pop("en")
        checks.append(ClaimCheck(id=check_id, expr=item["expr"], outcome=item["outcome"], message=english,
                                 for_each=for_each, jobs=item.get("jobs"), messages=templates,
                                 program=programs["expr"], jobs_program=programs.get("jobs")))
    return tuple(checks)


def _templates(message: Any, check_id: str, index: int, fail) -> dict[str, str]:
    """{docket.i18n locale: template} of a message: a template (English), or {language tag: template}."""
    from docket import i18n

    if isinstance(message, str):
        return {"en": message}
    templates: dict[str, str] = {}
    for tag, text in message.items():
        locale = i18n.normalize(tag)
        if locale is None or locale in templates:
            raise fail(f"claim check {check_id!r}: message language {tag!r} is not one Docket speaks, or given "
                       "twice", "claim_checks", index, "message")
        templates[locale] = text
    return templates


def localized(reason: Any, locale: str | None = None) -> Any:
    """A claim reason as shown to a reader of ``locale`` (default: the current language): its
    template in that language rendered with the values it was decided with (``args``), on a copy."""
    from docket import i18n

    if not isinstance(reason, dict):
        return reason
    shown = {k: v for k, v in reason.items() if k not in ("templates", "args")}
    locale = i18n.normalize(locale) or i18n.current()
    templates = reason.get("templates")
    if locale != i18n.DEFAULT and isinstance(templates, dict) and isinstance(templates.get(locale), str):
        values = reason.get("args") or {}
        shown["message"] = _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1) + m.group(2), "unknown")),
                                            templates[locale])
    return shown


def _args(templates: dict[str, str], sources: dict[str, Any]) -> dict[str, str]:
    """Each placeholder of the templates as :func:`render` shows it (``claim.trip.city`` -> ``青岛``)."""
    out = {}
    for template in templates.values():
        for match in _PLACEHOLDER.finditer(template):
            out.setdefault(match.group(1) + match.group(2), render(match.group(0), sources))
    return out


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(_format(v) for v in value)
    return str(value)


def render(message: str, sources: dict[str, Any]) -> str:
    def replace(match: re.Match) -> str:
        value: Any = sources.get(match.group(1))
        for key in match.group(2).split(".")[1:]:
            if not isinstance(value, dict) or key not in value:
                return "unknown"
            value = value[key]
        return _truncate(_format(value), 200)

    return _PLACEHOLDER.sub(replace, message)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def evaluate_claim(rule, claim: dict, documents: list[dict], totals: dict,
                   now: _dt.datetime | None = None) -> list[dict]:
    """Every failed claim check of ``rule`` as a reason ``{check, outcome, message, job_ids}``.
    Never raises: a check that cannot be evaluated is a ``needs_review`` reason naming every job."""
    checks = getattr(rule, "claim_checks", ())
    if not checks:
        return []
    claim, documents, totals = _clean(claim), [_clean(d) for d in documents], _clean(totals)
    all_ids = [d["job_id"] for d in documents]
    moment = _utc(now) if now is not None else _dt.datetime.now(_dt.timezone.utc)
    context = cel.Context(variables={"params": rule.cel_params(), "claim": _to_cel(claim, numbers_as_double=True),
                                     "documents": _to_cel(documents, numbers_as_double=True),
                                     "totals": _to_cel(totals, numbers_as_double=True), "now": moment},
                          functions=_FUNCTIONS)
    reasons: list[dict] = []
    sources = {"params": rule.params, "claim": claim, "totals": totals}

    def add(check: ClaimCheck, outcome: str, message: str, job_ids: list[str], shown: dict | None = None) -> None:
        reasons.append({"check": check.id, "outcome": outcome, "message": message, "job_ids": job_ids,
                        "rule": rule.name, "rule_version": rule.version})
        if shown is not None and check.messages:  # other languages: shown on reading (localized)
            templates = {**check.messages, "en": check.message}
            reasons[-1].update(templates=templates, args=_args(templates, shown))

    for check in checks:
        program, jobs_program = check.runners()
        if check.for_each:
            for doc in documents:
                try:
                    context.add_variable(DOCUMENT_NAME, _to_cel(doc, numbers_as_double=True))
                    result = program.execute(context)
                except Exception as exc:
                    add(check, "needs_review", f"could not evaluate: {_cel_error_text(exc)}", [doc["job_id"]])
                    continue
                if not isinstance(result, bool):
                    add(check, "needs_review", f"could not evaluate: expression returned {_cel_type_name(result)}, "
                        "not bool", [doc["job_id"]])
                elif not result:
                    here = {**sources, "doc": doc}
                    add(check, check.outcome, render(check.message, here), [doc["job_id"]], here)
            continue
        try:
            result = program.execute(context)
        except Exception as exc:
            add(check, "needs_review", f"could not evaluate: {_cel_error_text(exc)}", all_ids)
            continue
        if not isinstance(result, bool):
            add(check, "needs_review", f"could not evaluate: expression returned {_cel_type_name(result)}, not bool",
                all_ids)
            continue
        if result:
            continue
        job_ids = all_ids
        if jobs_program is not None:
            try:
                named = jobs_program.execute(context)
                job_ids = [j for j in all_ids if j in {str(x) for x in named}] if isinstance(named, list) else all_ids
            except Exception:
                job_ids = all_ids
        add(check, check.outcome, render(check.message, sources), job_ids, sources)
    return reasons
