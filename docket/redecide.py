"""Re-deciding existing jobs under a policy version, or re-analysing them when stored fields
cannot answer for it. Both run in the background (docket/runs.py), a chunk at a time.

Re-decision: each selected job gets a new decision row (`origin` "run:<run id>"), made by the
version's checks on the job's stored fields exactly as a simulation evaluates them
(docket/simulation.py); the earlier rows stay, as history. The job's current decision follows
the new one, unless a person reviewed the job: then the review stands and, when the policy's
answer changed, the job is flagged for a second look. Each job whose decision changed gets a
`job.redecided` webhook event, recorded in the same transaction as its new decision.

When the version changes what the analyzer extracts (the prompt or the fields schema, see
policies.needs_reanalysis), stored fields are not enough: starting a re-decision says so
(409 reanalysis_required) and offers re-analysis instead, which puts the jobs back in the
queue under the new version, through the analyzers (`analysis_round` + 1, so the analyzer's
new decision is one more row of the job's history). Jobs a person reviewed are not re-queued
(the review stands); they are flagged for a second look.
"""
from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from db.models import Decision, Job, utcnow
from db.review_queue import queue_values
from docket import policies, runs, simulation
from docket.errors import DocketError
from docket.representation import job_json
from docket.rules import Rule
from docket.webhooks.outbox import record_event

CHUNK = 200


class ReanalysisRequired(DocketError):
    status = 409
    code = "reanalysis_required"
    title = "Stored fields are not enough"


def reanalysis_needed(session: Session, tenant_id: str, candidate: Rule, flt: simulation.PolicyFilter,
                      builtins: dict[str, Rule]) -> dict[str, list[str]]:
    """Per decision version among the selected jobs: what the candidate changes that stored
    fields cannot show (empty: a re-decision on stored fields is faithful)."""
    sub = simulation.selection(tenant_id, candidate.name, flt).with_only_columns(Job.id).subquery()
    newer = aliased(Decision)
    newest = (select(func.max(newer.id)).where(newer.job_id == Decision.job_id)
              .correlate_except(newer).scalar_subquery())
    versions = set(session.scalars(
        select(Decision.rule_version).distinct()
        .where(Decision.job_id.in_(select(sub.c.id)), Decision.id == newest)))
    return simulation.Evaluator(session, tenant_id, candidate, builtins).reanalysis_needed(versions)


def start(session: Session, tenant_id: str, candidate: Rule, flt: simulation.PolicyFilter,
          builtins: dict[str, Rule], *, reanalyze: bool, actor: str, actor_key_id: str | None = None):
    """Record a queued re-decision (or, with `reanalyze`, re-analysis) run; the caller commits and
    publishes it. Refuses a re-decision that stored fields cannot make faithfully."""
    if not reanalyze:
        needed = reanalysis_needed(session, tenant_id, candidate, flt, builtins)
        if needed:
            parts = sorted({p for differs in needed.values() for p in differs})
            raise ReanalysisRequired(
                f"Version {candidate.version} of {candidate.name} changes the {' and '.join(parts)} that the "
                "stored fields were extracted under, so re-deciding on stored fields would not show its effect. "
                "Re-analyse the jobs instead: send \"reanalyze\": true (they go through the analyzers again).",
                because=parts, versions=needed)
    total = simulation.count(session, tenant_id, candidate.name, flt)
    return runs.create(session, tenant_id=tenant_id, kind="reanalysis" if reanalyze else "redecision",
                       rule_name=candidate.name, rule_version=candidate.version, filter=flt.to_json(),
                       actor=actor, actor_key_id=actor_key_id, total=total)


