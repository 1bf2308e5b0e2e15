"""The rule file format: the document types, check outcomes, readable
``document`` keys and top-level CEL variables a rule may use, the JSON
Schema every rule file (the YAML, after parsing) must satisfy, the
validator for a rule's own ``fields`` schema, and :class:`RuleError`, raised
for any invalid rule file.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

DOCUMENT_TYPES = ("receipt", "contract", "screenshot")
OUTCOMES = ("reject", "needs_review")

#: Keys a check may read from ``document``.
DOCUMENT_KEYS = frozenset({"text", "pages", "mime_type", "filename", "near_duplicate", "duplicate_of",
                           # invoice facts (docket/invoice_facts.py)
                           "invalid_tax_ids", "qr_mismatches", "duplicate_invoice", "duplicate_invoice_of"})
#: Top-level CEL variables.
ACTIVATION_NAMES = frozenset({"fields", "document", "params", "now"})

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
    """A rule file is invalid. The message names the file and the reason; ``line`` (1-based, in
    the YAML source) and ``key`` (``checks[2].expr``) say where, when known."""

    def __init__(self, message: str, *, line: int | None = None, key: str | None = None):
        super().__init__(message)
        self.line = line
        self.key = key


def _fields_validator(schema: dict) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
