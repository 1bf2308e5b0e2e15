"""The leaner pipeline (issue 11): fewer transactions per job, bulk batch inserts, held producers —
and still "job row committed, then message published", and still one decision per job."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from db.migrate import upgrade
from db.models import Decision, Document, Job, Tenant, utcnow
from db.session import get_engine, session_factory, session_scope
from docket import broker, lifecycle, submission
from docket.config import Settings
from docket.rules import default_rules_dir, load_rules
from tests.test_recovery import Api, env_for, png, row


@pytest.fixture
def sqlite_session(tmp_path):
    url = f"sqlite:///{tmp_path / 'lean.db'}"
    upgrade(url)
    with session_factory(url)() as session:
        session.add(Tenant(id="acme", webhook_secret="whsec_x"))
        session.commit()
        yield session


def _document(session, n: int) -> Document:
    document = Document(sha256=f"{n:064x}", mime_type="image/png", size=1, page_count=1, storage_path=f"x/{n}")
    session.add(document)
    session.flush()
    return document


def test_the_claim_reads_the_job_and_its_document_and_lets_one_attempt_through(sqlite_session):
    rule = load_rules(default_rules_dir())["contract_review"]
    job = submission.new_job(sqlite_session, _document(sqlite_session, 1), rule, "a.png", tenant_id="acme")
    sqlite_session.commit()
    claimed = lifecycle.claim_with_document(sqlite_session, job.id, 360, "host:1:aa")
    assert claimed is not None
    held, document = claimed
    assert (held.id, held.status, held.attempts, held.worker) == (job.id, "running", 1, "host:1:aa")
    assert document.sha256 == job.document_sha256 and document.storage_path == "x/1"
    # A redelivered message finds the job held: no second attempt.
    assert lifecycle.claim_with_document(sqlite_session, job.id, 360, "host:2:bb") is None


def test_the_finished_row_comes_back_and_a_second_decision_is_refused(sqlite_session):
    rule = load_rules(default_rules_dir())["contract_review"]
    job = submission.new_job(sqlite_session, _document(sqlite_session, 2), rule, "b.png", tenant_id="acme")
    sqlite_session.commit()
    held, _ = lifecycle.claim_with_document(sqlite_session, job.id, 360, "host:1:aa")

    def decision():
        return Decision(job_id=job.id, decision="approve", fields={}, reasons=[], confidence={}, evidence={}, rule_name=rule.name,
                        rule_version=rule.version, analyzer="ocr", model="m", timings={})

    assert lifecycle.succeed(sqlite_session, job.id, held.attempts, decision())
    assert not lifecycle.succeed(sqlite_session, job.id, held.attempts, decision())  # a redelivery
    assert not lifecycle.fail(sqlite_session, job.id, "analysis_error", "late", held.attempts)
    assert len(sqlite_session.scalars(select(Decision).where(Decision.job_id == job.id)).all()) == 1
    sqlite_session.expire_all()
    assert sqlite_session.get(Job, job.id).status == "succeeded"


def test_new_jobs_keep_their_order_and_insert_with_one_statement(sqlite_session):
    rule = load_rules(default_rules_dir())["contract_review"]
    documents = [(f"f{n}.png", _document(sqlite_session, 100 + n)) for n in range(20)]
    inserts = []
    engine = sqlite_session.get_bind()

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO JOBS"):
            inserts.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        jobs = submission.new_jobs(sqlite_session, documents, rule, tenant_id="acme")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    sqlite_session.commit()
    assert len(inserts) == 1
    assert [j.filename for j in jobs] == [name for name, _ in documents]
    assert [j.created_at for j in jobs] == sorted(j.created_at for j in jobs)


def test_cached_decisions_finds_each_documents_newest_decision_at_once(sqlite_session):
    rule = load_rules(default_rules_dir())["contract_review"]
    documents = [_document(sqlite_session, 200 + n) for n in range(3)]
    older, newer = (submission.new_job(sqlite_session, documents[0], rule, "x.pdf", tenant_id="acme")
                    for _ in range(2))
    for job, verdict, age in ((older, "reject", 60), (newer, "approve", 1)):
        job.status = "succeeded"
        sqlite_session.add(Decision(job_id=job.id, tenant_id="acme", decision=verdict, fields={}, reasons=[], confidence={}, evidence={},
                                    rule_name=rule.name, rule_version=rule.version, analyzer="ocr", model="m",
                                    timings={}, created_at=utcnow() - timedelta(seconds=age)))
    sqlite_session.commit()
    found = submission.cached_decisions(sqlite_session, "acme", [d.sha256 for d in documents], rule, "ocr")
    assert set(found) == {documents[0].sha256}
    assert found[documents[0].sha256].decision == "approve"
    assert submission.cached_decisions(sqlite_session, "other", [documents[0].sha256], rule, "ocr") == {}
    history = load_rules(default_rules_dir())["expense_policy"]  # reads earlier jobs: never cached
    assert submission.cached_decisions(sqlite_session, "acme", [documents[0].sha256], history, "ocr") == {}


def test_a_batch_is_committed_before_any_of_its_messages_goes_out(tmp_path, postgres_url, redis_url, monkeypatch):
    env_for(tmp_path, postgres_url, redis_url, monkeypatch)
    settings = Settings.from_env()
    upgrade(settings.database_url)
    api = Api(settings)
    celery = api.client.application.extensions["docket"]["celery"]
    seen = []
    send_task = celery.send_task

    def checked_send(name, args=None, **options):
        # Another connection must already see the job: committed, not merely flushed.
        with session_scope(settings.database_url) as other:
            seen.append(other.get(Job, args[0]) is not None)
        return send_task(name, args=args, **options)

    monkeypatch.setattr(celery, "send_task", checked_send)
    files = [("files", (io.BytesIO(png(7100 + n)), f"p{n}.png")) for n in range(6)]
    resp = api.client.post("/v1/batches", data={"files": [f for _, f in files], "rule": "expense_policy",
                                                "analyzer": "bench-instant"},
                           content_type="multipart/form-data", headers=api.headers)
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert len(body["job_ids"]) == 6 and seen == [True] * 6
    jobs = [row(settings, job_id) for job_id in body["job_ids"]]
    assert all(j.status == "queued" and j.enqueued_at is not None for j in jobs)
    assert [j.filename for j in jobs] == [f"p{n}.png" for n in range(6)]


def test_a_batch_while_the_broker_is_down_is_recorded_for_the_sweeper(tmp_path, postgres_url, monkeypatch):
    from tests import services

    dead = f"redis://127.0.0.1:{services.free_port()}/0"  # nothing listens there
    env_for(tmp_path, postgres_url, dead, monkeypatch, DOCKET_BROKER_CONNECT_TIMEOUT="1")
    settings = Settings.from_env()
    upgrade(settings.database_url)
    api = Api(settings)
    resp = api.client.post("/v1/batches", data={"files": [(io.BytesIO(png(7200 + n)), f"q{n}.png") for n in range(3)],
                                                "rule": "expense_policy", "analyzer": "bench-instant"},
                           content_type="multipart/form-data", headers=api.headers)
    assert resp.status_code == 202, resp.get_json()
    for job_id in resp.get_json()["job_ids"]:
        job = row(settings, job_id)
        assert job.status == "queued" and job.enqueued_at is None  # the sweeper publishes it


class _Producer:
    def __init__(self, connection):
        self.connection = connection


class _Connection:
    def __init__(self):
        self.released = False

    def release(self):
        self.released = True


class _Celery:
    """Enough of a Celery app for broker.try_send: counts producers, fails the sends it is told to."""

    def __init__(self, url: str):
        self.conf = type("Conf", (), {"broker_url": url})()
        self.amqp = type("Amqp", (), {"Producer": _Producer})()
        self.connections: list[_Connection] = []
        self.failures = 0
        self.sent = []

    def connection_for_write(self):
        self.connections.append(_Connection())
        return self.connections[-1]

    def send_task(self, name, args=None, queue=None, retry=None, producer=None):
        if self.failures:
            self.failures -= 1
            raise OSError("broker gone")
        self.sent.append((name, args, producer))


def test_a_held_producer_is_reused_and_one_that_failed_is_closed():
    celery = _Celery("redis://held-producers-test/0")
    assert all(broker.try_send(celery, "t", [n], "cpu", 60) for n in range(5))
    assert len(celery.connections) == 1  # one producer for every message
    assert len({id(p) for _, _, p in celery.sent}) == 1
    celery.failures = 1
    assert not broker.try_send(celery, "t", ["x"], "cpu", 60)
    assert celery.connections[0].released  # the failed one is closed, not put back
    assert not broker.try_send(celery, "t", ["y"], "cpu", 60)  # the broker is remembered down: not tried
    assert len(celery.sent) == 5
    broker.gate(celery.conf.broker_url).succeeded()
    assert broker.try_send(celery, "t", ["z"], "cpu", 60)
    assert len(celery.connections) == 2  # a fresh producer after the failure


def test_docket_publishes_and_acknowledges_on_one_redis_client_per_channel(redis_url, monkeypatch):
    """kombu builds a redis.Redis per publish and per ack; Docket's transport keeps one per
    channel (docket/broker_transport.py). Messages still go out, arrive and are acknowledged."""
    import redis as redis_py

    from docket.broker_transport import Transport
    from docket.queues import create_celery

    made = []
    real_init = redis_py.Redis.__init__

    def counted(self, *args, **kwargs):
        made.append(self)
        real_init(self, *args, **kwargs)

    celery = create_celery(Settings.from_env(), redis_url)
    queue = "lean-transport-test"
    with celery.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        monkeypatch.setattr(redis_py.Redis, "__init__", counted)
        with connection.Producer() as producer:
            for n in range(20):
                celery.send_task("docket.test.noop", args=[n], queue=queue, producer=producer)
        assert len(made) <= 3, len(made)  # a client per channel, where kombu made one per message
        received = []
        with connection.SimpleQueue(queue) as messages:
            for _ in range(20):
                message = messages.get(timeout=5)
                received.append(message.payload[0][0])
                message.ack()
        assert sorted(received) == list(range(20))
        assert len(made) <= 4, len(made)  # and one per ack
    monkeypatch.undo()


def test_the_worker_decides_once_with_the_claim_reading_the_job(tmp_path, postgres_url, redis_url, monkeypatch):
    """In process: analyze_job on the claim's rows; a redelivered message is skipped."""
    env_for(tmp_path, postgres_url, redis_url, monkeypatch)
    settings = Settings.from_env()
    upgrade(settings.database_url)
    api = Api(settings)
    resp = api.submit(7300, analyzer="bench-instant")
    assert resp.status_code == 202, resp.get_json()
    job_id = resp.get_json()["id"]
    from worker import tasks

    monkeypatch.setattr(tasks, "settings", settings)
    statements = []
    engine = get_engine(settings.database_url)

    def count(conn, cursor, statement, *args):
        statements.append(statement.split(None, 1)[0].upper())

    import psycopg._connection_base as psycopg_connection

    commands = []  # what psycopg sends besides statements: BEGIN and COMMIT, each a round trip
    send_command = psycopg_connection.BaseConnection._exec_command

    def traced(self, command, *args, **kwargs):
        commands.append(bytes(command).split(None, 1)[0].decode() if isinstance(command, bytes) else "?")
        return send_command(self, command, *args, **kwargs)

    monkeypatch.setattr(psycopg_connection.BaseConnection, "_exec_command", traced)
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert tasks.analyze_job(job_id) == "succeeded"
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # The claim is one statement and commits by itself: one transaction per job, the check's.
    assert commands == ["BEGIN", "COMMIT"], commands
    # On Postgres: the claim (an UPDATE in a WITH that also reads the document), then one transaction
    # with the near-duplicate hash (kept on the document and its jobs in one WITH) and lookup, the
    # finish with its decision (an UPDATE and an INSERT in one WITH) and the webhook subscriptions.
    assert statements == ["WITH", "WITH", "SELECT", "WITH", "SELECT"], statements
    assert tasks.analyze_job(job_id) == "skipped"  # redelivered
    done = row(settings, job_id)
    assert done.status == "succeeded" and done.attempts == 1
    with session_scope(settings.database_url) as session:
        assert len(session.scalars(select(Decision).where(Decision.job_id == job_id)).all()) == 1
        phash = session.get(Document, done.document_sha256).phash
    assert phash is not None and done.phash == phash  # the job's copy, for the near-duplicate scan
    again = api.submit(7300, analyzer="bench-instant")  # the same bytes: the new job carries the hash at once
    assert row(settings, again.get_json()["id"]).phash == done.phash


