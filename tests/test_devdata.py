"""The development sets are optional for a clone (skipped, one reason) and required in CI
(DOCKET_REQUIRE_DEV_DATA=1, set by .ci/run); the real documents the tests always use are in
tests/data, each named in its README with source and licence."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import devdata

TESTS = Path(__file__).resolve().parent


def test_absent_set_is_skipped_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.delenv(devdata.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"development data not present: .*nowhere.*sroie-dev"):
        devdata.dev_set("sroie-dev", root=tmp_path / "nowhere")
    with pytest.raises(pytest.skip.Exception, match="development data not present"):
        devdata.dev_root(tmp_path / "nowhere")
    (tmp_path / "sroie-dev").mkdir()  # a folder without its labels is not the set
    with pytest.raises(pytest.skip.Exception, match="labels.jsonl"):
        devdata.dev_set("sroie-dev", root=tmp_path)


def test_absent_set_fails_where_it_is_required(tmp_path, monkeypatch):
    monkeypatch.setenv(devdata.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"development data not present.*{devdata.REQUIRE_ENV}=1"):
        devdata.dev_set("sroie-dev", root=tmp_path / "nowhere")
    with pytest.raises(pytest.fail.Exception):
        devdata.dev_root(tmp_path / "nowhere")


def test_present_set_is_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(devdata.REQUIRE_ENV, "1")
    (tmp_path / "zugferd-dev").mkdir()
    (tmp_path / "zugferd-dev" / "labels.jsonl").write_text('{"file": "files/a.pdf", "fields": {}}\n')
    assert devdata.dev_set("zugferd-dev", root=tmp_path) == tmp_path / "zugferd-dev"
    assert devdata.record(tmp_path / "zugferd-dev", "a.pdf")["file"] == "files/a.pdf"


def test_ci_requires_the_dev_data():
    ci = (devdata.ROOT / ".ci" / "run").read_text()
    assert re.search(rf"^export {devdata.REQUIRE_ENV}=1$", ci, re.M), ci


def test_tests_reach_the_dev_sets_only_through_the_helper():
    """One answer for an absent set: no test file builds the ../shared/data path itself."""
    own = {"devdata.py", "conftest.py", Path(__file__).name}
    offenders = [p.name for p in TESTS.glob("**/*.py") if p.name not in own
                 and re.search(r"""["']shared["']\s*/\s*["']data|shared/data["']|\bSHARED_DATA\b""", p.read_text())]
    assert not offenders


def test_repo_documents_are_few_small_and_documented():
    data = TESTS / "data"
    readme = (data / "README.md").read_text()
    files = [p for p in data.rglob("*") if p.is_file() and p.name != "README.md"]
    assert sum(p.stat().st_size for p in files) < 1_000_000
    for p in files:
        if p.name.startswith("LICENSE") or p.name == "labels.jsonl":
            continue
        assert p.name in readme, f"{p.relative_to(data)} is not described in tests/data/README.md"
        folder = p.relative_to(data).parts[0]
        assert devdata.record(data / folder, p.name), p  # and it has its ground truth
