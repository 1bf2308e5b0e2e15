"""Compiling a check's CEL expression and checking it at load time. ``_compile``
lets the ``cel`` engine parse the source as written (bad syntax is its
``ValueError``, turned into a line/column message by ``_compile_error_text``),
parses it again with :mod:`docket.rules.syntax` and compiles the rewritten
source from :mod:`docket.rules.rewrite` when anything changed.
``_static_problem`` then catches, before any document is seen, what the
engine would only report when evaluating: unknown variables and functions,
``fields``/``params``/``document`` names that don't exist, time-zone
arguments, the wrong number of ``matches`` arguments and invalid constant
regular expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cel

from docket.rules.engine import _KNOWN_FUNCTIONS, _TIME_ACCESSORS, _TYPE_NAMES, _cel_error_text
from docket.rules.regex import _regex_problem
from docket.rules.rewrite import _rewrite, _Typing
from docket.rules.schema import ACTIVATION_NAMES, DOCUMENT_KEYS
from docket.rules.syntax import (_Call, _children, _emit, _Ident, _is_comprehension, _Parser, _scoped, _Select,
                                 _Unsupported)
from docket.rules.text import _one_line, _truncate


@dataclass(frozen=True)
class _Compiled:
    tree: Any  # parsed source
    references: dict  # {"variables": [...], "functions": [...]} of the source as written
    program: Any  # the cel.Program to run (the rewritten source, if anything needed rewriting)


def _compile(expr: str, typing: _Typing = _Typing()) -> _Compiled:
    """Compile ``expr``; raises ``ValueError`` (bad syntax) or :class:`_Unsupported`."""
    original = cel.compile(expr)
    try:
        tree = _Parser(expr).parse()
        rewritten = _rewrite(tree, typing)[0]
        program = original if rewritten == tree else cel.compile(_emit(rewritten))
    except _Unsupported:
        raise
    except (ValueError, RecursionError) as exc:  # pragma: no cover - a bug here, not in the rule
        raise _Unsupported(f"rewriting failed: {_one_line(exc)}") from exc
    return _Compiled(tree=tree, references=original.references(), program=program)


#: How deep all/exists/exists_one/map/filter may nest in one check.
MAX_COMPREHENSION_DEPTH = 2

_COMPILE_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*?)(?:\n|$)")


def _compile_error_text(exc: BaseException) -> str:
    """`` at line L, column C: <reason>`` from the engine's parse error, or ``""``."""
    match = _COMPILE_POSITION.search(str(exc))
    if not match:
        return ""
    line, column, reason = match.groups()
    return f" at line {line}, column {column}: {_truncate(_one_line(reason), 160)}"


def _static_problem(compiled: _Compiled, *, params: dict, field_names: set[str]) -> str | None:
    """Catch typos at load time that the engine would only report when evaluating."""
    tree = compiled.tree
    if _comprehension_depth(tree) > MAX_COMPREHENSION_DEPTH:
        # Nested macros multiply: four levels over 60-item lists are 13 million steps on every job.
        return (f"comprehensions (all, exists, exists_one, map, filter) nest at most {MAX_COMPREHENSION_DEPTH} "
                "deep")
    scoped = list(_scoped(tree))
    bound = {node.args[0].name for node, _ in scoped if _is_comprehension(node)}
    for name in compiled.references.get("variables", ()):
        if name not in ACTIVATION_NAMES and name not in bound and name not in _TYPE_NAMES:
            return f"unknown variable {name!r} (use fields, document, params or now)"
    methods = {node.name for node, _ in scoped if isinstance(node, _Call) and node.target is not None}
    for name in compiled.references.get("functions", ()):
        if name not in _KNOWN_FUNCTIONS:
            return f"unknown function .{name}()" if name in methods else f"unknown function {name}()"
    for node, scope in scoped:
        if isinstance(node, _Ident) and node.name not in scope and node.name not in ACTIVATION_NAMES | _TYPE_NAMES:
            # a comprehension variable used outside its macro
            return f"unknown variable {node.name!r} (use fields, document, params or now)"
        if isinstance(node, _Select) and isinstance(node.operand, _Ident) and node.operand.name not in scope:
            root, key = node.operand.name, node.field
            if root == "params" and key not in params:
                return f"params.{key} is not defined in params"
            if root == "fields" and key not in field_names:
                return f"fields.{key} is not declared in the fields schema"
            if root == "document" and key not in DOCUMENT_KEYS:
                return f"document.{key} is not available (document has {', '.join(sorted(DOCUMENT_KEYS))})"
        elif isinstance(node, _Call):
            problem = _call_problem(node)
            if problem:
                return problem
    return None


def _call_problem(node: _Call) -> str | None:
    """What is wrong with a function call a check makes, or None: time accessors take no time
    zone, and matches() needs its arguments and a pattern that compiles (checks and claim checks)."""
    if node.target is not None and node.name in _TIME_ACCESSORS and node.args:
        return f"{node.name}() takes no arguments: time-zone arguments are not supported (timestamps are UTC)"
    if node.name == "matches":
        expected = 1 if node.target is not None else 2
        if len(node.args) != expected:
            return f"matches() takes {'one pattern' if expected == 1 else 'a string and a pattern'}"
        return _constant_regex_problem(node.args[-1])
    return None


def _comprehension_depth(node) -> int:
    inner = max((_comprehension_depth(child) for child in _children(node)), default=0)
    return inner + 1 if _is_comprehension(node) else inner


def _is_constant(tree) -> bool:
    return not any(isinstance(node, _Ident) for node, _ in _scoped(tree))


def _constant_regex_problem(tree) -> str | None:
    if not _is_constant(tree):
        return None
    try:
        pattern = cel.evaluate(_emit(tree))
    except Exception as exc:
        return f"cannot evaluate regular expression: {_cel_error_text(exc)}"
    if not isinstance(pattern, str):
        return None
    problem = _regex_problem(pattern)
    return f"invalid RE2 pattern {pattern!r}: {problem}" if problem else None
