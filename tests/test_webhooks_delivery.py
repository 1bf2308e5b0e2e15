"""Webhook delivery end to end against a real loopback receiver that verifies every request with
the `standardwebhooks` library, as a customer's receiver would. Time is driven with `now=`."""
from __future__ import annotations

import http.server
import shutil
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from db.migrate import upgrade
from db.models import Tenant, WebhookAttempt, WebhookDelivery, WebhookSubscription
from db.session import session_factory
from docket.webhooks import delivery as delivery_mod
from docket.webhooks import ssrf
from docket.webhooks.delivery import attempt_delivery, backoff_delay, claim, due_deliveries, replay
from docket.webhooks.outbox import record_event
from docket.webhooks.settings import WebhookSettings
from docket.webhooks.signing import new_secret, signed_headers


# --- the receiver ------------------------------------------------------------------------------

class Receiver:
    """A customer's endpoint on 127.0.0.1. `routes[path] = (secret, behaviour)`; behaviours:
    "ok", ("fail_first", n), "fail", ("redirect", location), ("slow", seconds), "huge",
    "huge_500". Every request is recorded with whether its signature verified."""

    def __init__(self):
        self.routes: dict[str, tuple[str, object]] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.handle(self)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            block_on_close = False

            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is expected
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, secret: str, behaviour: object = "ok") -> str:
        self.routes[path] = (secret, behaviour)
        return self.url(path)

    def hits(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def handle(self, h: http.server.BaseHTTPRequestHandler):
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        secret, behaviour = self.routes.get(h.path, (None, None))
        verified, payload = False, None
        if secret is not None:
            try:
                payload = Webhook(secret).verify(body, dict(h.headers.items()))
                verified = True
            except WebhookVerificationError:
                pass
        with self.lock:
            self.requests.append({"path": h.path, "headers": dict(h.headers.items()), "body": body,
                                  "verified": verified, "payload": payload})
            n = len([r for r in self.requests if r["path"] == h.path])
        if behaviour is None:
            return self.reply(h, 404)
        if not verified:
            return self.reply(h, 401, b"bad signature")
        kind, arg = behaviour if isinstance(behaviour, tuple) else (behaviour, None)
        if kind == "ok":
            return self.reply(h, 204)
        if kind == "fail" or (kind == "fail_first" and n <= arg):
            return self.reply(h, 500, b"receiver exploded")
        if kind == "fail_first":
            return self.reply(h, 200, b"thanks")
        if kind == "redirect":
            h.send_response(302)
            h.send_header("Location", arg)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if kind == "slow":
            time.sleep(arg)
            return self.reply(h, 200)
        if kind in ("huge", "huge_500"):  # endless body, no length: only a cap stops a reader
            h.send_response(200 if kind == "huge" else 500)
            h.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(2000):  # ~128 MiB, unless the client hangs up first
                    h.wfile.write(chunk)
            except OSError:
                pass
            return
        raise AssertionError(kind)

    @staticmethod
    def reply(h, status: int, body: bytes = b""):
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


# --- the database and settings --------------------------------------------------------------------

@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """One migrated database per module, copied for each test (migrations take ~0.5 s)."""
    path = tmp_path_factory.mktemp("schema") / "t.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def db(tmp_path, migrated):
    shutil.copyfile(migrated, tmp_path / "t.db")
    url = f"sqlite:///{tmp_path}/t.db"
    factory = session_factory(url)
    with factory() as session:
        session.add(Tenant(id="acme", webhook_secret=new_secret()))
        session.add(Tenant(id="other", webhook_secret=new_secret()))
        session.commit()
    return factory


@pytest.fixture
def settings():
    return WebhookSettings(allow_hosts=("127.0.0.1",), max_attempts=3, backoff_base=5.0,
                           backoff_cap=60.0, connect_timeout=2.0, read_timeout=2.0,
                           max_response_bytes=1024, lease_seconds=30.0)


class _Longest:
    """Backoff with the jitter pinned to its ceiling, so the schedule is known."""

    @staticmethod
    def uniform(low, high):
        return high


@pytest.fixture(autouse=True)
def longest_backoff(monkeypatch):
    monkeypatch.setattr(delivery_mod, "_rng", _Longest())


def tenant_secret(factory, tenant_id="acme") -> str:
    with factory() as s:
        return s.get(Tenant, tenant_id).webhook_secret


def subscribe(factory, url, event_types, tenant_id="acme", active=True) -> WebhookSubscription:
    with factory() as s:
        sub = WebhookSubscription(tenant_id=tenant_id, url=url, event_types=event_types,
                                  secret=new_secret(), active=active)
        s.add(sub)
        s.commit()
        return sub


def record(factory, **kwargs) -> list[str]:
    kwargs.setdefault("tenant_id", "acme")
    kwargs.setdefault("event_type", "job.succeeded")
    kwargs.setdefault("data", {"id": "job1", "status": "succeeded", "decision": "approve"})
    kwargs.setdefault("now", T0)
    with factory() as s:
        ids = [d.id for d in record_event(s, **kwargs)]
        s.commit()
    return ids


def load(factory, delivery_id) -> WebhookDelivery:
    with factory() as s:
        return s.get(WebhookDelivery, delivery_id)


def attempts(factory, delivery_id) -> list[WebhookAttempt]:
    with factory() as s:
        return list(s.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
                              .order_by(WebhookAttempt.id)))


