"""A decision's reasons in the reader's language.

A stored reason keeps what it was decided with: the check id, the outcome, the English message,
and — for a rule check whose message comes in other languages — ``templates`` (language tag ->
template, as the rule version said) and ``args`` (each placeholder's value as shown). Showing it
in another language renders that template with those values (or, for Docket's own reasons —
``required:<field>``, ``schema:<path>``, ``uncertain_field``, CEL failures, the model's — a
catalog translation), on a copy: the stored decision and its history never change. Reasons
stored before a language was added stay in English.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from docket import i18n
from docket.i18n import N_
from docket.rules.messages import _render_values

#: Keys kept in the database, not shown (they are how a reason is shown, not what it says).
_INTERNAL = ("templates",)

_REQUIRED = re.compile(r"^required field (?P<field>.+) was not found$")
_SCHEMA = re.compile(r"^field (?P<where>\S+) is invalid: (?P<why>.*)$", re.S)
_MORE = re.compile(r"^(?P<n>\d+) more schema errors not shown$")
_CEL = re.compile(r"^could not evaluate: (?P<why>.*)$", re.S)

_TEXTS = {
    "required": N_("required field %(field)s was not found"),
    "schema": N_("field %(where)s is invalid: %(why)s"),
    "more": N_("%(n)s more schema errors not shown"),
    "cel": N_("could not evaluate: %(why)s"),
    "uncertain": N_("%(field)s %(value)s was read with confidence %(confidence)s, below the %(threshold)s this "
                    "policy needs to decide on it alone: check the value"),
    "uncertain_none": N_("%(field)s %(value)s was read with no recorded confidence, below the %(threshold)s this "
                         "policy needs to decide on it alone: check the value"),
    "model_none": N_("the model gave no usable answer"),
    "model_no_reason": N_("the model proposed this without giving a reason"),
    "unknown": N_("unknown"),  # a placeholder whose value the document did not have
}


def _catalog_text(reason: dict, locale: str) -> str | None:
    catalog = i18n.translations(locale)
    check, message = str(reason.get("check") or ""), str(reason.get("message") or "")
    if check.startswith("required:") and (m := _REQUIRED.match(message)):
        return catalog.gettext(_TEXTS["required"]) % m.groupdict()
    if check.startswith("schema:"):
        if m := _MORE.match(message):
            return catalog.gettext(_TEXTS["more"]) % m.groupdict()
        if m := _SCHEMA.match(message):
            return catalog.gettext(_TEXTS["schema"]) % m.groupdict()
    if check == "uncertain_field" and "field" in reason:
        value = reason.get("value")
        shown = value if isinstance(value, str) else repr(value)
        confidence = reason.get("confidence")
        text = _TEXTS["uncertain"] if isinstance(confidence, (int, float)) else _TEXTS["uncertain_none"]
        threshold = reason.get("threshold")
        return catalog.gettext(text) % {
            "field": reason["field"], "value": shown[:80],
            "confidence": f"{round(confidence, 3):g}" if isinstance(confidence, (int, float)) else "",
            "threshold": f"{threshold:g}" if isinstance(threshold, (int, float)) else threshold}
    if m := _CEL.match(message):
        return catalog.gettext(_TEXTS["cel"]) % m.groupdict()
    if message in (_TEXTS["model_none"], _TEXTS["model_no_reason"]):
        return catalog.gettext(message)
    return None


def localized(reason: Any, locale: str | None = None) -> Any:
    """``reason`` as shown to a reader of ``locale`` (default: the current language)."""
    if not isinstance(reason, dict):
        return reason
    locale = i18n.normalize(locale) or i18n.current()
    shown = {k: v for k, v in reason.items() if k not in _INTERNAL}
    if locale == i18n.DEFAULT:
        return shown
    templates = reason.get("templates")
    template = i18n.pick(templates, locale) if isinstance(templates, dict) else None
    if template and i18n.normalize(next((t for t in templates if templates[t] == template), "")) == locale:
        unknown = i18n.translations(locale).gettext(_TEXTS["unknown"])
        values = {k: (unknown if v == "unknown" else v) for k, v in (reason.get("args") or {}).items()}
        shown["message"] = _render_values(template, values)
    else:
        text = _catalog_text(reason, locale)
        if text is not None:
            shown["message"] = text
    return shown


def localize_all(reasons: Iterable | None, locale: str | None = None):
    if reasons is None:
        return None
    if not isinstance(reasons, list):
        return reasons
    return [localized(r, locale) for r in reasons]
