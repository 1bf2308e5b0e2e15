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