def attempt(factory, delivery_id, settings, now) -> str:
    with factory() as s:
        return attempt_delivery(s, delivery_id, settings, now=now)


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


T0 = datetime.now(timezone.utc).replace(microsecond=0)


# --- signing ---------------------------------------------------------------------------------------

def test_new_secret_is_standard_webhooks_shaped_and_signs_verifiably():
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) == 6 + 44
    assert new_secret() != secret
    body = b'{"type":"job.succeeded"}'
    headers = signed_headers(secret, "msg_abc", datetime.now(timezone.utc), body)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers) == {"type": "job.succeeded"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"type":"job.failed"}', headers)


# --- the outbox ------------------------------------------------------------------------------------

def test_record_event_adds_one_delivery_per_matching_receiver(db):
    a = subscribe(db, "https://a.example.com/hook", ["job.succeeded", "job.failed"])
    b = subscribe(db, "https://b.example.com/hook", ["batch.completed"])
    subscribe(db, "https://off.example.com/hook", ["job.succeeded"], active=False)
    subscribe(db, "https://x.example.com/hook", ["job.succeeded"], tenant_id="other")

    ids = record(db, event_type="job.succeeded", job_id="job1", callback_url="https://cb.example.com/x")
    rows = [load(db, i) for i in ids]
    assert [(r.url, r.subscription_id) for r in rows] == [
        ("https://cb.example.com/x", None), ("https://a.example.com/hook", a.id)]
    for r in rows:
        assert r.id.startswith("msg_") and r.status == "pending" and r.attempts == 0
        assert (r.tenant_id, r.event_type, r.job_id) == ("acme", "job.succeeded", "job1")
        assert r.next_attempt_at is not None
        assert set(r.payload) == {"type", "timestamp", "data"} and r.payload["type"] == "job.succeeded"
        assert datetime.fromisoformat(r.payload["timestamp"]).utcoffset() == timedelta(0)
    assert len(set(ids)) == 2

    assert [load(db, i).subscription_id for i in record(db, event_type="batch.completed",
                                                        batch_id="b1")] == [b.id]
    assert record(db, event_type="review.updated") == []  # nobody asked; no callback_url
    with pytest.raises(ValueError):
        record(db, event_type="job.exploded")


def test_record_event_belongs_to_the_callers_transaction(db):
    subscribe(db, "https://a.example.com/hook", ["job.failed"])
    with db() as s:
        assert len(record_event(s, tenant_id="acme", event_type="job.failed", data={})) == 1
        s.rollback()  # the event's transaction failed: no delivery may survive it
    with db() as s:
        assert s.scalars(select(WebhookDelivery)).all() == []


# --- delivery ---------------------------------------------------------------------------------------

