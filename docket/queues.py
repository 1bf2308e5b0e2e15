"""The task queue's vocabulary and configuration, read by the API, the sweeper and the workers:
queue names, task names, and the Celery app built from Docket's settings.

The database holds each job's truth; the broker only carries hints that a job is ready. So the
settings below favour redelivery over loss (acks_late, reject_on_worker_lost) and bound how
long a lost hint can delay a job (visibility timeout, the sweeper).
"""
from __future__ import annotations

from celery import Celery
from celery.signals import before_task_publish

from docket import logs
from docket.config import Settings

CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"
# The sweepers and housekeeping: consumed by the worker that runs beat (`docket worker --beat`)
# beside its own queues, so recovery never waits behind a backlog of analyses.
CONTROL_QUEUE = "control"

# Task names: the API and the sweeper publish by name, so neither imports the worker's code.
ANALYZE_TASK = "docket.analyze_job"
SWEEP_TASK = "docket.sweep"
SWEEP_WEBHOOKS_TASK = "docket.sweep_webhooks"
DELIVER_WEBHOOK_TASK = "docket.deliver_webhook"
HOUSEKEEPING_TASK = "docket.housekeeping"
# Background policy runs (simulations, re-decisions, re-analyses: docket/runs.py) and their sweeper.
POLICY_RUN_TASK = "docket.policy_run"
SWEEP_POLICY_RUNS_TASK = "docket.sweep_policy_runs"

# Modules that define the tasks above; only a worker process imports them.
TASK_MODULES = ["worker.tasks", "worker.webhook_tasks", "worker.housekeeping", "worker.policy_tasks"]


@before_task_publish.connect
def _carry_request_id(headers=None, **_kwargs) -> None:
    """A task published while handling a request (or another task) carries its request id, so
    the worker's and the webhook sender's log lines can be joined to the upload's."""
    request_id = logs.current().get("request_id")
    if headers is not None and request_id:
        headers.setdefault("docket_request_id", request_id)


def create_celery(settings: Settings, broker_url: str | None = None, *, fail_fast: bool = False) -> Celery:
    """The app for `settings`. `fail_fast` (the API's): a publish that finds no broker fails on the
    first refused connection instead of retrying until the connect timeout; the job is recorded
    already, and the sweeper publishes it (see docket/broker.py)."""
    url = broker_url or settings.redis_url or "redis://127.0.0.1:6379/0"
    app = Celery("docket", broker=url, include=TASK_MODULES)
    app.conf.update(
        # kombu's Redis transport, holding its client object (docket/broker_transport.py).
        broker_transport="docket.broker_transport:Transport" if url.startswith("redis://") else None,
        task_default_queue=CPU_QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        task_ignore_result=True,  # results live in the database
        worker_prefetch_multiplier=1,  # a slow OCR job must not hold others hostage
        worker_hijack_root_logger=False,
        broker_connection_timeout=settings.broker_connect_timeout,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # A message unacknowledged this long (its worker died) is delivered again.
            "visibility_timeout": settings.visibility_timeout,
            "socket_connect_timeout": settings.broker_connect_timeout,
            "socket_timeout": 10,
            **({"max_retries": 0} if fail_fast else {}),
        },
        task_routes={name: {"queue": CONTROL_QUEUE} for name in (SWEEP_TASK, SWEEP_WEBHOOKS_TASK, HOUSEKEEPING_TASK,
                                                                  SWEEP_POLICY_RUNS_TASK)},
        beat_schedule={
            # A pass not started within a few intervals is dropped: the next one does its work.
            "sweep-jobs": {"task": SWEEP_TASK, "schedule": settings.sweep_interval,
                           "options": {"expires": 3 * settings.sweep_interval}},
            "sweep-webhooks": {"task": SWEEP_WEBHOOKS_TASK, "schedule": settings.sweep_interval,
                               "options": {"expires": 3 * settings.sweep_interval}},
            "housekeeping": {"task": HOUSEKEEPING_TASK, "schedule": max(settings.sweep_interval, 10.0),
                             "options": {"expires": 3 * max(settings.sweep_interval, 10.0)}},
            "sweep-policy-runs": {"task": SWEEP_POLICY_RUNS_TASK, "schedule": settings.sweep_interval,
                                  "options": {"expires": 3 * settings.sweep_interval}},
        },
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        enable_utc=True,
    )
    return app
