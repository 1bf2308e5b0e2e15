"""The source-to-source rewrite applied to each check before it is compiled
for running: every ``matches`` (method or global form) becomes a call of the
RE2 helper ``_docket_matches``, and arithmetic (``+ - * /``) whose operands
may be an int/uint meeting a double is promoted, as cel-python did, because
the engine refuses mixed arithmetic (``2 * 5.0`` is "no such overload").
Operand types are inferred from literals, functions, ``params`` values and
the ``fields`` schema (numbers in ``fields``/``params`` are always doubles):
when both are known the promotion is a plain ``double(...)``, when either is
unknown (``document`` values, comprehension variables, indexing) the
operation becomes a ``_docket_add``/``_sub``/``_mul``/``_div`` call that
promotes at run time; ``%`` and non-numbers are never touched. The types
cannot be settled at load time in general (``document.pages`` is an int,
``[1, 2.5].exists(x, x + 1 == 3.5)`` mixes both), which is why the run-time
helpers exist. Expressions that need neither change run exactly as written.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass

from docket.rules.engine import _ARITHMETIC_HELPERS, _COMPREHENSIONS, _MATCHES_HELPER, _TIME_ACCESSORS, _TYPE_NAMES
from docket.rules.schema import ACTIVATION_NAMES
from docket.rules.syntax import (
    _Binary,
    _Call,
    _Cond,
    _Ident,
    _Index,
    _is_comprehension,
    _List,
    _Lit,
    _Map,
    _Select,
    _Unary,
)
from docket.rules.values import _is_number

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
