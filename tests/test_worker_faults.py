"""Faults the pipeline must survive without losing or duplicating a job: a worker killed with
SIGKILL mid-job, and a broker that is down when the job is submitted."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from datetime import date

import pytest
from sqlalchemy import func, select

from api import create_app
from db.migrate import upgrade
from db.models import Decision, Job
from db.session import session_scope
from docket.config import Settings
from docket.tenants import create_key
from tests import services
from tests.conftest import DOCKET, ROOT, base_env
from tests.documents import encode, receipt_image


@pytest.fixture
def fault_env(tmp_path, postgres_url, throwaway, monkeypatch):
    """Real Postgres, a private Redis (these tests stop and start it), short timeouts."""
    env = base_env(tmp_path / "data")
    env.update(DOCKET_DATABASE_URL=postgres_url, DOCKET_VISIBILITY_TIMEOUT="3", DOCKET_STALE_AFTER="6",
               DOCKET_TASK_TIME_LIMIT="60", DOCKET_SWEEP_INTERVAL="1", DOCKET_LOG_LEVEL="INFO",
               DOCKET_HEARTBEAT_INTERVAL="0.5", DOCKET_HEARTBEAT_TTL="2")
    for key, value in env.items():
        if key.startswith("DOCKET_"):
            monkeypatch.setenv(key, value)
    return env


def start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen([DOCKET, "worker", "--concurrency", "1", "--beat"], env=env, cwd=ROOT,
                            start_new_session=True)


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def submit(settings: Settings, data: bytes) -> str:
    client = create_app(settings).test_client()
    with session_scope(settings.database_url) as session:
        _, key = create_key(session, "faults", "submitter")
    resp = client.post("/v1/jobs", data={"file": (io.BytesIO(data), "r.png"), "rule": "expense_policy"},
                       content_type="multipart/form-data", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    return resp.get_json()["id"]


def job_row(settings: Settings, job_id: str) -> Job:
    with session_scope(settings.database_url) as s:
        return s.get(Job, job_id)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def decisions_for(settings: Settings, job_id: str) -> int:
    with session_scope(settings.database_url) as s:
        return s.scalar(select(func.count()).select_from(Decision).where(Decision.job_id == job_id))


def test_worker_killed_mid_job_still_finishes_once(fault_env, throwaway, monkeypatch):
    redis_url = services.start_redis(throwaway)
    fault_env["DOCKET_REDIS_URL"] = redis_url
    monkeypatch.setenv("DOCKET_REDIS_URL", redis_url)
    settings = Settings.from_env()
    upgrade(settings.database_url)
    first = start_worker(fault_env)
    try:
        # A large page keeps OCR busy for seconds: long enough to be killed in the middle.
        job_id = submit(settings, encode(receipt_image(date(2026, 1, 6), scale=3), "PNG"))
        wait_for(lambda: job_row(settings, job_id).status == "running", 60, "the job to start")
        os.killpg(first.pid, signal.SIGKILL)  # the whole worker, pool and all: no goodbye
        first.wait()
        assert job_row(settings, job_id).status == "running"  # orphaned, as a crash leaves it
    finally:
        stop_worker(first)
    second = start_worker(fault_env)
    try:
        done = wait_for(lambda: (j := job_row(settings, job_id)).status in ("succeeded", "failed") and j, 120,
                        "the job to finish after the crash")
    finally:
        stop_worker(second)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    assert done.attempts == 2
    assert decisions_for(settings, job_id) == 1


def test_broker_down_at_submit_is_recorded_then_processed(fault_env, throwaway, monkeypatch):
    port = services.free_port()  # nothing listens here yet
    redis_url = f"redis://127.0.0.1:{port}/0"
    fault_env["DOCKET_REDIS_URL"] = redis_url
    monkeypatch.setenv("DOCKET_REDIS_URL", redis_url)
    settings = Settings.from_env()
    upgrade(settings.database_url)
    started = time.monotonic()
    job_id = submit(settings, encode(receipt_image(date(2026, 1, 7)), "PNG"))
    assert time.monotonic() - started < 10  # the API answers, it does not hang on the broker
    row = job_row(settings, job_id)
    assert row.status == "queued" and row.enqueued_at is None
    services.start_redis(throwaway, port=port)  # the broker comes back
    worker = start_worker(fault_env)
    try:
        done = wait_for(lambda: (j := job_row(settings, job_id)).status in ("succeeded", "failed") and j, 90,
                        "the sweeper to queue the recorded job")
    finally:
        stop_worker(worker)
    assert done.status == "succeeded" and done.enqueued_at is not None
    assert decisions_for(settings, job_id) == 1


CRASH_ONCE = '''
# Test-only fault injection (tests/test_worker_faults.py): the first Celery worker started with
# this folder on PYTHONPATH dies of an "unrecoverable error" as soon as its consumer starts.
import os
marker = os.environ["DOCKET_TEST_CRASH_MARKER"]
if not os.path.exists(marker):
    open(marker, "w").close()
    from celery.worker.consumer import consumer

    def start(self):
        raise RuntimeError("injected: the consumer cannot go on")

    consumer.Consumer.start = start
'''


def test_a_worker_that_celery_gives_up_on_starts_itself_again(fault_env, throwaway, monkeypatch, tmp_path):
    """Celery exits on errors it calls unrecoverable (seen for real: kombu failing to close a Redis
    connection that dropped mid-job). `docket worker` then starts itself again, same pid, and the
    job waiting in the queue is decided; a requested stop (SIGTERM) is never taken for a crash."""
    redis_url = services.start_redis(throwaway)
    fault_env["DOCKET_REDIS_URL"] = redis_url
    monkeypatch.setenv("DOCKET_REDIS_URL", redis_url)
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(CRASH_ONCE)
    marker = tmp_path / "crashed-once"
    env = {**fault_env, "PYTHONPATH": f"{inject}:{ROOT}", "DOCKET_TEST_CRASH_MARKER": str(marker)}
    settings = Settings.from_env()
    upgrade(settings.database_url)
    job_id = submit(settings, encode(receipt_image(date(2026, 1, 8)), "PNG"))
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([DOCKET, "worker", "--concurrency", "1"], env=env, cwd=ROOT,
                                  start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    try:
        done = wait_for(lambda: (j := job_row(settings, job_id)).status in ("succeeded", "failed") and j, 90,
                        f"the job to be decided after the restart (see {log})")
        assert worker.poll() is None  # the same process, running again
        text = log.read_text(errors="replace")
        assert marker.exists() and "injected: the consumer cannot go on" in text
        assert "starting it again" in text
    finally:
        stop_worker(worker)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    assert worker.returncode == 0  # SIGTERM: a warm shutdown, not restarted


def test_a_crashing_worker_restarts_a_few_times_at_most():
    from docket.processes import may_restart

    environ: dict = {}
    assert all(may_restart(environ, 1000.0 + i) for i in range(5))
    assert not may_restart(environ, 1010.0)  # five in five minutes: the fault recurs, give up
    assert may_restart(environ, 1000.0 + 301)  # the oldest has aged out of the window
