"""Conversion of Python/JSON values into the values the ``cel`` engine receives,
and the small type predicates that go with it: ``_to_cel`` (every number a
double for ``fields``/``params``, ints kept for ``document``, anything
unknown turned into a string, never raising), UTC normalisation of
timestamps, and the CEL type name of a Python value for error messages.
"""

from __future__ import annotations

import datetime as _dt
import decimal
from collections.abc import Mapping
from typing import Any

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
