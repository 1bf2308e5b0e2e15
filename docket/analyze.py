"""`docket analyze`: files through the real pipeline — stored, recorded as jobs, queued,
analyzed by a worker process, decided, read back from the database."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from docket.representation import job_json
from db.models import DEFAULT_TENANT, Job
from db.session import session_scope
from docket import live, policies, submission
from docket.analyzers import route
from docket.config import Settings
from docket.errors import DocketError
from docket.queues import create_celery
from docket.rules import default_rules_dir, load_rules
from docket.runtime import local_stack


def run(files: list[Path], *, rule: str, analyzer: str, workers: int, timeout: float,
        progress: bool, on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Every file's result, in the order given; `on_result` gets each one as soon as it is known
    (rejected files at once, then each job as its decision is committed)."""
    settings = Settings.from_env()
    rules = load_rules(settings.rules_dir or default_rules_dir())
    chosen = submission.resolve_rule(rules, rule)
    analyzer = submission.resolve_analyzer(analyzer)
    _, queue = route(analyzer)  # the model analyzer needs a worker on the gpu queue
    started: list = []
    with local_stack(settings, workers=workers, quiet_workers=True, queues=queue, started=started) as settings:
        celery = create_celery(settings)
        results: list[dict | None] = [None] * len(files)
        pending: dict[str, int] = {}
        with session_scope(settings.database_url) as session:
            # The default tenant's active version of the policy (its own, else the built-in).
            chosen = submission.resolve_rule(policies.active_rules(session, DEFAULT_TENANT, rules), rule)
            jobs = []
            for index, path in enumerate(files):
                try:
                    with path.open("rb") as fh:
                        document = submission.store_document(session, settings, fh, path.name)
                except DocketError as exc:
                    results[index] = {"file": str(path), "job_id": None, "status": "rejected",
                                      "error": {"code": exc.code, "message": exc.detail},
                                      "fields": None, "decision": None, "reasons": None}
                    continue
                job = submission.new_job(session, document, chosen, path.name, analyzer=analyzer)
                jobs.append(job)
                pending[job.id] = index
            session.commit()
            submission.publish(celery, session, jobs)
        bar = tqdm(total=len(files), disable=not progress, unit="doc", leave=False)
        for result in results:
            if result is not None:  # rejected before any job existed: shown at once
                _emit(result, bar, on_result)
        worker_exit = _follow(settings, files, pending, results, timeout, started, bar, on_result)
        bar.close()
        with session_scope(settings.database_url) as session:
            for job_id, index in pending.items():  # still unfinished at the deadline: say so
                out = _result(str(files[index]), session.get(Job, job_id))
                out["error"] = ({"code": "worker_exited",
                                 "message": f"the worker stopped (exit status {worker_exit}); run "
                                            f"`docket worker --queues {queue}` to see why"}
                                if worker_exit is not None else
                                {"code": "timeout", "message": f"not finished after {timeout} s"})
                results[index] = out
                if on_result is not None:
                    on_result(out)
        celery.close()
    return [r for r in results if r is not None]


def _emit(result: dict, bar, on_result: Callable[[dict], None] | None) -> None:
    bar.update(1)
    if on_result is not None:
        on_result(result)


def _follow(settings: Settings, files: list[Path], pending: dict[str, int], results: list, timeout: float,
            started: list, bar, on_result) -> int | None:
    """Wait on the jobs' live events (docket/live.py: a Redis nudge after each committed change)
    and hand over each result as its job finishes; the database is read only when something
    happened. Returns the worker's exit status when it stopped early, else None."""
    deadline = time.monotonic() + timeout
    subscription = live.Subscription(settings.redis_url, list(pending))
    try:
        while pending:
            with session_scope(settings.database_url) as session:
                for job in session.query(Job).filter(Job.id.in_(list(pending)), Job.status.in_(live.FINISHED)):
                    index = pending.pop(job.id)
                    results[index] = _result(str(files[index]), job)
                    _emit(results[index], bar, on_result)
            left = deadline - time.monotonic()
            if not pending or left <= 0:
                return None
            if started and started[0].poll() is not None:  # e.g. a GPU worker without a usable model
                return started[0].returncode
            # Woken by the next change; at most a second apart, to notice a worker that exited.
            subscription.wait(min(left, 1.0))
    finally:
        subscription.close()
    return None


def _result(path: str, job: Job) -> dict:
    body = job_json(job)
    out = {"file": path, "job_id": job.id, "status": job.status, "fields": body["fields"],
           "decision": body["decision"], "reasons": body["reasons"]}
    if job.status == "failed":
        out["error"] = body["error"]
    else:
        out.update(rule=body["rule"], analyzer=body["analyzer"], sources=body.get("sources"),
                   confidence=body.get("confidence"), converted=body.get("converted"), timings=body.get("timings"))
    return out
