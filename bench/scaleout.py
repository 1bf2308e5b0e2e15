"""Scale out, as deployed: nginx (Debian's, installed by scripts/nginx.sh; this script installs
nothing) with deploy/nginx/docket.conf in front of 3 `docket serve --workers 0` API processes,
separate `docket worker` processes, Postgres and Redis, all on loopback. Then, through the proxy:

- Prefer: wait   a submission with `Prefer: wait` and a GET long-poll answer with the finished job
                 (200, Preference-Applied) as soon as it ends, not at a proxy timeout;
- SSE            a job's event stream shows its first event while the job is still running (a
                 buffering proxy would hold it until the stream ends), then `done`;
- idempotency    one Idempotency-Key sent to replica 1, replica 2 and through the proxy gives one job;
- rate limit     one key's requests spread over every replica get the per-key budget once, not
                 once per replica (overrun: requests answered beyond the budget);
- load + kill    clients submit jobs (each with a webhook) from several threads, retrying errors
                 with their Idempotency-Key; one API replica is SIGKILLed mid-run. Every accepted
                 job must end succeeded, decided once, with one job per document;
- two beats      two workers run the sweeper (Celery beat) at once; the receiver fails every
                 webhook's first attempt, so every delivery is retried by the sweepers: each
                 webhook must arrive exactly once.

    .venv/bin/python bench/scaleout.py [--fast] [-n JOBS] [--logs DIR]

`--fast` is the test suite's profile (tests/test_scaleout.py). The last line is exactly
`replicas: N, jobs: J, lost: L, duplicated: D, rate-limit overrun: R, sse via proxy: ok|fail`,
where `lost` counts accepted jobs that did not end succeeded plus webhooks never delivered,
`duplicated` counts second decisions, second jobs for one document or Idempotency-Key, and
webhooks delivered twice, and `sse via proxy` is ok when the SSE and both wait checks passed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from bench.faults import Receiver, _query, _stop, document  # noqa: E402
from bench.stack import bench_env  # noqa: E402
from tests import services  # noqa: E402
from tests.sse import read_events  # noqa: E402

BIN = Path(sys.executable).parent
NGINX_CONF = ROOT / "deploy" / "nginx" / "docket.conf"
RULE = "expense_policy"


@dataclass(frozen=True)
class Profile:
    replicas: int = 3
    jobs: int = 300
    clients: int = 8
    rate: float = 30.0            # submissions per second, all clients together
    cpu_workers: int = 2          # `docket worker --queues cpu` processes (the first runs beat)
    concurrency: int = 2          # each one's processes
    rate_limit: int = 60          # DOCKET_RATE_LIMIT per key per minute
    sleep: float = 3.0            # a bench-sleep job's length (the SSE and long-poll checks)
    give_up: float = 180.0        # seconds after the last submission to wait for jobs and webhooks
    settle: float = 5.0           # then this long more, for late duplicates (sweeps run every 1 s)


BENCH = Profile()
FAST = Profile(jobs=24, clients=4, rate=12.0, cpu_workers=1, rate_limit=12, sleep=2.0, give_up=60.0, settle=3.0)


@dataclass
class Result:
    replicas: int
    jobs: int = 0
    accepted: int = 0
    succeeded: int = 0
    lost: int = 0
    duplicated: int = 0
    rate_limit_overrun: int = 0
    rate_limit_answered: int = 0
    rate_limit_replicas: int = 0
    sse_ok: bool = False
    wait_ok: bool = False
    idempotent_ok: bool = False
    killed_replica: int | None = None
    webhooks: int = 0
    webhook_duplicates: int = 0
    codes: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def line(self) -> str:
        sse = "ok" if self.sse_ok and self.wait_ok else "fail"
        return (f"replicas: {self.replicas}, jobs: {self.accepted}, lost: {self.lost}, "
                f"duplicated: {self.duplicated}, rate-limit overrun: {self.rate_limit_overrun}, sse via proxy: {sse}")


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        raise RuntimeError("nginx is not installed: run `bash scripts/nginx.sh` (Debian's nginx-light; "
                           "scripts/test.sh does it) - the scale-out test cannot run without the proxy")
    return found


def nginx_config(work: Path, port: int, upstreams: list[int]) -> Path:
    """deploy/nginx/docket.conf as deployed, its upstream the local replicas, in a nginx.conf of
    its own (foreground, files under `work`)."""
    text = NGINX_CONF.read_text()
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;" for p in upstreams)
    text, n = re.subn(r"^    server api:8000 [^\n]*;$", servers, text, flags=re.M)
    assert n == 1, "deploy/nginx/docket.conf: the upstream's `server api:8000 ...;` line is gone"
    text, n = re.subn(r"^    listen 8080;$", f"    listen 127.0.0.1:{port};", text, flags=re.M)
    assert n == 1, "deploy/nginx/docket.conf: `listen 8080;` is gone"
    text = text.replace("/var/log/nginx/access.log", str(work / "access.log"))
    (work / "docket.conf").write_text(text)
    temp = "\n".join(f"    {kind}_temp_path {work / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = work / "nginx.conf"
    conf.write_text(f"""daemon off;
