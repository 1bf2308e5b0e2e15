"""Domain rules (policies) and their deterministic checks, written in CEL.

A rule file is YAML, one policy per file, named ``<name>.yaml``::

    name: expense_policy            # must equal the file stem
    description: ...
    document_type: receipt          # receipt | contract | screenshot
    default_currency: MYR           # optional
    params: {meal_cap: 100.0, ...}  # thresholds, visible to checks as ``params``
    prompt: |                       # instructions for a vision-language analyzer
      ...
    fields: {...}                   # JSON Schema (draft 2020-12) of the extracted fields
    checks:
      - id: meal_cap
        expr: "..."                 # CEL; TRUE means the document passes the check
        outcome: needs_review       # reject | needs_review
        message: "Meal receipts over {params.meal_cap} need a manager's approval"

Files are validated strictly when loaded (:func:`load_rule`, :func:`load_rules`);
the first problem raises :class:`RuleError` naming the file, so a bad policy
stops the service at start-up instead of silently approving documents.

:func:`evaluate` applies a rule to extracted fields and returns a
:class:`Verdict`. Decisions only ever get stricter
(``approve < needs_review < reject``); anything that cannot be evaluated becomes
``needs_review``, never ``approve`` and never an exception.

Checks run on the ``cel`` Rust interpreter (PyPI ``common-expression-language``,
which wraps the ``cel`` crate): programs are compiled once at load time and a
typical document is evaluated in well under a millisecond. Notes for rule
authors (engine behaviour, and what this module adds to it):

* Every number in ``fields`` and ``params`` is a CEL ``double`` (ints are
  converted), so ``fields.total > params.meal_cap`` works whether the analyzer
  produced ``12`` or ``12.0``. Comparisons (``<``, ``==``, ``in`` ...) across
  int, uint and double work natively. The engine does not mix them in
  arithmetic (``2 * 5.0`` is "no such overload"), so this module rewrites
  mixed arithmetic (``12 * params.years``, ``size(x) + params.extra``,
  ``i.amount * 2`` inside a macro) to promote both operands to double, as
  cel-python did. ``%`` is never promoted.
* ``document`` values are passed as given (``pages`` stays an int; an int
  beyond 64 bits becomes a double).
* ``now`` is a UTC ``timestamp``. Dates are ``YYYY-MM-DD`` strings; turn them
  into timestamps with ``timestamp(fields.d + "T00:00:00Z")``.
  ``getDayOfWeek()`` is 0 for Sunday, 6 for Saturday; ``getMonth()`` and
  ``getDayOfMonth()`` count from 0, ``getDate()`` from 1. The accessors take
  no time-zone argument (``getDayOfWeek("Asia/Kuala_Lumpur")`` is refused at
  load time); all timestamps are UTC.
* ``matches()`` is a partial match with RE2 syntax and semantics (no
  look-around or back-references; ``\\b``, ``\\w``, ``\\d``, ``\\s`` are ASCII);
  ``(?i)`` makes it case-insensitive, Unicode-aware (Chinese works). This
  module runs it with google-re2 and caches compiled patterns; the engine's
  own ``matches`` (Rust ``regex``, Unicode ``\\b``/``\\w``, recompiled on every
  call) is never used. Both ``s.matches(p)`` and ``matches(s, p)`` work.
  Constant patterns, and params whose keys end in ``_pattern``/``_patterns``/
  ``_terms``, are compiled at load time (other patterns on first use; an
  invalid one makes the check ``needs_review``); put long regexes in params so
  YAML and CEL escaping don't stack up.
* Only the engine's standard functions are available (``size``, ``contains``,
  ``startsWith``, ``endsWith``, ``matches``, ``int``, ``uint``, ``double``,
  ``string``, ``bytes``, ``timestamp``, ``duration``, ``dyn``, ``type``, the
  timestamp/duration ``get*()`` accessors and the ``has``/``all``/``exists``/
  ``exists_one``/``map``/``filter`` macros). There is no ``lowerAscii()``
  (use ``(?i)``), ``bool()``, ``max()``/``min()`` or optional syntax
  (``x.?y``); unknown functions, variables, fields, params and ``document``
  keys are reported when the file is loaded.
* ``&&`` and ``||`` short-circuit left to right and, as the CEL spec says, an
  error on one side is absorbed when the other side decides (``x.a || true``
  is true). ``c ? a : b`` evaluates only the branch it picks. ``all()`` and
  ``exists()`` stop at the first element that decides, but an error in any
  element they reach fails the whole check (the engine does not absorb it).
* ``==``/``!=`` between values of unrelated types (``"1" == 1``) are false/
  true rather than an error.
* Guard optional fields with ``has(fields.x)``: reading an absent field is an
  evaluation error (``no such key: x``), which turns into ``needs_review``.
* Messages may contain ``{params.x}``, ``{fields.x}`` and ``{document.x}``
  placeholders; ``{params.x}`` must name an existing param.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import functools
import hashlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import cel
import jsonschema
import re2
import yaml
from jsonschema import Draft202012Validator

__all__ = [
    "RuleError",
    "Check",
    "Rule",
    "Verdict",
    "DECISIONS",
    "DOCUMENT_TYPES",
    "load_rule",
    "load_rules",
    "default_rules_dir",
    "evaluate",
    "RULE_FILE_SCHEMA",
]

logger = logging.getLogger(__name__)

DOCUMENT_TYPES = ("receipt", "contract", "screenshot")
OUTCOMES = ("reject", "needs_review")
#: Decisions in increasing severity.
DECISIONS = ("approve", "needs_review", "reject")
_SEVERITY = {d: i for i, d in enumerate(DECISIONS)}

#: Keys a check may read from ``document``.
DOCUMENT_KEYS = frozenset({"text", "pages", "mime_type", "filename", "near_duplicate", "duplicate_of"})
#: Top-level CEL variables.
ACTIVATION_NAMES = frozenset({"fields", "document", "params", "now"})

_MAX_SCHEMA_REASONS = 20
_MAX_MESSAGE = 300

_IDENT = "^[a-z][a-z0-9_]{0,63}$"

#: JSON Schema of a rule file (the YAML, after parsing).
RULE_FILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Docket rule file",
    "type": "object",
    "required": ["name", "description", "document_type", "prompt", "fields", "checks"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": _IDENT},
        "description": {"type": "string", "minLength": 1},
        "document_type": {"enum": list(DOCUMENT_TYPES)},
        "default_currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "params": {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        },
        "prompt": {"type": "string", "minLength": 1},
        "fields": {
            "type": "object",
            "required": ["type", "properties"],
            "properties": {
                "type": {"const": "object"},
                "properties": {"type": "object"},
                "required": {
                    "type": "array",
                    "items": {"type": "string"},
                    "uniqueItems": True,
                },
            },
        },
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "expr", "outcome", "message"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": _IDENT},
                    "expr": {"type": "string", "minLength": 1},
                    "outcome": {"enum": list(OUTCOMES)},
                    "message": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}
_RULE_FILE_VALIDATOR = Draft202012Validator(RULE_FILE_SCHEMA)


class RuleError(Exception):
    """A rule file is invalid. The message names the file and the reason."""


# --------------------------------------------------------------------------
# CEL engine
#
# Expressions are compiled by the ``cel`` package (Rust ``cel`` crate), which is
# also the authority on syntax and reports the variables and functions an
# expression references. It exposes no syntax tree, so this module parses the
# (already accepted) source itself, for two purposes: the static checks that
# need structure (``fields.x``/``params.x``/``document.x`` names, comprehension
# variables, constant regexes) and a small source-to-source rewrite. The
# rewrite replaces ``matches`` with a google-re2 implementation (RE2 semantics,
# compiled patterns cached: the engine recompiles its regex on every call) and
# promotes mixed int/double arithmetic, which the engine refuses. Expressions
# that need neither run exactly as written.

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

_INT64 = (-(2**63), 2**63 - 1)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cel_type_name(value: Any) -> str:
    if value is None:
        return "null_type"
    if isinstance(value, bool):
        return "bool"
    for kind, name in ((int, "int"), (float, "double"), (str, "string"), (bytes, "bytes"), (list, "list"),
                       (dict, "map"), (_dt.datetime, "timestamp"), (_dt.timedelta, "duration")):  # fmt: skip
        if isinstance(value, kind):
            return name
    return type(value).__name__


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


# -- a parser for CEL source (only ever given source the engine accepted)


class _Unsupported(Exception):
    """The engine accepted an expression this module's parser cannot handle."""


