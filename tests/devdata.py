"""Where tests find real documents: the few the repository carries (tests/data/, laid out like the
development sets, see its README.md), and the development sets beside the project (../shared/data/,
not part of a clone; see README.md, 'Development data').

Tests that measure accuracy over a whole development set call `dev_set(name)`: the set's folder
when it is there; otherwise the test is skipped with one uniform reason, or fails when
DOCKET_REQUIRE_DEV_DATA=1 (.ci/run sets it, so CI can never pass by skipping them)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
REPO_DATA = Path(__file__).resolve().parent / "data"
REQUIRE_ENV = "DOCKET_REQUIRE_DEV_DATA"


def required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


def _absent(what: str) -> None:
    message = (f"development data not present: {what} (the shared data folder beside the project; "
               "see README.md, 'Development data')")
    if required():
        pytest.fail(f"{message}; {REQUIRE_ENV}=1 makes this an error", pytrace=False)
    pytest.skip(message)


def dev_root(root: Path | None = None) -> Path:
    """The development data folder (../shared/data), or skip / fail as described above."""
    root = SHARED_DATA if root is None else root
    if not root.is_dir():
        _absent(str(root))
    return root


def dev_set(name: str, root: Path | None = None) -> Path:
    """One development set's folder (with its labels.jsonl), or skip / fail as described above."""
    folder = (SHARED_DATA if root is None else root) / name
    if not (folder / "labels.jsonl").is_file():
        _absent(str(folder / "labels.jsonl"))
    return folder


def labels(folder: Path) -> list[dict]:
    """A labels.jsonl, one record a line (the format of the dev sets and of tests/data)."""
    return [json.loads(line) for line in (folder / "labels.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]


def record(folder: Path, name: str) -> dict:
    """The label record of one file (`file` or `original_file`, by its name) in a labels.jsonl."""
    for rec in labels(folder):
        if name in (rec["file"].rsplit("/", 1)[-1], (rec.get("original_file") or "").rsplit("/", 1)[-1]):
            return rec
    raise KeyError(f"{name} has no label in {folder / 'labels.jsonl'}")
