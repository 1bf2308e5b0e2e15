"""The rule file format: the document types, check outcomes, readable
``document`` keys and top-level CEL variables a rule may use, the JSON
Schema every rule file (the YAML, after parsing) must satisfy, the
validator for a rule's own ``fields`` schema, and :class:`RuleError`, raised
for any invalid rule file.
"""

from __future__ import annotations

from typing import Any

import regex
from jsonschema import Draft202012Validator, ValidationError, validators

from docket.rules.regex import _re2

DOCUMENT_TYPES = ("receipt", "contract", "screenshot")
OUTCOMES = ("reject", "needs_review")

#: Keys a check may read from ``document``.
DOCUMENT_KEYS = frozenset({"text", "pages", "mime_type", "filename", "near_duplicate", "duplicate_of",
                           # invoice facts (docket/invoice_facts.py)
                           "invalid_tax_ids", "qr_mismatches", "duplicate_invoice", "duplicate_invoice_of",
                           # the total in the policy's currency (docket/fx.py)
                           "converted", "total_shown",
                           # a contract's amounts in the policy's currency (docket/fx.py amounts)
                           "amount_values", "unconverted_amounts"})
#: Top-level CEL variables.
ACTIVATION_NAMES = frozenset({"fields", "document", "params", "now"})

_IDENT = "^[a-z][a-z0-9_]{0,63}$"

# Bounds on what a tenant's policy may hold: every check runs on every job, so a policy is
# also a budget of CPU (the built-in policies stay far below: 15 checks, 345-character
# expressions, 2,610-character prompts).
MAX_CHECKS = 200
MAX_EXPR_CHARS = 2000
MAX_MESSAGE_CHARS = 1000
MAX_PROMPT_CHARS = 20_000
#: Items in one params list (a list a check may iterate over).
MAX_PARAM_ITEMS = 1000
#: Fields one policy's ``certainty`` may name.
MAX_CERTAINTY_FIELDS = 100
#: Fields one policy's ``personal_fields`` may name.
MAX_PERSONAL_FIELDS = 100
#: A retention period: whole days or hours ("30d", "12h"); at most 100 years (docket/privacy.py).
RETENTION_PATTERN = "^[1-9][0-9]{0,5}[dh]$"
RETENTION_KINDS = ("documents", "text")

#: A check's message: one template, or a map of language tag -> template (``en`` required:
#: the stored reason's text; ``zh-Hans`` etc. rendered for readers of that language, docket/reasons.py).
LOCALE_TAG = "^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,3}$"
MESSAGE_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_CHARS},
        {"type": "object", "required": ["en"], "minProperties": 1, "maxProperties": 20,
         "propertyNames": {"pattern": LOCALE_TAG},
         "additionalProperties": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_CHARS}},
    ],
}

#: Claim checks in one policy (each ``for_each: document`` one runs once per document of a claim).
MAX_CLAIM_CHECKS = 50