@dataclass(frozen=True)
class _Lit:
    kind: str  # int | uint | double | string | bytes | bool | null
    text: str  # the literal exactly as written


@dataclass(frozen=True)
class _Ident:
    name: str


@dataclass(frozen=True)
class _Select:
    operand: Any
    field: str


@dataclass(frozen=True)
class _Call:
    target: Any  # None for a global call f(x); the receiver for x.f()
    name: str
    args: tuple


@dataclass(frozen=True)
class _Index:
    operand: Any
    index: Any


@dataclass(frozen=True)
class _List:
    items: tuple


@dataclass(frozen=True)
class _Map:
    entries: tuple  # ((key, value), ...)


@dataclass(frozen=True)
class _Unary:
    op: str
    operand: Any


@dataclass(frozen=True)
class _Binary:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class _Cond:
    cond: Any
    then: Any
    other: Any


_STRING_BODY = (
    r"'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^\\'\n\r])*'|\"(?:\\.|[^\\\"\n\r])*\""
)
_RAW_STRING_BODY = r"'''.*?'''|\"\"\".*?\"\"\"|'[^'\n\r]*'|\"[^\"\n\r]*\""
_TOKEN = re.compile(
    r"(?P<space>[\t\n\f\r ]+|//[^\n]*)"
    rf"|(?P<raw>(?:[rR][bB]?|[bB][rR])(?:{_RAW_STRING_BODY}))"
    rf"|(?P<string>[bB]?(?:{_STRING_BODY}))"
    r"|(?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d+|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+[uU]?)"
    r"|(?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)"
    r"|(?P<op>\|\||&&|==|!=|<=|>=|[-+*/%<>!?:.,()\[\]{}])",
    re.S,
)
_RELATIONS = frozenset({"<", "<=", ">", ">=", "==", "!=", "in"})


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise _Unsupported(f"unexpected character {source[pos]!r} at offset {pos}")
        pos = match.end()
        kind = match.lastgroup
        if kind == "space":
            continue
        text = match.group()
        if kind in ("raw", "string"):
            prefix = text[: len(text) - len(text.lstrip("rRbB"))]
            kind = "bytes" if "b" in prefix.lower() else "string"
        tokens.append((kind, text))
    tokens.append(("end", ""))
    return tokens


