"""The JSON the model must produce, and the xgrammar grammar that forces it.

Output = ``{"fields": <the rule's field schema>, "decision": approve|needs_review|reject,
"reasons": [<= N strings of <= L characters]}``. Every string and number in it is bounded so a
weak model cannot loop; decoding is constrained token by token, so the output always parses and
its fields always fit the rule's schema (random weights included).

The grammar is derived from the rule's schema by transformations that only ever *narrow* the
set of accepted documents (so anything the grammar allows still validates against the rule):

* ``format: date`` strings get a calendar-valid date pattern (JSON Schema's format checker
  rejects 2024-02-30; a ``\\d{4}-\\d{2}-\\d{2}`` pattern alone would not);
* negated classes and ``.`` exclude ``"`` and ``\\``: xgrammar writes pattern characters into the
  JSON string verbatim, so a quote would end the string early (invalid JSON);
* xgrammar 0.2.8 fails to compile some bounded repetitions above 128 (``[^\\x00-\\x1f]{1,200}``:
  "per_rule_fsm_hashes ... has_value()"): such a quantifier is split into an equivalent chain
  of ``{a,b}`` pieces of at most 128 (the same language) — only for patterns that fail as is;
* optional caps (settings, 0 = off) on string quantifiers and array lengths (only upper bounds are lowered).

What the grammar cannot express (``uniqueItems``) is repaired after decoding (duplicates
dropped) and anything else is checked again by the rules engine.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from typing import Any

DECISIONS = ("approve", "needs_review", "reject")
# A reason: printable, no quote or backslash (xgrammar patterns do not produce JSON escapes).
REASON_PATTERN_CHARS = '[^\\x00-\\x1f"\\\\]'

_DATE_PATTERNS = {None, r"^\d{4}-\d{2}-\d{2}$", r"\d{4}-\d{2}-\d{2}"}
# YYYY-MM-DD that exists in the Gregorian calendar (leap days included).
_YEAR = r"(?:[1-9]\d{3}|0[1-9]\d{2}|00[1-9]\d|000[1-9])"  # 0001-9999: Python's date range
VALID_DATE = (
    rf"^(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)"
    r"|02-(?:0[1-9]|1\d|2[0-8]))"
    r"|\d{2}(?:0[48]|[2468][048]|[13579][26])-02-29|(?:0[48]|[2468][048]|[13579][26])00-02-29)$"
)


def output_schema(fields_schema: dict, *, max_reasons: int = 3, reason_chars: int = 120) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["fields", "decision", "reasons"],
        "properties": {
            "fields": fields_schema,
            "decision": {"enum": list(DECISIONS)},
            "reasons": {
                "type": "array",
                "maxItems": max_reasons,
                "items": {"type": "string", "pattern": f"^{REASON_PATTERN_CHARS}{{1,{reason_chars}}}$"},
            },
        },
    }


def _walk(node: Any, fn) -> Any:
    if isinstance(node, dict):
        node = {k: _walk(v, fn) for k, v in node.items()}
        return fn(node)
    if isinstance(node, list):
        return [_walk(v, fn) for v in node]
    return node


def _dates(node: dict) -> dict:
    if node.get("format") == "date" and node.get("pattern") in _DATE_PATTERNS:
        # xgrammar turns `format: date` into its own looser grammar (0000-00-00 passes) and
        # then ignores the pattern: keep only the pattern.
        node = {k: v for k, v in node.items() if k != "format"}
        node["pattern"] = VALID_DATE
    return node


_QUANT = re.compile(r"\{(\d+),(\d+)\}")


def _atoms(pattern: str):
    """Split a regex into atoms: escapes, [classes], (groups), single characters."""
    i = 0
    while i < len(pattern):
        start = i
        c = pattern[i]
        if c == "\\":
            i += 4 if pattern[i + 1:i + 2] == "x" else 6 if pattern[i + 1:i + 2] == "u" else 2
        elif c == "[":
            i += 1
            if pattern[i:i + 1] == "^":
                i += 1
            if pattern[i:i + 1] == "]":
                i += 1
            while i < len(pattern) and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
        elif c == "(":
            depth = 0
            while i < len(pattern):
                if pattern[i] == "\\":
                    i += 2
                    continue
                if pattern[i] == "(":
                    depth += 1
                elif pattern[i] == ")":
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                i += 1
        else:
            i += 1
        yield pattern[start:i]


def _rewrite(pattern: str, atom_fn, quant_fn) -> str:
    out: list[str] = []
    atoms = list(_atoms(pattern))
    k = 0
    while k < len(atoms):
        atom = atom_fn(atoms[k])
        k += 1
        # A {m,n} quantifier is five-plus atoms: "{", digits, ",", digits, "}".
        rest = "".join(atoms[k:k + 16])
        m = _QUANT.match(rest)
        if m and atom not in ("^", "$", "|", ")") and not atom.startswith("{"):
            out.append(quant_fn(atom, int(m.group(1)), int(m.group(2))))
            consumed = len(m.group(0))
            while consumed > 0:
                consumed -= len(atoms[k])
                k += 1
        else:
            out.append(atom)
    return "".join(out)


def _same(atom: str) -> str:
    return atom


def split_quantifiers(pattern: str, limit: int = 128) -> str:
    """Rewrite ``atom{m,n}`` with n > limit as a chain ``atom{a1,b1}atom{a2,b2}...`` with every
    b_i <= limit, sum(a) = m, sum(b) = n: the same language."""
    def quant(atom: str, low: int, high: int) -> str:
        if high <= limit:
            return f"{atom}{{{low},{high}}}"
        pieces = []
        while high > 0:
            b = min(limit, high)
            a = min(b, low)
            pieces.append(f"{atom}{{{a},{b}}}")
            high -= b
            low -= a
        return "".join(pieces)

    return _rewrite(pattern, _same, quant)


def cap_quantifiers(pattern: str, cap: int) -> str:
    """Lower the upper bound of ``{m,n}`` to max(m, cap): a subset of the language."""
    return _rewrite(pattern, _same, lambda atom, low, high: f"{atom}{{{low},{min(high, max(low, cap))}}}")


def json_safe(pattern: str) -> str:
    """Keep `"` and `\\` out of negated classes and `.`: xgrammar emits pattern characters
    verbatim inside the JSON string, so a quote would end it early. A subset of the language."""
    def atom(a: str) -> str:
        if a.startswith("[^") and a.endswith("]"):
            return a[:-1] + '"\\\\]'
        if a == ".":
            return '[^"\\\\\\x00-\\x1f]'
        return a

    return _rewrite(pattern, atom, lambda a, low, high: f"{a}{{{low},{high}}}")


def decoding_schema(schema: dict, *, split=None, max_string: int = 0, max_items: int = 0) -> dict:
    """The rule's schema narrowed for decoding (see the module docstring). `split(pattern)`
    says whether a pattern must have its long quantifiers split (it does not compile as is)."""
    def narrow(node: dict) -> dict:
        node = _dates(node)
        if node.get("type") == "string" and isinstance(node.get("pattern"), str):
            pattern = json_safe(node["pattern"])
            if max_string:
                pattern = cap_quantifiers(pattern, max_string)
            if split is not None and split(pattern):
                pattern = split_quantifiers(pattern)
            node = dict(node, pattern=pattern)
        if max_items and node.get("type") == "array" and node.get("minItems", 0) <= max_items:
            node = dict(node, maxItems=min(node.get("maxItems", max_items), max_items))
        return node

    return _walk(copy.deepcopy(schema), narrow)


def schema_hash(schema: dict) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()


class GrammarCache:
    """Compiled grammars per output schema (one per rule version): compiling costs 0.05–2 s."""

    def __init__(self, tokenizer, vocab_size: int, stop_token_ids: list[int], *, max_string: int = 0,
                 max_items: int = 0):
        self.max_string, self.max_items = max_string, max_items
        import xgrammar as xgr

        self._xgr = xgr
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids)
        self._compiler = xgr.GrammarCompiler(info)
        self._grammars: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, schema: dict):
        key = schema_hash(schema)
        with self._lock:
            grammar = self._grammars.get(key)
            if grammar is None:
                grammar = self._grammars[key] = self._compile(schema)
            return grammar

    def _compile(self, schema: dict):
        narrowed = decoding_schema(schema, split=self._fails, max_string=self.max_string,
                                   max_items=self.max_items)
        return self._compiler.compile_json_schema(json.dumps(narrowed), any_whitespace=False)

    def _fails(self, pattern: str) -> bool:
        """xgrammar 0.2.8 cannot compile some bounded repetitions above 128 (e.g. `[^"]{1,200}`,
        while `{1,10000}` works): try the pattern alone (milliseconds)."""
        try:
            self._compiler.compile_json_schema(json.dumps({"type": "string", "pattern": pattern}),
                                               any_whitespace=False)
            return False
        except RuntimeError:
            return True

    def processor(self, grammars: list):
        """A fresh logits processor for one generate() call (they keep per-call matcher state)."""
        return self._xgr.contrib.hf.LogitsProcessor(grammars)


def repair(value: Any, schema: dict) -> Any:
    """Fix what the grammar cannot enforce: drop duplicates from uniqueItems arrays."""
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        return {k: repair(v, schema["properties"].get(k, {})) for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items", {}) if isinstance(schema.get("items"), dict) else {}
        value = [repair(v, items) for v in value]
        if schema.get("uniqueItems"):
            seen, unique = set(), []
            for v in value:
                key = json.dumps(v, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    unique.append(v)
            value = unique
    return value
