"""The `docket` command as a user runs it, on the embedded default (no servers configured)."""
from __future__ import annotations

import json
import subprocess

from tests.conftest import DOCKET, ROOT, SAMPLES, base_env


def run(args: list[str], env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKET, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_analyze_prints_json_lines_through_the_pipeline(tmp_path):
    env = base_env(tmp_path / "data")
    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all")
    result = run(["analyze", str(SAMPLES / "receipt-en.png"), str(bad), str(SAMPLES / "receipt-zh.png"),
                  "--rule", "expense_policy", "--json"], env)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    # One line per file as it is decided: the rejected file at once, the others as they finish.
    assert [l["file"] for l in lines][0] == str(bad)
    by_file = {l["file"]: l for l in lines}
    assert len(lines) == len(by_file) == 3
    en, rejected, zh = (by_file[str(SAMPLES / "receipt-en.png")], by_file[str(bad)],
                        by_file[str(SAMPLES / "receipt-zh.png")])
    for doc in (en, zh):
        assert {"file", "job_id", "status", "fields", "decision", "reasons"} <= set(doc)
        assert doc["status"] == "succeeded" and doc["decision"] in ("approve", "needs_review", "reject")
    assert en["fields"]["merchant_name"] == "SUNRISE CAFE SDN BHD" and en["fields"]["total"] == 32.22
    assert en["fields"]["transaction_date"] == "2026-11-20" and en["fields"]["currency"] == "MYR"
    assert zh["fields"]["merchant_name"].startswith("海底捞")
    assert rejected["status"] == "rejected" and rejected["error"]["code"] == "unsupported_type"
    assert result.returncode == 1  # not every file produced a decision
    # The jobs really went through the database: a second process finds them there.
    listing = run(["analyze", str(SAMPLES / "contract-en.pdf"), "--rule", "contract_review", "--json"], env)
    assert listing.returncode == 0, listing.stderr
    contract = json.loads(listing.stdout)
    assert contract["fields"]["jurisdiction"] == "Delaware"
    assert len(list((tmp_path / "data" / "documents").rglob("*"))) >= 3


def test_human_output_and_usage_errors(tmp_path):
    env = base_env(tmp_path / "data")
    result = run(["analyze", str(SAMPLES / "screenshot-zh.png"), "--rule", "screenshot_moderation"], env)
    assert result.returncode == 0, result.stderr
    assert "NEEDS_REVIEW" in result.stdout and "personal" in result.stdout.lower()
    unknown = run(["analyze", str(SAMPLES / "receipt-en.png"), "--rule", "no_such_rule"], env)
    assert unknown.returncode == 2 and "no_such_rule" in unknown.stderr


def test_migrate(tmp_path):
    env = base_env(tmp_path / "data")
    result = run(["migrate"], env)
    assert result.returncode == 0 and "database at head" in result.stdout
    assert (tmp_path / "data" / "docket.db").exists()