class _Parser:
    """Recursive descent over the CEL grammar (cel-spec ``langdef.md``)."""

    def __init__(self, source: str):
        self.tokens = _tokenize(source)
        self.pos = 0

    def parse(self):
        node = self.expr()
        if self.tokens[self.pos][0] != "end":
            raise _Unsupported(f"unexpected {self.tokens[self.pos][1]!r}")
        return node

    def peek(self, offset: int = 0) -> tuple[str, str]:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def accept(self, text: str) -> bool:
        kind, value = self.tokens[self.pos]
        if value == text and kind in ("op", "ident"):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise _Unsupported(f"expected {text!r}, found {self.peek()[1]!r}")

    def expr(self):
        cond = self.logical("||", self.conjunction)
        if self.accept("?"):
            then = self.logical("||", self.conjunction)
            self.expect(":")
            return _Cond(cond, then, self.expr())
        return cond

    def logical(self, op: str, operand):
        node = operand()
        while self.accept(op):
            node = _Binary(op, node, operand())
        return node

    def conjunction(self):
        return self.logical("&&", self.relation)

    def relation(self):
        node = self.addition()
        while self.peek()[1] in _RELATIONS and self.peek()[0] in ("op", "ident"):
            op = self.peek()[1]
            self.pos += 1
            node = _Binary(op, node, self.addition())
        return node

    def addition(self):
        node = self.multiplication()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            op = self.peek()[1]
            self.pos += 1
            node = _Binary(op, node, self.multiplication())
        return node

    def multiplication(self):
        node = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/", "%"):
            op = self.peek()[1]
            self.pos += 1
            node = _Binary(op, node, self.unary())
        return node

    def unary(self):
        for op in ("!", "-"):
            count = 0
            while self.accept(op):
                count += 1
            if count:
                # As in cel-go and cel-rust, an even run (``!!x``, ``--x``) is no operator at all.
                operand = self.unary() if self.peek() in (("op", "!"), ("op", "-")) else self.member()
                return operand if count % 2 == 0 else _Unary(op, operand)
        return self.member()

    def member(self):
        node = self.primary()
        while True:
            if self.accept("."):
                name = self.identifier()
                node = _Call(node, name, self.arguments(")")) if self.accept("(") else _Select(node, name)
            elif self.accept("["):
                index = self.expr()
                self.expect("]")
                node = _Index(node, index)
            else:
                return node

    def identifier(self) -> str:
        kind, text = self.peek()
        if kind != "ident":
            raise _Unsupported(f"expected an identifier, found {text!r}")
        self.pos += 1
        return text

    def arguments(self, close: str) -> tuple:
        items = []
        while not self.accept(close):
            items.append(self.expr())
            if not self.accept(","):
                self.expect(close)
                break
        return tuple(items)

    def primary(self):
        kind, text = self.peek()
        if kind == "op" and text == "." and self.peek(1)[0] == "ident":
            self.pos += 1
            return self.named("." + self.identifier())
        if kind == "ident":
            if text in ("true", "false"):
                self.pos += 1
                return _Lit("bool", text)
            if text == "null":
                self.pos += 1
                return _Lit("null", text)
            if text == "in":
                raise _Unsupported("unexpected 'in'")
            self.pos += 1
            return self.named(text)
        if kind == "number":
            self.pos += 1
            if text[:2].lower() == "0x":
                return _Lit("uint" if text[-1] in "uU" else "int", text)
            if text[-1] in "uU":
                return _Lit("uint", text)
            return _Lit("double" if any(c in text for c in ".eE") else "int", text)
        if kind in ("string", "bytes"):
            self.pos += 1
            return _Lit(kind, text)
        if self.accept("("):
            node = self.expr()
            self.expect(")")
            return node
        if self.accept("["):
            return _List(self.arguments("]"))
        if self.accept("{"):
            entries = []
            while not self.accept("}"):
                key = self.expr()
                self.expect(":")
                entries.append((key, self.expr()))
                if not self.accept(","):
                    self.expect("}")
                    break
            return _Map(tuple(entries))
        raise _Unsupported(f"unexpected {text!r}")

    def named(self, name: str):
        if self.accept("("):
            return _Call(None, name, self.arguments(")"))
        if self.peek() == ("op", "{"):
            raise _Unsupported("message construction is not supported")
        return _Ident(name)


