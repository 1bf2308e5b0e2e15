"""Applying a rule to extracted fields: :func:`evaluate` validates the fields
against the rule's schema, runs every compiled check in a context of its
own and returns a :class:`Verdict`. Decisions only ever get stricter
(``approve < needs_review < reject``, see ``DECISIONS`` and ``_stricter``);
anything that cannot be evaluated becomes ``needs_review``, never
``approve`` and never an exception.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterable

from docket.rules.engine import _cel_error_text
from docket import i18n
from docket.rules.messages import _placeholder_values, _render
from docket.rules.model import Rule
from docket.rules.text import _one_line, _truncate
from docket.rules.values import _cel_type_name, _to_cel, _utc

#: Decisions in increasing severity.
DECISIONS = ("approve", "needs_review", "reject")
_SEVERITY = {d: i for i, d in enumerate(DECISIONS)}

_MAX_SCHEMA_REASONS = 20


@dataclass
class Verdict:
    decision: str
    reasons: list[dict]

    def to_dict(self) -> dict:
        return {"decision": self.decision, "reasons": [dict(r) for r in self.reasons]}


def _clean(value: Any) -> Any:
    """Drop ``None`` and ``""`` map entries, recursively: a field not found is absent."""
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _stricter(a: str, b: str) -> str:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def evaluate(
    rule: Rule,
    fields: dict,
    document: dict,
    *,
    now: _dt.datetime | None = None,
    proposed: str = "approve",
    proposed_reasons: Iterable[dict] = (),
    schema_reasons: Iterable[dict] | None = None,
    confidence: Mapping | None = None,
    evidence: Mapping | None = None,
    sources: Mapping | None = None,
) -> Verdict:
    """Apply ``rule`` to extracted ``fields``; see the :mod:`docket.rules` docstring for semantics.

    ``schema_reasons``: the ``required:*``/``schema:*`` reasons an earlier evaluation found for
    these same fields against this same fields schema (validation is deterministic, and most of
    an evaluation's cost); they are reused instead of validating again. Simulations and
    re-decisions pass them when the schema did not change.

    ``confidence``/``evidence``/``sources``: per field, as the analyzer recorded them. Each field
    the rule's ``certainty`` names whose value is present but read with less confidence than it
    asks (or none recorded) adds an ``uncertain_field`` reason (needs_review) naming the field,
    value, confidence and evidence box; values from an e-invoice's own data or a verified QR code
    are exact. ``confidence=None`` (a caller with no analysis, e.g. a test of the checks alone)
    skips the test; every analysis, simulation and re-decision passes a mapping."""
    if proposed not in _SEVERITY:
        raise ValueError(f"proposed decision must be one of {DECISIONS}, got {proposed!r}")
    tag = {"rule": rule.name, "rule_version": rule.version}
    decision = proposed
    reasons: list[dict] = []
    for reason in proposed_reasons or ():
        reasons.append({**tag, **dict(reason)})

    def add(check: str, outcome: str, message: str) -> None:
        nonlocal decision
        decision = _stricter(decision, outcome)
        reasons.append({"check": check, "outcome": outcome, "message": message, **tag})

    if isinstance(fields, Mapping):
        cleaned = _clean(fields)
    else:
        cleaned = {}
    if schema_reasons is not None:
        for reason in schema_reasons:
            add(reason["check"], reason["outcome"], reason["message"])
    else:
        _validate(rule, fields, cleaned, add)

    if rule.certainty and confidence is not None:
        for reason in uncertain_fields(rule, cleaned, confidence, evidence, sources):
            add(reason["check"], reason["outcome"], reason["message"])
            reasons[-1].update({k: reason[k] for k in ("field", "value", "confidence", "threshold", "evidence")})

    document = _clean(document) if isinstance(document, Mapping) else {}
    moment = _utc(now) if now is not None else _dt.datetime.now(_dt.timezone.utc)
    # cel.Context is not thread-safe: each evaluation has one to itself (see
    # Rule._take_context); the compiled programs are immutable and shared.
    context = rule._take_context()
    try:
        try:
            context.add_variable("fields", _to_cel(cleaned, numbers_as_double=True))
            context.add_variable("document", _to_cel(document, numbers_as_double=False))
            context.add_variable("now", moment)
        except Exception as exc:  # pragma: no cover - defensive: _to_cel only produces convertible values
            for check in rule.checks:
                add(check.id, "needs_review", f"could not evaluate: {_cel_error_text(exc)}")
            return Verdict(decision=decision, reasons=reasons)
        for check in rule.checks:
            try:
                result = check.runner().execute(context)
            except Exception as exc:  # any evaluation error: never crash
                add(check.id, "needs_review", f"could not evaluate: {_cel_error_text(exc)}")
                continue
            if not isinstance(result, bool):
                kind = _cel_type_name(result)
                add(check.id, "needs_review", f"could not evaluate: expression returned {kind}, not bool")
            elif not result:
                add(check.id, check.outcome, _render(check.message, rule.params, cleaned, document))
                if check.messages:  # the same reason in other languages: the templates and the values shown
                    reasons[-1]["args"] = _placeholder_values([check.message, *check.messages.values()],
                                                              rule.params, cleaned, document)
                    reasons[-1]["templates"] = {i18n.tag(k): v for k, v in check.messages.items()}
    finally:
        # don't keep the document alive in an idle context
        context.add_variable("fields", None)
        context.add_variable("document", None)
        rule._contexts.append(context)
    return Verdict(decision=decision, reasons=reasons)


def _validate(rule: Rule, fields: Any, cleaned: dict, add) -> None:
    """``required:<field>`` and ``schema:<path>`` reasons for fields that do not fit the schema."""
    if not isinstance(fields, Mapping):
        add("schema:$", "needs_review", f"extracted fields must be an object, got {type(fields).__name__}")
    for name in rule.required_fields:
        if name not in cleaned:
            add(f"required:{name}", "needs_review", f"required field {name} was not found")

    try:
        errors = [
            e
            for e in rule.validator().iter_errors(cleaned)
            if not (e.validator == "required" and not e.absolute_path)  # reported as required:<field>
        ]
    except Exception as exc:  # pragma: no cover - defensive (e.g. recursion on odd input)
        errors = []
        add("schema:$", "needs_review", f"could not validate fields: {_one_line(exc)}")
    errors.sort(key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors[:_MAX_SCHEMA_REASONS]:
        where = "/".join(str(p) for p in error.absolute_path) or "$"
        add(f"schema:{where}", "needs_review", f"field {where} is invalid: {_truncate(error.message)}")
    if len(errors) > _MAX_SCHEMA_REASONS:
        add("schema:$", "needs_review", f"{len(errors) - _MAX_SCHEMA_REASONS} more schema errors not shown")


#: Sources whose values are exact by construction: an e-invoice's own data, a verified QR code.
CERTAIN_SOURCES = frozenset({"embedded_xml", "qr"})
UNCERTAIN_FIELD = "uncertain_field"


def _confidence(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _box_text(boxes: Any) -> str:
    if not isinstance(boxes, (list, tuple)) or not boxes:
        return "no evidence box"
    parts = []
    for box in list(boxes)[:3]:
        if isinstance(box, (list, tuple)):
            parts.append("[" + ", ".join(str(round(v)) if isinstance(v, (int, float)) else str(v) for v in box) + "]")
    more = f" and {len(boxes) - 3} more" if len(boxes) > 3 else ""
    return ("evidence box " + ", ".join(parts) + more) if parts else "no evidence box"


def uncertain_fields(rule: Rule, fields: Mapping, confidence: Mapping | None, evidence: Mapping | None = None,
                     sources: Mapping | None = None) -> list[dict]:
    """One ``uncertain_field`` reason per field that ``rule.certainty`` names, whose value is
    present in ``fields`` (absent values are the schema's and the checks' business) and whose
    confidence is below the threshold or unknown; exact sources pass."""
    confidence = confidence if isinstance(confidence, Mapping) else {}
    evidence = evidence if isinstance(evidence, Mapping) else {}
    sources = sources if isinstance(sources, Mapping) else {}
    out = []
    for name, threshold in rule.certainty.items():
        if name not in fields or sources.get(name) in CERTAIN_SOURCES:
            continue
        value, sure = fields[name], _confidence(confidence.get(name))
        if sure is not None and sure >= threshold:
            continue
        boxes = evidence.get(name) or []
        shown = _truncate(_one_line(value if isinstance(value, str) else repr(value)), 80)
        how = f"with confidence {round(sure, 3):g}" if sure is not None else "with no recorded confidence"
        out.append({
            "check": UNCERTAIN_FIELD, "outcome": "needs_review",
            "message": (f"{name} {shown} was read {how}, below the {threshold:g} this policy needs to decide "
                        f"on it alone ({_box_text(boxes)}): check the value"),
            "field": name, "value": value, "confidence": sure, "threshold": threshold, "evidence": boxes,
        })
    return out
