"""Operating it: Prometheus metrics from the API and the worker it starts, request ids that
follow a job from the upload through the worker, JSON logs, and the deploy files."""
from __future__ import annotations

import json
import subprocess
import time
from datetime import date
from pathlib import Path

import requests
import yaml

from tests.conftest import DOCKET, ROOT, Server, base_env
from tests.documents import encode, receipt_image


def sample(text: str, name: str, **labels) -> float | None:
    """The value of one sample in Prometheus' text format (labels must all match)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


def test_metrics_logs_and_request_ids_through_the_running_service(tmp_path):
    env = base_env(tmp_path / "data")
    env.update(DOCKET_LOG_FORMAT="json", DOCKET_LOG_LEVEL="INFO")
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        srv = Server(env, stderr=out)
        try:
            metrics_key = srv.create_key("metrics", srv.tenant)
            submitter = srv.create_key("submitter", srv.tenant)
            image = encode(receipt_image(date.today()), "PNG")
            resp = srv.http.post(f"{srv.url}/v1/jobs", files={"file": ("r.png", image)},
                                 data={"rule": "expense_policy", "cache": "false"},
                                 headers={"X-Request-ID": "req-4711-trace"}, timeout=30)
            assert resp.status_code == 202 and resp.headers["X-Request-ID"] == "req-4711-trace"
            job_id = resp.json()["id"]
            done = srv.wait_job(job_id)
            assert done["status"] == "succeeded"
            # A request without an id gets a new one; a silly one is replaced.
            assert len(srv.http.get(f"{srv.url}/healthz", timeout=5).headers["X-Request-ID"]) == 32
            bad = srv.http.get(f"{srv.url}/healthz", headers={"X-Request-ID": "x" * 500}, timeout=5)
            assert bad.headers["X-Request-ID"] != "x" * 500

            assert requests.get(f"{srv.url}/metrics", timeout=5).status_code == 401
            assert requests.get(f"{srv.url}/metrics", headers={"Authorization": f"Bearer {submitter}"},
                                timeout=5).status_code == 403
            deadline = time.monotonic() + 30
            while True:  # the worker's samples land in the shared folder when its job ends
                scrape = requests.get(f"{srv.url}/metrics", headers={"Authorization": f"Bearer {metrics_key}"},
                                      timeout=10)
                assert scrape.status_code == 200 and scrape.headers["Content-Type"].startswith("text/plain")
                text = scrape.text
                if sample(text, "docket_jobs_finished_total", status="succeeded", rule="expense_policy"):
                    break
                assert time.monotonic() < deadline, text[:3000]
                time.sleep(0.5)
            assert sample(text, "docket_jobs_submitted_total", rule="expense_policy", analyzer="ocr") >= 1
            for stage in ("queue_wait", "preprocess", "analyze", "rules", "total"):
                assert sample(text, "docket_job_stage_seconds_count", stage=stage) >= 1, stage
            assert sample(text, "docket_http_requests_total", route="/v1/jobs", method="POST", status="202") >= 1
            assert sample(text, "docket_http_request_seconds_count", route="/v1/jobs/<job_id>") >= 1
            assert sample(text, "docket_queue_depth", queue="cpu") is not None
        finally:
            srv.stop()

    # JSON lines, and the worker's line about the job carries the upload's request id.
    records = []
    for line in log.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pass  # Celery's own banner is plain text
    about_job = [r for r in records if r.get("job_id") == job_id]
    assert about_job, records[-20:]
    assert any(r.get("request_id") == "req-4711-trace" for r in about_job), about_job
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)


def test_worker_serves_its_own_metrics(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = base_env(tmp_path / "data")
    proc = subprocess.Popen([DOCKET, "worker", "--metrics-port", str(port), "--concurrency", "1"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                resp = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "worker metrics never came up"
                time.sleep(0.3)
        assert resp.status_code == 200 and "docket_queue_depth" in resp.text
        assert requests.get(f"http://127.0.0.1:{port}/other", timeout=2).status_code == 404
    finally:
        proc.terminate()
        proc.wait(30)


def test_deploy_files():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "docket-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for name in ("docket_jobs_submitted_total", "docket_jobs_finished_total", "docket_job_stage_seconds",
                 "docket_queue_depth", "docket_webhook_deliveries_total", "docket_http_requests_total",
                 "docket_http_request_seconds", "docket_model_batch_size", "docket_model_tokens_total"):
        assert name in exprs, name
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    api = [j for j in prometheus["scrape_configs"] if j["job_name"] == "docket-api"][0]
    # every replica of the compose `api` service (scaled behind nginx): Docker's DNS gives one address each
    assert api["authorization"]["type"] == "Bearer"
    assert api["dns_sd_configs"][0]["names"] == ["api"] and api["dns_sd_configs"][0]["port"] == 8000
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"prometheus", "grafana"} <= set(compose["services"])
    assert "--metrics-port" in compose["services"]["worker-cpu"]["command"]
    assert Path(ROOT / "deploy" / "grafana" / "provisioning-datasource.yml").is_file()
