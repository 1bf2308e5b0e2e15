"""What-if: a policy version applied to the stored fields of a tenant's past jobs. CEL on what is
already stored, no re-analysis, nothing written.

Each selected job (a succeeded job submitted under the policy's name, filtered by time, batch,
current decision) is evaluated as its decision was made: its newest decision's fields, the same
`document` facts (text, pages, near-duplicates and invoice history as of the job's submission),
the model's proposed decision when a model analyzed it, and `now` = the job's submission time,
so claim windows do not drift. The answer compares the result with that newest decision:
how many would change, the transitions, the checks that would fire more or less often, and
example jobs for each transition.

Speed (bench/simulate.py): jobs are read in keyset chunks of plain columns; the facts that need
history are computed for the whole selection from one read (not one query per job); and when
the version's fields schema equals the one a decision was made with, that decision's schema
findings are reused instead of validating again (validation is most of an evaluation's cost).
The same loop serves re-decisions (docket/redecide.py).
"""
from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

import numpy as np
from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session, aliased

from db.models import DECISIONS, Decision, Document, Job, utcnow
from db.queries import JobFilter, as_utc, filtered
from db.review_queue import invoice_key
from docket import duplicates, fx, invoice_facts, policies, privacy
from docket.errors import DocketError
from docket.rules import Rule, evaluate

ARROW = "→"
MAX_EXAMPLES = 5
CHUNK = 2000
#: Simulations of more jobs than this run in the background (202 and a run to poll).
SYNC_LIMIT = 10_000


class InvalidFilter(DocketError):
    status = 400
    code = "invalid_filter"
    title = "Invalid filter"


@dataclass(frozen=True)
class PolicyFilter:
    """Which of a tenant's jobs a simulation or re-decision covers (always the policy's own jobs,
    succeeded). `decision` is the current decision (after reviews); `needs_review` selects the
    pending ones."""

    since: datetime | None = None
    until: datetime | None = None
    batch: str | None = None
    decision: str | None = None
    reviewed: bool | None = None

    @classmethod
    def parse(cls, body: Any) -> "PolicyFilter":
        if body is None:
            return cls()
        if not isinstance(body, dict):
            raise InvalidFilter("The filter is a JSON object: since, until, batch, decision, reviewed.")
        unknown = set(body) - {"since", "until", "batch", "decision", "reviewed"}
        if unknown:
            raise InvalidFilter(f"Unknown filter key(s): {', '.join(sorted(map(str, unknown)))}; "
                                "use since, until, batch, decision, reviewed.")
        decision = body.get("decision") or None
        if decision is not None and decision not in DECISIONS:
            raise InvalidFilter(f"'decision' must be one of {', '.join(DECISIONS)}.")
        batch = body.get("batch") or None
        if batch is not None and (not isinstance(batch, str) or len(batch) > 32 or not batch.isprintable()):
            raise InvalidFilter("'batch' must be a batch id.")
        reviewed = body.get("reviewed")
        if reviewed is not None and not isinstance(reviewed, bool):
            raise InvalidFilter("'reviewed' must be true or false.")
        return cls(since=_time(body.get("since"), "since"), until=_time(body.get("until"), "until"), batch=batch,
                   decision=decision, reviewed=reviewed)

    def to_json(self) -> dict[str, Any]:
        out = {"since": self.since.isoformat() if self.since else None,
               "until": self.until.isoformat() if self.until else None,
               "batch": self.batch, "decision": self.decision, "reviewed": self.reviewed}
        return {k: v for k, v in out.items() if v is not None}


