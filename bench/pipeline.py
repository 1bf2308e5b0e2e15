"""Pipeline overhead: N jobs through API → Redis → worker → Postgres with an instant analyzer,
against raw Celery no-op tasks on the same Redis, same worker concurrency, in the same run.

    .venv/bin/python bench/pipeline.py [-n 300] [--concurrency 2] [--clients 4] [--api gunicorn|dev]

Prints docs/s for both, their ratio (target ≥ 0.16, long-term 0.5), p50/p95 latency, and the CPU milliseconds per
job that the API and the worker processes spent (each process tree, read from /proc before and
after the measured jobs). Then one POST /v1/batches of 1,000 small files (`--batch-files`, 0 to
skip): the time to its 202 (target ≤ 10 s) and how much the API's memory grew meanwhile (peak
RSS over the RSS before, target ≤ 100 MB), and how long the workers took to decide them all.
Uses the machine's Postgres and Redis (or throwaway ones, like the tests), in a fresh database
and Redis db.
"""
from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
from PIL import Image  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.stack import BIN, bench_env  # noqa: E402
from tests import services  # noqa: E402



def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:  # not listening yet, or still importing
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _processes():
    """(pid, command name, the stat fields after "pid (comm)") of every process now running."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                comm, rest = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)
            except OSError:  # exited meanwhile
                continue
            yield int(entry), comm.split("(", 1)[1], rest.split()


def _session_pids(sid: int) -> list[int]:
    """Processes in the session a command was started in (start_new_session): it and its children."""
    return [pid for pid, _, fields in _processes() if int(fields[3]) == sid]  # state, ppid, pgrp, session, ...


def cpu_seconds(proc: subprocess.Popen) -> float:
    """User + system CPU of the process tree so far (children that exited and were waited for included)."""
    return sum(sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
               for _, _, fields in _processes() if int(fields[3]) == proc.pid) / CLOCK_TICKS


def services_cpu_seconds() -> float:
    """User + system CPU so far of every Postgres and Redis server process on the machine: the
    database and broker work the jobs cause, which shares the same cores."""
    return sum(sum(int(v) for v in fields[11:13]) for _, comm, fields in _processes()
               if comm in ("postgres", "redis-server", "valkey-server")) / CLOCK_TICKS


def memory_kb(proc: subprocess.Popen) -> tuple[int, int]:
    """(resident, peak resident) KiB of the process tree, summed over its processes."""
    rss = peak = 0
    for pid in _session_pids(proc.pid):
        try:
            status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if ":" in line)
        except OSError:
            continue
        rss += int(status.get("VmRSS", "0 kB").split()[0])
        peak += int(status.get("VmHWM", "0 kB").split()[0])
    return rss, peak


def run_raw(env: dict, n: int, concurrency: int) -> tuple[float, list[float], float]:
    r = redis.Redis.from_url(env["DOCKET_REDIS_URL"])
    r.delete("bench:done")
    worker = subprocess.Popen([str(BIN / "celery"), "-A", "bench.instruments:raw", "worker", "-c", str(concurrency),
                               "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
                              env=env, cwd=ROOT, start_new_session=True)
    try:
        from bench.instruments import raw

        raw.conf.broker_url = env["DOCKET_REDIS_URL"]
        raw.send_task("bench.noop", args=["warmup"])
        while not r.hexists("bench:done", "warmup"):
            time.sleep(0.05)
        sent = {}
        cpu_before = cpu_seconds(worker)
        start = time.time()
        for i in range(n):
            sent[str(i)] = time.time()
            raw.send_task("bench.noop", args=[str(i)])
        while r.hlen("bench:done") < n + 1:
            time.sleep(0.02)
        worker_cpu_ms = (cpu_seconds(worker) - cpu_before) / n * 1000
        done = {k.decode(): float(v) for k, v in r.hgetall("bench:done").items()}
    finally:
        stop(worker)
    latencies = [done[k] - sent[k] for k in sent]
    return n / (max(done[k] for k in sent) - start), latencies, worker_cpu_ms


def post_batch(url: str, key: str, files: int, api: subprocess.Popen) -> dict:
    """One POST /v1/batches of `files` small distinct PNGs: seconds to the answer, the API's memory growth."""
    parts = []
    for i in range(files):
        buf = io.BytesIO()
        Image.new("RGB", (32, 32), (i % 256, (i // 256) % 256, 201)).save(buf, "PNG")
        parts.append(("files", (f"b{i}.png", buf.getvalue())))
    rss_before, _ = memory_kb(api)
    started = time.monotonic()
    resp = requests.post(url + "/v1/batches", files=parts, data={"rule": "expense_policy", "analyzer": "bench-instant"},
                         headers={"Authorization": f"Bearer {key}"}, timeout=120)
    took = time.monotonic() - started
    rss_after, peak_after = memory_kb(api)
    assert resp.status_code == 202, (resp.status_code, resp.text[:500])
    body = resp.json()
    assert len(body["job_ids"]) == files and not body["rejected"], body["rejected"][:3]
    return {"files": files, "seconds": took, "batch": body["id"], "rss_growth_mb": (rss_after - rss_before) / 1024,
            "peak_growth_mb": (max(peak_after, rss_after) - rss_before) / 1024}


def run_pipeline(env: dict, n: int, concurrency: int, clients: int, api_server: str,
                 batch_files: int = 0) -> tuple[float, list[float], dict]:
    port = services.free_port()
    if api_server == "gunicorn":  # the production shape (docker-compose.yml): 2 processes x 4 threads
        command = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
                   "--log-level", "warning", "api:create_app()"]
    else:  # `docket serve`: one process (waitress) with its own worker disabled
        command = [str(BIN / "docket"), "serve", "--port", str(port), "--workers", "0"]
    api = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([str(BIN / "docket"), "worker", "--concurrency", str(concurrency)], env=env,
                              cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz")
        documents = []
        for i in range(n + 1):  # distinct small images: every job stores a document
            buf = io.BytesIO()
            Image.new("RGB", (64, 64), (i % 256, (i // 256) % 256, 7)).save(buf, "PNG")
            documents.append(buf.getvalue())
        local = __import__("threading").local()

        key = subprocess.run([str(BIN / "docket"), "keys", "create", "--role", "submitter", "--tenant", "bench"],
                             env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

        def post(data: bytes) -> str:
            if getattr(local, "session", None) is None:
                local.session = requests.Session()
                local.session.headers["Authorization"] = f"Bearer {key}"
            resp = local.session.post(url + "/v1/jobs", files={"file": ("d.png", data)},
                                      data={"rule": "expense_policy", "analyzer": "bench-instant"}, timeout=30)
            resp.raise_for_status()
            return resp.json()["id"]

        first = post(documents[-1])  # warm-up: imports, connections
        while local.session.get(f"{url}/v1/jobs/{first}", timeout=5).json()["status"] != "succeeded":
            time.sleep(0.05)
        cpu_before = cpu_seconds(api), cpu_seconds(worker), services_cpu_seconds(), time.process_time()
        with ThreadPoolExecutor(clients) as pool:
            ids = list(pool.map(post, documents[:n]))
        engine = create_engine(env["DOCKET_DATABASE_URL"])
        query = text("SELECT count(*) FROM jobs WHERE status IN ('succeeded','failed') AND id != :w")
        with engine.connect() as conn:
            while conn.execute(query, {"w": first}).scalar() < n:
                time.sleep(0.05)
            cpu_after = cpu_seconds(api), cpu_seconds(worker), services_cpu_seconds(), time.process_time()
            rows = conn.execute(text("SELECT created_at, finished_at, status FROM jobs WHERE id != :w"),
                                {"w": first}).all()
        extra = {"api_cpu_ms": (cpu_after[0] - cpu_before[0]) / n * 1000,
                 "worker_cpu_ms": (cpu_after[1] - cpu_before[1]) / n * 1000,
                 "services_cpu_ms": (cpu_after[2] - cpu_before[2]) / n * 1000,
                 "clients_cpu_ms": (cpu_after[3] - cpu_before[3]) / n * 1000}
        if batch_files:
            extra["batch"] = post_batch(url, key, batch_files, api)
            started = time.monotonic()
            done = text("SELECT count(*) FROM jobs WHERE batch_id = :b AND status IN ('succeeded','failed')")
            with engine.connect() as conn:
                while (conn.execute(done, {"b": extra["batch"]["batch"]}).scalar() < batch_files
                       and time.monotonic() - started < 300):
                    time.sleep(0.2)
                extra["batch"]["decided_after_s"] = time.monotonic() - started
                extra["batch"]["decided"] = conn.execute(done, {"b": extra["batch"]["batch"]}).scalar()
        engine.dispose()
    finally:
        stop(worker)
        stop(api)
    assert all(r.status == "succeeded" for r in rows), "some benchmark jobs failed"
    latencies = [(r.finished_at - r.created_at).total_seconds() for r in rows]
    span = (max(r.finished_at for r in rows) - min(r.created_at for r in rows)).total_seconds()
    return n / span, latencies, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--api", choices=("gunicorn", "dev"), default="dev",
                        help="API server: docket serve (default; one waitress process), or gunicorn as deployed")
    parser.add_argument("--batch-files", type=int, default=1000,
                        help="files in the one POST /v1/batches measured after the run (0: skip)")
    args = parser.parse_args()
    with bench_env() as env:
        raw_rate, raw_lat, raw_cpu = run_raw(env, args.n, args.concurrency)
        pipe_rate, pipe_lat, extra = run_pipeline(env, args.n, args.concurrency, args.clients, args.api,
                                                  args.batch_files)
    print(f"jobs: {args.n}, worker concurrency: {args.concurrency}, HTTP clients: {args.clients}, API: {args.api}")
    print(f"raw celery no-op : {raw_rate:8.1f} tasks/s   p50 {pct(raw_lat, 50)*1000:7.1f} ms   p95 {pct(raw_lat, 95)*1000:7.1f} ms")
    print(f"docket pipeline  : {pipe_rate:8.1f} docs/s    p50 {pct(pipe_lat, 50)*1000:7.1f} ms   p95 {pct(pipe_lat, 95)*1000:7.1f} ms")
    print(f"added latency    : p50 {(pct(pipe_lat, 50) - pct(raw_lat, 50))*1000:7.1f} ms   "
          f"p95 {(pct(pipe_lat, 95) - pct(raw_lat, 95))*1000:7.1f} ms")
    print(f"throughput ratio (pipeline / raw celery): {pipe_rate / raw_rate:.2f}   (target >= 0.16, long-term 0.5)")
    print(f"CPU per job      : API {extra['api_cpu_ms']:6.1f} ms   worker {extra['worker_cpu_ms']:6.1f} ms   "
          f"together {extra['api_cpu_ms'] + extra['worker_cpu_ms']:6.1f} ms")
    print(f"  for comparison : a raw Celery worker spends {raw_cpu:5.1f} ms per no-op task (its share of the worker's)")
    print(f"  besides        : Postgres + Redis {extra['services_cpu_ms']:6.1f} ms   "
          f"the bench's HTTP clients {extra['clients_cpu_ms']:6.1f} ms (same 2 cores)")
    if "batch" in extra:
        b = extra["batch"]
        ok = b["seconds"] <= 10 and b["peak_growth_mb"] <= 100
        print(f"batch of {b['files']} files: 202 after {b['seconds']:.1f} s (target <= 10 s), API memory "
              f"+{b['rss_growth_mb']:.0f} MB resident, +{b['peak_growth_mb']:.0f} MB at peak (target <= 100 MB): "
              f"{'PASS' if ok else 'FAIL'}; {b['decided']} decided {b['decided_after_s']:.1f} s after the 202")


if __name__ == "__main__":
    main()
