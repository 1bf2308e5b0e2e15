"""Webhooks through the whole running service: a job's outcome and a reviewer's override reach a
real loopback receiver, signed with the tenant's secret, as soon as they commit."""
from __future__ import annotations

import subprocess

import pytest

from tests.conftest import DOCKET, ROOT, SAMPLES, Server
from tests.test_webhooks_delivery import Receiver
from tests.test_worker_faults import wait_for


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_job_and_review_events_are_delivered_signed(stack_env, receiver):
    env = dict(stack_env, DOCKET_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
               # The sweeper would only come by in 5 minutes: delivery must not wait for it.
               DOCKET_SWEEP_INTERVAL="300")
    server = Server(env)
    try:
        secret = subprocess.run([DOCKET, "webhooks", "secret", "--tenant", server.tenant], env=env, cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        url = receiver.route("/hook", secret)
        resp = server.http.post(f"{server.url}/v1/jobs", timeout=30, data={"rule": "expense_policy", "callback_url": url,
                                                                          "cache": "false"},
                                files={"file": ("r.png", (SAMPLES / "receipt-en.png").read_bytes())})
        assert resp.status_code == 202, resp.text
        job = server.wait_job(resp.json()["id"])
        first = wait_for(lambda: receiver.hits("/hook"), 60, "job.succeeded at the receiver")[0]
        assert first["verified"], first["headers"]
        assert first["payload"]["type"] == "job.succeeded" and first["payload"]["data"]["id"] == job["id"]
        assert first["payload"]["data"]["decision"] == job["decision"]

        review = server.http.post(f"{server.url}/v1/jobs/{job['id']}/reviews", timeout=10,
                                  json={"decision": "reject", "comment": "duplicate of an earlier claim"})
        assert review.status_code == 201, review.text
        hits = wait_for(lambda: len(receiver.hits("/hook")) >= 2 and receiver.hits("/hook"), 60,
                        "review.updated at the receiver")
        second = hits[1]
        assert second["verified"] and second["payload"]["type"] == "review.updated"
        assert second["payload"]["data"]["decision"] == "reject"
        assert second["payload"]["data"]["analyzer_decision"] == job["decision"]
        assert second["headers"]["webhook-id"] != first["headers"]["webhook-id"]

        listed = server.http.get(f"{server.url}/v1/jobs/{job['id']}/deliveries", timeout=5).json()["deliveries"]
        assert sorted(d["event_type"] for d in listed) == ["job.succeeded", "review.updated"]
        wait_for(lambda: all(d["status"] == "delivered" for d in server.http.get(
            f"{server.url}/v1/jobs/{job['id']}/deliveries", timeout=5).json()["deliveries"]), 60,
            "both deliveries marked delivered")
    finally:
        server.stop()
