"""The model analyzer through the real pipeline — `docket analyze --analyzer model`: stored,
recorded, queued on `gpu`, taken by a `docket worker --queues gpu` process (batching), decided
with the rule's CEL checks, read back from the database — and its faults."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import date, timedelta

import pytest

from docket.rules import DECISIONS, default_rules_dir, evaluate, load_rules
from tests.conftest import DOCKET, ROOT, SAMPLES, base_env
from tests.documents import encode, receipt_image
from tests.model_support import FAST_ENV, tiny_models  # noqa: F401  (fixture)

RULES = load_rules(default_rules_dir())


@pytest.fixture
def files(tmp_path):
    paths = [SAMPLES / "receipt-en.png", SAMPLES / "contract-en.pdf", SAMPLES / "receipt-zh.png"]
    extra = tmp_path / "receipt.png"
    extra.write_bytes(encode(receipt_image(date.today() - timedelta(days=3)), "PNG"))
    return paths + [extra]


def analyze(tmp_path, model_dir, files, rule="expense_policy", timeout=240, **env_overrides):
    env = base_env(tmp_path / "data")
    env.update(FAST_ENV, DOCKET_LOG_LEVEL="WARNING", OMP_NUM_THREADS="1", **env_overrides)
    started = time.monotonic()
    proc = subprocess.run([DOCKET, "analyze", *map(str, files), "--rule", rule, "--analyzer", "model",
                           "--model", str(model_dir), "--json", "--timeout", "180"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    # `docket analyze` prints each file as it finishes: put the results back in the files' order.
    results = {r["file"]: r for r in (json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{"))}
    return proc, [results[str(f)] for f in files if str(f) in results], time.monotonic() - started


def check_decided_under_the_rule(result: dict, rule_name: str) -> None:
    rule = RULES[rule_name]
    assert result["status"] == "succeeded", result
    assert result["analyzer"] == "model" and result["decision"] in DECISIONS
    fields = result["fields"]
    # Constrained decoding: the fields fit the rule's schema, even from random weights.
    assert [e.message for e in rule.validator().iter_errors(fields)] == []
    # The CEL checks were applied on top of the model's proposal, and only made it stricter.
    cel = evaluate(rule, fields, {"text": "", "pages": 1, "mime_type": "image/png", "filename": ""})
    fired = {r["check"] for r in cel.reasons if not r["check"].startswith("schema")}
    assert fired <= {r["check"] for r in result["reasons"]}
    assert DECISIONS.index(result["decision"]) >= DECISIONS.index(cel.decision)
    assert result["timings"]["output_tokens"] > 0 and result["timings"]["input_tokens"] > 0


def test_model_jobs_through_queue_worker_and_database(tmp_path, tiny_models, files):
    proc, results, elapsed = analyze(tmp_path, tiny_models["glm46v"], files)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(results) == len(files)
    for result in results:
        check_decided_under_the_rule(result, "expense_policy")
    # The GPU worker took several waiting jobs into one generate() call.
    assert max(r["timings"]["batch_size"] for r in results) > 1, [r["timings"] for r in results]

    # Out of memory on every batch of more than one: batches are halved down to single
    # documents, no job is lost, and the answers equal the batched ones (greedy decoding).
    log = tmp_path / "oom.log"
    proc2, split, _ = analyze(tmp_path / "oom", tiny_models["glm46v"], files,
                              DOCKET_EXTRA_ANALYZERS="tests.model_support", DOCKET_TEST_OOM_LOG=str(log),
                              PYTHONPATH=str(ROOT))
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    sizes = [int(x) for x in log.read_text().split()]
    assert any(s > 1 for s in sizes) and sizes.count(1) == len(files), sizes
    assert [r["timings"]["batch_size"] for r in split] == [1] * len(files)
    assert [(r["fields"], r["decision"]) for r in split] == [(r["fields"], r["decision"]) for r in results]


def test_other_architectures_and_rules(tmp_path, tiny_models):
    proc, results, _ = analyze(tmp_path, tiny_models["qwen2_5_vl"], [SAMPLES / "contract-en.pdf"],
                               rule="contract_review")
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_decided_under_the_rule(results[0], "contract_review")


def test_token_limit_gives_needs_review(tmp_path, tiny_models):
    proc, results, _ = analyze(tmp_path, tiny_models["glm4v"], [SAMPLES / "receipt-en.png"],
                               DOCKET_MODEL_MAX_NEW_TOKENS="8")
    [result] = results
    assert result["status"] == "succeeded", result
    assert result["decision"] == "needs_review"
    assert "model:token_limit" in {r["check"] for r in result["reasons"]}
    assert result["timings"]["output_tokens"] == 8


def test_gpu_worker_refuses_to_start_without_a_usable_model(tmp_path, tiny_models):
    env = base_env(tmp_path / "data")
    env["DOCKET_MODEL_PATH"] = str(tmp_path / "missing")
    proc = subprocess.run([DOCKET, "worker", "--queues", "gpu"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    assert "cannot start a GPU worker" in proc.stderr and "does not exist" in proc.stderr

    broken = tmp_path / "broken"
    shutil.copytree(tiny_models["glm46v"], broken)
    (broken / "model.safetensors").write_bytes(b"\0" * 64)
    env["DOCKET_MODEL_PATH"] = str(broken)
    proc = subprocess.run([DOCKET, "worker", "--queues", "gpu"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "cannot start a GPU worker" in proc.stderr and "could not be loaded" in proc.stderr

    # `docket analyze` names the problem at once, or reports the stopped worker: never hangs.
    proc, _, _ = analyze(tmp_path / "a", tmp_path / "missing", [SAMPLES / "receipt-en.png"], timeout=60)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc, results, elapsed = analyze(tmp_path / "b", broken, [SAMPLES / "receipt-en.png"], timeout=120)
    assert proc.returncode == 1 and elapsed < 100
    assert results[0]["status"] in ("queued", "running") and results[0]["error"]["code"] == "worker_exited"
