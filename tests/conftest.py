from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests import services

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SHARED_DATA = ROOT.parent / "shared" / "data"
DOCKET = str(Path(sys.executable).parent / "docket")


@pytest.fixture(scope="session")
def throwaway():
    servers = services.Throwaway()
    yield servers
    servers.close()


@pytest.fixture(scope="session")
def postgres_admin_url(throwaway) -> str:
    return services.postgres(throwaway)


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url) -> str:
    url, drop = services.fresh_database(postgres_admin_url)
    yield url
    drop()


@pytest.fixture(scope="session")
def redis_url(throwaway) -> str:
    url = services.claim_redis_db(services.redis_server(throwaway))
    yield url
    services.release_redis_db(url)


@pytest.fixture(params=["sqlite", "postgres"])
def either_database(request, tmp_path) -> str:
    """A freshly migrated database, once on SQLite and once on Postgres (for code that differs
    by dialect); dropped afterwards."""
    from db.migrate import upgrade
    from db.session import get_engine

    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'either.db'}"
    else:
        url, drop = services.fresh_database(request.getfixturevalue("postgres_admin_url"))
    upgrade(url)
    yield url
    get_engine(url).dispose()
    if drop:
        drop()


def base_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKET_")}
    env.update(DOCKET_DATA_DIR=str(data_dir), DOCKET_SWEEP_INTERVAL="1", DOCKET_LOG_LEVEL="WARNING",
               PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(params=["embedded", "postgres+redis"])
def stack_env(request, tmp_path) -> dict:
    """Environment for Docket processes: the embedded default (SQLite + Docket's own Redis)
    or the production shape (real Postgres + real Redis)."""
    env = base_env(tmp_path / "data")
    if request.param == "postgres+redis":
        env["DOCKET_DATABASE_URL"] = request.getfixturevalue("postgres_url")
        env["DOCKET_REDIS_URL"] = request.getfixturevalue("redis_url")
    return env


class Server:
    def __init__(self, env: dict, workers: int = 1, stderr=None):
        self.port = services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.proc = subprocess.Popen([DOCKET, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--workers", str(workers)], env=env, cwd=ROOT, stderr=stderr)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("docket serve did not come up")
            time.sleep(0.2)
        # A tenant of its own: the session's Postgres database is shared by tests, and tenant
        # history (near-duplicate receipts) must not leak between them.
        self.tenant = "acme-" + uuid.uuid4().hex[:8]
        self.key = self.create_key("admin", self.tenant)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.key}"

    def create_key(self, role: str, tenant: str) -> str:
        out = subprocess.run([DOCKET, "keys", "create", "--role", role, "--tenant", tenant], env=self.env,
                             cwd=ROOT, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def wait_job(self, job_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.http.get(f"{self.url}/v1/jobs/{job_id}", timeout=5).json()
            if body["status"] in ("succeeded", "failed"):
                return body
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} not finished after {timeout}s: {body}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def server(stack_env):
    srv = Server(stack_env)
    yield srv
    srv.stop()


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Embedded-default settings (SQLite in a fresh data directory), migrated, for in-process apps."""
    from db.migrate import upgrade
    from docket.config import Settings

    monkeypatch.delenv("DOCKET_DATABASE_URL", raising=False)
    monkeypatch.setenv("DOCKET_DATA_DIR", str(tmp_path))
    s = Settings.from_env()
    upgrade(s.database_url)
    return s


@pytest.fixture
def sample():
    def path(name: str) -> Path:
        return SAMPLES / name
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data; absent, skipped (or failed under DOCKET_REQUIRE_DEV_DATA=1) like every dev-set test."""
    from tests.devdata import dev_root

    return dev_root(SHARED_DATA)


# Chromium through Playwright, for the dashboard tests (scripts/browser.sh installs it).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing ({CHROMIUM}): install Debian's `chromium` package "
                    "(scripts/test.sh does it when run as root).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    # The dashboard speaks the browser's language (Accept-Language); these pages are read in English
    # (tests/test_i18n_dashboard.py reads every page in 简体中文).
    context = browser.new_context(viewport={"width": 1366, "height": 850}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
