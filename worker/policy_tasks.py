"""Celery tasks for background policy runs: simulations, re-decisions and re-analyses
(docket/runs.py, docket/simulation.py, docket/redecide.py), and their sweeper.

Small and idempotent: the run row decides what is left to do. A task works a run for at most
RUN_BUDGET seconds, chunk by chunk (each chunk commits with the run's cursor), then queues the
run again for the next task; a redelivered or duplicated message finds the run claimed or
finished and does nothing.
"""
from __future__ import annotations

import logging

from db.models import PolicyRun
from db.session import session_scope
from docket import redecide, runs, simulation, submission
from docket.config import Settings
from docket.queues import CPU_QUEUE, POLICY_RUN_TASK, SWEEP_POLICY_RUNS_TASK
from docket.rules import default_rules_dir, load_rules
from worker.celery_app import celery

log = logging.getLogger(__name__)
RUN_BUDGET = 60.0
_builtins = None


def builtins():
    global _builtins
    if _builtins is None:
        settings = Settings.from_env()
        _builtins = load_rules(settings.rules_dir or default_rules_dir())
    return _builtins


def publish_run(run_id: str) -> None:
    """Queue a run's next task; if the broker is down the sweeper does it later."""
    celery.send_task(POLICY_RUN_TASK, args=[run_id], queue=CPU_QUEUE, retry=False)
    with session_scope(Settings.from_env().database_url) as session:
        runs.mark_published(session, run_id)


@celery.task(name=POLICY_RUN_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def policy_run(run_id: str) -> str:
    settings = Settings.from_env()
    with session_scope(settings.database_url) as session:
        run = session.get(PolicyRun, run_id)
        kind = run.kind if run is not None else None
    if kind is None:
        return "skipped"
    if kind == "simulation":
        step = simulation.background_step(builtins(), duplicate_distance=settings.duplicate_distance)
        status = runs.drive(settings.database_url, run_id, step, budget=RUN_BUDGET)
    else:
        status = redecide.execute(settings.database_url, run_id, builtins(), budget=RUN_BUDGET,
                                  publish=lambda session, jobs: submission.publish(celery, session, jobs),
                                  duplicate_distance=settings.duplicate_distance)
    if status == "paused":
        try:
            publish_run(run_id)
        except Exception as exc:  # noqa: BLE001 - the sweeper publishes queued, unpublished runs
            log.warning("run %s not re-published now (%s); the sweeper will", run_id, exc)
    return status


@celery.task(name=SWEEP_POLICY_RUNS_TASK, acks_late=True, ignore_result=True)
def sweep_policy_runs() -> int:
    """Publish runs whose message never went out, was lost, or whose worker died."""
    with session_scope(Settings.from_env().database_url) as session:
        due = [run.id for run in runs.needing_publish(session)]
    for run_id in due:
        try:
            publish_run(run_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("run %s not published (%s)", run_id, exc)
            break
    return len(due)
