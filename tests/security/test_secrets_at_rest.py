"""Secrets at rest (review item 9): what Docket writes under its data directory is private to
its user whatever the umask, and webhook signing secrets are stored encrypted (Fernet, keys
from DOCKET_SECRETS_KEYS or a private key file), rotatable, never in plaintext."""
from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from api import create_app
from db.models import Document, Tenant, WebhookAttempt, WebhookDelivery, WebhookSubscription
from db.session import get_engine, session_scope
from docket.tenants import create_key, ensure_tenant
from docket.webhooks.delivery import attempt_delivery
from docket.webhooks.outbox import record_event
from docket.webhooks.settings import WebhookSettings
from docket.webhooks.signing import new_secret
from tests.conftest import DOCKET, Server, base_env
from tests.documents import encode, receipt_image
from tests.test_webhooks_delivery import Receiver

HOOKS = WebhookSettings(allow_hosts=("127.0.0.1",), max_attempts=3, connect_timeout=2.0, read_timeout=2.0)
PNG = encode(receipt_image(date(2026, 1, 5)), "PNG")


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def open_to_others(root: Path) -> list[str]:
    """Every path under `root` (itself included) that group or other users may use."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077 and not path.is_symlink():
            found.append(f"{path.relative_to(root.parent)} {mode:o}")
    return found


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def database_bytes(settings) -> bytes:
    db = Path(settings.database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def stored(settings_or_url, table: str, column: str) -> list[str]:
    url = getattr(settings_or_url, "database_url", settings_or_url)
    with get_engine(url).connect() as conn:
        return [row[0] for row in conn.execute(text(f"SELECT {column} FROM {table}"))]


def client_and_admin(settings, redis_url, tenant="acme"):
    app = create_app(settings, broker_url=redis_url.rsplit("/", 1)[0] + "/14")
    with session_scope(settings.database_url) as s:
        _, plaintext = create_key(s, tenant, "admin")
    return app.test_client(), {"Authorization": f"Bearer {plaintext}"}


def deliver_event(url: str, tenant: str = "acme", callback_url: str | None = None) -> list[str]:
    """Record one event and attempt each of its deliveries once; their statuses, in order."""
    with session_scope(url) as s:
        ids = [d.id for d in record_event(s, tenant_id=tenant, event_type="job.succeeded",
                                          data={"id": "job1"}, callback_url=callback_url)]
    with session_scope(url) as s:
        return [attempt_delivery(s, delivery_id, HOOKS) for delivery_id in ids]


def subscribe(url: str, target: str, tenant: str = "acme") -> str:
    """A subscription made the way the API makes it; returns its plaintext secret."""
    secret = new_secret()
    with session_scope(url) as s:
        ensure_tenant(s, tenant)
        s.add(WebhookSubscription(tenant_id=tenant, url=target, event_types=["job.succeeded"], secret=secret))
    return secret


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def keys(monkeypatch):
    """Sets DOCKET_SECRETS_KEYS to the given Fernet keys (first encrypts)."""
    def use(*fernet_keys: bytes) -> None:
        monkeypatch.setenv("DOCKET_SECRETS_KEYS", ",".join(k.decode() for k in fernet_keys))
    monkeypatch.delenv("DOCKET_SECRETS_KEYS", raising=False)
    return use


# --- data files are private -----------------------------------------------------------------------

def test_serve_under_umask_022_leaves_nothing_readable_by_others(tmp_path, sample):
    """A real `docket serve` (database, embedded Redis, worker, upload, stored document, page
    image, metrics, keys) started with the usual umask 022."""
    data = tmp_path / "data"
    env = base_env(data)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # an earlier in-process test may have set one: ours is under data
    with umask(0o022):
        srv = Server(env)
        try:
            job = srv.http.post(f"{srv.url}/v1/jobs", files={"file": ("r.png", sample("receipt-en.png").read_bytes())},
                                data={"rule": "expense_policy"}, headers={"Prefer": "wait=60"}, timeout=90).json()
            assert srv.wait_job(job["id"], timeout=60)["status"] == "succeeded"
            assert srv.http.get(f"{srv.url}/v1/jobs/{job['id']}/pages/1", timeout=30).status_code == 200
        finally:
            assert srv.stop() == 0
    assert open_to_others(data) == []
    for made in ("docket.db", "documents", "pages", "redis", "metrics", "secret_key", "secrets_key"):
        assert (data / made).exists(), made  # all of it was looked at


def test_existing_world_readable_database_and_data_dir_are_tightened(settings, redis_url):
    db = Path(settings.database_url.removeprefix("sqlite:///"))
    wal = db.with_name(db.name + "-wal")
    wal.write_bytes(b"")
    for path, old in ((db, 0o644), (wal, 0o644), (settings.data_dir, 0o755)):
        os.chmod(path, old)
    create_app(settings, broker_url=redis_url)  # what gunicorn and `docket serve` run at start-up
    assert (mode(db), mode(wal), mode(settings.data_dir)) == (0o600, 0o600, 0o700)


def test_a_worker_opening_an_old_database_tightens_it(tmp_path):
    """Not only the API: every process opens the database through get_engine."""
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url)
    os.chmod(tmp_path / "old.db", 0o644)
    with get_engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))
    assert mode(tmp_path / "old.db") == 0o600
    assert all(mode(p) == 0o600 for p in tmp_path.glob("old.db*"))


def test_new_database_and_its_wal_are_private_under_umask_022(tmp_path):
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'fresh' / 'docket.db'}"
    with umask(0o022):
        upgrade(url)
        with get_engine(url).connect() as conn:
            conn.execute(text("CREATE TABLE t (x)"))
            conn.commit()
        assert (tmp_path / "fresh" / "docket.db-wal").exists()
        assert open_to_others(tmp_path / "fresh") == []


def test_stored_documents_and_page_images_are_private_under_umask_022(settings, sample):
    """In-process (gunicorn's API, where no entry point set a umask): modes set at creation."""
    from docket import page_cache, storage

    with umask(0o022):
        with sample("receipt-en.png").open("rb") as stream:
            upload = storage.receive(stream, settings.uploads_dir, settings.max_upload_bytes)
        kept = storage.keep(upload, settings.documents_dir)
        doc = Document(sha256=upload.sha256, mime_type="image/png", storage_path=storage.key_for(upload.sha256))
        page = page_cache.page_png(settings, doc, 0)
    assert mode(kept) == 0o600 and mode(page) == 0o600
    assert open_to_others(settings.documents_dir) == []
    assert open_to_others(settings.data_dir) == []


def test_embedded_key_file_is_private_and_a_fernet_key(settings, redis_url, keys):
    create_app(settings, broker_url=redis_url)
    key_file = settings.data_dir / "secrets_key"
    assert mode(key_file) == 0o600
    Fernet(key_file.read_bytes())  # a valid key, not a placeholder


# --- webhook secrets are encrypted ----------------------------------------------------------------

def test_subscription_secret_is_shown_once_and_never_stored_in_plaintext(settings, redis_url, keys):
    client, admin = client_and_admin(settings, redis_url)
    created = client.post("/v1/webhooks", json={"url": "https://hooks.example.com/d", "event_types": ["job.succeeded"]},
                          headers=admin)
    secret = created.get_json()["secret"]
    assert created.status_code == 201 and secret.startswith("whsec_")
    with session_scope(settings.database_url) as s:
        tenant_secret = s.get(Tenant, "acme").webhook_secret
    assert tenant_secret.startswith("whsec_")
    raw = database_bytes(settings)
    for plaintext in (secret, tenant_secret):
        assert plaintext.encode() not in raw
        assert plaintext.removeprefix("whsec_").encode() not in raw  # nor its key material
    assert all(v.startswith("fernet:") for v in stored(settings, "webhook_subscriptions", "secret"))
    assert all(v.startswith("fernet:") for v in stored(settings, "tenants", "webhook_secret"))


@pytest.fixture
def fresh_postgres(postgres_admin_url):
    from db.migrate import upgrade
    from tests import services

    url, drop = services.fresh_database(postgres_admin_url)
    yield url, upgrade
    get_engine(url).dispose()
    drop()


def test_secret_not_in_a_postgres_row(fresh_postgres, keys):
    postgres_url, upgrade = fresh_postgres
    keys(Fernet.generate_key())
    upgrade(postgres_url)
    tenant = "pg-" + os.urandom(4).hex()
    secret = subscribe(postgres_url, "https://hooks.example.com/pg", tenant)
    with psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute("SELECT s.secret, t.webhook_secret FROM webhook_subscriptions s "
                           "JOIN tenants t ON t.id = s.tenant_id WHERE s.tenant_id = %s", (tenant,)).fetchone()
    assert all(v.startswith("fernet:") for v in row)
    assert secret not in "".join(row) and secret.removeprefix("whsec_") not in "".join(row)
    with session_scope(postgres_url) as s:  # and it reads back whole
        assert s.scalars(select(WebhookSubscription.secret)
                         .where(WebhookSubscription.tenant_id == tenant)).one() == secret
    # The default tenant, made by migration 0002 in plaintext, was encrypted by 0012.
    assert stored(postgres_url, "tenants", "webhook_secret")[0].startswith("fernet:")


def test_rotation_under_a_new_key_then_old_key_removed(settings, receiver, keys):
    """From the generated key of a laptop install to DOCKET_SECRETS_KEYS, then the old key gone."""
    old, new = (settings.data_dir / "secrets_key").read_bytes(), Fernet.generate_key()
    secret = subscribe(settings.database_url, receiver.route("/hook", None))
    receiver.route("/hook", secret)
    assert deliver_event(settings.database_url) == ["delivered"]
    keys(new, old)
    env = {**base_env(settings.data_dir), "DOCKET_SECRETS_KEYS": os.environ["DOCKET_SECRETS_KEYS"]}
    out = subprocess.run([DOCKET, "secrets", "rotate"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "rotated 3" in out.stdout  # the default tenant's, acme's and the subscription's
    keys(new)  # the old key is gone
    (settings.data_dir / "secrets_key").unlink()
    assert deliver_event(settings.database_url) == ["delivered"]
    assert [hit["verified"] for hit in receiver.hits("/hook")] == [True, True]
    for token in stored(settings, "webhook_subscriptions", "secret") + stored(settings, "tenants", "webhook_secret"):
        with pytest.raises(InvalidToken):
            Fernet(old).decrypt(token.removeprefix("fernet:").encode())


def test_legacy_plaintext_rows_still_sign_and_rotation_encrypts_them(settings, receiver, keys):
    plaintext, tenant_plaintext = new_secret(), new_secret()
    with get_engine(settings.database_url).begin() as conn:  # rows written before encryption
        conn.execute(text("INSERT INTO tenants (id, webhook_secret, created_at) VALUES ('old', :s, CURRENT_TIMESTAMP)"),
                     {"s": tenant_plaintext})
        conn.execute(text("INSERT INTO webhook_subscriptions (id, tenant_id, url, event_types, secret, active, "
                          "created_at) VALUES ('sub1', 'old', :u, '[\"job.succeeded\"]', :s, 1, CURRENT_TIMESTAMP)"),
                     {"u": receiver.route("/legacy", plaintext), "s": plaintext})
    assert deliver_event(settings.database_url, "old",
                         callback_url=receiver.route("/cb", tenant_plaintext)) == ["delivered", "delivered"]
    out = subprocess.run([DOCKET, "secrets", "rotate"], env=base_env(settings.data_dir), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "encrypted 2" in out.stdout, out.stdout + out.stderr
    with get_engine(settings.database_url).connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    raw = database_bytes(settings)
    assert plaintext.encode() not in raw and tenant_plaintext.encode() not in raw
    assert deliver_event(settings.database_url, "old") == ["delivered"]
    assert all(hit["verified"] for hit in receiver.hits("/legacy"))


def test_undecryptable_secret_fails_its_delivery_with_a_reason_and_others_still_go(settings, receiver, keys):
    """A secret encrypted under a key no longer configured: its delivery is a recorded, retried
    failure saying why; the same loop still delivers the one it can sign."""
    lost, current = Fernet.generate_key(), Fernet.generate_key()
    keys(lost)
    subscribe(settings.database_url, receiver.route("/lost", "whsec_unused"), "lost")
    keys(current)
    readable = subscribe(settings.database_url, receiver.route("/ok", None), "fine")
    receiver.route("/ok", readable)
    assert deliver_event(settings.database_url, "lost") == ["pending"]
    assert deliver_event(settings.database_url, "fine") == ["delivered"]
    with session_scope(settings.database_url) as s:
        failed = s.scalars(select(WebhookDelivery).where(WebhookDelivery.tenant_id == "lost")).one()
        attempt = s.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == failed.id)).one()
    assert "cannot be decrypted" in failed.last_error and "DOCKET_SECRETS_KEYS" in failed.last_error
    assert attempt.error == failed.last_error and attempt.status_code is None
    assert receiver.hits("/lost") == []  # nothing went out signed with a wrong (empty) key


def test_undecryptable_tenant_secret_is_a_failed_attempt_not_missing(settings, receiver, keys):
    keys(Fernet.generate_key())
    with session_scope(settings.database_url) as s:
        ensure_tenant(s, "cb")
    keys(Fernet.generate_key())
    assert deliver_event(settings.database_url, "cb", callback_url=receiver.route("/cb", "whsec_x")) == ["pending"]
    with session_scope(settings.database_url) as s:
        error = s.scalars(select(WebhookDelivery.last_error).where(WebhookDelivery.tenant_id == "cb")).one()
    assert "cannot be decrypted" in error


def test_listing_subscriptions_with_an_undecryptable_secret_still_works(settings, redis_url, keys):
    keys(Fernet.generate_key())
    client, admin = client_and_admin(settings, redis_url)
    assert client.post("/v1/webhooks", json={"url": "https://hooks.example.com/d"}, headers=admin).status_code == 201
    keys(Fernet.generate_key())
    listed = client.get("/v1/webhooks", headers=admin)
    assert listed.status_code == 200 and len(listed.get_json()["webhooks"]) == 1


def test_rotate_reports_unreadable_secrets_and_fails(settings, keys):
    keys(Fernet.generate_key())
    subscribe(settings.database_url, "https://hooks.example.com/x")
    env = {**base_env(settings.data_dir), "DOCKET_SECRETS_KEYS": Fernet.generate_key().decode()}
    out = subprocess.run([DOCKET, "secrets", "rotate"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "unreadable 3" in out.stdout and "Traceback" not in out.stderr


GOOD_KEY = "kLOEyv-F1cGCqr7FTjonO1R2wYyxWMEJj7KN8QBfWgQ="


@pytest.mark.parametrize("bad", ["not-a-key", GOOD_KEY + ",short", GOOD_KEY[:-2]], ids=["junk", "second", "cut"])
def test_a_malformed_key_refuses_start_clearly(settings, redis_url, monkeypatch, bad):
    from db.sealed import SecretsKeyError

    monkeypatch.setenv("DOCKET_SECRETS_KEYS", bad)
    with pytest.raises(SecretsKeyError, match="DOCKET_SECRETS_KEYS") as caught:
        create_app(settings, broker_url=redis_url)
    assert not any(part in str(caught.value) for part in bad.split(","))  # no key material in the message


def test_a_worker_with_a_malformed_key_does_not_start(settings):
    env = {**base_env(settings.data_dir), "DOCKET_SECRETS_KEYS": GOOD_KEY + ",short"}
    out = subprocess.run([DOCKET, "worker"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "key 2 of DOCKET_SECRETS_KEYS" in out.stderr and "Traceback" not in out.stderr


def test_an_unreadable_secret_is_never_written_back(settings, keys):
    from db.sealed import SecretsKeyError

    keys(Fernet.generate_key())
    subscribe(settings.database_url, "https://hooks.example.com/x")
    keys(Fernet.generate_key())
    with pytest.raises(StatementError) as caught:
        with session_scope(settings.database_url) as s:
            sub = s.scalars(select(WebhookSubscription)).one()
            # Copied onto a new row (or set back): the "" stand-in is refused, not stored.
            s.add(WebhookSubscription(tenant_id="acme", url=sub.url, event_types=sub.event_types, secret=sub.secret))
            s.flush()
    assert isinstance(caught.value.orig, SecretsKeyError)
    assert all(v.startswith("fernet:") for v in stored(settings, "webhook_subscriptions", "secret"))