#: The ``claim_checks`` section: checks over a whole expense claim (docket/rules/claim_checks.py).
CLAIM_CHECKS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "maxItems": MAX_CLAIM_CHECKS,
    "items": {
        "type": "object",
        "required": ["id", "expr", "outcome", "message"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": _IDENT},
            "for_each": {"const": "document"},  # run once per document, `doc` bound to it
            "expr": {"type": "string", "minLength": 1, "maxLength": MAX_EXPR_CHARS},
            "jobs": {"type": "string", "minLength": 1, "maxLength": MAX_EXPR_CHARS},  # the job ids concerned
            "outcome": {"enum": list(OUTCOMES)},
            "message": MESSAGE_SCHEMA,  # a template, or {language: template}
        },
    },
}

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
            "additionalProperties": {"maxItems": MAX_PARAM_ITEMS},
        },
        "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
        # field -> the least confidence its value needs for an automatic decision (uncertain_field)
        "certainty": {
            "type": "object",
            "maxProperties": MAX_CERTAINTY_FIELDS,
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
        },
        # Fields holding personal data: erased on request with the text (docket/privacy.py).
        "personal_fields": {
            "type": "array",
            "maxItems": MAX_PERSONAL_FIELDS,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        },
        # How long originals/pages and text/fields are kept (absent: kept for good).
        "retention": {
            "type": "object",
            "additionalProperties": False,
            "properties": {kind: {"type": "string", "pattern": RETENTION_PATTERN} for kind in RETENTION_KINDS},
        },
        # Render a redacted copy of each page (personal data blacked out) for non-admins.
        "redact": {"type": "boolean"},
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
        # Checks over a whole expense claim (docket/rules/claim_checks.py).
        "claim_checks": CLAIM_CHECKS_SCHEMA,
        "checks": {
            "type": "array",
            "maxItems": MAX_CHECKS,
            "items": {
                "type": "object",
                "required": ["id", "expr", "outcome", "message"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": _IDENT},
                    "expr": {"type": "string", "minLength": 1, "maxLength": MAX_EXPR_CHARS},
                    "outcome": {"enum": list(OUTCOMES)},
                    "message": MESSAGE_SCHEMA,
                },
            },
        },
    },
}
_RULE_FILE_VALIDATOR = Draft202012Validator(RULE_FILE_SCHEMA)


class RuleError(Exception):
    """A rule file is invalid. The message names the file and the reason; ``line`` (1-based, in
    the YAML source) and ``key`` (``checks[2].expr``) say where, when known."""

    def __init__(self, message: str, *, line: int | None = None, key: str | None = None):
        super().__init__(message)
        self.line = line
        self.key = key


#: How long one fields-schema pattern that RE2 cannot run (``{1,10000}``, backreferences) may
#: take on one value, in the backtracking engine.
FALLBACK_REGEX_SECONDS = 0.05


def _schema_search(pattern: str, text: str) -> bool:
    """JSON Schema's unanchored search: RE2 (linear time) when it takes the pattern, else the
    ``regex`` module with a timeout; a pattern that times out matches nothing (the value then
    fails the schema, and the job goes to a person)."""
    try:
        compiled = _re2(pattern)
    except Exception:  # re2.error: a repetition over 1000, a backreference, a lookaround
        try:
            return regex.search(pattern, text, timeout=FALLBACK_REGEX_SECONDS) is not None
        except (TimeoutError, regex.error):
            return False
    return compiled.search(text) is not None


def schema_pattern_problem(pattern: str) -> str | None:
    """Why neither engine accepts ``pattern``, or None."""
    try:
        _re2(pattern)
        return None
    except Exception:
        pass
    try:
        regex.compile(pattern)
    except regex.error as exc:
        return str(exc)
    return None


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _schema_search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, patterns, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _schema_search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator, additional, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    properties, patterns = schema.get("properties", {}), list(schema.get("patternProperties", {}))
    extras = [key for key in instance
              if key not in properties and not any(_schema_search(p, key) for p in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        yield ValidationError(f"Additional properties are not allowed ({', '.join(map(repr, sorted(extras)))} "
                              f"{'was' if len(extras) == 1 else 'were'} unexpected)")


#: Draft 2020-12 whose regular expressions run in bounded time: the values a policy's fields schema
#: matches come from documents, and Python's backtracking ``re`` takes exponential time on
#: patterns like ``(a+)+$`` (one tenant's policy pinning shared workers).
_FieldsValidator = validators.extend(Draft202012Validator, {
    "pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties,
})


def schema_patterns(schema: Any) -> list[str]:
    """Every regular expression in a fields schema (``pattern`` values, ``patternProperties``
    keys), for the loader to check."""
    found, stack = [], [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.append(node["pattern"])
            if isinstance(node.get("patternProperties"), dict):
                found.extend(node["patternProperties"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _fields_validator(schema: dict) -> Draft202012Validator:
    return _FieldsValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
