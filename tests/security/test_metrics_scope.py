"""/metrics must not carry one tenant's secrets to another. A tenant's `metrics` (or `admin`) key
reads the deployment-wide series (no tenant-specific label) and its own tenant's series; the
full exposition, every tenant's, is the operator's: the DOCKET_METRICS_TOKEN bearer."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.test_security import key, make_app

SECRET_RULE = "acme_project_falcon_acquisition"
SECRET_TENANT = "acme-corp-7f3a"
OPERATOR_TOKEN = "operator-token-0123456789abcdef"

RECORD = """
import sys
from docket import metrics
metrics.job_submitted(sys.argv[1], sys.argv[2], "ocr")
metrics.job_finished(sys.argv[1], "succeeded", "approve", sys.argv[2])
metrics.job_submitted("b", "expense_policy", "ocr")
metrics.job_finished("b", "succeeded", "reject", "expense_policy")
metrics.http_request("/v1/jobs", "POST", 202, 0.01)
"""


@pytest.fixture
def scraped(settings, redis_url, tmp_path, monkeypatch):
    """Samples of tenants `acme…` and `b` in a multiprocess folder (written by another process,
    as a worker would), and an app that reads them."""
    folder = tmp_path / "prom"
    folder.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", RECORD, SECRET_TENANT, SECRET_RULE], cwd=ROOT, env=env, check=True,
                   timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    client = make_app(settings, redis_url, metrics_token=OPERATOR_TOKEN).test_client()
    return client, settings


def _scrape(client, headers):
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_data(as_text=True)


def _assert_nothing_of_acme(text: str) -> None:
    assert SECRET_RULE not in text
    assert SECRET_TENANT not in text
    assert "acme" not in text


def test_other_tenants_metrics_key_cannot_see_policy_names(scraped):
    client, settings = scraped
    _assert_nothing_of_acme(_scrape(client, key(settings, "metrics", "b")))


def test_other_tenants_admin_key_cannot_see_policy_names(scraped):
    client, settings = scraped
    _assert_nothing_of_acme(_scrape(client, key(settings, "admin", "b")))


def test_default_tenants_metrics_key_cannot_see_policy_names(scraped):
    """The `default` tenant is a tenant like any other, not the operator."""
    client, settings = scraped
    _assert_nothing_of_acme(_scrape(client, key(settings, "metrics", "default")))


@pytest.mark.parametrize("role", ["submitter", "reviewer"])
def test_other_roles_still_cannot_scrape(scraped, role):
    client, settings = scraped
    assert client.get("/metrics", headers=key(settings, role, "b")).status_code == 403


def test_a_tenant_sees_its_own_series_and_the_deployment_wide_ones(scraped):
    client, settings = scraped
    text = _scrape(client, key(settings, "metrics", "b"))
    assert 'rule="expense_policy"' in text and 'decision="reject"' in text
    assert 'docket_http_requests_total{method="POST",route="/v1/jobs",status="202"}' in text
    # Its own tenant's series, and no other's: acme approved, b rejected.
    assert 'decision="approve"' not in text


def test_the_owning_tenant_sees_its_own_policy(scraped):
    client, settings = scraped
    text = _scrape(client, key(settings, "metrics", SECRET_TENANT))
    assert SECRET_RULE in text and 'decision="reject"' not in text


def test_operator_token_reads_every_tenant(scraped):
    client, _ = scraped
    text = _scrape(client, {"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert SECRET_RULE in text and f'tenant="{SECRET_TENANT}"' in text and 'tenant="b"' in text


@pytest.mark.parametrize("token", [OPERATOR_TOKEN[:-1], OPERATOR_TOKEN + "x", OPERATOR_TOKEN.upper(), ""])
def test_a_near_miss_of_the_operator_token_is_refused(scraped, token):
    client, _ = scraped
    assert client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_operator_token_is_not_an_api_key(scraped):
    """The deployment's metrics credential reads /metrics and nothing else."""
    client, _ = scraped
    assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).status_code == 401


def test_without_an_operator_token_nobody_reads_every_tenant(settings, redis_url, scraped):
    _, _ = scraped
    client = make_app(settings, redis_url).test_client()  # DOCKET_METRICS_TOKEN unset
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    _assert_nothing_of_acme(_scrape(client, key(settings, "metrics", "b")))


def test_submissions_count_under_their_tenant(settings, redis_url, monkeypatch):
    """The API records each submission's tenant with its policy name (what the scoping reads)."""
    import io

    from docket import metrics
    from tests.test_security import PNG

    seen = []
    monkeypatch.setattr(metrics, "job_submitted", lambda *args: seen.append(args))
    client = make_app(settings, redis_url).test_client()
    resp = client.post("/v1/jobs", data={"file": (io.BytesIO(PNG), "r.png"), "rule": "expense_policy"},
                       content_type="multipart/form-data", headers=key(settings, "submitter", "t9"))
    assert resp.status_code == 202 and seen == [("t9", "expense_policy", "ocr")]


def test_worker_metrics_port_answers_only_the_operator_token(scraped):
    """`docket worker --metrics-port` is an operator's port: with DOCKET_METRICS_TOKEN set, a
    tenant's key (or nothing) gets 401 there, the token the full exposition."""
    import requests

    from docket import metrics

    client, settings = scraped
    server = metrics.serve(0, OPERATOR_TOKEN, lambda: {"cpu": 0}, host="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        tenant_key = key(settings, "metrics", "b")
        for headers in ({}, tenant_key, {"Authorization": f"Bearer {OPERATOR_TOKEN}x"}):
            resp = requests.get(url, headers=headers, timeout=5)
            assert resp.status_code == 401 and SECRET_RULE not in resp.text
        full = requests.get(url, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, timeout=5)
        assert full.status_code == 200 and SECRET_RULE in full.text
    finally:
        server.shutdown()
        server.server_close()
