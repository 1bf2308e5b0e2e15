"""Live results (issue 12): `Prefer: wait=N` and Server-Sent Events, through a real `docket serve`
on Postgres + Redis: the worker's commit nudges the waiting API over Redis pub/sub."""
from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from tests.conftest import SAMPLES, Server, base_env


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


def submit(srv: Server, headers: dict | None = None, name: str = "receipt-en.png", data: bytes | None = None):
    data = data if data is not None else (SAMPLES / name).read_bytes()
    return srv.http.post(f"{srv.url}/v1/jobs", files={"file": (name, data)},
                         data={"rule": "expense_policy", "cache": "false"}, headers=headers or {}, timeout=90)


def read_events(resp: requests.Response) -> list[dict]:
    """Parse a text/event-stream body into events ({"id", "event", "data"}); comments skipped."""
    events, current = [], {}
    for line in resp.iter_lines(decode_unicode=True):
        if line == "":
            if "event" in current:
                events.append(current)
            current = {}
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            current[field] = json.loads(value) if field == "data" else value
    return events


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
        events = read_events(resp)
    assert [e["event"] for e in events][-2:] == ["status", "done"]
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert statuses[-1] in ("succeeded", "failed") and statuses[0] in ("queued", "running", "succeeded", "failed")
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids[:-1])) == len(ids) - 1  # growing; `done` repeats the last
    final = events[-1]["data"]
    assert final["id"] == job["id"] and final["decision"] in {"approve", "needs_review", "reject"}

    # Reconnect after the first event: the current (newer) state, then done.
    with live_server.http.get(url, stream=True, timeout=30, headers={"Last-Event-ID": str(ids[0] - 1)}) as resp:
        again = read_events(resp)
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
        events = read_events(r)
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