def _children(node) -> tuple:
    if isinstance(node, _Select):
        return (node.operand,)
    if isinstance(node, _Call):
        return ((node.target,) if node.target is not None else ()) + node.args
    if isinstance(node, _Index):
        return (node.operand, node.index)
    if isinstance(node, _List):
        return node.items
    if isinstance(node, _Map):
        return tuple(part for entry in node.entries for part in entry)
    if isinstance(node, _Unary):
        return (node.operand,)
    if isinstance(node, _Binary):
        return (node.left, node.right)
    if isinstance(node, _Cond):
        return (node.cond, node.then, node.other)
    return ()


def _is_comprehension(node) -> bool:
    return (
        isinstance(node, _Call)
        and node.target is not None
        and node.name in _COMPREHENSIONS
        and len(node.args) >= 2
        and isinstance(node.args[0], _Ident)
    )


def _scoped(node, bound: frozenset = frozenset()):
    """Yield ``(node, bound)`` for every node, ``bound`` being the comprehension variables in scope."""
    yield node, bound
    if _is_comprehension(node):
        yield from _scoped(node.target, bound)
        inner = bound | {node.args[0].name}
        for arg in node.args[1:]:
            yield from _scoped(arg, inner)
        return
    for child in _children(node):
        yield from _scoped(child, bound)