def _time(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidFilter(f"'{name}' must be an ISO 8601 date or time.")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFilter(f"'{name}' must be an ISO 8601 date or time.") from None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# --- which jobs, and what is stored about them ---------------------------------------------------

def selection(tenant_id: str, name: str, flt: PolicyFilter, *, before: datetime | None = None) -> Select:
    """SELECT of the selected jobs (tenant, policy name, succeeded, the filter; submitted at or
    before `before`, a run's snapshot)."""
    query = filtered(JobFilter(tenant=tenant_id, status="succeeded", rule=name, batch=flt.batch,
                               decision=flt.decision, created_since=flt.since, created_until=flt.until,
                               reviewed=flt.reviewed))
    if before is not None:
        query = query.where(Job.created_at <= before)
    # Erased or purged jobs keep their decision as it was: their fields are gone (docket/privacy.py).
    return query.where(~privacy.content_gone())


def count(session: Session, tenant_id: str, name: str, flt: PolicyFilter, *, before: datetime | None = None) -> int:
    sub = selection(tenant_id, name, flt, before=before).with_only_columns(Job.id).subquery()
    return session.scalar(select(func.count()).select_from(sub))


def newest_decision_id():
    newer = aliased(Decision)
    return select(func.max(newer.id)).where(newer.job_id == Job.id).correlate(Job).scalar_subquery()


def load_chunk(session: Session, tenant_id: str, name: str, flt: PolicyFilter, *, after: list | None,
               limit: int, before: datetime | None = None, with_text: bool = True) -> list:
    """The next `limit` selected jobs after `after` ([created_at, id]), oldest first, each with
    its newest decision and its document's facts, as plain rows."""
    columns = [Job.id, Job.created_at, Job.filename, Job.reviewed_at, Job.current_decision, Job.analyzer,
               Document.mime_type, Document.page_count, Document.phash,
               Decision.id.label("decision_id"), Decision.decision, Decision.fields, Decision.reasons,
               Decision.rule_version, Decision.model_output, Decision.confidence, Decision.evidence,
               Decision.sources]
    if with_text:
        columns.append(Decision.text)
    query = (selection(tenant_id, name, flt, before=before).with_only_columns(*columns)
             .join_from(Job, Document, Document.sha256 == Job.document_sha256)
             .join_from(Job, Decision, (Decision.job_id == Job.id) & (Decision.id == newest_decision_id())))
    if after:
        query = query.where(tuple_(Job.created_at, Job.id) > tuple_(datetime.fromisoformat(after[0]), after[1]))
    return list(session.execute(query.order_by(Job.created_at, Job.id).limit(limit)))


def cursor_of(row) -> list:
    return [as_utc(row.created_at).isoformat(), row.id]


# --- document facts, for many jobs at once ------------------------------------------------------

class Facts:
    """The `document` each job's checks see, as the analyzer saw it: what the document row and
    the decision store, plus near-duplicates and earlier claims of the same invoice among the
    tenant's jobs submitted before it. History is read once, not per job."""

    def __init__(self, session: Session, tenant_id: str, rule: Rule, *, duplicate_distance: int,
                 since: datetime | None = None, until: datetime | None = None):
        self.tenant_id, self.rule, self.distance = tenant_id, rule, duplicate_distance
        self.near = duplicates.read_by(rule)
        self.history = invoice_facts.reads_history(rule)
        self.with_text = rule.reads_document("text")
        self._claims: dict[str, list[tuple[datetime, str]]] = {}
        self.rates = fx.Rates(session, tenant_id)  # the total in the policy's currency, as the worker converts it
        if self.near:
            query = (select(Job.created_at, Job.id, Job.phash)  # the scan's rows (docket/duplicates.py)
                     .where(Job.tenant_id == tenant_id, Job.phash.is_not(None)))
            if since is not None:
                query = query.where(Job.created_at >= since - timedelta(days=365))
            if until is not None:
                query = query.where(Job.created_at < until)
            rows = session.execute(query.order_by(Job.created_at, Job.id)).all()
            self._times = [as_utc(r[0]) for r in rows]
            self._ids = [r[1] for r in rows]
            self._hashes = np.array([int(r[2], 16) for r in rows], dtype=np.uint64)
            self._index = {job_id: i for i, job_id in enumerate(self._ids)}

    def prepare(self, session: Session, rows: Iterable) -> None:
        """Read the invoice history the next rows need (one query per chunk)."""
        self.rates.bind(session)  # a run's chunks each have a session of their own
        if not self.history:
            return
        keys = {k for k in (invoice_key(r.fields) for r in rows) if k and k not in self._claims}
        for key in keys:
            self._claims[key] = []
        keys = sorted(keys)
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            for key, created, job_id in session.execute(
                    select(Job.invoice_key, Job.created_at, Job.id)
                    .where(Job.tenant_id == self.tenant_id, Job.invoice_key.in_(part))):
                self._claims[key].append((as_utc(created), job_id))
        for key in keys:
            self._claims[key].sort()

    def document(self, row) -> dict[str, Any]:
        fields = row.fields if isinstance(row.fields, dict) else {}
        doc: dict[str, Any] = {"text": (getattr(row, "text", None) or "") if self.with_text else "",
                               "pages": row.page_count, "mime_type": row.mime_type, "filename": row.filename or ""}
        if self.near:
            doc.update(duplicates.facts(self._near_duplicates(row)))
        qr = (row.model_output or {}).get("qr") if isinstance(row.model_output, dict) else None
        doc.update(invoice_facts.facts(None, None, fields, qr, with_history=False))
        doc.update(fx.facts(self.rates, self.rule, fields))
        if self.history:
            earlier = self._earlier_claim(row, fields)
            doc.update(duplicate_invoice=earlier is not None, duplicate_invoice_of=earlier or "")
        return doc

    def converted(self, fields) -> dict[str, Any] | None:
        """The conversion a decision on `fields` records (docket/fx.py), or None."""
        made = fx.conversion(self.rates, self.rule, fields if isinstance(fields, dict) else {})
        return made.to_json() if made is not None else None

    def _near_duplicates(self, row) -> list[str]:
        # As docket.duplicates.earlier_near_duplicates: the tenant's other jobs submitted within a
        # year before this one (the newest SCAN_LIMIT), within `distance` bits, nearest first.
        if not row.phash:
            return []
        created = as_utc(row.created_at)
        lo = bisect_left(self._times, created - timedelta(days=365))
        hi = bisect_right(self._times, created)
        own = self._index.get(row.id, -1)
        start = max(lo, hi - duplicates.SCAN_LIMIT - (1 if lo <= own < hi else 0))
        if start >= hi:
            return []
        distances = np.bitwise_count(self._hashes[start:hi] ^ np.uint64(int(row.phash, 16)))
        if start <= own < hi:
            distances[own - start] = 255  # not its own duplicate
        near = np.flatnonzero(distances <= self.distance)[::-1]  # newest first
        if not len(near):
            return []
        return [self._ids[start + i] for i in near[np.argsort(distances[near], kind="stable")]]

    def _earlier_claim(self, row, fields: dict) -> str | None:
        key = invoice_key(fields)
        if key is None:
            return None
        created = as_utc(row.created_at)
        for when, job_id in self._claims.get(key, ()):
            if when > created:
                break
            if job_id != row.id:
                return job_id
        return None


# --- evaluating one stored decision again --------------------------------------------------------

def _is_model_reason(reason: dict) -> bool:
    check = str(reason.get("check", ""))
    return check == "model" or check.startswith("model:")


def _is_schema_reason(reason: dict) -> bool:
    return str(reason.get("check", "")).startswith(("required:", "schema:"))


class Evaluator:
    """`candidate` applied to stored decisions, reusing their schema findings where the schema
    is the one they were made with."""

    def __init__(self, session: Session, tenant_id: str, candidate: Rule, builtins: dict[str, Rule]):
        self.session, self.tenant_id, self.candidate, self.builtins = session, tenant_id, candidate, builtins
        self._used: dict[str, Rule | None] = {}

    def used(self, version: str) -> Rule | None:
        if version not in self._used:
            self._used[version] = policies.resolve(self.session, self.tenant_id, self.candidate.name, version,
                                                   self.builtins)
        return self._used[version]

    def verdict(self, row, document: dict):
        reasons = [r for r in (row.reasons or []) if isinstance(r, dict)]
        output = row.model_output if isinstance(row.model_output, dict) else {}
        proposed = output.get("proposed") if output.get("proposed") in DECISIONS else "approve"
        proposed_reasons = [{k: r[k] for k in ("check", "outcome", "message") if k in r}
                            for r in reasons if _is_model_reason(r)]
        used = self.used(row.rule_version)
        same_schema = used is not None and used.fields_schema == self.candidate.fields_schema
        return evaluate(self.candidate, row.fields, document, now=as_utc(row.created_at), proposed=proposed,
                        proposed_reasons=proposed_reasons,
                        schema_reasons=[r for r in reasons if _is_schema_reason(r)] if same_schema else None,
                        # The certainty test on the confidences stored with the decision; one stored
                        # without any (a model's, before the model recorded them) cannot be judged.
                        confidence=row.confidence if isinstance(row.confidence, dict) and row.confidence else None,
                        evidence=row.evidence, sources=row.sources)

    def reanalysis_needed(self, versions: Iterable[str]) -> dict[str, list[str]]:
        """For each decision version whose fields cannot answer for the candidate: what differs."""
        out = {}
        for version in sorted(versions):
            differs = policies.needs_reanalysis(self.candidate, self.used(version))
            if differs:
                out[version] = differs
        return out


def fired(reasons: Iterable[dict]) -> set[str]:
    return {str(r.get("check")) for r in reasons if isinstance(r, dict) and r.get("check")}


# --- the answer -----------------------------------------------------------------------------------

class Tally:
    """Counts that add up chunk by chunk (and survive as JSON between a run's chunks)."""

    def __init__(self, state: dict | None = None):
        state = state or {}
        self.evaluated = state.get("evaluated", 0)
        self.changed = state.get("changed", 0)
        self.reviewed = state.get("reviewed", 0)
        self.transitions = Counter(state.get("transitions", {}))
        self.unchanged = Counter(state.get("unchanged", {}))
        self.before = Counter(state.get("checks_before", {}))
        self.after = Counter(state.get("checks_after", {}))
        self.examples: dict[str, list[str]] = {k: list(v) for k, v in state.get("examples", {}).items()}
        self.versions: set[str] = set(state.get("versions", []))
        self.seconds = state.get("seconds", 0.0)

    def add(self, job_id: str, before: str, after: str, before_checks: set[str], after_checks: set[str],
            reviewed: bool, version: str) -> None:
        self.evaluated += 1
        self.versions.add(version)
        self.reviewed += bool(reviewed)
        self.before.update(before_checks)
        self.after.update(after_checks)
        if before == after:
            self.unchanged[before] += 1
            return
        self.changed += 1
        key = f"{before}{ARROW}{after}"
        self.transitions[key] += 1
        examples = self.examples.setdefault(key, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(job_id)

    def state(self) -> dict[str, Any]:
        return {"evaluated": self.evaluated, "changed": self.changed, "reviewed": self.reviewed,
                "transitions": dict(self.transitions), "unchanged": dict(self.unchanged),
                "checks_before": dict(self.before), "checks_after": dict(self.after), "examples": self.examples,
                "versions": sorted(self.versions), "seconds": round(self.seconds, 3)}

    def result(self, candidate: Rule, evaluator: Evaluator) -> dict[str, Any]:
        checks = {}
        for check in set(self.before) | set(self.after):
            change = self.after[check] - self.before[check]
            if change:
                checks[check] = {"before": self.before[check], "after": self.after[check], "change": change}
        checks = dict(sorted(checks.items(), key=lambda kv: (-abs(kv[1]["change"]), kv[0])))
        needed = evaluator.reanalysis_needed(self.versions)
        parts = sorted({p for differs in needed.values() for p in differs})
        body = {
            "rule": {"name": candidate.name, "version": candidate.version},
            "evaluated": self.evaluated,
            "changed": self.changed,
            "transitions": dict(sorted(self.transitions.items(), key=lambda kv: (-kv[1], kv[0]))),
            "unchanged": dict(self.unchanged),
            "checks": checks,
            "examples": self.examples,
            "reviewed": self.reviewed,
            "baseline": "each job's newest decision",
            "stored_fields_sufficient": not needed,
            "reanalysis": None,
            "decision_versions": sorted(self.versions),
            "seconds": round(self.seconds, 3),
        }
        if needed:
            body["reanalysis"] = {
                "because": parts, "versions": needed,
                "note": (f"This version changes the {' and '.join(parts)} that the stored fields were extracted "
                         "under, so stored fields cannot show its effect; re-analyse the jobs instead "
                         "(POST /v1/redecisions with \"reanalyze\": true)."),
            }
        return body


def evaluate_chunk(session: Session, rows: list, facts: Facts, evaluator: Evaluator, tally: Tally,
                   each: Callable[[Any, Any], None] | None = None) -> None:
    """Evaluate `rows` and count them; `each(row, verdict)` sees every result (re-decisions)."""
    started = time.perf_counter()
    facts.prepare(session, rows)
    for row in rows:
        verdict = evaluator.verdict(row, facts.document(row))
        tally.add(row.id, row.decision, verdict.decision, fired(row.reasons or []), fired(verdict.reasons),
                  row.reviewed_at is not None, row.rule_version)
        if each is not None:
            each(row, verdict)
    tally.seconds += time.perf_counter() - started


def simulate(session: Session, tenant_id: str, candidate: Rule, flt: PolicyFilter, builtins: dict[str, Rule], *,
             duplicate_distance: int = 6, chunk: int = CHUNK,
             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The what-if answer for `candidate` over the selected jobs, computed now (nothing written)."""
    started = time.perf_counter()
    snapshot = utcnow()
    facts = Facts(session, tenant_id, candidate, duplicate_distance=duplicate_distance, since=flt.since,
                  until=flt.until)
    evaluator = Evaluator(session, tenant_id, candidate, builtins)
    tally = Tally()
    after = None
    while True:
        rows = load_chunk(session, tenant_id, candidate.name, flt, after=after, limit=chunk, before=snapshot,
                          with_text=facts.with_text)
        if not rows:
            break
        evaluate_chunk(session, rows, facts, evaluator, tally)
        after = cursor_of(rows[-1])
        if progress is not None:
            progress(tally.evaluated)
        if len(rows) < chunk:
            break
    result = tally.result(candidate, evaluator)
    if candidate.claim_checks:  # the claims of the policy too (docket/claims.py), synchronously
        from docket import claims

        result["claims"] = claims.simulate(session, tenant_id, candidate, since=flt.since, until=flt.until,
                                           duplicate_distance=duplicate_distance)
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def background_step(builtins: dict[str, Rule], *, duplicate_distance: int = 6, chunk: int = CHUNK):
    """A docket.runs step that works a simulation run a chunk at a time."""
    from docket.runs import Step

    cache: dict[str, Any] = {}

    def step(session: Session, run) -> Step:
        flt = PolicyFilter.parse(run.filter)
        candidate = policies.resolve(session, run.tenant_id, run.rule_name, run.rule_version, builtins)
        if candidate is None:
            raise LookupError(f"policy {run.rule_name} {run.rule_version} is not available")
        if "facts" not in cache:
            cache["facts"] = Facts(session, run.tenant_id, candidate, duplicate_distance=duplicate_distance,
                                   since=flt.since, until=flt.until)
        evaluator = Evaluator(session, run.tenant_id, candidate, builtins)
        tally = Tally((run.result or {}).get("state"))
        rows = load_chunk(session, run.tenant_id, run.rule_name, flt, after=run.cursor, limit=chunk,
                          before=run.created_at, with_text=cache["facts"].with_text)
        changed_before = tally.changed
        evaluate_chunk(session, rows, cache["facts"], evaluator, tally)
        done = len(rows) < chunk
        result = {"state": tally.state()}
        if done:
            result.update(tally.result(candidate, evaluator))
            if candidate.claim_checks:  # the claims of the policy too (docket/claims.py), as a synchronous one
                from docket import claims

                result["claims"] = claims.simulate(session, run.tenant_id, candidate, since=flt.since,
                                                   until=flt.until, duplicate_distance=duplicate_distance)
        return Step(processed=len(rows), cursor=cursor_of(rows[-1]) if rows else run.cursor,
                    changed=tally.changed - changed_before, result=result, done=done)

    return step
