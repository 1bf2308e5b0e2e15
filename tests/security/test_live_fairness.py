"""One key cannot take every long-lived place (event streams, `Prefer: wait`) of an API process:
a script opening streams in a loop used to leave every other tenant's live pages and waits with
503 too_many_streams. Each key may hold a quarter of the process's places (DOCKET_LIVE_PER_KEY)."""
from __future__ import annotations

import time

import pytest
import requests

from docket import live
from tests.conftest import Server, base_env
from tests.test_security import PNG


def test_one_owner_holds_at_most_its_share(monkeypatch):
    monkeypatch.setenv("DOCKET_LIVE_LIMIT", "8")
    monkeypatch.delenv("DOCKET_LIVE_PER_KEY", raising=False)
    assert live.live_limit_per_owner() == 2
    mine = [live.hold("key:a"), live.hold("key:a")]
    assert all(mine) and live.hold("key:a") is None  # its share is taken
    theirs = live.hold("key:b")
    assert theirs is not None  # another key still gets a place
    mine[0]()
    mine[0]()  # releasing twice gives back one place, not two
    again = live.hold("key:a")
    assert again is not None and live.hold("key:a") is None
    for release in (mine[1], theirs, again):
        release()


@pytest.mark.timeout(120)
def test_a_key_opening_streams_in_a_loop_leaves_room_for_others(tmp_path):
    env = base_env(tmp_path / "data")
    env.update(DOCKET_LIVE_LIMIT="8", DOCKET_LIVE_PER_KEY="2")
    srv = Server(env)
    opened = []
    try:
        greedy = {"Authorization": f"Bearer {srv.create_key('submitter', 'live-a')}"}
        other = {"Authorization": f"Bearer {srv.create_key('reviewer', 'live-b')}"}
        files = {"file": ("r.png", PNG)}
        mine = requests.post(f"{srv.url}/v1/jobs", headers=greedy, files=files, data={"rule": "expense_policy"},
                             timeout=10).json()["id"]
        theirs = requests.post(f"{srv.url}/v1/jobs", files=files, data={"rule": "expense_policy"}, timeout=10,
                               headers={"Authorization": f"Bearer {srv.create_key('submitter', 'live-b')}"}).json()["id"]

        def stream(job_id, headers):
            response = requests.get(f"{srv.url}/v1/jobs/{job_id}/events", headers=headers, stream=True, timeout=10)
            opened.append(response)
            return response

        assert [stream(mine, greedy).status_code for _ in range(2)] == [200, 200]
        refused = stream(mine, greedy)
        assert refused.status_code == 503 and refused.json()["code"] == "too_many_streams"
        assert refused.headers["Retry-After"]
        # Every spelling of the same key is the same owner.
        respelled = stream(mine, {"Authorization": "BEARER  " + greedy["Authorization"].split()[1]})
        assert respelled.status_code == 503
        assert stream(theirs, other).status_code == 200  # another tenant still gets a place
        for response in opened[:2]:
            response.close()
        deadline = time.monotonic() + 25  # the server notices a closed stream at its next write (keep-alive: 15 s)
        while stream(mine, greedy).status_code != 200:
            assert time.monotonic() < deadline, "places were not given back"
            time.sleep(0.5)
    finally:
        for response in opened:
            response.close()
        srv.stop()