worker_processes 1;
pid {work / 'nginx.pid'};
error_log {work / 'error.log'} warn;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
{temp}
    include {work / 'docket.conf'};
}}
""")
    return conf


class ScaleStack:
    """nginx, N API replicas and the workers on one fresh database and Redis db (bench_env)."""

    def __init__(self, env: dict, profile: Profile, log_dir: Path):
        self.profile, self.log_dir = profile, log_dir
        self.nginx_bin = nginx_binary()  # before anything starts: no proxy, no run
        self.work = Path(tempfile.mkdtemp(prefix="docket-scaleout-"))
        os.chmod(self.work, 0o755)  # nginx's worker processes (nobody) write their temp files here
        env = dict(env)
        env.update(DOCKET_RATE_LIMIT=f"{profile.rate_limit}/minute", DOCKET_SUBMIT_RATE_LIMIT="1000000/minute",
                   DOCKET_SWEEP_INTERVAL="1", DOCKET_HEARTBEAT_INTERVAL="0.5", DOCKET_HEARTBEAT_TTL="2",
                   DOCKET_BROKER_RETRY_AFTER="1", DOCKET_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
                   DOCKET_WEBHOOK_BACKOFF_BASE="0.5", DOCKET_WEBHOOK_BACKOFF_CAP="2",
                   DOCKET_WEBHOOK_MAX_ATTEMPTS="30", DOCKET_BENCH_SLEEP=str(profile.sleep),
                   DOCKET_TRUSTED_PROXIES="1", PYTHONUNBUFFERED="1",
                   # Every process shares the keys, as a deployment sets them.
                   DOCKET_SECRETS_KEYS=Fernet.generate_key().decode(), DOCKET_SECRET_KEY=uuid.uuid4().hex)
        self.env = env
        self.database_url = env["DOCKET_DATABASE_URL"]
        self.tenant = "scaleout"
        self.secret, self.key, self.limited_key = self._tenant()
        self.procs: list[subprocess.Popen] = []
        self.ports = [services.free_port() for _ in range(profile.replicas)]
        self.replicas = [self._spawn(f"api{i}", [str(BIN / "docket"), "serve", "--host", "127.0.0.1", "--port",
                                                 str(port), "--workers", "0"])
                         for i, port in enumerate(self.ports)]
        for i in range(profile.cpu_workers):
            command = [str(BIN / "docket"), "worker", "--queues", "cpu", "--concurrency", str(profile.concurrency)]
            self._spawn(f"worker{i}", command + (["--beat"] if i == 0 else []))
        # The second sweeper: another beat, on the control queue only (the sweeps), with a data
        # folder of its own (beat's schedule file is per folder; it reads no documents).
        beat_dir = self.work / "beat2"
        self._spawn("beat2", [str(BIN / "docket"), "worker", "--queues", "control", "--concurrency", "1", "--beat"],
                    {"DOCKET_DATA_DIR": str(beat_dir)})
        self.proxy_port = services.free_port()
        conf = nginx_config(self.work, self.proxy_port, self.ports)
        self.nginx = self._spawn("nginx", [self.nginx_bin, "-c", str(conf), "-p", str(self.work),
                                           "-e", str(self.work / "error.log")])
        self.url = f"http://127.0.0.1:{self.proxy_port}"

    def _tenant(self) -> tuple[str, str, str]:
        from db.session import get_engine, session_scope
        from docket.tenants import create_key, ensure_tenant

        saved = os.environ.get("DOCKET_SECRETS_KEYS")
        os.environ["DOCKET_SECRETS_KEYS"] = self.env["DOCKET_SECRETS_KEYS"]
        try:
            with session_scope(self.database_url) as session:
                secret = ensure_tenant(session, self.tenant).webhook_secret
                _, key = create_key(session, self.tenant, "admin", "scale-out clients")
                _, limited = create_key(session, self.tenant, "reviewer", "scale-out rate limit")
        finally:
            if saved is None:
                os.environ.pop("DOCKET_SECRETS_KEYS", None)
            else:
                os.environ["DOCKET_SECRETS_KEYS"] = saved
        get_engine(self.database_url).dispose()
        return secret, key, limited

    def _spawn(self, label: str, command: list[str], extra_env: dict | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{label}.log", "ab")
        proc = subprocess.Popen(command, env={**self.env, **(extra_env or {})}, cwd=ROOT, start_new_session=True,
                                stdout=log, stderr=log)
        self.procs.append(proc)
        return proc

    def replica_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        pending = [self.replica_url(i) for i in range(len(self.ports))] + [self.url]
        while pending and time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{' '.join(map(str, proc.args[:3]))} exited ({proc.returncode}); "
                                       f"logs in {self.log_dir}")
            try:
                if requests.get(pending[0] + "/healthz", timeout=2).status_code == 200:
                    pending.pop(0)
                    continue
            except requests.RequestException:
                pass
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"not ready in {timeout:.0f} s: {pending}; logs in {self.log_dir}")

    def kill_replica(self, index: int) -> None:
        """SIGKILL, no goodbye: a lost node."""
        try:
            os.killpg(self.replicas[index].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.replicas[index].wait()

    def close(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)
        for name in ("access.log", "error.log"):
            if (self.work / name).exists():
                shutil.copy(self.work / name, self.log_dir / f"nginx-{name}")
        shutil.rmtree(self.work, ignore_errors=True)


def _session(key: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    return http


def _submit(http: requests.Session, url: str, body: bytes, analyzer: str = "bench-instant", headers=None,
            callback: str | None = None, timeout: float = 60) -> requests.Response:
    data = {"rule": RULE, "analyzer": analyzer, "cache": "false"}
    if callback:
        data["callback_url"] = callback
    return http.post(url + "/v1/jobs", files={"file": ("d.png", body)}, data=data, headers=headers or {},
                     timeout=timeout)


def check_waits(stack: ScaleStack, result: Result) -> None:
    """Prefer: wait on a submission (the first job, a warm-up too) and on a GET long-poll."""
    http = _session(stack.key)
    started = time.monotonic()
    resp = _submit(http, stack.url, document("wait-post", 0), headers={"Prefer": "wait=50"})
    post_ok = (resp.status_code == 200 and resp.headers.get("Preference-Applied") == "wait=50"
               and resp.json()["status"] == "succeeded")
    took_post = time.monotonic() - started
    resp = _submit(http, stack.url, document("wait-get", 0), analyzer="bench-sleep")
    job_id = resp.json()["id"] if resp.status_code == 202 else None
    started = time.monotonic()
    got = http.get(f"{stack.url}/v1/jobs/{job_id}", headers={"Prefer": "wait=30"}, timeout=60) if job_id else None
    took_get = time.monotonic() - started
    get_ok = (got is not None and got.status_code == 200 and got.headers.get("Preference-Applied") == "wait=30"
              and got.json()["status"] == "succeeded" and took_get < stack.profile.sleep + 10)
    result.wait_ok = post_ok and get_ok
    result.notes.append(f"Prefer: wait via proxy: POST {'ok' if post_ok else 'FAIL'} ({took_post:.1f} s, the first job), "
                        f"GET {'ok' if get_ok else 'FAIL'} ({took_get:.1f} s for a {stack.profile.sleep:g} s job)")


def check_sse(stack: ScaleStack, result: Result) -> None:
    """The first event of a running job arrives before the job ends; then `done`."""
    http = _session(stack.key)
    resp = _submit(http, stack.url, document("sse", 0), analyzer="bench-sleep")
    if resp.status_code != 202:
        result.notes.append(f"SSE: submission answered {resp.status_code}")
        return
    job_id = resp.json()["id"]
    started = time.monotonic()
    first = first_status = None
    done = None
    try:
        with http.get(f"{stack.url}/v1/jobs/{job_id}/events", stream=True,
                      timeout=(5, stack.profile.sleep + 30)) as stream:
            buffering = stream.headers.get("X-Accel-Buffering")
            for event in read_events(stream):
                if first is None:
                    first, first_status = time.monotonic() - started, event["data"].get("status")
                if event["event"] == "done":
                    done = time.monotonic() - started
                    break
    except requests.RequestException as exc:
        result.notes.append(f"SSE: {type(exc).__name__}")
        return
    result.sse_ok = (first is not None and done is not None and first_status not in ("succeeded", "failed")
                     and first < stack.profile.sleep * 0.75 and buffering == "no")
    result.notes.append(f"SSE via proxy: {'ok' if result.sse_ok else 'FAIL'} (first event {first_status} after "
                        f"{first if first is not None else float('nan'):.2f} s, done after "
                        f"{done if done is not None else float('nan'):.2f} s, a {stack.profile.sleep:g} s job)")


def check_idempotency(stack: ScaleStack, result: Result) -> None:
    """One Idempotency-Key, three doors: replica 1, replica 2, the proxy. One job."""
    http = _session(stack.key)
    body = document("idempotency", 0)
    headers = {"Idempotency-Key": f"across-replicas-{uuid.uuid4().hex[:8]}"}
    ids = []
    for url in (stack.replica_url(0), stack.replica_url(1), stack.url):
        resp = _submit(http, url, body, headers=headers)
        ids.append(resp.json().get("id") if resp.status_code in (200, 202) else f"HTTP {resp.status_code}")
    result.idempotent_ok = len(set(ids)) == 1 and not str(ids[0]).startswith("HTTP")
    if not result.idempotent_ok:
        result.duplicated += len(set(ids)) - 1
    result.notes.append(f"Idempotency-Key on replica 1, replica 2, proxy: {'one job' if result.idempotent_ok else ids}")


def check_rate_limit(stack: ScaleStack, result: Result) -> None:
    """One key's GETs in turn on every replica, then through the proxy: the budget holds once."""
    http = _session(stack.limited_key)
    limit = stack.profile.rate_limit
    urls = [stack.replica_url(i) for i in range(len(stack.ports))]
    answered, codes = 0, {}
    for i in range(limit * len(urls) + len(urls)):
        url = urls[i % len(urls)] if i % 2 == 0 else stack.url
        code = http.get(url + "/v1/rules", timeout=10).status_code
        codes[code] = codes.get(code, 0) + 1
        answered += code == 200
    result.rate_limit_answered = answered
    result.rate_limit_overrun = max(0, answered - limit)
    result.rate_limit_replicas = len(urls)
    if answered < limit or set(codes) - {200, 429}:
        result.notes.append(f"rate limit: fewer answered than the budget or odd codes: {codes}")
    result.notes.append(f"rate limit {limit}/minute, one key, {sum(codes.values())} requests over "
                        f"{len(urls)} replicas and the proxy: {answered} answered")


