"""The Celery application, configured from Docket's settings.

The database holds each job's truth; the broker only carries hints that a job is ready. So the
settings below favour redelivery over loss (acks_late, reject_on_worker_lost) and bound how
long a lost hint can delay a job (visibility timeout, the sweeper).
"""
from __future__ import annotations

from celery import Celery

from docket.config import Settings

CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"


def create_celery(settings: Settings, broker_url: str | None = None) -> Celery:
    url = broker_url or settings.redis_url or "redis://127.0.0.1:6379/0"
    app = Celery("docket", broker=url, include=["worker.tasks", "worker.webhook_tasks", "worker.housekeeping"])
    app.conf.update(
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
        },
        beat_schedule={
            "sweep-jobs": {"task": "docket.sweep", "schedule": settings.sweep_interval},
            "sweep-webhooks": {"task": "docket.sweep_webhooks", "schedule": settings.sweep_interval},
            "housekeeping": {"task": "docket.housekeeping", "schedule": max(settings.sweep_interval, 10.0)},
        },
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        enable_utc=True,
    )
    return app


celery = create_celery(Settings.from_env())
