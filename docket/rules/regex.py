"""Regular expressions for CEL ``matches``, with RE2 (google-re2) semantics as
the CEL spec and cel-python define them: a partial match, ASCII ``\\b``/``\\w``/
``\\d``/``\\s``, Unicode-aware ``(?i)``. Compiled patterns are cached (the
engine's own ``matches`` recompiles its regex on every call), and the same
compiler checks constant and ``params`` patterns when a rule file is loaded.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

from docket.rules.text import _one_line
from docket.rules.values import _cel_type_name

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # errors are reported by RuleError or the verdict, not on stderr


@functools.lru_cache(maxsize=512)
def _re2(pattern: str):
    return re2.compile(pattern, _RE2_OPTIONS)


def _matches(text: Any, pattern: Any) -> bool:
    """CEL ``matches`` with RE2 (partial match), as the spec and cel-python define it."""
    if not isinstance(text, str) or not isinstance(pattern, str):
        raise TypeError(f"no such overload: matches({_cel_type_name(text)}, {_cel_type_name(pattern)})")
    try:
        regex = _re2(pattern)
    except Exception as exc:  # re2.error, whose argument may be bytes
        raise ValueError(f"invalid RE2 pattern {pattern!r}: {_regex_error_text(exc)}") from None
    return regex.search(text) is not None


def _regex_error_text(exc: BaseException) -> str:
    detail = exc.args[0] if exc.args else exc
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return _one_line(detail)


def _regex_problem(pattern: str) -> str | None:
    try:
        _re2(pattern)
    except Exception as exc:  # re2.error, whose argument is bytes
        return _regex_error_text(exc)
    return None