def load_with_kill(stack: ScaleStack, result: Result, receiver: Receiver) -> dict[int, str]:
    """Clients submit through the proxy; at half way, one replica is killed. index -> job id."""
    profile = stack.profile
    n = profile.jobs
    accepted: dict[int, str] = {}
    lock = threading.Lock()
    next_index = iter(range(n))
    start = time.time()
    kill_at = n // 2
    killed = threading.Event()

    def client():
        http = _session(stack.key)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            if index >= kill_at and not killed.is_set():
                with lock:
                    if not killed.is_set():
                        stack.kill_replica(1)
                        result.killed_replica = 1
                        killed.set()
            time.sleep(max(0.0, start + index / profile.rate - time.time()))
            headers = {"Idempotency-Key": f"load-{index}-{uuid.uuid4().hex[:8]}"}
            body = document("scaleout", index)
            while time.time() - start < profile.give_up + n / profile.rate:
                try:
                    resp = _submit(http, stack.url, body, headers=headers, callback=receiver.url, timeout=30)
                    code = resp.status_code
                except requests.RequestException as exc:
                    code = type(exc).__name__
                with lock:
                    result.codes[code] = result.codes.get(code, 0) + 1
                if code == 202:
                    with lock:
                        accepted[index] = resp.json()["id"]
                    break
                if isinstance(code, int) and 400 <= code < 500 and code != 429:
                    break
                time.sleep(0.3)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(profile.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return accepted


class FirstAttemptFails(Receiver):
    """The customer's endpoint, answering 500 to each webhook's first attempt: every delivery is
    then retried from the database by the sweepers (two of them here)."""

    def __init__(self, secret: str):
        super().__init__(secret)
        self.seen: set[str] = set()
        handler = self.server.RequestHandlerClass
        receiver = self
        original = handler.do_POST

        def do_post(request):
            webhook_id = request.headers.get("webhook-id")
            with receiver.lock:
                first = webhook_id not in receiver.seen
                receiver.seen.add(webhook_id)
            if first:
                request.rfile.read(int(request.headers.get("Content-Length") or 0))
                return request._reply(500)
            return original(request)

        handler.do_POST = do_post


def wait_finished(stack: ScaleStack, job_ids: list[str], receiver: Receiver, deadline: float) -> bool:
    while time.time() < deadline:
        rows = _query(stack.database_url, "SELECT count(*) FROM jobs WHERE id = ANY(%s) AND status IN "
                      "('succeeded', 'failed')", (job_ids,))
        with receiver.lock:
            delivered = all(job_id in receiver.job_delivered for job_id in job_ids)
        if rows[0][0] == len(job_ids) and delivered:
            return True
        time.sleep(0.25)
    return False


def collect(stack: ScaleStack, result: Result, accepted: dict[int, str], receiver: Receiver) -> None:
    url = stack.database_url
    job_ids = list(accepted.values())
    result.accepted = len(job_ids)
    statuses = dict(_query(url, "SELECT status, count(*) FROM jobs WHERE id = ANY(%s) GROUP BY status", (job_ids,)))
    result.succeeded = statuses.get("succeeded", 0)
    twice_decided = _query(url, "SELECT count(*) FROM (SELECT job_id FROM decisions GROUP BY job_id "
                                "HAVING count(*) > 1) d")[0][0]
    twin_jobs = _query(url, "SELECT coalesce(sum(c - 1), 0) FROM (SELECT count(*) c FROM jobs WHERE tenant_id = %s "
                            "GROUP BY document_sha256 HAVING count(*) > 1) d", (stack.tenant,))[0][0]
    with receiver.lock:
        result.webhooks = len(receiver.delivered)
        result.webhook_duplicates = sum(len(times) - 1 for times in receiver.delivered.values())
        undelivered = [j for j in job_ids if j not in receiver.job_delivered]
        if receiver.bad_signatures:
            result.notes.append(f"{receiver.bad_signatures} bad webhook signatures")
    result.duplicated += int(twice_decided) + int(twin_jobs) + result.webhook_duplicates
    result.lost = (result.jobs - result.succeeded) + len(undelivered)
    result.notes.append(f"load: {result.jobs} documents, {result.accepted} accepted, {result.succeeded} succeeded; "
                        f"replica {result.killed_replica} killed at half way; HTTP seen by clients: "
                        + " ".join(f"{c}x{k}" for c, k in sorted(result.codes.items(), key=lambda kv: str(kv[0]))))
    result.notes.append(f"webhooks: {result.webhooks} delivered (each after a failed first attempt, retried by 2 "
                        f"sweepers), {result.webhook_duplicates} twice, {len(undelivered)} jobs without one; "
                        f"{twice_decided} jobs decided twice, {twin_jobs} second jobs for one document")


def run(profile: Profile, log_dir: Path) -> Result:
    result = Result(replicas=profile.replicas, jobs=profile.jobs)
    with bench_env() as env:
        stack = ScaleStack(env, profile, log_dir)
        receiver = FirstAttemptFails(stack.secret)
        try:
            stack.wait_ready()
            check_waits(stack, result)
            check_sse(stack, result)
            check_idempotency(stack, result)
            check_rate_limit(stack, result)
            accepted = load_with_kill(stack, result, receiver)
            finished = wait_finished(stack, list(accepted.values()), receiver, time.time() + profile.give_up)
            if not finished:
                result.notes.append("gave up waiting for jobs or webhooks")
            time.sleep(profile.settle)  # the sweepers go on: a late second webhook would show now
            collect(stack, result, accepted, receiver)
        finally:
            receiver.close()
            stack.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="the test suite's short profile")
    parser.add_argument("-n", type=int, default=None, help="jobs in the load (default 300; --fast 24)")
    parser.add_argument("--logs", default=None, help="folder for the processes' logs (default: a temp folder)")
    args = parser.parse_args()
    profile = FAST if args.fast else BENCH
    if args.n:
        profile = Profile(**{**profile.__dict__, "jobs": args.n})
    log_dir = Path(args.logs or tempfile.mkdtemp(prefix="docket-scaleout-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = run(profile, log_dir)
    print(f"profile: {'fast' if args.fast else 'bench'}; nginx in front of {profile.replicas} `docket serve "
          f"--workers 0`; {profile.cpu_workers} cpu worker(s) x{profile.concurrency} + a second beat; "
          f"{profile.jobs} jobs at {profile.rate:g}/s from {profile.clients} clients; "
          f"{time.monotonic() - started:.0f} s in all (logs: {log_dir})")
    for note in result.notes:
        print("  " + note)
    print(json.dumps({"webhooks": result.webhooks, "rate_limit_answered": result.rate_limit_answered}))
    print(result.line())


if __name__ == "__main__":
    main()