@pytest.fixture
def database_url(either_database):
    """A migrated database with tenant acme, on both: the claim and finish differ by dialect."""
    with session_scope(either_database) as session:
        session.add(Tenant(id="acme", webhook_secret="whsec_x"))
    return either_database


def test_claimed_and_finished_rows_come_back_as_if_loaded(database_url):
    """The claim's and the finish's Core statements hand back ORM rows as a query would: in the
    session, nothing pending, unloaded relationships loading on use, and equal to what is stored."""
    from db import jobs as stored

    rule = load_rules(default_rules_dir())["contract_review"]
    with session_scope(database_url) as session:
        job_id = submission.new_job(session, _document(session, 3), rule, "c.png", tenant_id="acme").id
    with session_scope(database_url) as session:
        job, document = stored.claim_with_document(session, job_id, 360, "host:1:aa")
        assert job in session and document in session and not session.new and not session.dirty
        assert (job.status, job.attempts, job.worker, document.storage_path) == ("running", 1, "host:1:aa", "x/3")
        assert job.document is document and job.decision is None  # relationships load on use
        session.commit()
    with session_scope(database_url) as session:
        decision = Decision(job_id=job_id, decision="reject", fields={"total": "9.50"}, reasons=[{"rule": "r"}],
                            confidence={}, evidence={}, rule_name=rule.name, rule_version=rule.version,
                            analyzer="ocr", model="m", timings={"rules_s": 0.001})
        finished = stored.succeeded_row(session, job_id, 1, decision)
        assert finished in session and decision in session and not session.new and not session.dirty
        assert finished.status == "succeeded" and finished.finished_at is not None
        assert decision.id is not None and decision.origin == "analysis:0" and decision.tenant_id == "acme"
        session.commit()
    with session_scope(database_url) as session:
        stored_job = session.get(Job, job_id)
        assert (stored_job.status, stored_job.current_decision) == ("succeeded", "reject")
        assert stored_job.decision.id == decision.id and stored_job.decision.fields == {"total": "9.50"}
    with session_scope(database_url) as session:  # another attempt's finish writes nothing
        assert stored.succeeded_row(session, job_id, 2, Decision(job_id=job_id, decision="approve", fields={},
                                    reasons=[], confidence={}, evidence={}, rule_name=rule.name,
                                    rule_version=rule.version, analyzer="ocr", timings={})) is None
        assert not session.new
