"""Fault drills, as an operator would run them: throwaway Postgres and Redis (started here, as the
tests start theirs), the API under gunicorn, `docket worker --beat`, jobs of the `bench-instant`
analyzer (and a few `bench-sleep` ones, to be killed mid-run or to outlive every heartbeat), and
real faults while clients submit:

    none             no fault (a long job on a live worker among them: never reclaimed)
    worker-kill      the worker's whole process tree SIGKILLed twice mid-run, restarted 1 s later
                     (a few jobs sleep, so that some are running when it dies)
    redis-restart    Redis killed (no persistence: queues, unacked messages, heartbeats gone),
                     started again empty after 10 s
    pg-restart       Postgres restarted (fast shutdown: connections terminated)
    pg-stop          Postgres stopped for 10 s, then started
                     (in both, a few jobs sleep, so that some are mid-analysis when it goes)
    webhook-outage   the customer's receiver answers 500 for 30 s

    .venv/bin/python bench/faults.py [-n 300] [--drills none,worker-kill,...] [--fast]

Clients behave: they retry 503/429 (after Retry-After, at most 2 s), connection errors and other
5xx, with an Idempotency-Key, and take any other 4xx as final. Per drill it prints jobs, how
they ended (succeeded / failed / stuck: not finished by the deadline), duplicates (a second
decision for a job, a second job for a document, a webhook delivered twice), the time to drain
(from the end of the fault, or the last submission if later, to the last job finished or webhook
delivered), jobs that needed more than one attempt, the HTTP codes answered during the fault,
and the slowest submission then. `lost` counts documents that did not end as exactly one
succeeded job (for the webhook drill also events never delivered). The last line is exactly
`drills: N, lost: L, duplicated: D, max drain: S s`.

Recovery settings are the defaults (sweep 10 s, heartbeat 5 s / TTL 20 s), except that the
webhook drill caps the retry backoff at 30 s and allows 12 attempts (DOCKET_WEBHOOK_BACKOFF_CAP,
DOCKET_WEBHOOK_MAX_ATTEMPTS): after an outage a delivery waits up to the cap of the retry stage
it reached, by design, and 8 quick jittered retries could all fall inside a 30 s outage. `--fast` is the profile the
test suite runs (tests/test_fault_drills.py): fewer jobs, shorter faults, 1 s sweeps.
"""
from __future__ import annotations

import argparse
import http.server
import io
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
import redis  # noqa: E402
import requests  # noqa: E402
from PIL import Image  # noqa: E402
from standardwebhooks import Webhook, WebhookVerificationError  # noqa: E402

from tests import services  # noqa: E402

BIN = Path(sys.executable).parent
DRILLS = ("none", "worker-kill", "redis-restart", "pg-restart", "pg-stop", "webhook-outage")


@dataclass(frozen=True)
class Profile:
    n: int = 300                 # documents per drill
    webhook_n: int = 100         # documents in the webhook drill
    rate: float = 25.0           # submissions per second, all clients together
    clients: int = 8
    api_workers: int = 2         # gunicorn processes x threads: the deployed shape
    api_threads: int = 4
    concurrency: int = 2         # worker processes
    redis_down: float = 10.0
    pg_down: float = 10.0
    webhook_outage: float = 30.0
    restart_after_kill: float = 1.0
    kill_sleep: float = 3.0      # bench-sleep jobs running when the worker is killed or Postgres goes
    give_up: float = 240.0       # seconds after the fault a drill waits for the last job
    env: tuple = ()              # extra environment for every process
    # Retries honour the backoff to the second now: a short cap keeps the drain after the outage
    # short, and more attempts keep fast retries from running out during it.
    webhook_env: tuple = (("DOCKET_WEBHOOK_BACKOFF_CAP", "30"), ("DOCKET_WEBHOOK_MAX_ATTEMPTS", "12"))


