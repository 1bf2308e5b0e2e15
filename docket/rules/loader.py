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

from docket.rules.bounded_yaml import YAMLBoundsError, load_bounded
from docket.rules.claim_checks import compile_claim_checks
from docket.rules.compiler import _compile, _compile_error_text, _static_problem
from docket.rules.messages import _PLACEHOLDER
from docket.rules.model import Check, Rule
from docket.rules.regex import _regex_problem
from docket.rules.rewrite import _field_types, _Typing
from docket.rules.schema import (_RULE_FILE_VALIDATOR, RuleError, _fields_validator, schema_pattern_problem,
                                 schema_patterns)
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
    return _load(text, version=version, where=str(path), path=path, expected_name=path.stem,
                 name_is="the file name stem")


#: Where a message gets its " (line N)", once the line is known.
_AT = "\x00at\x00"
#: The longest retention a policy may set (100 years).
MAX_RETENTION_SECONDS = 100 * 366 * 86400


def _check_messages(message, check_id: str, index: int, params: dict, field_names: set, fail) -> tuple[str, dict]:
    """A check's ``message``: a template, or ``{language: template}`` (``en`` required). Returns the
    English template and {docket.i18n locale: template} of the others. Every template may name only
    params that exist and declared fields; another language's may name only the ``document.x``
    values its English template names (the ones the analyzer provides for this check)."""
    from docket import i18n

    if isinstance(message, str):
        templates = {"en": message}
    else:
        templates = {}
        for tag, text in message.items():
            locale = i18n.normalize(tag)
            if locale is None:
                raise fail(f"check {check_id!r}{_AT}: message language {tag!r} is not one Docket speaks "
                           f"({', '.join(i18n.TAGS.values())})", "checks", index, "message", tag)
            if locale in templates:
                raise fail(f"check {check_id!r}{_AT}: message language {tag!r} given twice", "checks", index,
                           "message", tag)
            templates[locale] = text
    english = templates["en"]
    english_names = set(_PLACEHOLDER.findall(english))
    for locale, text in templates.items():
        key_path = ("checks", index, "message") if isinstance(message, str) else \
            ("checks", index, "message", next(t for t in message if i18n.normalize(t) == locale))
        for kind, key in _PLACEHOLDER.findall(text):
            if kind == "params" and key not in params:
                raise fail(f"check {check_id!r}{_AT}: message refers to unknown params.{key}", *key_path)
            if locale == "en":
                continue
            if kind == "fields" and key not in field_names:
                raise fail(f"check {check_id!r}{_AT}: {i18n.tag(locale)} message refers to fields.{key}, "
                           "which is not declared in fields.properties", *key_path)
            if kind == "document" and (kind, key) not in english_names:
                raise fail(f"check {check_id!r}{_AT}: {i18n.tag(locale)} message refers to document.{key}, "
                           "which its en message does not use", *key_path)
    return english, {locale: text for locale, text in templates.items() if locale != "en"}


def canonical_source(source: str | bytes) -> str:
    """A policy's source as stored and hashed: UTF-8 text without a byte-order mark, ``\n``
    line ends, exactly one newline at the end. A file already written that way (as the
    built-in ones are) hashes to the same version as the file itself."""
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RuleError(f"policy source is not UTF-8: {exc}") from exc
    text = source.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return text.rstrip() + "\n"


def source_version(source: str | bytes) -> str:
    """The version of a policy source: ``sha256:`` and the hash of its canonical UTF-8 bytes."""
    return "sha256:" + hashlib.sha256(canonical_source(source).encode("utf-8")).hexdigest()


def load_rule_source(source: str | bytes, *, name: str | None = None, where: str | None = None,
                     version: str | None = None) -> Rule:
    """Load and strictly validate a policy given as text (a version pushed through the API or the
    CLI, or one kept in the database) exactly as :func:`load_rule` validates a file. ``name``,
    when given, must be the policy's ``name``. Errors name ``where`` (default: the policy name)
    and carry ``line``/``key`` where they can be placed. The version is :func:`source_version`
    unless given (an archived built-in file keeps the hash of its bytes)."""
    text = canonical_source(source)
    version = version or source_version(text)
    label = where or name or "policy"
    return _load(text, version=version, where=label, path=Path(f"{name or 'policy'}@{version}"),
                 expected_name=name, name_is="the policy name")