def execute(database_url: str, run_id: str, builtins: dict[str, Rule], *,
            publish: Callable[[Session, list[Job]], Any] | None = None, duplicate_distance: int = 6,
            chunk: int = CHUNK, progress: Callable | None = None, attempt: int | None = None,
            budget: float | None = None) -> str:
    """Work a re-decision or re-analysis run to its end (see docket.runs.drive). `publish(session,
    jobs)` sends re-queued jobs to the analyzers once their chunk committed (when it is missing,
    or fails, the sweeper publishes them)."""
    step = _step(builtins, publish=publish, duplicate_distance=duplicate_distance, chunk=chunk)
    return runs.drive(database_url, run_id, step, progress=progress, attempt=attempt, budget=budget)


def _step(builtins: dict[str, Rule], *, publish, duplicate_distance: int, chunk: int):
    cache: dict[str, Any] = {}

    def step(session: Session, run) -> runs.Step:
        flt = simulation.PolicyFilter.parse(run.filter)
        candidate = policies.resolve(session, run.tenant_id, run.rule_name, run.rule_version, builtins)
        if candidate is None:
            raise LookupError(f"policy {run.rule_name} {run.rule_version} is not available")
        if run.kind == "reanalysis":
            return _reanalyse_chunk(session, run, candidate, flt, publish, chunk)
        if "facts" not in cache:
            cache["facts"] = simulation.Facts(session, run.tenant_id, candidate,
                                              duplicate_distance=duplicate_distance, since=flt.since,
                                              until=flt.until)
        return _redecide_chunk(session, run, candidate, flt, cache["facts"], builtins, chunk)

    return step


def _redecide_chunk(session: Session, run, candidate: Rule, flt, facts, builtins, chunk: int) -> runs.Step:
    rows = simulation.load_chunk(session, run.tenant_id, run.rule_name, flt, after=run.cursor, limit=chunk,
                                 before=run.created_at, with_text=facts.with_text)
    done = len(rows) < chunk
    if not rows:
        return runs.Step(processed=0, cursor=run.cursor, result=_with_claims(session, run, candidate, flt, run.result),
                         done=True)
    ids = [row.id for row in rows]
    # A chunk is committed with the run's cursor, so none is done twice; this is the backstop.
    already = set(session.scalars(select(Decision.job_id).where(Decision.run_id == run.id, Decision.job_id.in_(ids))))
    previous = {d.id: d for d in session.scalars(select(Decision).where(Decision.id.in_([r.decision_id for r in rows])))}
    now = utcnow()
    tally = simulation.Tally((run.result or {}).get("state"))
    changed_before = tally.changed
    flagged: list[str] = []
    announce: list[tuple[str, str, str, bool]] = []

    def each(row, verdict) -> None:
        if row.id in already:
            return
        prev = previous[row.decision_id]
        session.add(Decision(
            job_id=row.id, tenant_id=run.tenant_id, origin=f"run:{run.id}", run_id=run.id, created_by=run.created_by,
            decision=verdict.decision, fields=prev.fields, reasons=verdict.reasons, confidence=prev.confidence,
            evidence=prev.evidence, sources=prev.sources, rule_name=candidate.name, rule_version=candidate.version,
            analyzer=prev.analyzer, model=prev.model, timings={"redecided_from": prev.id}, model_output=prev.model_output,
            text=prev.text, converted=facts.converted(prev.fields), created_at=now))
        changed = verdict.decision != row.decision
        # The current decision follows the new one unless a person reviewed the job (checked in the
        # UPDATE itself, so a review committed meanwhile is never overwritten).
        followed = session.execute(update(Job).where(Job.id == row.id, Job.reviewed_at.is_(None))
                                   .values(**queue_values(verdict.decision, prev.fields))
                                   .execution_options(synchronize_session=False)).rowcount == 1
        if not followed and changed:
            session.execute(update(Job).where(Job.id == row.id).values(
                second_look_at=now,
                second_look_reason=(f"Re-decided under {candidate.name} {candidate.version[:19]} by {run.created_by}: "
                                    f"the policy now says {verdict.decision} (it said {row.decision}); "
                                    "the review stands. Take a second look.")[:500])
                .execution_options(synchronize_session=False))
            flagged.append(row.id)
        if changed:
            announce.append((row.id, row.decision, verdict.decision, not followed))

    simulation.evaluate_chunk(session, rows, facts, simulation.Evaluator(session, run.tenant_id, candidate, builtins),
                              tally, each)
    session.flush()
    for job_id, before, after, reviewed in announce:
        job = session.get(Job, job_id)
        session.expire(job)
        data = job_json(job)
        data["redecision"] = {"id": run.id, "from": before, "to": after,
                              "rule": {"name": candidate.name, "version": candidate.version},
                              "review_stands": reviewed}
        record_event(session, tenant_id=run.tenant_id, event_type="job.redecided", data=data, job_id=job.id,
                     batch_id=job.batch_id, callback_url=job.callback_url, now=now)
    state = tally.state()
    result = {"state": state, "transitions": state["transitions"], "unchanged": state["unchanged"],
              "examples": state["examples"], "reviewed": state["reviewed"]}
    if done:
        result = _with_claims(session, run, candidate, flt, result)
    return runs.Step(processed=len(rows), cursor=simulation.cursor_of(rows[-1]),
                     changed=tally.changed - changed_before, flagged=len(flagged), result=result, done=done)


