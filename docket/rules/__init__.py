"""Domain rules (policies) and their deterministic checks, written in CEL.

This package loads policy files and evaluates their checks; its public names
are re-exported here, so ``from docket.rules import ...`` is the only import
other code needs. Modules, in dependency order: ``text`` (message helpers),
``values`` (Python values to CEL values), ``schema`` (the rule file format and
:class:`RuleError`), ``regex`` (RE2 ``matches``), ``engine`` (what the ``cel``
engine offers and the helpers Docket registers in it), ``syntax`` (a parser for
CEL source), ``rewrite`` (RE2 ``matches`` and mixed int/double promotion),
``compiler`` (compiling checks, load-time static checks), ``messages``
(placeholder rendering), ``model`` (:class:`Rule`, :class:`Check`), ``loader``
(:func:`load_rule`, :func:`load_rules`, :func:`default_rules_dir`) and
``evaluation`` (:func:`evaluate`, :class:`Verdict`).

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
authors (engine behaviour, and what this package adds to it):

* Every number in ``fields`` and ``params`` is a CEL ``double`` (ints are
  converted), so ``fields.total > params.meal_cap`` works whether the analyzer
  produced ``12`` or ``12.0``. Comparisons (``<``, ``==``, ``in`` ...) across
  int, uint and double work natively. The engine does not mix them in
  arithmetic (``2 * 5.0`` is "no such overload"), so this package rewrites
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
  package runs it with google-re2 and caches compiled patterns; the engine's
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

import logging

from docket.rules import schema as _schema
from docket.rules import syntax as _syntax
from docket.rules.evaluation import DECISIONS, Verdict, evaluate
from docket.rules.loader import canonical_source, default_rules_dir, load_rule, load_rule_source, load_rules, source_version
from docket.rules.model import Check, Rule
from docket.rules.schema import DOCUMENT_TYPES, RULE_FILE_SCHEMA, RuleError

__all__ = [
    "RuleError",
    "Check",
    "Rule",
    "Verdict",
    "DECISIONS",
    "DOCUMENT_TYPES",
    "load_rule",
    "load_rules",
    "load_rule_source",
    "canonical_source",
    "source_version",
    "default_rules_dir",
    "evaluate",
    "RULE_FILE_SCHEMA",
]

logger = logging.getLogger(__name__)

# Importable from ``docket.rules`` as before the split, though not in ``__all__``.
OUTCOMES = _schema.OUTCOMES
DOCUMENT_KEYS = _schema.DOCUMENT_KEYS
ACTIVATION_NAMES = _schema.ACTIVATION_NAMES
# The parser, for tests that check its round trip (tests/test_rules.py).
_Parser = _syntax._Parser
_emit = _syntax._emit
