"""The API's hot path (issue 11): API keys and active policies are cached per process while the
access stamp in Redis is unchanged, and still a revoked key or a replaced policy is never served
after the change is committed, whichever process or session made it."""
from __future__ import annotations

import dataclasses
import io
import subprocess
from datetime import date

import pytest
import requests

from api import create_app
from db.migrate import upgrade
from db.models import Job
from db.session import session_scope
from docket import broker, policies, tenants
from docket.rules import default_rules_dir, load_rules
from tests.conftest import DOCKET, ROOT, base_env
from tests.documents import encode, receipt_image
from tests.test_policies import STRICT

PNG = encode(receipt_image(date(2026, 1, 5)), "PNG")


@pytest.fixture
def pg_settings(settings, postgres_url, redis_url):
    """Postgres, and this run's own Redis database for the access stamp (the CLI's too)."""
    upgrade(postgres_url)
    broker.access_stamp(redis_url, 5.0)  # there is one from now on: the first request may cache already
    return dataclasses.replace(settings, database_url=postgres_url, redis_url=redis_url)


def make_app(settings):
    """The API, publishing into the database no worker consumes (as in test_security), with the
    access stamp where the CLI writes it (in production both are the one DOCKET_REDIS_URL)."""
    app = create_app(settings, broker_url=settings.redis_url.rsplit("/", 1)[0] + "/14")
    app.extensions["docket"]["stamp_url"] = settings.redis_url
    return app


@pytest.fixture
def lookups(monkeypatch) -> list[str]:
    """Every database lookup of a key, as it happens."""
    seen, real = [], tenants.lookup

    def counting(session, plaintext):
        seen.append(plaintext)
        return real(session, plaintext)

    monkeypatch.setattr(tenants, "lookup", counting)
    return seen


def new_key(settings, tenant: str, role: str = "submitter") -> dict:
    with session_scope(settings.database_url) as s:
        _, plaintext = tenants.create_key(s, tenant, role)
    return {"Authorization": f"Bearer {plaintext}"}


def cli(settings, *args: str) -> str:
    env = {**base_env(settings.data_dir), "DOCKET_DATABASE_URL": settings.database_url,
           "DOCKET_REDIS_URL": settings.redis_url}
    return subprocess.run([DOCKET, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_a_key_revoked_by_another_process_is_refused_on_the_next_request(pg_settings, lookups):
    client = make_app(pg_settings).test_client()
    headers = new_key(pg_settings, "hot-a")
    assert [client.get("/v1/jobs", headers=headers).status_code for _ in range(3)] == [200, 200, 200]
    assert len(lookups) == 1  # the cache is in use: one database lookup for three requests
    plaintext = headers["Authorization"].split()[1]
    assert "revoked key" in cli(pg_settings, "keys", "revoke", plaintext)
    assert client.get("/v1/jobs", headers=headers).status_code == 401
    # ...and through another session of this process, at once as well.
    other = new_key(pg_settings, "hot-a")
    assert client.get("/v1/jobs", headers=other).status_code == 200
    with session_scope(pg_settings.database_url) as s:
        tenants.revoke_key(s, other["Authorization"].split()[1])
    assert client.get("/v1/jobs", headers=other).status_code == 401


def test_a_revocation_rolled_back_changes_nothing(pg_settings, lookups):
    client = make_app(pg_settings).test_client()
    headers = new_key(pg_settings, "hot-b")
    with pytest.raises(RuntimeError), session_scope(pg_settings.database_url) as s:
        tenants.revoke_key(s, headers["Authorization"].split()[1])
        raise RuntimeError("the revoking transaction fails")
    assert client.get("/v1/jobs", headers=headers).status_code == 200


def test_without_a_working_redis_every_request_reads_the_database(pg_settings, lookups):
    app = make_app(pg_settings)
    app.extensions["docket"]["stamp_url"] = "redis://127.0.0.1:1/0"  # nothing listens there
    client = app.test_client()
    headers = new_key(pg_settings, "hot-c")
    assert [client.get("/v1/jobs", headers=headers).status_code for _ in range(3)] == [200, 200, 200]
    assert len(lookups) == 3
    assert create_app(pg_settings, broker_url="memory://").extensions["docket"]["stamp_url"] is None


def test_a_stamp_lost_with_redis_data_is_not_taken_for_the_old_one(pg_settings, lookups):
    client = make_app(pg_settings).test_client()
    headers = new_key(pg_settings, "hot-d")
    assert [client.get("/v1/jobs", headers=headers).status_code for _ in range(2)] == [200, 200]
    assert len(lookups) == 1
    broker.client(pg_settings.redis_url).delete(broker.ACCESS_STAMP)  # a flush, a restart without data
    assert client.get("/v1/jobs", headers=headers).status_code == 200
    assert len(lookups) == 2


def submitted_version(client, headers, seed: int) -> str:
    """The expense_policy version a new submission gets (submissions use the cached rules)."""
    data = encode(receipt_image(date(2026, 1, 1 + seed)), "PNG")
    resp = client.post("/v1/jobs", data={"file": (io.BytesIO(data), "r.png"), "rule": "expense_policy"},
                       content_type="multipart/form-data", headers=headers)
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["rule"]["version"]


def test_activation_and_roll_back_elsewhere_apply_to_the_next_submission(pg_settings):
    client = make_app(pg_settings).test_client()
    tenant = "hot-e"
    headers = new_key(pg_settings, tenant)
    builtins = load_rules(default_rules_dir())
    builtin = builtins["expense_policy"].version
    assert submitted_version(client, headers, 1) == submitted_version(client, headers, 2) == builtin  # cached
    with session_scope(pg_settings.database_url) as s:
        strict, _ = policies.push(s, tenant, "expense_policy", STRICT, actor="test")
    with session_scope(pg_settings.database_url) as s:
        policies.activate(s, tenant, "expense_policy", strict.version, builtins, actor="test")
    assert submitted_version(client, headers, 3) == strict.version
    cli(pg_settings, "rules", "activate", "expense_policy", builtin, "--tenant", tenant)  # a roll-back, elsewhere
    assert submitted_version(client, headers, 4) == builtin


def test_a_published_job_records_enqueued_at(pg_settings):
    client = make_app(pg_settings).test_client()
    headers = new_key(pg_settings, "hot-f")
    resp = client.post("/v1/jobs", data={"file": (io.BytesIO(PNG), "r.png"), "rule": "expense_policy"},
                       content_type="multipart/form-data", headers=headers)
    assert resp.status_code == 202
    with session_scope(pg_settings.database_url) as s:
        job = s.get(Job, resp.get_json()["id"])
        assert job.enqueued_at is not None and job.enqueued_at >= job.created_at


def test_a_server_refuses_a_key_revoked_with_the_cli_at_once(server):
    """`docket serve` (the embedded default finds its Redis through the data directory) and the CLI."""
    key = server.create_key("submitter", server.tenant)
    headers = {"Authorization": f"Bearer {key}"}
    assert [requests.get(f"{server.url}/v1/jobs", headers=headers, timeout=5).status_code
            for _ in range(2)] == [200, 200]
    subprocess.run([DOCKET, "keys", "revoke", key], env=server.env, cwd=ROOT, check=True, capture_output=True)
    assert requests.get(f"{server.url}/v1/jobs", headers=headers, timeout=5).status_code == 401
