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
