"""Live results (issue 12): `Prefer: wait=N` and Server-Sent Events, through a real `docket serve`
on Postgres + Redis: the worker's commit nudges the waiting API over Redis pub/sub."""
from __future__ import annotations

import json
import queue
import threading
import time
import uuid

import pytest
import requests

from tests.conftest import SAMPLES, Server, base_env
from tests.sse import read_events


@pytest.fixture(scope="module")
def env(tmp_path_factory, postgres_url, redis_url) -> dict:
    env = base_env(tmp_path_factory.mktemp("live") / "data")
    env.update(DOCKET_DATABASE_URL=postgres_url, DOCKET_REDIS_URL=redis_url)
    return env


@pytest.fixture(scope="module")
def live_server(env):
    srv = Server(env)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory):
    """No worker, and a broker of its own (the embedded default: SQLite and Docket's own Redis),
    so no other server's worker takes its jobs either: they stay queued."""
    srv = Server(base_env(tmp_path_factory.mktemp("idle") / "data"), workers=0)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def quiet_redis(throwaway):
    """A Redis database of its own: no worker consumes what is queued there."""
    from tests import services

    url = services.claim_redis_db(services.redis_server(throwaway))
    yield url
    services.release_redis_db(url)


@pytest.fixture(scope="module")
def held_server(tmp_path_factory, postgres_url, quiet_redis):
    """Postgres + Redis and no worker: the test moves its jobs through their states itself. At
    most 2 long-lived requests at once (DOCKET_LIVE_LIMIT), to see the cap."""
    env = base_env(tmp_path_factory.mktemp("held") / "data")
    env.update(DOCKET_DATABASE_URL=postgres_url, DOCKET_REDIS_URL=quiet_redis, DOCKET_LIVE_LIMIT="2")
    srv = Server(env, workers=0)
    yield srv
    srv.stop()


def submit(srv: Server, headers: dict | None = None, name: str = "receipt-en.png", data: bytes | None = None):
    data = data if data is not None else (SAMPLES / name).read_bytes()
    return srv.http.post(f"{srv.url}/v1/jobs", files={"file": (name, data)},
                         data={"rule": "expense_policy", "cache": "false"}, headers=headers or {}, timeout=90)


def test_prefer_wait_answers_with_the_decision(live_server):
    started = time.monotonic()
    resp = submit(live_server, {"Prefer": "wait=60"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["Preference-Applied"] == "wait=60"
    assert resp.headers["Location"].endswith("/v1/jobs/" + resp.json()["id"])
    body = resp.json()
    assert body["status"] == "succeeded" and body["decision"] in {"approve", "needs_review", "reject"}
    assert body["reasons"] is not None and time.monotonic() - started < 60

    # GET on a finished job answers at once, and over the cap says what it applied.
    got = live_server.http.get(f"{live_server.url}/v1/jobs/{body['id']}", headers={"Prefer": "wait=600"}, timeout=10)
    assert got.status_code == 200 and got.headers["Preference-Applied"] == "wait=60"
    assert got.json()["decision"] == body["decision"]

    # GET while the job runs: held until the worker commits, then the decision.
    job = submit(live_server, name="receipt-zh.png").json()
    got = live_server.http.get(f"{live_server.url}/v1/jobs/{job['id']}", headers={"Prefer": "respond-async, wait=60"},
                               timeout=90)
    assert got.status_code == 200 and got.headers["Preference-Applied"] == "wait=60"
    assert got.json()["status"] in ("succeeded", "failed")


def test_prefer_wait_expires_with_the_current_status(idle_server):
    started = time.monotonic()
    resp = submit(idle_server, {"Prefer": "wait=1"})
    assert resp.status_code == 202 and "Preference-Applied" not in resp.headers
    assert resp.json()["status"] == "queued" and 1 <= time.monotonic() - started < 10
    started = time.monotonic()
    got = idle_server.http.get(idle_server.url + resp.headers["Location"], headers={"Prefer": "wait=2"}, timeout=10)
    assert got.status_code == 200 and "Preference-Applied" not in got.headers
    assert got.json()["status"] == "queued" and 2 <= time.monotonic() - started < 10


def test_job_events_stream_to_done_and_resume(live_server):
    job = submit(live_server).json()
    url = f"{live_server.url}/v1/jobs/{job['id']}/events"
    with live_server.http.get(url, stream=True, timeout=90) as resp:
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        events = list(read_events(resp))
    assert [e["event"] for e in events][-2:] == ["status", "done"]
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert statuses[-1] in ("succeeded", "failed") and statuses[0] in ("queued", "running", "succeeded", "failed")
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids[:-1])) == len(ids) - 1  # growing; `done` repeats the last
    final = events[-1]["data"]
    assert final["id"] == job["id"] and final["decision"] in {"approve", "needs_review", "reject"}

    # Reconnect after the first event: the current (newer) state, then done.
    with live_server.http.get(url, stream=True, timeout=30, headers={"Last-Event-ID": str(ids[0] - 1)}) as resp:
        again = list(read_events(resp))
    assert [e["event"] for e in again] == ["status", "done"] and again[0]["id"] == events[-1]["id"]
    # Reconnect having seen everything: only `done`, nothing repeated.
    with live_server.http.get(url, stream=True, timeout=30, headers={"Last-Event-ID": events[-1]["id"]}) as resp:
        assert [e["event"] for e in read_events(resp)] == ["done"]