BENCH = Profile()
FAST = Profile(n=24, webhook_n=12, rate=12.0, clients=4, api_workers=1, api_threads=4, redis_down=3.0, pg_down=4.0,
               webhook_outage=4.0, restart_after_kill=0.5, kill_sleep=2.0, give_up=45.0,
               env=(("DOCKET_SWEEP_INTERVAL", "1"), ("DOCKET_HEARTBEAT_INTERVAL", "0.5"),
                    ("DOCKET_HEARTBEAT_TTL", "2"), ("DOCKET_BROKER_RETRY_AFTER", "1"),
                    ("DOCKET_DATABASE_RETRY_AFTER", "1"), ("DOCKET_DATABASE_WAIT", "20")),
               webhook_env=(("DOCKET_WEBHOOK_BACKOFF_BASE", "0.5"), ("DOCKET_WEBHOOK_BACKOFF_CAP", "2"),
                            ("DOCKET_WEBHOOK_MAX_ATTEMPTS", "30")))


@dataclass
class Result:
    drill: str
    jobs: int = 0
    accepted: int = 0
    succeeded: int = 0
    failed: int = 0
    stuck: int = 0
    duplicated: int = 0
    lost: int = 0
    drain: float = 0.0
    retried: int = 0
    codes: Counter = field(default_factory=Counter)
    health: Counter = field(default_factory=Counter)
    slowest_submit: float = 0.0
    notes: list = field(default_factory=list)


class Infra:
    """The throwaway servers every drill runs against: one Postgres cluster (a fresh database per
    drill) and one Redis (flushed per drill)."""

    def __init__(self):
        self.pg = services.PostgresCluster()
        self.redis = services.RedisServer()
        self.root = Path(tempfile.mkdtemp(prefix="docket-faults-"))

    def fresh_database(self) -> str:
        name = f"drill_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.pg.port}/{name}"

    def close(self) -> None:
        self.redis.close()
        self.pg.close()
        shutil.rmtree(self.root, ignore_errors=True)


