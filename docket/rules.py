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

Notes for rule authors (cel-python 0.5 quirks, handled here):

* Every number in ``fields`` and ``params`` is a CEL ``double`` (ints are
  converted), so ``fields.total > params.meal_cap`` works whether the analyzer
  produced ``12`` or ``12.0``. Mixed int/double comparisons and arithmetic
  (``size(x) >= params.min``, ``12 * params.years``) are also promoted to
  double by this module; plain cel-python would raise "no such overload".
* ``document`` values are passed as given (``pages`` stays an int).
* ``now`` is a UTC ``timestamp``. Dates are ``YYYY-MM-DD`` strings; turn them
  into timestamps with ``timestamp(fields.d + "T00:00:00Z")``.
  ``getDayOfWeek()`` is 0 for Sunday, 6 for Saturday.
* ``matches()`` uses RE2 (no look-around); ``(?i)`` makes it case-insensitive.
  cel-python has no ``lowerAscii()``. Put long regexes in ``params`` (keys
  ending in ``_pattern``/``_patterns``/``_terms`` are compiled at load time) so
  YAML and CEL escaping don't stack up.
* Guard optional fields with ``has(fields.x)``: reading an absent field is an
  evaluation error, which turns into ``needs_review``.
* Messages may contain ``{params.x}``, ``{fields.x}`` and ``{document.x}``
  placeholders; ``{params.x}`` must name an existing param.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import celpy
import jsonschema
import re2
import yaml
from celpy import celtypes
from celpy.evaluation import base_functions
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
DOCUMENT_KEYS = frozenset({"text", "pages", "mime_type", "filename"})
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
# CEL environment


def _is_number(value: Any) -> bool:
    return isinstance(value, (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)) and not isinstance(
        value, celtypes.BoolType
    )


def _promoting(base):
    """Wrap a binary CEL operator so that int/double mixes compare as doubles.

    cel-python 0.5 raises "no such overload" for ``1 < 2.0`` (but not for
    ``2.0 > 1``); the CEL spec compares numbers across types.
    """

    def operator(a, b):
        if _is_number(a) and _is_number(b) and type(a) is not type(b):
            a, b = celtypes.DoubleType(a), celtypes.DoubleType(b)
        return base(a, b)

    operator.__name__ = getattr(base, "__name__", "operator")
    return operator


def _operator_in(item, container):
    if _is_number(item) and isinstance(container, celtypes.ListType):
        item = celtypes.DoubleType(item)
        container = celtypes.ListType(celtypes.DoubleType(c) if _is_number(c) else c for c in container)
    return base_functions["_in_"](item, container)


_FUNCTIONS: dict[str, Any] = {
    name: _promoting(base_functions[name])
    for name in ("_<_", "_<=_", "_>_", "_>=_", "_==_", "_!=_", "_+_", "_-_", "_*_", "_/_")
}
_FUNCTIONS["_in_"] = _operator_in

_MACROS = frozenset({"has", "dyn", "all", "exists", "exists_one", "map", "filter"})
_KNOWN_FUNCTIONS = frozenset(base_functions) | frozenset(_FUNCTIONS) | _MACROS

_env_lock = threading.Lock()
_env: celpy.Environment | None = None


def _environment() -> celpy.Environment:
    # One shared environment. The interpreted runner is used on purpose:
    # cel-python's CompiledRunner keeps evaluation state in module globals
    # (not thread-safe) and depends on which tree class the shared parser was
    # first built with.
    global _env
    with _env_lock:
        if _env is None:
            _env = celpy.Environment()
        return _env


def _compile(expr: str):
    env = _environment()
    ast = env.compile(expr)
    return ast, env.program(ast, functions=_FUNCTIONS)


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
        """The compiled CEL program (compiled once, then cached)."""
        if self.program is None:
            object.__setattr__(self, "program", _compile(self.expr)[1])
        return self.program


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

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(self.fields_schema.get("required", ()))

    def validator(self) -> Draft202012Validator:
        if self._validator is None:
            object.__setattr__(self, "_validator", _fields_validator(self.fields_schema))
        return self._validator

    def cel_params(self):
        if self._cel_params is None:
            object.__setattr__(self, "_cel_params", _to_cel(self.params, numbers_as_double=True))
        return self._cel_params


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

    checks: list[Check] = []
    seen_ids: set[str] = set()
    for item in data["checks"]:
        check_id = item["id"]
        if check_id in seen_ids:
            raise RuleError(f"{path}: duplicate check id {check_id!r}")
        seen_ids.add(check_id)
        expr = item["expr"]
        try:
            ast, program = _compile(expr)
        except Exception as exc:  # CELParseError, lark errors
            where = f" at line {exc.line}, column {exc.column}" if getattr(exc, "line", None) else ""
            raise RuleError(f"{path}: check {check_id!r}: CEL does not compile{where}: {expr!r}") from exc
        problem = _static_problem(ast, params=params, field_names=set(properties))
        if problem:
            raise RuleError(f"{path}: check {check_id!r}: {problem}")
        for kind, key in _PLACEHOLDER.findall(item["message"]):
            if kind == "params" and key not in params:
                raise RuleError(f"{path}: check {check_id!r}: message refers to unknown params.{key}")
        checks.append(Check(id=check_id, expr=expr, outcome=item["outcome"], message=item["message"], program=program))

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


def _regex_problem(pattern: str) -> str | None:
    try:
        re2.compile(pattern)
    except Exception as exc:  # re2.error, whose argument is bytes
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        return _one_line(detail)
    return None


