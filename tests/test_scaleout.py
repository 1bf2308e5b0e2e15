"""Scale out (issue 27): bench/scaleout.py's fast profile, once for the module — Debian's nginx
(scripts/nginx.sh) with deploy/nginx/docket.conf in front of 3 `docket serve --workers 0`
replicas, a cpu worker with beat and a second beat, on Postgres and Redis. Without nginx the
module fails (the fixture raises, naming scripts/nginx.sh); it never skips."""
from __future__ import annotations

import re
import subprocess

import pytest

from bench import scaleout


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return scaleout.run(scaleout.FAST, tmp_path_factory.mktemp("scaleout-logs"))


def test_summary_line(result):
    line = result.line()
    assert re.fullmatch(r"replicas: 3, jobs: \d+, lost: \d+, duplicated: \d+, rate-limit overrun: \d+, "
                        r"sse via proxy: (ok|fail)", line), line
    assert line.endswith("lost: 0, duplicated: 0, rate-limit overrun: 0, sse via proxy: ok"), (line, result.notes)


def test_no_accepted_job_lost_or_decided_twice_when_a_replica_dies(result):
    assert result.killed_replica == 1
    assert result.accepted == result.jobs == scaleout.FAST.jobs, result.notes
    assert result.succeeded == result.accepted and result.lost == 0, result.notes
    assert result.duplicated == 0, result.notes


def test_one_budget_per_key_across_replicas(result):
    # 3 x the budget was sent, over every replica and the proxy: exactly the budget answered.
    assert result.rate_limit_replicas == 3
    assert result.rate_limit_answered == scaleout.FAST.rate_limit and result.rate_limit_overrun == 0, result.notes


def test_idempotency_key_on_another_replica_gives_the_same_job(result):
    assert result.idempotent_ok, result.notes


def test_streams_and_waits_through_the_proxy(result):
    assert result.sse_ok, result.notes  # first event before the job ended: not buffered
    assert result.wait_ok, result.notes


def test_two_sweepers_send_each_webhook_once(result):
    assert result.webhooks == result.accepted and result.webhook_duplicates == 0, result.notes


def test_the_deployed_config_passes_nginx_t(tmp_path):
    conf = scaleout.nginx_config(tmp_path, 8089, [8001, 8002, 8003])
    check = subprocess.run([scaleout.nginx_binary(), "-t", "-c", str(conf), "-p", str(tmp_path), "-e",
                            str(tmp_path / "error.log")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    rendered = (tmp_path / "docket.conf").read_text()
    assert rendered.count("server 127.0.0.1:80") == 3 and "api:8000" not in rendered


def test_without_nginx_it_fails_saying_what_to_do(monkeypatch):
    monkeypatch.setattr(scaleout.shutil, "which", lambda name: None)
    monkeypatch.setattr(scaleout.os, "access", lambda path, mode: False)
    with pytest.raises(RuntimeError, match="scripts/nginx.sh"):
        scaleout.nginx_binary()
