"""The worker process's Celery app: the core's configuration (docket/queues.py) for this
process's settings. Task modules decorate their tasks with it."""
from __future__ import annotations

import os

from celery.signals import beat_embedded_init, celeryd_after_setup, task_postrun, task_prerun, worker_process_init

from db.session import get_engine
from docket import logs
from docket.config import Settings
from docket.queues import ANALYZE_TASK, CONTROL_QUEUE, create_celery

_MAIN_PID = os.getpid()  # the worker's main process, which forks the pool and the embedded beat
_settings = Settings.from_env()
_settings.data_dir.mkdir(parents=True, exist_ok=True)  # beat keeps its schedule file there
celery = create_celery(_settings)


@celeryd_after_setup.connect
def _beat_worker_consumes_control(sender, instance, **_kwargs) -> None:
    """The worker that runs beat (`--beat`) also consumes the control queue, where the sweepers
    go: beside its own queues, served in turn, never behind their backlog."""
    if getattr(instance, "beat", None):
        instance.app.amqp.queues.select_add(CONTROL_QUEUE)


_log_tokens: dict[str, dict] = {}


@task_prerun.connect
def _bind_log_ids(task_id=None, task=None, args=None, **_kwargs) -> None:
    """A task's log lines say which request published it and, for analyses, which job."""
    job_id = args[0] if task is not None and task.name == ANALYZE_TASK and args else None
    _log_tokens[task_id] = logs.bind(request_id=getattr(task.request, "docket_request_id", None),
                                     job_id=job_id, tenant=None)


@task_postrun.connect
def _unbind_log_ids(task_id=None, **_kwargs) -> None:
    tokens = _log_tokens.pop(task_id, None)
    if tokens:
        logs.unbind(tokens)


@worker_process_init.connect
@beat_embedded_init.connect
def _die_with_the_worker(**_kwargs) -> None:
    """A forked pool or beat process ends with the worker's main process, even one killed outright
    (or by `docket serve` dying) while it was starting them: the death signal is not inherited
    across fork, and a parent that died before it was set has already left us orphaned."""
    from docket.processes import die_with_parent

    if os.getpid() == _MAIN_PID:  # not a forked child: nothing to tie
        return
    die_with_parent()
    if os.getppid() != _MAIN_PID:
        os._exit(1)


@worker_process_init.connect
def _own_database_connections(**_kwargs) -> None:
    """A forked pool process must not use the connections its parent opened before the fork (the
    main process touches the database at start-up): two processes on one socket corrupt each
    other's transactions. The child starts a pool of its own and leaves the parent's alone."""
    get_engine(Settings.from_env().database_url).dispose(close=False)
