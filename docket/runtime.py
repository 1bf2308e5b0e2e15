"""Bringing up what a one-machine Docket needs, and stopping exactly what was started:
the embedded Redis (when none is configured), the schema, and worker processes."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from contextlib import ExitStack, contextmanager
from typing import Iterator

from db.migrate import upgrade
from docket.config import Settings
from docket.data_dir import prepare as prepare_data_dir
from docket.embedded import ensure_redis
from docket.processes import die_with_parent, stop_process

log = logging.getLogger(__name__)


def start_worker(concurrency: int | None, *, queues: str = "cpu", beat: bool = True, env: dict | None = None,
                 quiet: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "docket.cli", "worker", "--queues", queues]
    if concurrency is not None:
        cmd += ["--concurrency", str(concurrency)]
    if beat:
        cmd.append("--beat")
    out = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(cmd, env=env or os.environ.copy(), stdout=out, stderr=out, start_new_session=True,
                            preexec_fn=die_with_parent)


@contextmanager
def local_stack(settings: Settings, *, workers: int = 1, quiet_workers: bool = False, queues: str = "cpu",
                started: list | None = None) -> Iterator[Settings]:
    """Redis (embedded when unset) + migrated database + a worker process of concurrency
    `workers` consuming `queues`; the worker's Popen is appended to `started` when given.

    Yields settings whose redis_url points at the server in use. Everything started here is
    stopped on exit, in reverse order.
    """
    with ExitStack() as stack:
        prepare_data_dir(settings)  # private before the database, Redis or a worker writes there
        url, server = ensure_redis(settings)
        if server is not None:
            stack.callback(server.stop)
        os.environ["DOCKET_REDIS_URL"] = url  # child workers must use the same server
        settings = Settings.from_env()
        upgrade(settings.database_url)
        _archive_builtins(settings)
        if workers:
            proc = start_worker(workers, queues=queues, quiet=quiet_workers)
            stack.callback(stop_process, proc)
            if started is not None:
                started.append(proc)
        yield settings


def _archive_builtins(settings: Settings) -> None:
    """The deployed built-in policies' sources, kept by version (docket.policies)."""
    from db.session import session_scope
    from docket.policies import archive_builtins
    from docket.rules import default_rules_dir, load_rules

    with session_scope(settings.database_url) as session:
        archive_builtins(session, load_rules(settings.rules_dir or default_rules_dir()))
