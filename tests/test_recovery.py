"""Recovery in seconds (issue 13): dead workers' jobs taken back by their heartbeats (never a slow
job on a live worker), lost queue messages published again, the database away answered with 503
and waited out by workers, the broker down remembered by the API, webhook retries at their own
due time. Real Postgres, real Redis, real worker processes and real faults."""
from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, select, update

from api import create_app
from db.migrate import upgrade
from db.models import Decision, Job, WebhookAttempt, WebhookDelivery, utcnow
from db.session import get_engine, session_scope
from docket import broker, lifecycle, liveness, recovery
from docket.config import Settings
from docket.queues import ANALYZE_TASK, CPU_QUEUE, DELIVER_WEBHOOK_TASK, create_celery
from docket.tenants import create_key
import bench.instruments  # noqa: F401  (declares bench-instant and bench-sleep for the API here)
from tests import services
from tests.conftest import DOCKET, ROOT, base_env
from tests.test_worker_faults import wait_for


def png(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (seed % 256, (seed // 256) % 256, 99)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def private_redis():
    server = services.RedisServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def cluster():
    """A Postgres of this module's own: these tests stop and restart it."""
    pg = services.PostgresCluster()
    yield pg
    pg.close()


def env_for(tmp_path, database_url: str, redis_url: str, monkeypatch, **extra) -> dict:
    env = base_env(tmp_path / "data")
    env.update(DOCKET_DATABASE_URL=database_url, DOCKET_REDIS_URL=redis_url, DOCKET_HEARTBEAT_INTERVAL="0.2",
               DOCKET_HEARTBEAT_TTL="1", DOCKET_EXTRA_ANALYZERS="bench.instruments", PYTHONPATH=str(ROOT),
               DOCKET_RATE_LIMIT="100000/minute", DOCKET_SUBMIT_RATE_LIMIT="100000/minute",
               **{k: str(v) for k, v in extra.items()})
    for key, value in env.items():
        if key.startswith("DOCKET_"):
            monkeypatch.setenv(key, value)
    return env


class Api:
    """The real Flask app in this process, with a submitter key of its own tenant."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.client = create_app(settings).test_client()
        with session_scope(settings.database_url) as session:
            _, key = create_key(session, "recovery", "admin")
        self.headers = {"Authorization": f"Bearer {key}"}

    def submit(self, seed: int, analyzer: str = "ocr", **form):
        return self.client.post("/v1/jobs", data={"file": (io.BytesIO(png(seed)), f"d{seed}.png"),
                                                  "rule": "expense_policy", "analyzer": analyzer, "cache": "false",
                                                  **form},
                                content_type="multipart/form-data", headers=self.headers)


def row(settings: Settings, job_id: str) -> Job:
    with session_scope(settings.database_url) as session:
        return session.get(Job, job_id)


# --- telling a dead worker from a slow job ---------------------------------------------------------

def test_a_slow_job_is_kept_a_dead_or_dropping_workers_job_is_taken_back():
    now = time.time()
    long_ago = utcnow() - timedelta(hours=1)
    just_now = utcnow()
    running = [("slow", "w-live", long_ago, 1), ("dead", "w-dead", long_ago, 1), ("dropped", "w-live", long_ago, 2),
               ("fresh", "w-new", just_now, 1), ("legacy", None, long_ago, 1)]
    beats = {"w-live": liveness.Beat(now - 0.1, frozenset({"slow"})), "w-dead": None, "w-new": None}
    found = {o.job_id: o for o in liveness.orphans(running, beats, now=now, ttl=20, trusted=True)}
    # An hour-long job on a live worker stays; a job whose worker's key expired goes; a job its live
    # worker no longer lists goes; a claim too recent to judge, and a pre-0005 row, stay.
    assert set(found) == {"dead", "dropped"}
    assert found["dropped"].attempt == 2 and found["dead"].worker == "w-dead"
    # Right after the broker lost its data every key is missing, live workers' too: no verdict yet.
    assert [o.job_id for o in liveness.orphans(running, beats, now=now, ttl=20, trusted=False)] == ["dropped"]
    # A beat taken before the claim says nothing about the job.
    early = {"w-live": liveness.Beat(long_ago.timestamp() - 5, frozenset())}
    assert liveness.orphans([("x", "w-live", long_ago, 1)], early, now=now, ttl=20, trusted=True) == []


def test_broker_epoch_changes_on_flush_and_restart(private_redis):
    r = broker.client(private_redis.url)
    assert liveness.broker_epoch(r).changed  # first look
    first = liveness.broker_epoch(r)
    assert not first.changed and first.age >= 0
    r.flushall()
    assert liveness.broker_epoch(r).changed
    assert not liveness.broker_epoch(r).changed
    private_redis.stop()
    private_redis.start()
    assert liveness.broker_epoch(r).changed  # the run id changed and the marker is gone


@pytest.fixture
def own_database(postgres_admin_url):
    """A database of this test's own: the sweeper acts on every queued job it finds, so jobs that
    earlier tests left queued in the shared one would be republished too."""
    url, drop = services.fresh_database(postgres_admin_url)
    yield url
    get_engine(url).dispose()
    drop()


def test_sweeper_reclaims_dead_workers_jobs_and_republishes_lost_messages(tmp_path, own_database, private_redis,
                                                                         monkeypatch):
    from worker.heartbeat import Heartbeat

    env_for(tmp_path, own_database, private_redis.url, monkeypatch, DOCKET_SWEEP_INTERVAL="1")
    settings = Settings.from_env()
    upgrade(settings.database_url)
    api = Api(settings)
    ids = []
    for seed in range(3):
        resp = api.submit(7000 + seed)
        assert resp.status_code == 202, resp.get_json()
        ids.append(resp.get_json()["id"])
    slow, dead, dropped = ids
    r = redis.Redis.from_url(private_redis.url)
    assert broker.queued_jobs(r, [CPU_QUEUE], ANALYZE_TASK) == set(ids)  # published at submit
    r.delete(CPU_QUEUE)  # as if workers had taken the messages

    live = Heartbeat(private_redis.url, 0.2, 1.0).start()
    try:
        with session_scope(settings.database_url) as s:
            with live.holding(slow) as worker:
                assert lifecycle.claim(s, slow, settings.stale_after, worker) == 1
                # An hour into its analysis, still listed by its live process on every beat.
                s.execute(update(Job).where(Job.id == slow).values(started_at=utcnow() - timedelta(hours=1)))
                s.commit()
                # A process that claimed a job, beat once, and was killed: its key runs out.
                assert lifecycle.claim(s, dead, settings.stale_after, "vm:1:dead") == 1
                liveness.beat(r, "vm:1:dead", time.time(), [dead], ttl=1.0)
                # This live process's task for `dropped` ended without recording an outcome.
                with live.holding(dropped):
                    assert lifecycle.claim(s, dropped, settings.stale_after, worker) == 1
                assert lifecycle.claim(s, dropped, settings.stale_after, "another") is None  # held: no steal
                celery = create_celery(settings)
                time.sleep(1.5)  # the dead key expires; live beats go on
                report = recovery.sweep_jobs(settings, celery)
                # The broker's epoch starts now (first look): a missing key proves nothing yet, but
                # a live worker that no longer lists its job says enough.
                assert report.broker_reset and report.reclaimed == 1
                assert row(settings, dropped).status == "queued" and row(settings, dead).status == "running"
                time.sleep(1.5)  # longer than TTL + one beat since the epoch began
                report = recovery.sweep_jobs(settings, celery)
                assert report.reclaimed == 1 and not report.broker_reset
                assert row(settings, dead).status == "queued"
                assert row(settings, slow).status == "running" and row(settings, slow).attempts == 1
                assert broker.queued_jobs(r, [CPU_QUEUE], ANALYZE_TASK) == {dead, dropped}

                # Messages present: nothing to republish.
                time.sleep(recovery.SETTLE)
                assert recovery.sweep_jobs(settings, celery).republished == 0
                # One message lost (a failover to a replica that lagged): exactly that job again.
                for raw in r.lrange(CPU_QUEUE, 0, -1):
                    if dead.encode() in raw:  # the message's argsrepr names the job
                        r.lrem(CPU_QUEUE, 1, raw)
                assert broker.queued_jobs(r, [CPU_QUEUE], ANALYZE_TASK) == {dropped}
                assert recovery.sweep_jobs(settings, celery).republished == 1
                assert broker.queued_jobs(r, [CPU_QUEUE], ANALYZE_TASK) == {dead, dropped}
                # Redis flushed (or restarted empty): every waiting job again, the running one not.
                time.sleep(recovery.SETTLE)
                r.flushall()
                report = recovery.sweep_jobs(settings, celery)
                assert report.broker_reset and report.republished == 2
                assert broker.queued_jobs(r, [CPU_QUEUE], ANALYZE_TASK) == {dead, dropped}
                assert row(settings, slow).status == "running"
    finally:
        live.stop()
    # Published twice, claimed once: the second claim of the same attempt finds nothing to do.
    with session_scope(settings.database_url) as s:
        assert lifecycle.claim(s, dead, settings.stale_after, "w1") == 2
        assert lifecycle.claim(s, dead, settings.stale_after, "w2") is None


# --- the database away ------------------------------------------------------------------------------

def fresh_database(pg: services.PostgresCluster) -> str:
    url, _ = services.fresh_database(pg.url)
    return url


def test_every_route_answers_503_while_the_database_is_down(tmp_path, cluster, private_redis, monkeypatch):
    env_for(tmp_path, fresh_database(cluster), private_redis.url, monkeypatch, DOCKET_DATABASE_RETRY_AFTER="3")
    settings = Settings.from_env()
    upgrade(settings.database_url)
    api = Api(settings)
    job = api.submit(8100).get_json()["id"]
    assert api.client.get("/healthz").status_code == 200
    cluster.stop()
    try:
        answers = {
            "healthz": api.client.get("/healthz"),
            "list": api.client.get("/v1/jobs", headers=api.headers),
            "get": api.client.get(f"/v1/jobs/{job}", headers=api.headers),
            "submit": api.submit(8101),
            "batch": api.client.post("/v1/batches", data={"files": [(io.BytesIO(png(8102)), "b.png")],
                                                          "rule": "expense_policy"},
                                     content_type="multipart/form-data", headers=api.headers),
            "rules": api.client.get("/v1/rules", headers=api.headers),
            "stats": api.client.get("/v1/stats", headers=api.headers),
            "review": api.client.post(f"/v1/jobs/{job}/reviews", json={"decision": "approve", "comment": "x"},
                                      headers=api.headers),
        }
    finally:
        cluster.start()
    for name, resp in answers.items():
        assert resp.status_code == 503, (name, resp.status_code, resp.get_data(as_text=True)[:300])
        assert resp.mimetype == "application/problem+json", name
        assert resp.get_json()["code"] == "database_unavailable", name
        assert resp.headers["Retry-After"] == "3", name
    assert answers["healthz"].get_json()["checks"] == {"database": "down"}
    # Back: the same app answers again, and a fast restart under it costs no 5xx either.
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get(f"/v1/jobs/{job}", headers=api.headers).status_code == 200
    cluster.restart()
    assert api.client.get(f"/v1/jobs/{job}", headers=api.headers).status_code == 200
    assert api.submit(8103).status_code == 202


def test_a_worker_waits_for_the_database_and_loses_nothing(tmp_path, cluster, private_redis, monkeypatch):
    """Postgres away for 8 s — longer than the old claim retries (1+2+4 s), and than the worker
    waits here (2 s): the claim hands its message back to the queue to wait again, the finished
    analysis whose outcome could not be written is taken back by the sweeper, and both jobs end
    with one decision each."""
    env = env_for(tmp_path, fresh_database(cluster), private_redis.url, monkeypatch, DOCKET_DATABASE_WAIT="2",
                  DOCKET_SWEEP_INTERVAL="1", DOCKET_BENCH_SLEEP="3", DOCKET_LOG_LEVEL="INFO")
    settings = Settings.from_env()
    upgrade(settings.database_url)
    api = Api(settings)
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([DOCKET, "worker", "--concurrency", "1", "--beat"], env=env, cwd=ROOT,
                              start_new_session=True, stdout=log, stderr=log)
    try:
        first = api.submit(8200, analyzer="bench-sleep").get_json()["id"]
        second = api.submit(8201, analyzer="bench-instant").get_json()["id"]
        wait_for(lambda: row(settings, first).status == "running", 60, "the first job to start")
        cluster.stop()
        time.sleep(8)
        assert worker.poll() is None
        cluster.start()
        done = {}
        for job_id in (first, second):
            done[job_id] = wait_for(lambda: (j := row(settings, job_id)).status in ("succeeded", "failed") and j,
                                    60, f"job {job_id} to finish after the outage")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    for job_id, job in done.items():
        assert job.status == "succeeded", (job_id, job.error_code, job.error_message)
        with session_scope(settings.database_url) as s:
            assert s.scalar(select(func.count()).select_from(Decision).where(Decision.job_id == job_id)) == 1
    text = (tmp_path / "worker.log").read_text(errors="replace")
    assert "handed back to the queue" in text  # the claim's message was kept, not dropped
    assert done[second].attempts == 1


# --- the broker down at submit ----------------------------------------------------------------------

def test_submits_while_the_broker_is_unreachable_answer_at_once(tmp_path, postgres_url, monkeypatch):
    """A broker that swallows connections (its accept queue full: SYNs dropped) costs one connect
    timeout, then the API remembers it is down and leaves publishing to the sweeper."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    try:
        env_for(tmp_path, postgres_url, f"redis://127.0.0.1:{port}/0", monkeypatch, DOCKET_BROKER_CONNECT_TIMEOUT="1",
                DOCKET_BROKER_RETRY_AFTER="60")
        settings = Settings.from_env()
        upgrade(settings.database_url)
        api = Api(settings)
        took, ids = [], []
        for seed in range(8):
            started = time.monotonic()
            resp = api.submit(8300 + seed)
            took.append(time.monotonic() - started)
            assert resp.status_code == 202, resp.get_json()
            ids.append(resp.get_json()["id"])
    finally:
        for s in fillers:
            s.close()
        listener.close()
    # The first request finds the broker gone (a connect timeout, the rate limiter's and the
    # publish's); after that both remember it, and only an occasional probe pays again.
    assert sum(1 for t in took if t > 0.5) <= 2, took
    assert sorted(took)[len(took) // 2] < 0.2, took
    for job_id in ids:
        job = row(settings, job_id)
        assert job.status == "queued" and job.enqueued_at is None  # recorded; the sweeper publishes


# --- webhook retries --------------------------------------------------------------------------------

def test_webhook_retries_go_out_at_their_own_due_time(tmp_path, postgres_url, private_redis, monkeypatch):
    """30 deliveries whose first attempt fails: each retry is due uniform(0, 4 s) later. With the
    sweeper 30 s apart (its first pass 30 s after start), only retries sent at their own due time
    (ETA) arrive before it, and they arrive spread out as their jitter says, not in a burst."""
    from tests.test_webhooks_delivery import Receiver

    env = env_for(tmp_path, postgres_url, private_redis.url, monkeypatch, DOCKET_SWEEP_INTERVAL="30",
                  DOCKET_WEBHOOK_BACKOFF_BASE="4", DOCKET_WEBHOOK_ALLOW_HOSTS="127.0.0.1")
    settings = Settings.from_env()
    upgrade(settings.database_url)
    from docket.tenants import ensure_tenant
    from docket.webhooks.outbox import record_event

    receiver = Receiver()
    try:
        with session_scope(settings.database_url) as s:
            secret = ensure_tenant(s, "hooks").webhook_secret
        url = receiver.route("/retry", secret, ("fail_first", 30))
        with session_scope(settings.database_url) as s:
            recorded = [d.id for i in range(30) for d in record_event(s, tenant_id="hooks", event_type="job.succeeded",
                                                                      data={"i": i}, callback_url=url)]
        celery = create_celery(settings)
        for delivery_id in recorded:  # as a process does once the event commits
            celery.send_task(DELIVER_WEBHOOK_TASK, args=[delivery_id], queue=CPU_QUEUE)
        log = open(tmp_path / "worker.log", "wb")
        worker = subprocess.Popen([DOCKET, "worker", "--concurrency", "2", "--beat"], env=env, cwd=ROOT,
                                  start_new_session=True, stdout=log, stderr=log)
        def delivered_count() -> int:
            with session_scope(settings.database_url) as s:
                return s.scalar(select(func.count()).select_from(WebhookDelivery)
                                .where(WebhookDelivery.status == "delivered", WebhookDelivery.id.in_(recorded)))

        try:
            wait_for(lambda: len(receiver.hits("/retry")) >= 60, 25,
                     f"every retry before the sweeper's second pass (see {tmp_path / 'worker.log'})")
            # The last answer may still be on its way into the database: stopping the worker now
            # would cut that write short (its pool children get the SIGTERM too).
            wait_for(lambda: delivered_count() == 30, 10, "every delivery recorded as delivered")
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        with session_scope(settings.database_url) as s:
            # Only this test's deliveries: the session's Postgres database is shared by tests.
            attempts = s.execute(select(WebhookAttempt.delivery_id, WebhookAttempt.attempted_at)
                                 .where(WebhookAttempt.delivery_id.in_(recorded))
                                 .order_by(WebhookAttempt.attempted_at)).all()
    finally:
        receiver.close()
    by_delivery: dict = {}
    for delivery_id, at in attempts:
        by_delivery.setdefault(delivery_id, []).append(at)
    gaps = sorted((times[1] - times[0]).total_seconds() for times in by_delivery.values())
    assert all(0 <= g <= 4 + 1.5 for g in gaps), gaps
    # Spread over the jitter's range, not bunched: the retries' arrival times span seconds.
    seconds = sorted(times[1].timestamp() for times in by_delivery.values())
    assert seconds[-1] - seconds[0] > 2.0, seconds
    assert max(b - a for a, b in zip(seconds, seconds[1:])) < 2.0, seconds


def test_the_webhook_sweeper_has_no_cap(tmp_path, private_redis):
    """1,200 due deliveries: one pass publishes every one of them (pages of 500, none starves)."""
    env = base_env(tmp_path / "data")
    env.update(DOCKET_REDIS_URL=private_redis.url, PYTHONPATH=str(ROOT))
    code = ("from db.migrate import upgrade; from docket.config import Settings; s = Settings.from_env(); "
            "upgrade(s.database_url)\n"
            "from db.session import session_scope; from docket.tenants import ensure_tenant\n"
            "from docket.webhooks.outbox import record_event\n"
            "with session_scope(s.database_url) as db:\n"
            "    ensure_tenant(db, 't')\n"
            "    for i in range(1200): record_event(db, tenant_id='t', event_type='job.failed', data={}, "
            "callback_url='http://127.0.0.1:9/x')\n"
            "from worker import webhook_tasks; print(webhook_tasks.sweep_webhooks())\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "1200"
    assert redis.Redis.from_url(private_redis.url).llen(CPU_QUEUE) == 1200
