"""The loaded form of a policy: :class:`Rule` (name, version, document type,
prompt, ``fields`` schema, params and checks, plus lazily built, cached run
time state: the fields validator, ``params`` converted for CEL and a pool of
idle ``cel.Context`` objects) and :class:`Check` (one CEL expression with
its outcome and message, and its compiled, immutable, thread-shared
``cel.Program``). Both are frozen dataclasses; copying or pickling a rule
drops its contexts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cel
from jsonschema import Draft202012Validator

from docket.rules.compiler import _compile
from docket.rules.engine import _FUNCTIONS
from docket.rules.schema import _fields_validator
from docket.rules.values import _to_cel


@dataclass(frozen=True)
class Check:
    id: str
    expr: str
    outcome: str
    message: str
    program: Any = field(default=None, compare=False, repr=False)
    #: The message in other languages: docket.i18n locale (``zh_Hans``) -> template (docket/reasons.py).
    messages: dict = field(default_factory=dict, compare=False)

    def runner(self):
        """The compiled ``cel.Program`` (compiled once, then cached; immutable, shared by threads)."""
        if self.program is None:
            object.__setattr__(self, "program", _compile(self.expr).program)
        return self.program

    def __deepcopy__(self, memo):  # a cel.Program cannot be copied, and needn't be: it is immutable
        return Check(id=self.id, expr=self.expr, outcome=self.outcome, message=self.message, program=self.program,
                     messages=dict(self.messages))


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
    #: field -> the least confidence its value needs for an automatic decision (``certainty:``).
    certainty: dict = field(default_factory=dict)
    #: Checks over a whole expense claim (``claim_checks:``, docket/rules/claim_checks.py).
    claim_checks: tuple = ()
    #: Fields holding personal data (``personal_fields:``), erased on request (docket/privacy.py).
    personal_fields: tuple = ()
    #: kind (``documents``, ``text``) -> seconds kept (``retention:``); a kind absent: kept for good.
    retention: dict = field(default_factory=dict)
    #: Whether a redacted copy of each page is made for people who are not admins (``redact:``).
    redact: bool = False
    _validator: Any = field(default=None, compare=False, repr=False)
    _cel_params: Any = field(default=None, compare=False, repr=False)
    #: Idle ``cel.Context`` objects holding ``params`` and the helper functions,
    #: converted once. A context is used by one evaluation at a time (taken
    #: with ``list.pop``, returned with ``list.append``, both atomic).
    _contexts: list = field(default_factory=list, init=False, compare=False, repr=False)
    #: reads_document's answers, per key: asked for every job, and the checks never change.
    _reads: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(self.fields_schema.get("required", ()))

    def reads_document(self, key: str) -> bool:
        """Whether a check reads ``document.<key>`` (costly inputs are computed only then)."""
        if key not in self._reads:
            self._reads[key] = any(re.search(rf"\bdocument\s*\.\s*{re.escape(key)}\b", c.expr) for c in self.checks)
        return self._reads[key]

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
