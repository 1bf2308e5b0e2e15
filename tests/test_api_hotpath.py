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


@pytest.fixture(params=["sqlite", "postgres"])
def any_settings(request, settings, redis_url):
    """The embedded default (SQLite) and Postgres, each with this run's Redis."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_settings")
    broker.access_stamp(redis_url, 5.0)
    return dataclasses.replace(settings, redis_url=redis_url)


def test_a_submission_is_three_statements_and_answers_the_whole_job(any_settings):
    """The document and the job are inserted and their objects built without reading them back
    (nothing lazily loaded for the response), and the job is marked enqueued after its message."""
    from sqlalchemy import event

    from db.session import get_engine

    client = make_app(any_settings).test_client()
    headers = new_key(any_settings, "hot-g")
    assert submitted_version(client, headers, 10)  # warm: the key and the tenant's rules cached
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()[:3]).upper())

    engine = get_engine(any_settings.database_url)
    event.listen(engine, "before_cursor_execute", record)
    try:
        data = encode(receipt_image(date(2026, 3, 1)), "PNG")
        resp = client.post("/v1/jobs", data={"file": (io.BytesIO(data), "r\xe9.png"), "rule": "expense_policy"},
                           content_type="multipart/form-data", headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert resp.status_code == 202, resp.get_json()
    assert statements == ["INSERT INTO DOCUMENTS", "INSERT INTO JOBS", "UPDATE JOBS SET"]
    body = resp.get_json()
    assert resp.headers["Location"].endswith(f"/v1/jobs/{body['id']}")
    assert body["status"] == "queued" and body["attempts"] == 0 and body["filename"] == "r\xe9.png"
    assert body["document"] == {"sha256": body["document"]["sha256"], "mime_type": "image/png", "size": len(data),
                                "page_count": 1}
    assert body["created_at"].endswith("+00:00") and body["started_at"] is None and body["error"] is None
    assert body["decision"] is None and body["cached_from"] is None and body["second_look"] is None
    with session_scope(any_settings.database_url) as s:
        job = s.get(Job, body["id"])
        assert job.enqueued_at is not None and job.analysis_round == 0 and job.review_rank == 1
        assert job.document.original_filename == "r\xe9.png"
    # The same bytes again: the document row is found, not inserted twice.
    again = client.post("/v1/jobs", data={"file": (io.BytesIO(data), "b.png"), "rule": "expense_policy"},
                        content_type="multipart/form-data", headers=headers)
    assert again.status_code == 202 and again.get_json()["document"] == body["document"]