def test_batch_events_carry_counts_until_done(live_server):
    resp = live_server.http.post(f"{live_server.url}/v1/batches", data={"rule": "expense_policy", "cache": "false"},
                                 files=[("files", ("a.png", (SAMPLES / "receipt-en.png").read_bytes())),
                                        ("files", ("b.png", (SAMPLES / "receipt-zh.png").read_bytes()))], timeout=30)
    assert resp.status_code == 202, resp.text
    batch = resp.json()
    with live_server.http.get(f"{live_server.url}/v1/batches/{batch['id']}/events", stream=True, timeout=120) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        events = list(read_events(r))
    assert events[-1]["event"] == "done" and events[-1]["data"]["done"] is True
    assert events[-1]["data"]["total"] == 2 and sum(events[-1]["data"]["counts"].values()) == 2
    ids = [int(e["id"]) for e in events[:-1]]
    assert ids == sorted(set(ids))


def test_queued_job_stream_starts_with_its_state(idle_server):
    job = submit(idle_server).json()
    with idle_server.http.get(f"{idle_server.url}/v1/jobs/{job['id']}/events", stream=True, timeout=10) as resp:
        lines = resp.iter_lines(decode_unicode=True)
        seen = []
        for line in lines:
            seen.append(line)
            if line.startswith("data:"):
                break
    assert "event: status" in seen and json.loads(seen[-1][5:])["status"] == "queued"


def test_another_tenants_job_is_not_found(live_server, idle_server):
    job = submit(idle_server).json()
    batch = idle_server.http.post(f"{idle_server.url}/v1/batches", data={"rule": "expense_policy"},
                                  files=[("files", ("a.png", (SAMPLES / "receipt-en.png").read_bytes()))],
                                  timeout=30).json()
    other = {"Authorization": "Bearer " + idle_server.create_key("admin", "other-" + uuid.uuid4().hex[:8])}
    for path in (f"/v1/jobs/{job['id']}/events", f"/v1/batches/{batch['id']}/events"):
        resp = requests.get(idle_server.url + path, headers=other, timeout=10)
        assert resp.status_code == 404 and resp.json()["code"] == "not_found"
    started = time.monotonic()
    resp = requests.get(f"{idle_server.url}/v1/jobs/{job['id']}", headers={**other, "Prefer": "wait=5"}, timeout=10)
    assert resp.status_code == 404 and time.monotonic() - started < 3