def _emit(node) -> str:
    """CEL source for ``node``; every operator application is parenthesised."""
    if isinstance(node, _Lit):
        return node.text
    if isinstance(node, _Ident):
        return node.name
    if isinstance(node, _Select):
        return f"{_emit(node.operand)}.{node.field}"
    if isinstance(node, _Call):
        args = ", ".join(_emit(a) for a in node.args)
        return f"{node.name}({args})" if node.target is None else f"{_emit(node.target)}.{node.name}({args})"
    if isinstance(node, _Index):
        return f"{_emit(node.operand)}[{_emit(node.index)}]"
    if isinstance(node, _List):
        return "[" + ", ".join(_emit(i) for i in node.items) + "]"
    if isinstance(node, _Map):
        return "{" + ", ".join(f"{_emit(k)}: {_emit(v)}" for k, v in node.entries) + "}"
    if isinstance(node, _Unary):
        return f"({node.op}{_emit(node.operand)})"
    if isinstance(node, _Binary):
        return f"({_emit(node.left)} {node.op} {_emit(node.right)})"
    if isinstance(node, _Cond):
        return f"({_emit(node.cond)} ? {_emit(node.then)} : {_emit(node.other)})"
    raise TypeError(node)  # pragma: no cover


# -- the rewrite: RE2 matches and mixed-number arithmetic

_NUMERIC = frozenset({"int", "uint", "double"})
_OTHER = "other"  # statically known not to be a number
_CALL_TYPES = {
    "int": "int", "uint": "uint", "double": "double", "size": "int",
    "string": _OTHER, "bytes": _OTHER, "timestamp": _OTHER, "duration": _OTHER, "type": _OTHER,
    "contains": _OTHER, "startsWith": _OTHER, "endsWith": _OTHER, "matches": _OTHER, "has": _OTHER,
    **{name: _OTHER for name in _COMPREHENSIONS},
    **{name: "int" for name in _TIME_ACCESSORS},
}  # fmt: skip


@dataclass(frozen=True)
class _Typing:
    """What is statically known about ``params`` and ``fields`` values (``None``: nothing)."""

    params: Mapping | None = None
    field_types: Mapping | None = None

    def member(self, root: str, key: str) -> str | None:
        if root == "params" and self.params is not None and key in self.params:
            value = self.params[key]
            return "double" if _is_number(value) or isinstance(value, decimal.Decimal) else _OTHER
        if root == "fields" and self.field_types is not None:
            return self.field_types.get(key)  # numbers are always passed as doubles
        return None


def _field_types(schema: dict) -> dict[str, str | None]:
    types = {}
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        types[name] = "double" if kind in ("number", "integer") else None
    return types