def _load(text: str, *, version: str, where: str, path: Path, expected_name: str | None, name_is: str) -> Rule:
    def fail(message: str, *keys: Any, line: int | None = None) -> RuleError:
        key = _json_path(keys) if keys else None
        if line is None and keys:
            line = _line_of(text, keys)
        place = f" (line {line})" if line else ""
        return RuleError(f"{where}: {message.replace(_AT, place, 1)}", line=line, key=key)

    try:
        data = load_bounded(text, _StrictLoader)
    except YAMLBoundsError as exc:
        raise RuleError(f"{where}: refused YAML: {exc}", line=exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RuleError(f"{where}: invalid YAML: {_one_line(exc)}",
                        line=mark.line + 1 if mark is not None else None) from exc
    if not isinstance(data, dict):
        raise RuleError(f"{where}: expected a YAML mapping at the top level, got {type(data).__name__}", line=1)

    error = jsonschema.exceptions.best_match(_RULE_FILE_VALIDATOR.iter_errors(data))
    if error is not None:
        keys = list(error.absolute_path)
        raise fail(f"invalid rule file at {_json_path(keys)}{_AT}: {_truncate(error.message)}", *keys)

    name = data["name"]
    if expected_name is not None and name != expected_name:
        raise fail(f"name {name!r} must equal {name_is} {expected_name!r}{_AT}", "name")

    schema = data["fields"]
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        keys = ["fields", *exc.absolute_path]
        raise fail(f"fields is not a valid JSON Schema at {_json_path(exc.absolute_path)}{_AT}: "
                   f"{_truncate(exc.message)}", *keys) from exc
    for pattern in schema_patterns(schema):
        problem = schema_pattern_problem(pattern)
        if problem:
            raise fail(f"fields: invalid pattern {_truncate(repr(pattern))}{_AT}: {problem}", "fields")
    properties = schema.get("properties", {})
    for index, required in enumerate(schema.get("required", ())):
        if required not in properties:
            raise fail(f"required field {required!r} is not declared in fields.properties{_AT}",
                       "fields", "required", index)

    certainty = {str(k): float(v) for k, v in (data.get("certainty") or {}).items()}
    for key in certainty:
        if key not in properties:
            raise fail(f"certainty names field {key!r}, which is not declared in fields.properties{_AT}",
                       "certainty", key)

    personal = tuple(str(k) for k in (data.get("personal_fields") or ()))
    for index, key in enumerate(personal):
        if key not in properties:
            raise fail(f"personal_fields names field {key!r}, which is not declared in fields.properties{_AT}",
                       "personal_fields", index)
    retention = {}
    for kind, period in (data.get("retention") or {}).items():
        seconds = int(period[:-1]) * (86400 if period.endswith("d") else 3600)
        if seconds > MAX_RETENTION_SECONDS:
            raise fail(f"retention.{kind} {period!r} is longer than 100 years{_AT}", "retention", kind)
        retention[str(kind)] = seconds

    params = _plain(data.get("params") or {})
    for key, value in params.items():
        if key.endswith(("_pattern", "_patterns", "_terms")):
            for pattern in value if isinstance(value, list) else [value]:
                if not isinstance(pattern, str):
                    raise fail(f"params.{key} must hold regular-expression strings, got {pattern!r}{_AT}",
                               "params", key)
                problem = _regex_problem(pattern)
                if problem:
                    raise fail(f"params.{key}{_AT}: invalid RE2 pattern {pattern!r}: {problem}", "params", key)

    typing = _Typing(params=params, field_types=_field_types(schema))
    checks: list[Check] = []
    seen_ids: set[str] = set()
    for index, item in enumerate(data["checks"]):
        check_id = item["id"]
        if check_id in seen_ids:
            raise fail(f"duplicate check id {check_id!r}{_AT}", "checks", index, "id")
        seen_ids.add(check_id)
        expr = item["expr"]
        try:
            compiled = _compile(expr, typing)
        except _Unsupported as exc:
            raise fail(f"check {check_id!r}{_AT}: CEL that Docket cannot check ({exc}): {expr!r}",
                       "checks", index, "expr") from exc
        except Exception as exc:  # ValueError from the engine's parser
            raise fail(f"check {check_id!r}{_AT}: CEL does not compile{_compile_error_text(exc)}: {expr!r}",
                       "checks", index, "expr") from exc
        problem = _static_problem(compiled, params=params, field_names=set(properties))
        if problem:
            raise fail(f"check {check_id!r}{_AT}: {problem}", "checks", index, "expr")
        message, translations = _check_messages(item["message"], check_id, index, params, set(properties), fail)
        checks.append(
            Check(id=check_id, expr=expr, outcome=item["outcome"], message=message, program=compiled.program,
                  messages=translations)
        )

    claim_checks = compile_claim_checks(data.get("claim_checks") or [], params,
                                        lambda message, *keys: fail(f"{message}{_AT}", *keys))

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
        certainty=certainty,
        claim_checks=claim_checks,
        personal_fields=personal,
        retention=retention,
        redact=bool(data.get("redact", False)),
        _validator=_fields_validator(schema),
        _cel_params=_to_cel(params, numbers_as_double=True),
    )


def _line_of(text: str, keys: list[Any]) -> int | None:
    """The 1-based line where the value at ``keys`` (mapping keys and list indexes) starts in
    the YAML ``text``: the deepest node that exists, so a missing key points at its parent."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if getattr(k, "value", None) == str(key)), None)
            if found is None:
                break
            key_node = next(k for k, v in node.value if v is found)
            node, line = found, key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _plain(value: Any) -> Any:
    """YAML scalars that aren't JSON (dates) become strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    return value
