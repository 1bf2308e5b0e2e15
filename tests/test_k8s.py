"""deploy/k8s (Kustomize) against the Kubernetes schemas, offline: kubernetes-validate (pinned in the
test extra) ships the JSON schemas of each Kubernetes release. KEDA's ScaledObject is not a core
kind: it is checked structurally (the schema below: the keda.sh/v1alpha1 ScaledObject fields Docket
uses and the redis scaler's metadata, written by hand; KEDA's own CRD schema is not vendored), and
against Docket itself (its queues, the Deployments it scales)."""
from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from docket.queues import CPU_QUEUE, GPU_QUEUE

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
KUBERNETES = "1.33.0"  # the oldest release still supported upstream when this was written

SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object", "required": ["name"], "additionalProperties": False,
                    "properties": {"name": {"type": "string"}, "kind": {"type": "string"},
                                   "apiVersion": {"type": "string"}, "envSourceContainerName": {"type": "string"}}},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                "advanced": {"type": "object"},
                "fallback": {"type": "object"},
                "triggers": {
                    "type": "array", "minItems": 1,
                    "items": {
                        "type": "object", "required": ["type", "metadata"], "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                            # map[string]string in the CRD: numbers must be quoted.
                            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                            "authenticationRef": {"type": "object", "required": ["name"]},
                        }}},
            }},
    },
}
# KEDA's redis scaler: where the list is and how long it may grow per replica.
REDIS_TRIGGER = {
    "type": "object",
    "required": ["listName", "listLength"],
    "anyOf": [{"required": ["address"]}, {"required": ["addressFromEnv"]}, {"required": ["host", "port"]}],
    "properties": {"listLength": {"pattern": "^[1-9][0-9]*$"}, "activationListLength": {"pattern": "^[0-9]+$"},
                   "databaseIndex": {"pattern": "^[0-9]+$"}},
}


def documents(folder: Path) -> dict[str, list[dict]]:
    return {path.name: [d for d in yaml.safe_load_all(path.read_text()) if d]
            for path in sorted(folder.glob("*.yaml"))}


@pytest.fixture(scope="module")
def base() -> list[dict]:
    docs = documents(BASE)
    docs.pop("kustomization.yaml")
    return [d for file_docs in docs.values() for d in file_docs]


def by_kind(resources: list[dict], kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def test_kustomizations_name_every_file():
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    for overlay in (K8S / "overlays").iterdir():
        spec = yaml.safe_load((overlay / "kustomization.yaml").read_text())
        for resource in spec["resources"]:
            assert (overlay / resource / "kustomization.yaml").exists(), (overlay, resource)
        deployments = {r["metadata"]["name"] for d in documents(BASE).values() for r in d if r["kind"] == "Deployment"}
        assert {r["name"] for r in spec.get("replicas", [])} <= deployments
        assert {i["name"] for i in spec.get("images", [])} <= {i["name"] for i in kustomization["images"]}


def test_core_manifests_are_valid(base):
    checked = 0
    for resource in base:
        if resource["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(resource, KUBERNETES, strict=True)
        checked += 1
    assert checked >= 10


def test_the_validator_can_fail(base):
    deployment = copy.deepcopy(by_kind(base, "Deployment")["docket-api"])
    deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["request"] = {"cpu": "1"}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)
    scaled = copy.deepcopy(by_kind(base, "ScaledObject")["docket-worker-gpu"])
    scaled["spec"]["triggers"][0]["metadata"]["listLength"] = 8  # unquoted: not a string map
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, SCALED_OBJECT)


def test_scaled_objects(base):
    scaled = by_kind(base, "ScaledObject")
    deployments = by_kind(base, "Deployment")
    config = by_kind(base, "ConfigMap")["docket-config"]["data"]
    queues = {}
    for name, obj in scaled.items():
        jsonschema.validate(obj, SCALED_OBJECT)
        target = deployments[obj["spec"]["scaleTargetRef"]["name"]]
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "redis"
        jsonschema.validate(trigger["metadata"], REDIS_TRIGGER)
        assert trigger["metadata"]["addressFromEnv"] in config
        queue = trigger["metadata"]["listName"]
        command = target["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[command.index("--queues") + 1] == queue  # scales the workers of that queue
        queues[queue] = obj
    assert set(queues) == {CPU_QUEUE, GPU_QUEUE}
    assert queues[GPU_QUEUE]["spec"]["minReplicaCount"] == 0  # GPUs idle to zero
    assert queues[CPU_QUEUE]["spec"]["minReplicaCount"] >= 1


def test_production_rules(base):
    from docket.cli import main

    deployments = by_kind(base, "Deployment")
    assert set(deployments) == {"docket-api", "docket-worker-cpu", "docket-worker-gpu", "docket-beat"}
    pdbs = {p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for p in by_kind(base, "PodDisruptionBudget").values()}
    pods = {name: d["spec"]["template"]["spec"] for name, d in deployments.items()}
    pods["docket-migrate"] = by_kind(base, "Job")["docket-migrate"]["spec"]["template"]["spec"]
    for name, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0, name
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert container["resources"]["limits"]["memory"], name
            command = container["command"]
            if command[0] == "docket":  # the arguments exist in this CLI
                sub = main.commands[command[1]]
                sub.make_context(command[1], list(command[2:]))
            if name != "docket-migrate":
                assert "livenessProbe" in container, name
    api = pods["docket-api"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert by_kind(base, "Service")["docket-api"]["spec"]["selector"] == deployments["docket-api"]["spec"]["selector"]["matchLabels"]
    gpu = pods["docket-worker-gpu"]["containers"][0]["resources"]
    assert gpu["limits"]["nvidia.com/gpu"] == 1 and gpu["requests"]["nvidia.com/gpu"] == 1
    # Exactly one sweeper: one replica, replaced (never rolled) so two never overlap for long.
    beat = deployments["docket-beat"]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    with_beat = [n for n, p in pods.items() if "--beat" in p["containers"][0]["command"]]
    assert with_beat == ["docket-beat"]
    assert pdbs == {"docket-api", "docket-worker-cpu", "docket-worker-gpu"}
    assert pods["docket-migrate"]["containers"][0]["command"] == ["docket", "migrate"]


def test_ingress_matches_docket(base):
    from docket.config import Settings
    from docket.live import MAX_WAIT_S

    settings = Settings.from_env()
    ingress = by_kind(base, "Ingress")["docket-api"]
    notes = {k.removeprefix("nginx.ingress.kubernetes.io/"): v for k, v in ingress["metadata"]["annotations"].items()}
    assert int(notes["proxy-body-size"].removesuffix("m")) * 2**20 == settings.max_upload_bytes * settings.max_batch_files
    assert notes["proxy-buffering"] == "off" and notes["proxy-request-buffering"] == "off"
    assert int(notes["proxy-read-timeout"]) > max(MAX_WAIT_S, settings.event_stream_max_s)
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] in by_kind(base, "Service")
