"""The fault drills of bench/faults.py in their fast profile (issue 13): throwaway Postgres and
Redis, gunicorn and `docket worker --beat` as processes, real faults — a SIGKILLed worker tree,
Redis restarted empty, Postgres restarted and stopped, a webhook receiver answering 500 — while
clients submit. Every drill: nothing lost, nothing twice, drained within seconds of the fault's
end, and no 500 anywhere."""
from __future__ import annotations

import pytest

from bench import faults


@pytest.fixture(scope="module")
def infra():
    servers = faults.Infra()
    yield servers
    servers.close()


@pytest.mark.parametrize("drill", faults.DRILLS)
def test_drill(drill, infra, tmp_path):
    result = faults.run_drill(drill, infra, faults.FAST, tmp_path)
    report = f"{drill}: {result} (process logs under {tmp_path / drill})"
    assert result.lost == 0 and result.stuck == 0 and result.failed == 0, report
    assert result.duplicated == 0, report
    assert result.succeeded == result.jobs, report
    # Sweeps every 1 s and a 2 s heartbeat TTL here: recovery takes seconds, not minutes.
    assert result.drain < 20, report
    assert not [code for code in result.codes if code == 500 or code == "ConnectionError"], report
    assert all(code in (200, 503) for code in result.health), report
    if drill in ("pg-stop",):
        assert 503 in result.health and set(result.codes) <= {202, 503}, report
    if drill == "redis-restart":
        assert result.slowest_submit < 1.5, report  # the broker's absence is remembered, not waited for
    if drill == "worker-kill":
        assert result.retried >= 1, report  # a job the dead worker held was taken back and ran again
    if drill in ("none", "pg-restart", "pg-stop", "redis-restart", "webhook-outage"):
        # Nothing reclaimed where no worker died: the long job in `none` outlived the TTL 3 times
        # over, and jobs mid-analysis waited for the database instead of being run again.
        assert result.retried == 0, report