def _rewrite(node, typing: _Typing, bound: frozenset = frozenset()):
    """Return ``(node, static type)``: the node with RE2 ``matches`` and promoted arithmetic."""
    if isinstance(node, _Lit):
        return node, node.kind if node.kind in _NUMERIC else _OTHER
    if isinstance(node, _Ident):
        if node.name in bound:
            return node, None
        return node, _OTHER if node.name in ACTIVATION_NAMES or node.name in _TYPE_NAMES else None
    if isinstance(node, _Select):
        if isinstance(node.operand, _Ident) and node.operand.name not in bound:
            return node, typing.member(node.operand.name, node.field)
        return _Select(_rewrite(node.operand, typing, bound)[0], node.field), None
    if isinstance(node, _Call):
        if node.name == "has" and node.target is None:
            return node, _OTHER
        if _is_comprehension(node):
            inner = bound | {node.args[0].name}
            target = _rewrite(node.target, typing, bound)[0]
            args = (node.args[0],) + tuple(_rewrite(a, typing, inner)[0] for a in node.args[1:])
            return _Call(target, node.name, args), _OTHER
        target = _rewrite(node.target, typing, bound)[0] if node.target is not None else None
        args = tuple(_rewrite(a, typing, bound)[0] for a in node.args)
        if node.name == "matches":
            return _Call(None, _MATCHES_HELPER, ((target,) if target is not None else ()) + args), _OTHER
        return _Call(target, node.name, args), _CALL_TYPES.get(node.name)
    if isinstance(node, _Index):
        return _Index(_rewrite(node.operand, typing, bound)[0], _rewrite(node.index, typing, bound)[0]), None
    if isinstance(node, _List):
        return _List(tuple(_rewrite(i, typing, bound)[0] for i in node.items)), _OTHER
    if isinstance(node, _Map):
        entries = tuple((_rewrite(k, typing, bound)[0], _rewrite(v, typing, bound)[0]) for k, v in node.entries)
        return _Map(entries), _OTHER
    if isinstance(node, _Unary):
        operand, kind = _rewrite(node.operand, typing, bound)
        return _Unary(node.op, operand), kind if node.op == "-" else _OTHER
    if isinstance(node, _Cond):
        cond = _rewrite(node.cond, typing, bound)[0]
        (then, then_kind), (other, other_kind) = _rewrite(node.then, typing, bound), _rewrite(node.other, typing, bound)
        return _Cond(cond, then, other), then_kind if then_kind == other_kind else None
    if isinstance(node, _Binary):
        (left, left_kind), (right, right_kind) = _rewrite(node.left, typing, bound), _rewrite(node.right, typing, bound)
        if node.op not in _ARITHMETIC_HELPERS:
            return _Binary(node.op, left, right), _OTHER if node.op != "%" else left_kind
        if _OTHER in (left_kind, right_kind):  # strings, lists, timestamps, durations: native
            return _Binary(node.op, left, right), _OTHER
        if left_kind in _NUMERIC and right_kind in _NUMERIC:
            if left_kind == right_kind:
                return _Binary(node.op, left, right), left_kind
            if left_kind != "double":
                left = _Call(None, "double", (left,))
            if right_kind != "double":
                right = _Call(None, "double", (right,))
            return _Binary(node.op, left, right), "double"
        return _Call(None, _ARITHMETIC_HELPERS[node.op], (left, right)), None
    raise TypeError(node)  # pragma: no cover


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


# --------------------------------------------------------------------------
# Data model


@dataclass(frozen=True)
class Check:
    id: str
    expr: str
    outcome: str
    message: str
    program: Any = field(default=None, compare=False, repr=False)

    def runner(self):
        """The compiled ``cel.Program`` (compiled once, then cached; immutable, shared by threads)."""
        if self.program is None:
            object.__setattr__(self, "program", _compile(self.expr).program)
        return self.program

    def __deepcopy__(self, memo):  # a cel.Program cannot be copied, and needn't be: it is immutable
        return Check(id=self.id, expr=self.expr, outcome=self.outcome, message=self.message, program=self.program)


