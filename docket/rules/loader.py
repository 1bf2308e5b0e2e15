"""Loading policy files: :func:`default_rules_dir` (``$DOCKET_RULES_DIR`` or the
repository's ``rules/`` folder), :func:`load_rules` (every ``*.yaml``/``*.yml``
in a folder, names unique) and :func:`load_rule`, which reads one file with
a strict YAML loader (duplicate keys refused), validates it against the rule
file schema, compiles and statically checks every check and its message
placeholders, and raises :class:`RuleError` naming the file on the first
problem, so a bad policy stops the service at start-up.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import Draft202012Validator

from docket.rules.compiler import _compile, _compile_error_text, _static_problem
from docket.rules.messages import _PLACEHOLDER
from docket.rules.model import Check, Rule
from docket.rules.regex import _regex_problem
from docket.rules.rewrite import _field_types, _Typing
from docket.rules.schema import _RULE_FILE_VALIDATOR, RuleError, _fields_validator
from docket.rules.syntax import _Unsupported
from docket.rules.text import _json_path, _one_line, _truncate
from docket.rules.values import _to_cel


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
    return Path(__file__).resolve().parents[2] / "rules"


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
