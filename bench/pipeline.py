"""Pipeline overhead: N jobs through API → Redis → worker → Postgres with an instant analyzer,
against raw Celery no-op tasks on the same Redis, same worker concurrency, in the same run.

    .venv/bin/python bench/pipeline.py [-n 300] [--concurrency 2] [--clients 4] [--api gunicorn|dev]

Prints docs/s for both, their ratio (target ≥ 0.5) and p50/p95 latency. Uses the machine's
Postgres and Redis (or throwaway ones, like the tests), in a fresh database and Redis db.
"""
from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
from PIL import Image  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from tests import services  # noqa: E402

BIN = Path(sys.executable).parent


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


def run_raw(env: dict, n: int, concurrency: int) -> tuple[float, list[float]]:
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
        start = time.time()
        for i in range(n):
            sent[str(i)] = time.time()
            raw.send_task("bench.noop", args=[str(i)])
        while r.hlen("bench:done") < n + 1:
            time.sleep(0.02)
        done = {k.decode(): float(v) for k, v in r.hgetall("bench:done").items()}
    finally:
        stop(worker)
    latencies = [done[k] - sent[k] for k in sent]
    return n / (max(done[k] for k in sent) - start), latencies


def run_pipeline(env: dict, n: int, concurrency: int, clients: int, api_server: str) -> tuple[float, list[float]]:
    port = services.free_port()
    if api_server == "gunicorn":  # the production shape (docker-compose.yml): 2 processes x 4 threads
        command = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
                   "--log-level", "warning", "api:create_app()"]
    else:  # `docket serve`'s single-process development server
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
        with ThreadPoolExecutor(clients) as pool:
            ids = list(pool.map(post, documents[:n]))
        engine = create_engine(env["DOCKET_DATABASE_URL"])
        query = text("SELECT count(*) FROM jobs WHERE status IN ('succeeded','failed') AND id != :w")
        with engine.connect() as conn:
            while conn.execute(query, {"w": first}).scalar() < n:
                time.sleep(0.05)
            rows = conn.execute(text("SELECT created_at, finished_at, status FROM jobs WHERE id != :w"),
                                {"w": first}).all()
        engine.dispose()
    finally:
        stop(worker)
        stop(api)
    assert all(r.status == "succeeded" for r in rows), "some benchmark jobs failed"
    latencies = [(r.finished_at - r.created_at).total_seconds() for r in rows]
    span = (max(r.finished_at for r in rows) - min(r.created_at for r in rows)).total_seconds()
    return n / span, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--api", choices=("gunicorn", "dev"), default="dev",
                        help="API server: docket serve's dev server (default), or gunicorn as deployed")
    args = parser.parse_args()
    throwaway = services.Throwaway()
    try:
        pg_url, drop = services.fresh_database(services.postgres(throwaway))
        redis_url = services.claim_redis_db(services.redis_server(throwaway))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKET_")}
        env.update(DOCKET_DATABASE_URL=pg_url, DOCKET_REDIS_URL=redis_url, DOCKET_DATA_DIR=tempfile.mkdtemp(),
                   DOCKET_EXTRA_ANALYZERS="bench.instruments", DOCKET_LOG_LEVEL="WARNING",
                   # The benchmark measures throughput, not the abuse limits in front of it.
                   DOCKET_RATE_LIMIT="1000000/minute", DOCKET_SUBMIT_RATE_LIMIT="1000000/minute",
                   PYTHONPATH=str(ROOT))
        subprocess.run([str(BIN / "docket"), "migrate"], env=env, check=True, capture_output=True)
        raw_rate, raw_lat = run_raw(env, args.n, args.concurrency)
        pipe_rate, pipe_lat = run_pipeline(env, args.n, args.concurrency, args.clients, args.api)
        drop()
        services.release_redis_db(redis_url)
    finally:
        throwaway.close()
    print(f"jobs: {args.n}, worker concurrency: {args.concurrency}, HTTP clients: {args.clients}, API: {args.api}")
    print(f"raw celery no-op : {raw_rate:8.1f} tasks/s   p50 {pct(raw_lat, 50)*1000:7.1f} ms   p95 {pct(raw_lat, 95)*1000:7.1f} ms")
    print(f"docket pipeline  : {pipe_rate:8.1f} docs/s    p50 {pct(pipe_lat, 50)*1000:7.1f} ms   p95 {pct(pipe_lat, 95)*1000:7.1f} ms")
    print(f"added latency    : p50 {(pct(pipe_lat, 50) - pct(raw_lat, 50))*1000:7.1f} ms   "
          f"p95 {(pct(pipe_lat, 95) - pct(raw_lat, 95))*1000:7.1f} ms")
    print(f"throughput ratio (pipeline / raw celery): {pipe_rate / raw_rate:.2f}   (target >= 0.5)")


if __name__ == "__main__":
    main()