@dataclass(frozen=True)
class Rule:
    name: str
    version: str
    document_type: str
    description: str
    prompt: str
    fields_schema: dict
    checks: tuple[Check, ...]
    params: dict
    default_currency: str | None
    path: Path
    _validator: Any = field(default=None, compare=False, repr=False)
    _cel_params: Any = field(default=None, compare=False, repr=False)
    #: Idle ``cel.Context`` objects holding ``params`` and the helper functions,
    #: converted once. A context is used by one evaluation at a time (taken
    #: with ``list.pop``, returned with ``list.append``, both atomic).
    _contexts: list = field(default_factory=list, init=False, compare=False, repr=False)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(self.fields_schema.get("required", ()))

    def reads_document(self, key: str) -> bool:
        """Whether a check reads ``document.<key>`` (costly inputs are computed only then)."""
        return any(re.search(rf"\bdocument\s*\.\s*{re.escape(key)}\b", c.expr) for c in self.checks)

    def validator(self) -> Draft202012Validator:
        if self._validator is None:
            object.__setattr__(self, "_validator", _fields_validator(self.fields_schema))
        return self._validator

    def cel_params(self):
        """``params`` as passed to CEL (every number a double)."""
        if self._cel_params is None:
            object.__setattr__(self, "_cel_params", _to_cel(self.params, numbers_as_double=True))
        return self._cel_params

    def _take_context(self):
        try:
            return self._contexts.pop()
        except IndexError:
            return cel.Context(variables={"params": self.cel_params()}, functions=_FUNCTIONS)

    def __getstate__(self):  # contexts are neither picklable nor worth copying
        state = dict(self.__dict__)
        state["_contexts"] = []
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)


@dataclass
class Verdict:
    decision: str
    reasons: list[dict]

    def to_dict(self) -> dict:
        return {"decision": self.decision, "reasons": [dict(r) for r in self.reasons]}


def _fields_validator(schema: dict) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