def _with_claims(session: Session, run, candidate: Rule, flt, result: dict | None) -> dict | None:
    """The run's last step: the policy's claims decided again from their re-decided documents
    (docket/claims.py), their count in the result as `claims`."""
    if not candidate.claim_checks:
        return result
    from docket import claims

    return {**(result or {}), "claims": claims.redecide(session, run.tenant_id, candidate, run_id=run.id,
                                                        since=flt.since, until=flt.until)}


def _reanalyse_chunk(session: Session, run, candidate: Rule, flt, publish, chunk: int) -> runs.Step:
    rows = simulation.load_chunk(session, run.tenant_id, run.rule_name, flt, after=run.cursor, limit=chunk,
                                 before=run.created_at, with_text=False)
    done = len(rows) < chunk
    result = dict(run.result or {"requeued": 0, "skipped_reviewed": 0})
    if not rows:
        return runs.Step(processed=0, cursor=run.cursor, result=result, done=True)
    now = utcnow()
    eligible = [r.id for r in rows if r.reviewed_at is None]
    reviewed = [r.id for r in rows if r.reviewed_at is not None]
    requeued: list[str] = []
    if eligible:
        requeued = list(session.scalars(
            # A job whose original retention deleted has nothing to read again (docket/privacy.py).
            update(Job).where(Job.id.in_(eligible), Job.status == "succeeded", Job.reviewed_at.is_(None),
                              Job.documents_purged_at.is_(None))
            .values(status="queued", rule_version=candidate.version, analysis_round=Job.analysis_round + 1,
                    attempts=0, enqueued_at=None, started_at=None, finished_at=None, error_code=None,
                    error_message=None, cached_from=None, worker=None)
            .returning(Job.id).execution_options(synchronize_session=False)))
    if reviewed:
        session.execute(update(Job).where(Job.id.in_(reviewed)).values(
            second_look_at=now,
            second_look_reason=(f"Not re-analysed under {candidate.name} {candidate.version[:19]} "
                                f"(asked by {run.created_by}): a person reviewed this job, and the review "
                                "stands. Take a second look.")[:500])
            .execution_options(synchronize_session=False))
    result["requeued"] = result.get("requeued", 0) + len(requeued)
    result["skipped_reviewed"] = result.get("skipped_reviewed", 0) + len(reviewed)

    bind = session.get_bind()

    def send() -> None:
        with Session(bind) as fresh:
            jobs = list(fresh.scalars(select(Job).where(Job.id.in_(requeued))))
            try:
                publish(fresh, jobs)
            except Exception:  # noqa: BLE001 - the jobs stay queued, unpublished: the sweeper sends them
                pass

    return runs.Step(processed=len(rows), cursor=simulation.cursor_of(rows[-1]), changed=len(requeued),
                     flagged=len(reviewed), result=result, done=done,
                     after_commit=send if publish is not None and requeued else None)
