"""The worker process's Celery app: the core's configuration (docket/queues.py) for this
process's settings. Task modules decorate their tasks with it."""
from __future__ import annotations

from docket.config import Settings
from docket.queues import create_celery

celery = create_celery(Settings.from_env())
