"""Rendering a failed check's message: ``{params.x}``, ``{fields.x}`` and
``{document.x}`` placeholders are replaced by the value (numbers without a
needless ``.0``, booleans as ``true``/``false``, lists comma-separated, each
value truncated), or by ``unknown`` when the field or document key is
absent. ``_PLACEHOLDER`` is also what the loader uses to check that every
``{params.x}`` names an existing param.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from docket.rules.text import _truncate

_PLACEHOLDER = re.compile(r"\{(params|fields|document)\.([A-Za-z_][A-Za-z0-9_]*)\}")


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(_format_value(v) for v in value)
    return str(value)


def _render(message: str, params: dict, fields: dict, document: Mapping) -> str:
    sources = {"params": params, "fields": fields, "document": document}

    def replace(match: re.Match) -> str:
        source = sources[match.group(1)]
        if match.group(2) in source:
            return _truncate(_format_value(source[match.group(2)]), 200)
        return "unknown"

    return _PLACEHOLDER.sub(replace, message)


def _placeholder_values(templates, params: dict, fields: dict, document: Mapping) -> dict[str, str]:
    """``{"params.max_total": "5000", …}``: each placeholder of ``templates`` as :func:`_render`
    would show it. Stored with a reason (``args``) so that it can be shown again in another
    language without the rule, the fields or the document (docket/reasons.py)."""
    sources = {"params": params, "fields": fields, "document": document}
    values: dict[str, str] = {}
    for template in templates:
        for kind, key in _PLACEHOLDER.findall(template):
            name = f"{kind}.{key}"
            if name not in values:
                source = sources[kind]
                values[name] = _truncate(_format_value(source[key]), 200) if key in source else "unknown"
    return values


#: Any dotted placeholder (``{params.x}``, and a claim check's ``{claim.trip.city}``, ``{doc.filename}``…).
_ANY_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\}")


def _render_values(template: str, values: Mapping) -> str:
    """``template`` with the values recorded for its placeholders (:func:`_placeholder_values`, or a
    claim check's ``args``); ``unknown`` when one was not recorded."""
    return _ANY_PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "unknown")), template)
