"""What the ``cel`` engine (PyPI ``common-expression-language``, the Rust
``cel`` crate) offers rule authors and what Docket adds to it at run time:
the names of the native functions, operators, macros and type identifiers
(used by the static checks and the rewrite), the Python helper functions
registered in every evaluation context (``_docket_matches`` for RE2
``matches``, ``_docket_add``/``_sub``/``_mul``/``_div`` for mixed int/double
arithmetic), the log filter that keeps the engine from logging their
ordinary failures, and the cleaning of engine error messages for verdicts.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import cel

from docket.rules.regex import _matches
from docket.rules.text import _one_line, _truncate
from docket.rules.values import _is_number

#: Functions the engine provides natively (macros such as ``has`` and
#: ``exists`` are expanded by its parser and never show up as functions).
_NATIVE_FUNCTIONS = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches",
        "int", "uint", "double", "string", "bytes", "timestamp", "duration", "dyn", "type",
        "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
        "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    }
)  # fmt: skip
#: Operator overloads as ``cel.Program.functions()`` names them.
_OPERATORS = frozenset(
    {
        "!_", "-_", "@in", "@not_strictly_false", "_!=_", "_%_", "_&&_", "_*_", "_+_", "_-_", "_/_",
        "_<=_", "_<_", "_==_", "_>=_", "_>_", "_?_:_", "_[_]", "_||_",
    }
)  # fmt: skip
_KNOWN_FUNCTIONS = _NATIVE_FUNCTIONS | _OPERATORS
_TIME_ACCESSORS = frozenset(n for n in _NATIVE_FUNCTIONS if n.startswith("get"))
_COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})
#: Type names the engine resolves as identifiers (``type(x) == int``).
_TYPE_NAMES = frozenset({"bool", "int", "uint", "double", "string", "bytes", "list", "map", "null_type", "type"})


def _promoting(op: str):
    """``a <op> b`` where int/uint meeting double is promoted to double, else native CEL."""
    native = cel.compile(f"a {op} b")

    def arithmetic(a, b):
        if _is_number(a) and _is_number(b) and type(a) is not type(b):
            a, b = float(a), float(b)
        return native.execute({"a": a, "b": b})

    return arithmetic


_ARITHMETIC_HELPERS = {"+": "_docket_add", "-": "_docket_sub", "*": "_docket_mul", "/": "_docket_div"}
_MATCHES_HELPER = "_docket_matches"
#: Python functions registered in every evaluation context (names start with
#: ``_docket_``, which rule authors cannot call: they are not known functions).
_FUNCTIONS: dict[str, Any] = {_MATCHES_HELPER: _matches}
_FUNCTIONS.update({name: _promoting(op) for op, name in _ARITHMETIC_HELPERS.items()})
_HELPER_NAMES = {_MATCHES_HELPER: "matches", **{name: f"_{op}_" for op, name in _ARITHMETIC_HELPERS.items()}}


class _HelperFailureFilter(logging.Filter):
    """The ``cel`` package logs a WARNING whenever a Python function raises.
    For this module's helpers that is an ordinary evaluation error, already
    reported in the verdict; don't log it twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return "Python function '_docket_" not in record.getMessage()
        except Exception:  # pragma: no cover - a malformed record is not ours
            return True


if not any(isinstance(f, _HelperFailureFilter) for f in logging.getLogger("cel").filters):
    logging.getLogger("cel").addFilter(_HelperFailureFilter())


#: Advice the engine appends to its error messages; not useful in a verdict.
_ENGINE_HINT = re.compile(
    r"\.?\s+(?:CEL does not coerce|Check function arguments|Check that the variable|Convert explicitly"
    r"|The value is outside|Keys must be|Check the CEL specification).*$",
    re.S,
)


def _cel_error_text(exc: BaseException) -> str:
    if isinstance(exc, KeyError):  # reading an absent map key, e.g. fields.total
        text = f"no such key: {exc.args[0]}" if exc.args else "no such key"
    else:
        text = str(exc) or type(exc).__name__
        text = re.sub(r"Python function call failed: (?:\w+(?:Error|Exception): )?", "", text)
        for helper, name in _HELPER_NAMES.items():
            text = text.replace(f"'{helper}'", f"'{name}'")
        text = _ENGINE_HINT.sub("", text) or text
    return _truncate(_one_line(text))
