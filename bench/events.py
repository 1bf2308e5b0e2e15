"""Live events under load (issue 12): 200 open event streams and 20 `Prefer: wait` requests sit
open while jobs are submitted at full speed through API → Redis → worker (instant analyzer) →
Postgres.

    .venv/bin/python bench/events.py [-n 300] [--clients 4] [--api gunicorn|old|dev]

Reports the submit latency p50/p95 without and with those connections, and the delay from a
job's decision being committed (its `finished_at`, stamped in the committing transaction) to
its `done` event arriving on a stream the benchmark held open for that job; target p95 < 250 ms.

The 220 parked connections watch jobs of the `model` analyzer: no GPU worker runs here, so
they stay queued and their streams and waits stay open (a wait is sent again when its 60 s end).
--api gunicorn is the deployed shape (gunicorn.conf.py); `old` is the previous one (2 x 4
threads, no cap); `dev` is `docket serve`.
"""
from __future__ import annotations

import argparse
import io
import queue
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from PIL import Image  # noqa: E402

from bench.pipeline import pct, stop, wait_http  # noqa: E402
from bench.stack import BIN, bench_env  # noqa: E402
from tests.sse import read_events  # noqa: E402
from tests import services  # noqa: E402

STREAMS, WAITS, TARGET_MS = 200, 20, 250


def png(i: int, salt: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (i % 256, (i // 256) % 256, salt)).save(buf, "PNG")
    return buf.getvalue()


class Parked:
    """The long-lived connections, on raw sockets served by one thread: `streams` event streams
    and `waits` waiting GETs on jobs that stay queued. Counts what opened and what was refused."""

    def __init__(self, port: int, key: str, job_ids: list[str], streams: int, waits: int):
        self.port, self.key = port, key
        self.sel = selectors.DefaultSelector()
        self.opened = self.refused = self.rewaits = 0
        self.stopping = False
        for i in range(streams):
            self._open(f"/v1/jobs/{job_ids[i % len(job_ids)]}/events", "stream")
        for i in range(waits):
            self._open(f"/v1/jobs/{job_ids[i % len(job_ids)]}", "wait")
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _open(self, path: str, kind: str) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port))
        extra = "Prefer: wait=60\r\n" if kind == "wait" else ""
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.key}\r\n{extra}\r\n"
                     .encode())
        sock.setblocking(False)
        self.sel.register(sock, selectors.EVENT_READ, {"path": path, "kind": kind, "buf": b"", "counted": False})

    def _serve(self) -> None:
        while not self.stopping:
            for key, _ in self.sel.select(timeout=0.5):
                sock, state = key.fileobj, key.data
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    chunk = b""
                state["buf"] += chunk
                if not state["counted"] and b"\r\n" in state["buf"]:
                    state["counted"] = True
                    if state["kind"] == "stream":
                        if b" 200 " in state["buf"].split(b"\r\n", 1)[0]:
                            self.opened += 1
                        else:
                            self.refused += 1
                if not chunk or (state["kind"] == "wait" and b"\r\n\r\n" in state["buf"]):
                    self.sel.unregister(sock)
                    sock.close()
                    if state["kind"] == "wait" and not self.stopping:  # answered (60 s): wait again
                        self.rewaits += 1
                        self._open(state["path"], "wait")

    def close(self) -> None:
        self.stopping = True
        self.thread.join(5)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def submit_all(url: str, key: str, documents: list[bytes], clients: int, analyzer: str,
               on_submitted=None, timeout: float = 30) -> tuple[list[float], list[str], int]:
    """POST every document from `clients` threads at full speed: latencies (s), job ids, failures."""
    local = threading.local()
    latencies, ids, failures = [], [], [0]

    def post(data: bytes) -> None:
        if getattr(local, "session", None) is None:
            local.session = requests.Session()
            local.session.headers["Authorization"] = f"Bearer {key}"
        started = time.perf_counter()
        try:
            resp = local.session.post(url + "/v1/jobs", files={"file": ("d.png", data)},
                                      data={"rule": "expense_policy", "analyzer": analyzer}, timeout=timeout)
            resp.raise_for_status()
        except requests.RequestException:
            failures[0] += 1
            return
        latencies.append(time.perf_counter() - started)
        ids.append(resp.json()["id"])
        if on_submitted is not None:
            on_submitted(resp.json()["id"])

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, documents))
    return latencies, ids, failures[0]


class Watchers:
    """A stream opened for each submitted job right after its POST: when the stream saw the job
    before its decision, the delay from `finished_at` to the `done` event is one sample."""

    def __init__(self, url: str, key: str, threads: int = 32):
        self.url, self.key = url, key
        self.todo: queue.Queue = queue.Queue()
        self.delays: list[float] = []
        self.late = self.refused = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.key}"
        while (job_id := self.todo.get()) is not None:
            try:
                with session.get(f"{self.url}/v1/jobs/{job_id}/events", stream=True, timeout=60) as resp:
                    if resp.status_code != 200:
                        self.refused += 1
                        continue
                    first = None
                    for event in read_events(resp):
                        first = first or event
                        if event["event"] == "done":
                            arrived = time.time()
                            if first["data"]["status"] in ("succeeded", "failed"):
                                self.late += 1  # decided before the stream was open: no sample
                            else:
                                finished = datetime.fromisoformat(event["data"]["finished_at"]).timestamp()
                                self.delays.append(arrived - finished)
                            break
            except requests.RequestException:
                self.refused += 1

    def close(self) -> None:
        for _ in self.threads:
            self.todo.put(None)
        for t in self.threads:
            t.join(70)


