"""docker-compose.yml against the Compose specification (no Docker engine here to run it)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHECK = str(Path(sys.executable).parent / "check-jsonschema")


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHECK, "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True)


def test_compose_file_is_valid():
    result = validate(ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_validator_rejects_a_broken_gpu_reservation(tmp_path):
    # The check must be able to fail: a typo in the GPU reservation is the classic mistake.
    text = (ROOT / "docker-compose.yml").read_text().replace("capabilities: [gpu]", "capability: [gpu]")
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text)
    assert validate(broken).returncode != 0


def test_production_shape():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "api", "worker-cpu", "worker-gpu"} <= set(services)
    assert "gunicorn" in services["api"]["command"]
    gpu = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"] and "gpu" in services["worker-gpu"]["command"]
    for name in ("api", "worker-cpu", "worker-gpu"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in services[name]
    assert services["migrate"]["command"] == ["docket", "migrate"]
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name] and services[name]["volumes"]


def test_api_replicas_behind_nginx():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    api, nginx = services["api"], services["nginx"]
    # Several replicas, reachable only through the proxy (a fixed host port cannot be scaled).
    assert int(str(api["deploy"]["replicas"]).split(":-")[-1].rstrip("}")) >= 2
    assert "ports" not in api and "8000" in [str(p) for p in api["expose"]]
    assert api["environment"]["DOCKET_TRUSTED_PROXIES"].split(":-")[-1].rstrip("}") == "1"
    assert nginx["depends_on"]["api"]["condition"] == "service_healthy"
    assert "./deploy/nginx/docket.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    assert nginx["ports"] == ["8000:8080"] and "healthcheck" in nginx
    assert (ROOT / "deploy" / "nginx" / "docket.conf").read_text().count("server api:8000") == 1
    # Prometheus scrapes every replica, not whichever one the name happens to resolve to.
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    api_job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "docket-api")
    assert api_job["dns_sd_configs"][0]["names"] == ["api"]


def test_nginx_config_matches_docket():
    """The proxy's limits are Docket's: the whole-request body limit, waits and streams."""
    import re

    from docket.config import Settings

    text = (ROOT / "deploy" / "nginx" / "docket.conf").read_text()
    settings = Settings.from_env()
    limit = re.search(r"client_max_body_size (\d+)m;", text)
    assert limit and int(limit.group(1)) * 1024 * 1024 == settings.max_upload_bytes * settings.max_batch_files
    events = re.search(r"location ~ /events\$ \{(.*?)\n    \}", text, re.S).group(1)
    assert "proxy_buffering off;" in events
    assert int(re.search(r"proxy_read_timeout (\d+)s;", events).group(1)) > settings.event_stream_max_s
    waits = re.search(r"location ~ \^/v1/jobs\(/\[\^/\]\+\)\?\$ \{(.*?)\n    \}", text, re.S).group(1)
    from docket.live import MAX_WAIT_S

    assert "proxy_buffering off;" in waits
    assert int(re.search(r"proxy_read_timeout (\d+)s;", waits).group(1)) > MAX_WAIT_S
    assert "proxy_set_header X-Request-ID $docket_request_id;" in text
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in text