# --------------------------------------------------------------------------
# Loading


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            continue  # unhashable key: construct_mapping reports it
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def default_rules_dir() -> Path:
    """``$DOCKET_RULES_DIR`` if set, else the repository's ``rules/`` folder."""
    env = os.environ.get("DOCKET_RULES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "rules"


def load_rules(directory: str | os.PathLike | None = None) -> dict[str, Rule]:
    """Load every ``*.yaml``/``*.yml`` in ``directory`` (default :func:`default_rules_dir`)."""
    directory = Path(directory) if directory is not None else default_rules_dir()
    if not directory.is_dir():
        raise RuleError(f"{directory}: rules directory does not exist")
    paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    rules: dict[str, Rule] = {}
    for path in paths:
        rule = load_rule(path)
        if rule.name in rules:
            raise RuleError(f"{path}: rule {rule.name!r} is already defined by {rules[rule.name].path}")
        rules[rule.name] = rule
    return rules


def load_rule(path: str | os.PathLike) -> Rule:
    """Load and strictly validate one rule file; raise :class:`RuleError` on the first problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RuleError(f"{path}: cannot read: {exc}") from exc
    version = "sha256:" + hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleError(f"{path}: not UTF-8: {exc}") from exc
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: invalid YAML: {_one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise RuleError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")

    error = jsonschema.exceptions.best_match(_RULE_FILE_VALIDATOR.iter_errors(data))
    if error is not None:
        where = _json_path(error.absolute_path)
        raise RuleError(f"{path}: invalid rule file at {where}: {_truncate(error.message)}")

    name = data["name"]
    if name != path.stem:
        raise RuleError(f"{path}: name {name!r} must equal the file name stem {path.stem!r}")

    schema = data["fields"]
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = _json_path(exc.absolute_path)
        raise RuleError(f"{path}: fields is not a valid JSON Schema at {where}: {_truncate(exc.message)}") from exc
    properties = schema.get("properties", {})
    for required in schema.get("required", ()):
        if required not in properties:
            raise RuleError(f"{path}: required field {required!r} is not declared in fields.properties")

    params = _plain(data.get("params") or {})
    for key, value in params.items():
        if key.endswith(("_pattern", "_patterns", "_terms")):
            for pattern in value if isinstance(value, list) else [value]:
                if not isinstance(pattern, str):
                    raise RuleError(f"{path}: params.{key} must hold regular-expression strings, got {pattern!r}")
                problem = _regex_problem(pattern)
                if problem:
                    raise RuleError(f"{path}: params.{key}: invalid RE2 pattern {pattern!r}: {problem}")

    typing = _Typing(params=params, field_types=_field_types(schema))
    checks: list[Check] = []
    seen_ids: set[str] = set()
    for item in data["checks"]:
        check_id = item["id"]
        if check_id in seen_ids:
            raise RuleError(f"{path}: duplicate check id {check_id!r}")
        seen_ids.add(check_id)
        expr = item["expr"]
        try:
            compiled = _compile(expr, typing)
        except _Unsupported as exc:
            raise RuleError(f"{path}: check {check_id!r}: CEL that Docket cannot check ({exc}): {expr!r}") from exc
        except Exception as exc:  # ValueError from the engine's parser
            raise RuleError(f"{path}: check {check_id!r}: CEL does not compile{_compile_error_text(exc)}: {expr!r}") from exc
        problem = _static_problem(compiled, params=params, field_names=set(properties))
        if problem:
            raise RuleError(f"{path}: check {check_id!r}: {problem}")
        for kind, key in _PLACEHOLDER.findall(item["message"]):
            if kind == "params" and key not in params:
                raise RuleError(f"{path}: check {check_id!r}: message refers to unknown params.{key}")
        checks.append(
            Check(id=check_id, expr=expr, outcome=item["outcome"], message=item["message"], program=compiled.program)
        )

    return Rule(
        name=name,
        version=version,
        document_type=data["document_type"],
        description=data["description"],
        prompt=data["prompt"],
        fields_schema=schema,
        checks=tuple(checks),
        params=params,
        default_currency=data.get("default_currency"),
        path=path,
        _validator=_fields_validator(schema),
        _cel_params=_to_cel(params, numbers_as_double=True),
    )


def _plain(value: Any) -> Any:
    """YAML scalars that aren't JSON (dates) become strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    return value


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
        elif isinstance(node, _Call) and node.target is not None and node.name in _TIME_ACCESSORS and node.args:
            return f"{node.name}() takes no arguments: time-zone arguments are not supported (timestamps are UTC)"
        elif isinstance(node, _Call) and node.name == "matches":
            expected = 1 if node.target is not None else 2
            if len(node.args) != expected:
                return f"matches() takes {'one pattern' if expected == 1 else 'a string and a pattern'}"
            problem = _constant_regex_problem(node.args[-1])
            if problem:
                return problem
    return None


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


# --------------------------------------------------------------------------
# Evaluation


def _to_cel(value: Any, *, numbers_as_double: bool) -> Any:
    """Python/JSON value -> a value the engine converts exactly. Never raises: unknown types become strings."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is float:
        return value
    if kind is int:
        return float(value) if numbers_as_double or not _INT64[0] <= value <= _INT64[1] else value
    if kind is dict or isinstance(value, Mapping):
        return {str(k): _to_cel(v, numbers_as_double=numbers_as_double) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_to_cel(v, numbers_as_double=numbers_as_double) for v in value]
    if isinstance(value, (str, bool)):  # subclasses
        return str(value) if isinstance(value, str) else bool(value)
    if isinstance(value, int):
        return _to_cel(int(value), numbers_as_double=numbers_as_double)
    if isinstance(value, (float, decimal.Decimal)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_to_cel(v, numbers_as_double=numbers_as_double) for v in value]
    if isinstance(value, _dt.datetime):
        return _utc(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value)


def _utc(moment: _dt.datetime) -> _dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc)


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
) -> Verdict:
    """Apply ``rule`` to extracted ``fields``; see the module docstring for semantics."""
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
    finally:
        # don't keep the document alive in an idle context
        context.add_variable("fields", None)
        context.add_variable("document", None)
        rule._contexts.append(context)
    return Verdict(decision=decision, reasons=reasons)


# --------------------------------------------------------------------------
# Text helpers

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


def _one_line(exc: Any) -> str:
    return " ".join(str(exc).split())


def _truncate(text: str, limit: int = _MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_path(path: Iterable[Any]) -> str:
    parts = list(path)
    if not parts:
        return "top level"
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in parts).replace(".[", "[")