def wait_finished(url: str, key: str, ids: list[str], timeout: float = 120) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    deadline = time.monotonic() + timeout
    for job_id in ids:
        while session.get(f"{url}/v1/jobs/{job_id}", timeout=10).json()["status"] not in ("succeeded", "failed"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id} not finished after {timeout} s")
            time.sleep(0.05)


def api_command(kind: str, port: int) -> tuple[list[str], Path]:
    """The API's command line and working folder."""
    if kind == "gunicorn":  # as deployed (Dockerfile, docker-compose.yml)
        return [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                "--log-level", "warning", "api:create_app()"], ROOT
    if kind == "old":  # before issue 12: 2 x 4 threads, no live cap (no gunicorn.conf.py read)
        return [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
                "--log-level", "warning", "api:create_app()"], Path(tempfile.gettempdir())
    return [str(BIN / "docket"), "serve", "--port", str(port), "--workers", "0"], ROOT


def run(env: dict, n: int, clients: int, api_kind: str, submit_timeout: float) -> dict:
    port = services.free_port()
    command, cwd = api_command(api_kind, port)
    api = subprocess.Popen(command, env=env, cwd=cwd, start_new_session=True, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([str(BIN / "docket"), "worker", "--concurrency", "2"], env=env, cwd=ROOT,
                              start_new_session=True, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    out: dict = {}
    parked = None
    try:
        wait_http(url + "/healthz")
        key = subprocess.run([str(BIN / "docket"), "keys", "create", "--role", "submitter", "--tenant", "bench"],
                             env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        submit_all(url, key, [png(i, 1) for i in range(8)], clients, "bench-instant")

        def phase(salt: int) -> dict:
            """n jobs at full speed, a stream opened for each as soon as it is accepted."""
            watchers = Watchers(url, key)
            lat, ids, fails = submit_all(url, key, [png(i, salt) for i in range(n)], clients, "bench-instant",
                                         on_submitted=watchers.todo.put, timeout=submit_timeout)
            if ids:
                wait_finished(url, key, ids)
            watchers.close()
            return {"latencies": lat, "failed": fails, "delays": watchers.delays, "late": watchers.late,
                    "refused": watchers.refused}

        out["without"] = phase(2)
        # Park 220 connections on jobs no worker takes, then the same load again.
        _, parked_ids, _ = submit_all(url, key, [png(i, 3) for i in range(STREAMS)], clients, "model")
        parked = Parked(port, key, parked_ids, STREAMS, WAITS)
        deadline = time.monotonic() + 30
        while parked.opened + parked.refused < STREAMS and time.monotonic() < deadline:
            time.sleep(0.1)
        out["parked"] = (parked.opened, parked.refused)
        out["with"] = phase(4)
        out["parked_after"] = (parked.opened, parked.refused, parked.rewaits)
    finally:
        if parked is not None:
            parked.close()
        stop(worker)
        stop(api)
    return out


def ms(values: list[float], q: int) -> str:
    return f"{pct(values, q) * 1000:7.1f} ms" if values else "      - ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=300, help="jobs submitted in each phase")
    parser.add_argument("--clients", type=int, default=4, help="submitting HTTP clients")
    parser.add_argument("--api", choices=("gunicorn", "old", "dev"), default="gunicorn")
    parser.add_argument("--submit-timeout", type=float, default=30.0)
    args = parser.parse_args()
    with bench_env() as env:
        out = run(env, args.n, args.clients, args.api, args.submit_timeout)
    print(f"API: {args.api}, jobs per phase: {args.n}, submitting clients: {args.clients}, a stream per job")
    opened, refused, rewaits = out["parked_after"]
    for phase in ("without", "with"):
        r = out[phase]
        label = "without parked connections" if phase == "without" else f"with {opened} streams + {WAITS} waits"
        print(f"{label}:")
        print(f"  submit latency       : p50 {ms(r['latencies'], 50)}  p95 {ms(r['latencies'], 95)}  "
              f"({len(r['latencies'])} ok, {r['failed']} failed)")
        print(f"  commit -> done event : p50 {ms(r['delays'], 50)}  p95 {ms(r['delays'], 95)}  "
              f"({len(r['delays'])} samples; {r['late']} decided before their stream opened, "
              f"{r['refused']} streams refused)")
    print(f"parked streams: {opened} open, {refused} refused (503); waits answered and sent again: {rewaits}")
    r = out["with"]
    ok = bool(r["delays"]) and pct(r["delays"], 95) * 1000 < TARGET_MS and not r["failed"] and not refused
    print(f"with the parked connections: commit -> event p95 < {TARGET_MS} ms, every submission accepted, "
          f"every stream open: {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