def test_a_published_change_wakes_the_waiter_at_once(redis_url, monkeypatch):
    """The nudge, not the slow re-check, ends the wait; and a change committed before the
    subscription is seen by the first read."""
    import threading

    from docket import live

    monkeypatch.setattr(live, "RECHECK_S", 30.0)
    job_id, state = uuid.uuid4().hex, {"done": False}
    result = {}

    def waiter():
        started = time.monotonic()
        result["finished"] = live.wait_until_finished(redis_url, job_id, 20, lambda: state["done"])
        result["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.5)
    state["done"] = True  # "committed", then published
    live.job_changed(job_id, "succeeded", redis_url)
    thread.join(10)
    assert result["finished"] is True and result["seconds"] < 2
    assert live.wait_until_finished(redis_url, job_id, 20, lambda: True) is True  # already done: no wait


def test_prefer_and_sequence_rules():
    from docket import live

    assert live.wait_seconds("wait=5") == 5 and live.wait_seconds("respond-async, wait=600") == 60
    assert live.wait_seconds('wait="7"') == 7 and live.wait_seconds("return=minimal") is None
    assert live.wait_seconds(None) is None and live.last_event_id("x") == -1
    path = [("queued", 0), ("running", 1), ("queued", 1), ("running", 2), ("succeeded", 2)]
    seqs = [live.sequence(s, a) for s, a in path]
    assert seqs == sorted(set(seqs)) and live.sequence("failed", 0) > live.sequence("queued", 0)


@pytest.mark.parametrize("path", [
    # submitted, claimed, read, checked, decided (or failed by the analysis)
    [("queued", 0, None), ("running", 1, None), ("running", 1, "reading"), ("running", 1, "checking"),
     ("succeeded", 1, None)],
    [("queued", 0, None), ("running", 1, None), ("running", 1, "reading"), ("running", 1, "checking"),
     ("failed", 1, None)],
    # a transient error: released, queued again, a second attempt through every stage
    [("queued", 0, None), ("running", 1, None), ("running", 1, "reading"), ("queued", 1, None),
     ("running", 2, None), ("running", 2, "reading"), ("running", 2, "checking"), ("succeeded", 2, None)],
    # reclaimed from a dead worker mid-check, then claimed again; or claimed again while still running
    [("running", 1, "checking"), ("queued", 1, None), ("running", 2, None), ("failed", 2, None)],
    [("running", 1, "checking"), ("running", 2, None), ("running", 2, "reading")],
    # a cached decision reused at submission; failed by the sweeper while queued (also after a release)
    [("queued", 0, None), ("succeeded", 0, None)],
    [("queued", 0, None), ("failed", 0, None)],
    [("running", 1, "checking"), ("queued", 1, None), ("failed", 1, None)],
])
def test_sequence_grows_on_every_path(path):
    from docket import live

    seqs = [live.sequence(status, attempts, stage) for status, attempts, stage in path]
    assert seqs == sorted(set(seqs)), seqs


def test_stages_belong_to_their_attempt(redis_url):
    from docket import live

    job_id = uuid.uuid4().hex
    sub = live.Subscription(redis_url, [job_id])
    try:
        sub.wait(0.5)  # reads the subscription's confirmation
        live.stage_changed(job_id, "reading", 1, redis_url)
        assert any(sub.wait(0.5) for _ in range(4))  # nudged like a status change
    finally:
        sub.close()
    assert live.stages(redis_url, [(job_id, 1)]) == {job_id: "reading"}
    assert live.stages(redis_url, [(job_id, 2)]) == {}  # a leftover of an earlier attempt
    assert live.stages(None, [(job_id, 1)]) == {} and live.stages(redis_url, []) == {}
    live.stage_changed(job_id, "checking", 1, redis_url)
    assert live.stages(redis_url, [(job_id, 1), (uuid.uuid4().hex, 1)]) == {job_id: "checking"}
    live.stage_changed(job_id, "reading", 1, None)  # no Redis configured: nothing, no error
    with pytest.raises(ValueError):
        live.stage_changed(job_id, "thinking", 1, redis_url)


class EventReader:
    """Reads a stream on a thread, so the test can act between events."""

    def __init__(self, srv: Server, path: str):
        self.resp = srv.http.get(srv.url + path, stream=True, timeout=60)
        assert self.resp.status_code == 200, self.resp.text
        self.events: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for event in read_events(self.resp):
                self.events.put(event)
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed by the test while reading (urllib3 then reads from a closed socket)
        finally:
            self.events.put(None)

    def next(self, timeout: float = 10) -> dict:
        event = self.events.get(timeout=timeout)
        assert event is not None, "the stream ended"
        return event

    def close(self):
        self.resp.close()


def test_stage_events_between_running_and_the_decision(held_server, postgres_url, quiet_redis, monkeypatch):
    from db.session import session_scope
    from docket import lifecycle, live

    monkeypatch.setenv("DOCKET_REDIS_URL", quiet_redis)  # lifecycle's nudges, as in a worker
    job = submit(held_server).json()
    live.stage_changed(job["id"], "checking", 0, quiet_redis)  # no attempt 0 ever runs: ignored
    with session_scope(postgres_url) as session:
        attempt = lifecycle.claim(session, job["id"], 600, "test-worker")
    reader = EventReader(held_server, f"/v1/jobs/{job['id']}/events")
    try:
        seen = [reader.next()]
        for stage in ("reading", "checking"):
            live.stage_changed(job["id"], stage, attempt, quiet_redis)
            seen.append(reader.next())
        with session_scope(postgres_url) as session:
            lifecycle.fail(session, job["id"], "test", "stopped by the test", attempt)
        seen += [reader.next(), reader.next()]
    finally:
        reader.close()
    assert [(e["event"], e["data"]["status"], e["data"]["stage"]) for e in seen] == [
        ("status", "running", None), ("status", "running", "reading"), ("status", "running", "checking"),
        ("status", "failed", None), ("done", "failed", None)]
    ids = [int(e["id"]) for e in seen[:-1]]
    assert ids == sorted(set(ids)) and seen[-1]["id"] == seen[-2]["id"]
    assert seen[1]["data"]["id"] == job["id"] and "decisions" in seen[1]["data"]  # the job JSON, plus stage
    # Reconnecting after `reading`: the newer state at once.
    with held_server.http.get(f"{held_server.url}/v1/jobs/{job['id']}/events", stream=True, timeout=10,
                              headers={"Last-Event-ID": seen[1]["id"]}) as resp:
        assert [e["event"] for e in read_events(resp)] == ["status", "done"]
    # GET /v1/jobs/{id} is unchanged: no stage outside events.
    assert "stage" not in held_server.http.get(f"{held_server.url}/v1/jobs/{job['id']}", timeout=10).json()


def test_batch_events_show_each_running_jobs_stage(held_server, postgres_url, quiet_redis, monkeypatch):
    from db.session import session_scope
    from docket import lifecycle, live

    monkeypatch.setenv("DOCKET_REDIS_URL", quiet_redis)
    resp = held_server.http.post(f"{held_server.url}/v1/batches", data={"rule": "expense_policy", "cache": "false"},
                                 files=[("files", ("a.png", (SAMPLES / "receipt-en.png").read_bytes())),
                                        ("files", ("b.png", (SAMPLES / "receipt-zh.png").read_bytes()))], timeout=30)
    first, second = resp.json()["job_ids"]
    with session_scope(postgres_url) as session:
        attempt = lifecycle.claim(session, first, 600, "test-worker")
    live.stage_changed(first, "reading", attempt, quiet_redis)
    reader = EventReader(held_server, f"/v1/batches/{resp.json()['id']}/events")
    try:
        start = reader.next()
        live.stage_changed(first, "checking", attempt, quiet_redis)
        checking = reader.next()
        with session_scope(postgres_url) as session:
            lifecycle.fail(session, first, "test", "stopped by the test", attempt)
            lifecycle.fail(session, second, "test", "stopped by the test")
        while (last := reader.next())["event"] != "done":
            pass
    finally:
        reader.close()
    stages = lambda event: {j["id"]: (j["status"], j["stage"]) for j in event["data"]["jobs"]}  # noqa: E731
    assert stages(start) == {first: ("running", "reading"), second: ("queued", None)}
    assert stages(checking)[first] == ("running", "checking") and int(checking["id"]) > int(start["id"])
    assert stages(last) == {first: ("failed", None), second: ("failed", None)}


def test_long_lived_requests_are_capped_and_hold_no_connection(held_server, postgres_url, quiet_redis,
                                                               monkeypatch):
    """DOCKET_LIVE_LIMIT=2: a third stream is refused (503, Retry-After), a wait beyond the cap is
    answered at once; the open streams hold no database transaction while they wait."""
    from sqlalchemy import create_engine, text

    from db.session import session_scope
    from docket import lifecycle

    monkeypatch.setenv("DOCKET_REDIS_URL", quiet_redis)
    job = submit(held_server).json()
    path = f"/v1/jobs/{job['id']}/events"
    readers = [EventReader(held_server, path) for _ in range(2)]
    try:
        assert all(r.next()["data"]["status"] == "queued" for r in readers)
        refused = held_server.http.get(held_server.url + path, timeout=10)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        assert refused.json()["code"] == "too_many_streams"
        started = time.monotonic()
        got = held_server.http.get(f"{held_server.url}/v1/jobs/{job['id']}", headers={"Prefer": "wait=10"},
                                   timeout=15)
        assert got.status_code == 200 and "Preference-Applied" not in got.headers
        assert time.monotonic() - started < 3

        engine = create_engine(postgres_url)
        query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND state = 'idle in transaction'")
        with engine.connect() as conn:  # other tests' sweepers may be mid-transaction: one clean look suffices
            samples = [conn.execute(query).scalar() for _ in range(20) if not time.sleep(0.05)]
        engine.dispose()
        assert min(samples) == 0, samples

        with session_scope(postgres_url) as session:
            lifecycle.fail(session, job["id"], "test", "stopped by the test")
        assert all(r.next()["event"] == "status" and r.next()["event"] == "done" for r in readers)
    finally:
        for r in readers:
            r.close()
    # The ended streams gave their places back.
    deadline = time.monotonic() + 5
    while (resp := held_server.http.get(held_server.url + path, timeout=10)).status_code == 503:
        assert time.monotonic() < deadline, "the places of ended streams were not given back"
        time.sleep(0.1)
    assert resp.status_code == 200


def test_stream_sends_keep_alives_and_new_states_only():
    from docket import live

    states = iter([live.Snapshot(1, False, {"n": 1}), live.Snapshot(1, False, {"n": 1}),
                   live.Snapshot(4, True, {"n": 4})])
    chunks = list(live.stream(None, [], lambda: next(states), last_id=-1, keepalive=0.2))
    assert chunks[0].startswith("retry:")
    assert chunks[1].startswith("id: 1\nevent: status\n")
    assert chunks[2] == chunks[3] == ": keep-alive\n\n"  # nothing new: only keep-alives, no repeat of id 1
    assert chunks[4].startswith("id: 4\nevent: status\n") and chunks[5].startswith("id: 4\nevent: done\n")
    assert len(chunks) == 6


def test_openapi_documents_the_live_interfaces(live_server):
    doc = live_server.http.get(f"{live_server.url}/v1/openapi.json", timeout=10).json()
    assert {"/v1/jobs/{job_id}/events", "/v1/batches/{batch_id}/events"} <= set(doc["paths"])
    assert "text/event-stream" in doc["paths"]["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    prefer = {"$ref": "#/components/parameters/PreferWait"}
    assert prefer in doc["paths"]["/v1/jobs"]["post"]["parameters"]
    assert prefer in doc["paths"]["/v1/jobs/{job_id}"]["get"]["parameters"]


def test_more_subscriptions_than_redis_default_pool(redis_url):
    """Each stream holds a Redis connection: 150 at once in one process must all be live
    subscriptions (redis-py's default pool stops at 100; the rest would poll every 5 s)."""
    from docket import live

    ids = [uuid.uuid4().hex for _ in range(150)]
    subs = [live.Subscription(redis_url, [job_id]) for job_id in ids]
    try:
        assert all(sub.pubsub is not None for sub in subs)
        subs[-1].wait(0.5)  # the subscription's confirmation
        live.job_changed(ids[-1], "running", redis_url)
        assert any(subs[-1].wait(0.5) for _ in range(4))
    finally:
        for sub in subs:
            sub.close()


def test_docket_serve_keeps_threads_for_ordinary_requests(monkeypatch):
    """`docket serve` (waitress: a fixed pool of threads) lets long-lived requests hold all but an
    eighth of its threads, unless DOCKET_LIVE_LIMIT says otherwise."""
    import os

    from docket.live import server_threads

    monkeypatch.delenv("DOCKET_API_THREADS", raising=False)
    monkeypatch.delenv("DOCKET_LIVE_LIMIT", raising=False)
    assert server_threads() == 288 and os.environ["DOCKET_LIVE_LIMIT"] == "252"
    monkeypatch.setenv("DOCKET_API_THREADS", "16")
    monkeypatch.delenv("DOCKET_LIVE_LIMIT")
    assert server_threads() == 16 and os.environ["DOCKET_LIVE_LIMIT"] == "14"
    monkeypatch.setenv("DOCKET_LIVE_LIMIT", "5")  # an explicit setting wins
    assert server_threads() == 16 and os.environ["DOCKET_LIVE_LIMIT"] == "5"