def test_delivered_and_verified_with_tenant_and_subscription_secrets(db, receiver, settings):
    tsecret = tenant_secret(db)
    sub = subscribe(db, receiver.url("/sub"), ["job.succeeded"])
    receiver.route("/sub", sub.secret)
    cb_url = receiver.route("/callback", tsecret)
    ids = record(db, callback_url=cb_url, job_id="job1")
    assert len(ids) == 2

    for delivery_id in ids:
        assert attempt(db, delivery_id, settings, T0) == "delivered"
    for path, delivery_id in (("/callback", ids[0]), ("/sub", ids[1])):
        [hit] = receiver.hits(path)
        assert hit["verified"] and hit["headers"]["webhook-id"] == delivery_id
        assert hit["headers"]["Content-Type"] == "application/json"
        assert hit["payload"]["type"] == "job.succeeded"
        assert hit["payload"]["data"] == {"id": "job1", "status": "succeeded", "decision": "approve"}
        row = load(db, delivery_id)
        assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 204)
        assert utc(row.delivered_at) == T0 and row.next_attempt_at is None
    # Each was signed with its own secret, not the other's.
    cb = receiver.hits("/callback")[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(sub.secret).verify(cb["body"], cb["headers"])
    # Delivered deliveries are not sent again.
    assert attempt(db, ids[0], settings, T0 + timedelta(days=1)) == "skipped"
    assert len(receiver.requests) == 2


def test_receiver_failing_first_is_retried_with_backoff(db, receiver, settings):
    sub = subscribe(db, receiver.url("/flaky"), ["job.failed"])
    receiver.route("/flaky", sub.secret, ("fail_first", 2))
    [delivery_id] = record(db, event_type="job.failed")

    assert attempt(db, delivery_id, settings, T0) == "pending"
    row = load(db, delivery_id)
    assert (row.attempts, row.last_status_code) == (1, 500)
    assert "receiver exploded" in row.last_error
    assert utc(row.next_attempt_at) == T0 + timedelta(seconds=5)  # base * 2**0 (jitter pinned high)
    assert due_deliveries(db(), T0 + timedelta(seconds=4)) == []
    assert attempt(db, delivery_id, settings, T0 + timedelta(seconds=4)) == "skipped"  # not due yet

    t1 = T0 + timedelta(seconds=5)
    assert due_deliveries(db(), t1) == [delivery_id]
    assert attempt(db, delivery_id, settings, t1) == "pending"
    assert utc(load(db, delivery_id).next_attempt_at) == t1 + timedelta(seconds=10)  # base * 2**1
    t2 = t1 + timedelta(seconds=10)
    assert attempt(db, delivery_id, settings, t2) == "delivered"

    log = attempts(db, delivery_id)
    assert [a.status_code for a in log] == [500, 500, 200]
    assert [utc(a.attempted_at) for a in log] == [T0, t1, t2]
    assert all(a.latency_ms is not None and a.latency_ms > 0 for a in log)
    assert [a.error is None for a in log] == [False, False, True]
    hits = receiver.hits("/flaky")
    assert {h["headers"]["webhook-id"] for h in hits} == {delivery_id} and all(h["verified"] for h in hits)
    assert load(db, delivery_id).attempts == 3


def test_always_failing_goes_dead_then_replay_delivers_with_the_same_id(db, receiver, settings):
    sub = subscribe(db, receiver.url("/down"), ["batch.completed"])
    receiver.route("/down", sub.secret, "fail")
    [delivery_id] = record(db, event_type="batch.completed", batch_id="b1")

    now, results = T0, []
    for _ in range(settings.max_attempts):
        results.append(attempt(db, delivery_id, settings, now))
        now += timedelta(hours=2)
    assert results == ["pending", "pending", "dead"]
    row = load(db, delivery_id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("dead", 3, None)
    assert attempt(db, delivery_id, settings, now + timedelta(days=30)) == "skipped"
    assert due_deliveries(db(), now + timedelta(days=30)) == []

    receiver.route("/down", sub.secret, "ok")  # the customer fixed their endpoint
    with db() as s:
        assert replay(s, delivery_id, tenant_id="other") is None  # not theirs
        replayed = replay(s, delivery_id, tenant_id="acme", now=now)
        assert (replayed.status, replayed.attempts) == ("pending", 0)
        s.commit()
    assert due_deliveries(db(), now) == [delivery_id]
    assert attempt(db, delivery_id, settings, now) == "delivered"
    assert [a.status_code for a in attempts(db, delivery_id)] == [500, 500, 500, 204]  # history kept
    assert {h["headers"]["webhook-id"] for h in receiver.hits("/down")} == {delivery_id}
    bodies = {h["body"] for h in receiver.hits("/down")}
    assert len(bodies) == 1  # the very same event, byte for byte


@pytest.mark.parametrize("location", ["http://169.254.169.254/latest/meta-data/", "/landed"])
def test_redirects_are_not_followed_and_count_as_failures(db, receiver, settings, location):
    secret = tenant_secret(db)
    if location.startswith("/"):
        location = receiver.route(location, secret)  # a target we can watch: never called
    url = receiver.route("/moved", secret, ("redirect", location))
    [delivery_id] = record(db, callback_url=url)

    assert attempt(db, delivery_id, settings, T0) == "pending"
    [a] = attempts(db, delivery_id)
    assert a.status_code == 302
    assert a.error == f"redirect not followed: HTTP 302 to {location}"
    assert [r["path"] for r in receiver.requests] == ["/moved"]


def test_slow_receiver_times_out(db, receiver, settings):
    settings = WebhookSettings(**{**settings.__dict__, "read_timeout": 0.5})
    url = receiver.route("/slow", tenant_secret(db), ("slow", 2.0))
    [delivery_id] = record(db, callback_url=url)

    started = time.monotonic()
    assert attempt(db, delivery_id, settings, T0) == "pending"
    assert time.monotonic() - started < 1.9
    [a] = attempts(db, delivery_id)
    assert a.status_code is None and a.error.startswith("timeout")
    assert 400 <= a.latency_ms < 1900
    assert load(db, delivery_id).last_error == a.error


def test_oversized_response_is_cut_and_the_status_code_decides(db, receiver, settings):
    secret = tenant_secret(db)
    ok_url = receiver.route("/huge", secret, "huge")
    bad_url = receiver.route("/huge500", secret, "huge_500")
    [ok_id] = record(db, callback_url=ok_url)
    [bad_id] = record(db, callback_url=bad_url)

    started = time.monotonic()
    assert attempt(db, ok_id, settings, T0) == "delivered"
    assert attempt(db, bad_id, settings, T0) == "pending"
    assert time.monotonic() - started < 5  # ~128 MiB were on offer; we read 1 KiB of each
    [ok] = attempts(db, ok_id)
    assert (ok.status_code, ok.error) == (200, None)
    [bad] = attempts(db, bad_id)
    assert bad.status_code == 500 and bad.error.endswith("(response cut at 1024 bytes)")

    # The guard's own report: what it read and that it stopped.
    target = ssrf.resolve(ok_url, settings.allow_hosts)
    body = b"{}"
    headers = signed_headers(secret, "msg_x", datetime.now(timezone.utc), body)
    result = ssrf.post(target, body, headers, connect_timeout=2, read_timeout=2, max_response_bytes=1000)
    assert result.status_code == 200 and result.truncated and len(result.body_excerpt) == 1000


def test_blocked_destination_counts_as_a_failed_attempt(db, receiver, settings):
    secret = tenant_secret(db)
    url = receiver.route("/hidden", secret)
    [delivery_id] = record(db, callback_url=url)
    locked = WebhookSettings(**{**settings.__dict__, "allow_hosts": ()})  # the default: guard on

    assert attempt(db, delivery_id, locked, T0) == "pending"
    [a] = attempts(db, delivery_id)
    assert a.status_code is None and a.error.startswith("blocked: ") and "loopback" in a.error
    assert receiver.requests == []  # nothing left the building
    # Fixed in the allow-list (or DNS) later: the next attempt goes out.
    assert attempt(db, delivery_id, settings, T0 + timedelta(seconds=5)) == "delivered"
    assert len(receiver.hits("/hidden")) == 1

    [meta_id] = record(db, callback_url="http://169.254.169.254/latest/meta-data/")
    now = T0
    for _ in range(settings.max_attempts):
        status = attempt(db, meta_id, settings, now)
        now += timedelta(hours=1)
    assert status == "dead"
    assert all(a.error.startswith("blocked: ") for a in attempts(db, meta_id))


def test_inactive_subscription_is_dead_without_sending(db, receiver, settings):
    sub = subscribe(db, receiver.url("/gone"), ["job.succeeded"])
    receiver.route("/gone", sub.secret)
    [delivery_id] = record(db)
    with db() as s:
        s.get(WebhookSubscription, sub.id).active = False
        s.commit()
    assert attempt(db, delivery_id, settings, T0) == "dead"
    assert receiver.requests == []
    assert "inactive" in load(db, delivery_id).last_error


def test_unusable_secret_is_recorded_not_raised(db, receiver, settings):
    with db() as s:
        s.add(Tenant(id="broken", webhook_secret="whsec_" + "-" * 41))  # not base64
        s.commit()
    url = receiver.route("/x", "whsec_" + "A" * 44)
    [delivery_id] = record(db, tenant_id="broken", callback_url=url)
    assert attempt(db, delivery_id, settings, T0) == "pending"
    assert attempts(db, delivery_id)[0].error.startswith("error: ")
    assert receiver.requests == []


# --- the claim -------------------------------------------------------------------------------------

def test_concurrent_attempts_send_once(db, receiver, settings):
    url = receiver.route("/once", tenant_secret(db), ("slow", 0.3))
    [delivery_id] = record(db, callback_url=url)
    barrier = threading.Barrier(4)
    results: list[str] = []

    def worker():
        barrier.wait()
        results.append(attempt(db, delivery_id, settings, T0))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["delivered", "skipped", "skipped", "skipped"]
    assert len(receiver.hits("/once")) == 1
    assert len(attempts(db, delivery_id)) == 1


def test_a_claim_holds_off_others_until_its_lease_runs_out(db, receiver, settings):
    url = receiver.route("/lease", tenant_secret(db))
    [delivery_id] = record(db, callback_url=url)
    with db() as s:
        assert claim(s, delivery_id, T0, settings.lease_seconds)  # a worker took it, then died
    with db() as s:
        assert not claim(s, delivery_id, T0, settings.lease_seconds)
    assert attempt(db, delivery_id, settings, T0 + timedelta(seconds=29)) == "skipped"
    assert due_deliveries(db(), T0 + timedelta(seconds=29)) == []
    assert receiver.requests == []
    later = T0 + timedelta(seconds=30)  # the lease ran out: the sweeper finds it again
    assert due_deliveries(db(), later) == [delivery_id]
    assert attempt(db, delivery_id, settings, later) == "delivered"
    assert len(receiver.hits("/lease")) == 1


def test_backoff_is_full_jitter_below_an_exponential_ceiling():
    import random

    settings = WebhookSettings(backoff_base=5, backoff_cap=3600)
    rng = random.Random(7)
    for failures, ceiling in ((1, 5), (2, 10), (3, 20), (8, 640), (10, 2560), (11, 3600), (40, 3600)):
        samples = [backoff_delay(failures, settings, rng) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in samples)
        assert max(samples) > ceiling * 0.8 and min(samples) < ceiling * 0.2  # spread, not fixed


# --- the Celery tasks ---------------------------------------------------------------------------------

def test_tasks_deliver_and_sweep_from_the_database(db, receiver, settings, tmp_path, monkeypatch):
    from worker import webhook_tasks

    monkeypatch.setenv("DOCKET_DATABASE_URL", f"sqlite:///{tmp_path}/t.db")
    monkeypatch.setenv("DOCKET_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    url = receiver.route("/task", tenant_secret(db))
    due = record(db, callback_url=url)
    later = record(db, callback_url=url, now=datetime.now(timezone.utc) + timedelta(hours=1))
    published: list[str] = []
    monkeypatch.setattr(webhook_tasks.deliver_webhook, "delay", published.append)

    assert webhook_tasks.sweep_webhooks() == 1
    assert published == due  # the future one is not due yet
    assert webhook_tasks.deliver_webhook(due[0]) == "delivered"
    assert webhook_tasks.deliver_webhook(due[0]) == "skipped"  # a duplicate message is harmless
    assert len(receiver.hits("/task")) == 1
    assert load(db, later[0]).status == "pending"
    published.clear()
    assert webhook_tasks.sweep_webhooks() == 0 and published == []