def _root_ident(tree) -> str | None:
    """Name of ``x`` when ``tree`` is just the identifier ``x`` (member -> primary -> ident)."""
    while hasattr(tree, "data") and tree.data in ("member", "primary") and len(tree.children) == 1:
        tree = tree.children[0]
    if hasattr(tree, "data") and tree.data == "ident":
        return str(tree.children[0])
    return None


def _is_constant(tree) -> bool:
    return not any(
        t.data in ("ident", "ident_arg", "member_dot", "member_dot_arg", "member_index", "dot_ident", "dot_ident_arg")
        for t in tree.iter_subtrees()
    )


def _static_problem(ast, *, params: dict, field_names: set[str]) -> str | None:
    """Catch typos at load time that cel-python would only report when evaluating."""
    bound: set[str] = set()
    nodes = list(ast.iter_subtrees())
    for node in nodes:
        if node.data == "member_dot_arg" and str(node.children[1]) in _MACROS and len(node.children) > 2:
            first = node.children[2].children[0] if node.children[2].children else None
            var = _root_ident(_unwrap_expr(first)) if first is not None else None
            if var:
                bound.add(var)
    allowed_roots = ACTIVATION_NAMES | bound | frozenset(base_functions)
    for node in nodes:
        if node.data == "ident":
            name = str(node.children[0])
            if name not in allowed_roots:
                return f"unknown variable {name!r} (use fields, document, params or now)"
        elif node.data == "ident_arg":
            name = str(node.children[0])
            if name not in _KNOWN_FUNCTIONS:
                return f"unknown function {name}()"
            if name == "matches" and len(node.children) > 1 and len(node.children[1].children) == 2:
                problem = _constant_regex_problem(node.children[1].children[1])
                if problem:
                    return problem
        elif node.data == "member_dot_arg":
            name = str(node.children[1])
            if name not in _KNOWN_FUNCTIONS:
                return f"unknown function .{name}()"
            if name == "matches" and len(node.children) > 2 and len(node.children[2].children) == 1:
                problem = _constant_regex_problem(node.children[2].children[0])
                if problem:
                    return problem
        elif node.data == "member_dot":
            root = _root_ident(node.children[0])
            key = str(node.children[1])
            if root in bound:
                continue
            if root == "params" and key not in params:
                return f"params.{key} is not defined in params"
            if root == "fields" and key not in field_names:
                return f"fields.{key} is not declared in the fields schema"
            if root == "document" and key not in DOCUMENT_KEYS:
                return f"document.{key} is not available (document has {', '.join(sorted(DOCUMENT_KEYS))})"
    return None


def _unwrap_expr(tree):
    # expr -> conditionalor -> conditionaland -> relation -> addition -> multiplication -> unary -> member
    while hasattr(tree, "data") and len(tree.children) == 1 and tree.data not in ("member",):
        tree = tree.children[0]
    return tree


def _constant_regex_problem(tree) -> str | None:
    if not _is_constant(tree):
        return None
    try:
        pattern = _environment().program(tree, functions=_FUNCTIONS).evaluate({})
    except Exception as exc:
        return f"cannot evaluate regular expression: {_one_line(exc)}"
    if not isinstance(pattern, str):
        return None
    problem = _regex_problem(str(pattern))
    return f"invalid RE2 pattern {str(pattern)!r}: {problem}" if problem else None


# --------------------------------------------------------------------------
# Evaluation


def _to_cel(value: Any, *, numbers_as_double: bool) -> Any:
    """Python/JSON value -> CEL value. Never raises: unknown types become strings."""
    if value is None:
        return None
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, (int, float, decimal.Decimal)):
        if numbers_as_double or not isinstance(value, int):
            return celtypes.DoubleType(float(value))
        return celtypes.IntType(value)
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, Mapping):
        return celtypes.MapType(
            {celtypes.StringType(str(k)): _to_cel(v, numbers_as_double=numbers_as_double) for k, v in value.items()}
        )
    if isinstance(value, (list, tuple)):
        return celtypes.ListType([_to_cel(v, numbers_as_double=numbers_as_double) for v in value])
    if isinstance(value, _dt.datetime):
        return celtypes.TimestampType(_utc(value))
    if isinstance(value, _dt.date):
        return celtypes.StringType(value.isoformat())
    if isinstance(value, bytes):
        return celtypes.BytesType(value)
    return celtypes.StringType(str(value))


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
    activation = {
        "fields": _to_cel(cleaned, numbers_as_double=True),
        "document": _to_cel(document, numbers_as_double=False),
        "params": rule.cel_params(),
        "now": celtypes.TimestampType(moment),
    }
    for check in rule.checks:
        try:
            result = check.runner().evaluate(activation)
        except Exception as exc:  # CELEvalError and anything else: never crash
            add(check.id, "needs_review", f"could not evaluate: {_cel_error_text(exc)}")
            continue
        if not isinstance(result, (bool, celtypes.BoolType)):
            add(check.id, "needs_review", f"could not evaluate: expression returned {type(result).__name__}, not bool")
        elif not result:
            add(check.id, check.outcome, _render(check.message, rule.params, cleaned, document))
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


def _cel_error_text(exc: BaseException) -> str:
    if isinstance(exc, celpy.CELEvalError) and exc.args and isinstance(exc.args[0], str):
        text = exc.args[0]
        # cel-python appends a dump of the whole activation to some messages.
        text = text.split(" (in activation", 1)[0]
        if len(exc.args) > 2 and exc.args[2] and text in ("no such overload", "return error for overflow", "invalid_argument"):
            text = f"{text}: {exc.args[2][0] if isinstance(exc.args[2], tuple) else exc.args[2]}"
    else:
        text = f"{type(exc).__name__}: {exc}"
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