class Receiver:
    """The customer's webhook endpoint: verifies every signature, answers 500 while `failing`,
    and records each 2xx it gave per webhook-id."""

    def __init__(self, secret: str):
        self.webhook = Webhook(secret)
        self.failing = False
        self.delivered: dict[str, list[float]] = {}
        self.job_delivered: dict[str, float] = {}
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = receiver.webhook.verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    return self._reply(401)
                if receiver.failing:
                    return self._reply(500)
                now = time.time()
                with receiver.lock:
                    receiver.delivered.setdefault(self.headers["webhook-id"], []).append(now)
                    if payload.get("type") == "job.succeeded":
                        receiver.job_delivered.setdefault(payload["data"]["id"], now)
                self._reply(204)

            def _reply(self, code: int):
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _stop(proc: subprocess.Popen | None, sig=signal.SIGTERM, wait: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


class Stack:
    """The API (gunicorn) and one worker with the sweeper, on a fresh database and data folder."""

    def __init__(self, infra: Infra, profile: Profile, name: str, extra_env: dict, log_dir: Path):
        self.infra, self.profile, self.log_dir = infra, profile, log_dir
        if infra.redis.proc.poll() is not None:
            infra.redis.start()
        redis.Redis.from_url(infra.redis.url).flushall()
        self.database_url = infra.fresh_database()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKET_")}
        env.update(DOCKET_DATABASE_URL=self.database_url, DOCKET_REDIS_URL=infra.redis.url,
                   DOCKET_DATA_DIR=str(infra.root / name), DOCKET_EXTRA_ANALYZERS="bench.instruments",
                   DOCKET_LOG_LEVEL="WARNING", DOCKET_RATE_LIMIT="1000000/minute",
                   DOCKET_SUBMIT_RATE_LIMIT="1000000/minute", DOCKET_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
                   PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        env.update(dict(profile.env))
        env.update(extra_env)
        # One secrets key for this process (which creates the tenant and its webhook secret) and
        # every process of the stack, as a deployment sets it (db/sealed.py).
        env.setdefault("DOCKET_SECRETS_KEYS", os.environ.get("DOCKET_SECRETS_KEYS") or Fernet.generate_key().decode())
        self.env = env
        subprocess.run([str(BIN / "docket"), "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
        self.tenant = "drill"
        from db.session import get_engine, session_scope
        from docket.tenants import create_key, ensure_tenant

        saved = os.environ.get("DOCKET_SECRETS_KEYS")
        os.environ["DOCKET_SECRETS_KEYS"] = env["DOCKET_SECRETS_KEYS"]
        try:
            with session_scope(self.database_url) as session:
                self.secret = ensure_tenant(session, self.tenant).webhook_secret
                _, self.key = create_key(session, self.tenant, "admin", "fault drill")
        finally:
            if saved is None:
                os.environ.pop("DOCKET_SECRETS_KEYS", None)
            else:
                os.environ["DOCKET_SECRETS_KEYS"] = saved
        get_engine(self.database_url).dispose()  # this process holds no connection through the faults
        self.port = services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = self._spawn("api", [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers",
                                       str(profile.api_workers), "--threads", str(profile.api_threads),
                                       "--log-level", "warning", "api:create_app()"])
        self.worker = None
        self.workers_started = 0
        self.start_worker()

    def _spawn(self, label: str, command: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{label}.log", "ab")
        return subprocess.Popen(command, env=self.env, cwd=ROOT, start_new_session=True, stdout=log, stderr=log)

    def start_worker(self) -> None:
        self.workers_started += 1
        self.worker = self._spawn(f"worker{self.workers_started}",
                                  [str(BIN / "docket"), "worker", "--concurrency", str(self.profile.concurrency),
                                   "--beat"])

    def kill_worker(self) -> None:
        """The whole process tree at once, no goodbye: as the OOM killer or a lost host."""
        try:
            os.killpg(self.worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.worker.wait()

    def close(self) -> None:
        _stop(self.worker)
        _stop(self.api)


def document(drill: str, index: int, side: int = 48) -> bytes:
    """A small PNG of its own per drill and index: no two documents alike (no decision reuse)."""
    seed = sum(drill.encode())
    image = Image.new("RGB", (side, side), (index % 256, (index // 256) % 256, seed % 256))
    image.putpixel((index % 48, (index // 48) % 48), (255 - seed % 256, 7, 9))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


class Timeline:
    def __init__(self):
        self.fault_start: float | None = None
        self.fault_end: float | None = None
        self.events: list[tuple[float, object, float]] = []  # (time, HTTP code or error, seconds)
        self.health: list[tuple[float, object]] = []
        self.lock = threading.Lock()

    def during(self, t: float) -> bool:
        if self.fault_start is None:
            return True
        return self.fault_start <= t <= (self.fault_end or math.inf) + 1.0


def submit_all(stack: Stack, drill: str, n: int, profile: Profile, timeline: Timeline, analyzer_for,
               callback_url: str | None) -> dict[int, tuple[str, float]]:
    """Every document submitted once by a patient client; index -> (job id, accepted at)."""
    accepted: dict[int, tuple[str, float]] = {}
    start = time.time()
    lock = threading.Lock()
    next_index = iter(range(n))

    def client():
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {stack.key}"
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            time.sleep(max(0.0, start + index / profile.rate - time.time()))
            data = {"rule": "expense_policy", "analyzer": analyzer_for(index), "cache": "false"}
            if callback_url:
                data["callback_url"] = callback_url
            headers = {"Idempotency-Key": f"{drill}-{index}-{uuid.uuid4().hex[:8]}"}
            body = document(drill, index)
            while time.time() - start < profile.give_up + n / profile.rate:
                sent = time.time()
                retry_after = 0.5
                try:
                    resp = http.post(stack.url + "/v1/jobs", files={"file": (f"d{index}.png", body)}, data=data,
                                     headers=headers, timeout=30)
                    code = resp.status_code
                    retry_after = float(resp.headers.get("Retry-After") or 0.5)
                except requests.RequestException as exc:
                    code = type(exc).__name__
                with timeline.lock:
                    timeline.events.append((sent, code, time.time() - sent))
                if code == 202:
                    with lock:
                        accepted[index] = (resp.json()["id"], time.time())
                    break
                if isinstance(code, int) and 400 <= code < 500 and code != 429:
                    break  # final, as clients treat a 4xx
                time.sleep(min(2.0, max(0.2, retry_after)))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(profile.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return accepted


def watch_health(stack: Stack, timeline: Timeline, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        t = time.time()
        try:
            code = requests.get(stack.url + "/healthz", timeout=5).status_code
        except requests.RequestException as exc:
            code = type(exc).__name__
        with timeline.lock:
            timeline.health.append((t, code))


def wait_healthy(stack: Stack, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(stack.url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if stack.api.poll() is not None:
            raise RuntimeError(f"the API exited; see {stack.log_dir / 'api.log'}")
        time.sleep(0.2)
    raise RuntimeError("the API did not come up")


def warm_up(stack: Stack, timeout: float = 120) -> None:
    """One job through the whole pipeline before the drill: imports done, worker consuming."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {stack.key}"
    resp = http.post(stack.url + "/v1/jobs", files={"file": ("w.png", document("warm-up", 0, side=40))},
                     data={"rule": "expense_policy", "analyzer": "bench-instant", "cache": "false"}, timeout=30)
    resp.raise_for_status()
    job_id = resp.json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http.get(f"{stack.url}/v1/jobs/{job_id}", timeout=5).json()["status"] == "succeeded":
            return
        time.sleep(0.1)
    raise RuntimeError(f"warm-up job did not finish; see {stack.log_dir}")


def _query(url: str, sql: str, params: tuple = ()) -> list:
    libpq = url.replace("postgresql+psycopg://", "postgresql://", 1)
    for _ in range(100):
        try:
            with psycopg.connect(libpq, connect_timeout=3) as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            time.sleep(0.2)  # the drill took the database away; it comes back
    raise RuntimeError("the database did not come back")


def run_drill(name: str, infra: Infra, profile: Profile, log_dir: Path) -> Result:
    """One drill on a fresh stack; see the module docstring."""
    n = profile.webhook_n if name == "webhook-outage" else profile.n
    extra_env: dict = {}
    if name == "worker-kill":
        # Jobs that take a while, submitted just before each kill: running when the worker dies.
        extra_env["DOCKET_BENCH_SLEEP"] = str(profile.kill_sleep)
        slow = sleepers(n, profile, (1 / 3, 2 / 3))
        analyzer_for = lambda i: "bench-sleep" if i in slow else "bench-instant"  # noqa: E731
    elif name == "none":
        # One long job on a live worker, longer than the heartbeat TTL: it must run once.
        ttl = float(dict(profile.env).get("DOCKET_HEARTBEAT_TTL", 20))
        extra_env["DOCKET_BENCH_SLEEP"] = str(ttl + 5)
        analyzer_for = lambda i: "bench-sleep" if i == n // 4 else "bench-instant"  # noqa: E731
    elif name in ("pg-restart", "pg-stop"):
        # Jobs mid-analysis when the database goes: they must wait for it, not fail or vanish.
        extra_env["DOCKET_BENCH_SLEEP"] = str(profile.kill_sleep)
        slow = sleepers(n, profile, (1 / 3,))
        analyzer_for = lambda i: "bench-sleep" if i in slow else "bench-instant"  # noqa: E731
    else:
        analyzer_for = lambda i: "bench-instant"  # noqa: E731
    if name == "webhook-outage":
        extra_env.update(dict(profile.webhook_env))
    drill_logs = log_dir / name
    drill_logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(infra, profile, name, extra_env, drill_logs)
    receiver = Receiver(stack.secret) if name == "webhook-outage" else None
    result = Result(name, jobs=n)
    timeline = Timeline()
    stop_health = threading.Event()
    try:
        wait_healthy(stack)
        warm_up(stack)
        health = threading.Thread(target=watch_health, args=(stack, timeline, stop_health), daemon=True)
        health.start()
        fault = threading.Thread(target=inject, args=(name, stack, infra, profile, timeline, receiver, n),
                                 daemon=True)
        fault.start()
        accepted = submit_all(stack, name, n, profile, timeline, analyzer_for, receiver.url if receiver else None)
        fault.join()
        settle_from = max([timeline.fault_end or 0.0] + [at for _, at in accepted.values()])
        job_ids = [job_id for job_id, _ in accepted.values()]
        finished = wait_finished(stack, job_ids, receiver, settle_from + profile.give_up)
        stop_health.set()
        long_job = [accepted[n // 4][0]] if name == "none" and n // 4 in accepted else []
        collect(result, stack, accepted, timeline, receiver, settle_from, finished, long_job)
    finally:
        stop_health.set()
        stack.close()
        if receiver:
            receiver.close()
    return result


def sleepers(n: int, profile: Profile, at: tuple[float, ...]) -> set[int]:
    """Indices of the documents submitted 0.6 s and 1.2 s before each fault moment (a fraction of
    the submissions), so that their `bench-sleep` analysis is under way when the fault hits."""
    span = n / profile.rate
    return {max(0, int((span * f - lead) * profile.rate)) for f in at for lead in (0.6, 1.2)}


def inject(name: str, stack: Stack, infra: Infra, profile: Profile, timeline: Timeline,
           receiver: Receiver | None, n: int) -> None:
    """The fault, a third of the way through the submissions (the second kill at two thirds)."""
    span = n / profile.rate
    time.sleep(span / 3)
    if name == "none":
        return
    timeline.fault_start = time.time()
    if name == "worker-kill":
        for second in (False, True):
            if second:
                time.sleep(span / 3)
            stack.kill_worker()
            time.sleep(profile.restart_after_kill)
            stack.start_worker()  # the supervisor (systemd, compose) restarts it
    elif name == "redis-restart":
        infra.redis.stop()
        time.sleep(profile.redis_down)
        infra.redis.start()
    elif name == "pg-restart":
        infra.pg.restart()
    elif name == "pg-stop":
        infra.pg.stop()
        time.sleep(profile.pg_down)
        infra.pg.start()
    elif name == "webhook-outage":
        receiver.failing = True
        time.sleep(profile.webhook_outage)
        receiver.failing = False
    timeline.fault_end = time.time()


def wait_finished(stack: Stack, job_ids: list[str], receiver: Receiver | None, deadline: float) -> bool:
    while time.time() < deadline:
        rows = _query(stack.database_url, "SELECT count(*) FROM jobs WHERE id = ANY(%s) AND status IN "
                      "('succeeded', 'failed')", (job_ids,))
        done = rows[0][0] == len(job_ids)
        if done and receiver is not None:
            with receiver.lock:
                done = all(job_id in receiver.job_delivered for job_id in job_ids)
        if done:
            return True
        time.sleep(0.25)
    return False


def collect(result: Result, stack: Stack, accepted: dict, timeline: Timeline, receiver: Receiver | None,
            settle_from: float, finished: bool, long_jobs: list[str]) -> None:
    job_ids = [job_id for job_id, _ in accepted.values()]
    url = stack.database_url
    result.accepted = len(accepted)
    statuses = dict(_query(url, "SELECT status, count(*) FROM jobs WHERE id = ANY(%s) GROUP BY status", (job_ids,)))
    result.succeeded = statuses.get("succeeded", 0)
    result.failed = statuses.get("failed", 0)
    result.stuck = len(job_ids) - result.succeeded - result.failed
    twice_decided = _query(url, "SELECT count(*) FROM (SELECT job_id FROM decisions WHERE job_id = ANY(%s) "
                                "GROUP BY job_id HAVING count(*) > 1) d", (job_ids,))[0][0]
    twin_jobs = _query(url, "SELECT coalesce(sum(c - 1), 0) FROM (SELECT count(*) c FROM jobs WHERE tenant_id = %s "
                            "GROUP BY document_sha256 HAVING count(*) > 1) d",
                       (stack.tenant,))[0][0]
    result.retried = _query(url, "SELECT count(*) FROM jobs WHERE id = ANY(%s) AND attempts > 1", (job_ids,))[0][0]
    last_finished = _query(url, "SELECT extract(epoch FROM max(finished_at)) FROM jobs WHERE id = ANY(%s) "
                                "AND NOT id = ANY(%s)", (job_ids, long_jobs))[0][0]
    for took, attempts in _query(url, "SELECT extract(epoch FROM finished_at - started_at), attempts FROM jobs "
                                      "WHERE id = ANY(%s)", (long_jobs,)):
        result.notes.append(f"a {float(took):.0f} s job on a live worker: {attempts} attempt(s)")
    result.duplicated = int(twice_decided) + int(twin_jobs)
    result.lost = result.jobs - result.succeeded
    last = float(last_finished or settle_from)
    if receiver is not None:
        with receiver.lock:
            result.duplicated += sum(len(times) - 1 for times in receiver.delivered.values())
            undelivered = [j for j in job_ids if j not in receiver.job_delivered]
            last = max([last] + list(receiver.job_delivered.values()))
            if receiver.bad_signatures:
                result.notes.append(f"{receiver.bad_signatures} bad signatures")
        result.lost += len(undelivered)
    result.drain = max(0.0, last - settle_from)
    if not finished:
        result.notes.append("gave up waiting")
    with timeline.lock:
        during = [(code, took) for t, code, took in timeline.events if timeline.during(t)]
        result.codes = Counter(code for code, _ in during)
        result.slowest_submit = max([took for _, took in during] or [0.0])
        result.health = Counter(code for t, code in timeline.health if timeline.during(t))
    if timeline.fault_start is not None:
        result.notes.append(f"fault {timeline.fault_end - timeline.fault_start:.1f} s")


def _codes(counter: Counter) -> str:
    return " ".join(f"{code}×{count}" for code, count in sorted(counter.items(), key=lambda kv: str(kv[0]))) or "-"


def print_table(results: list[Result]) -> None:
    header = (f"{'drill':<15} {'jobs':>5} {'ok':>5} {'failed':>6} {'stuck':>5} {'dup':>4} {'lost':>4} "
              f"{'drain':>7} {'retried':>7} {'slowest':>8}  HTTP during the fault  |  /healthz  |  notes")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.drill:<15} {r.jobs:>5} {r.succeeded:>5} {r.failed:>6} {r.stuck:>5} {r.duplicated:>4} {r.lost:>4} "
              f"{r.drain:>6.1f}s {r.retried:>7} {r.slowest_submit:>7.2f}s  {_codes(r.codes)}  |  {_codes(r.health)}"
              f"  |  {', '.join(r.notes)}")


def summary(results: list[Result]) -> str:
    return (f"drills: {len(results)}, lost: {sum(r.lost for r in results)}, "
            f"duplicated: {sum(r.duplicated for r in results)}, "
            f"max drain: {math.ceil(max([r.drain for r in results] or [0.0]))} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=None, help="documents per drill (default 300; --fast 24)")
    parser.add_argument("--drills", default=",".join(DRILLS), help=f"comma-separated, of: {', '.join(DRILLS)}")
    parser.add_argument("--fast", action="store_true", help="the test suite's short profile")
    parser.add_argument("--logs", default=None, help="folder for the processes' logs (default: a temp folder)")
    args = parser.parse_args()
    profile = FAST if args.fast else BENCH
    if args.n:
        profile = Profile(**{**profile.__dict__, "n": args.n})
    names = [d.strip() for d in args.drills.split(",") if d.strip()]
    unknown = [d for d in names if d not in DRILLS]
    if unknown:
        parser.error(f"unknown drill(s): {', '.join(unknown)}")
    log_dir = Path(args.logs or tempfile.mkdtemp(prefix="docket-faults-logs-"))
    infra = Infra()
    results = []
    try:
        for name in names:
            started = time.monotonic()
            results.append(run_drill(name, infra, profile, log_dir))
            r = results[-1]
            print(f"# {name}: {r.succeeded}/{r.jobs} succeeded, drain {r.drain:.1f} s, "
                  f"{time.monotonic() - started:.0f} s in all (logs: {log_dir / name})", file=sys.stderr, flush=True)
    finally:
        infra.close()
    print(f"profile: {'fast' if args.fast else 'bench'}; {profile.n} jobs per drill ({profile.webhook_n} with "
          f"webhooks), {profile.rate:g}/s from {profile.clients} clients; gunicorn {profile.api_workers}x"
          f"{profile.api_threads}; worker concurrency {profile.concurrency}")
    print_table(results)
    print(summary(results))


if __name__ == "__main__":
    main()
