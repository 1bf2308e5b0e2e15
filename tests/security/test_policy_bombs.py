"""A tenant's policy source and JSON bodies are hostile until bounded (issue 19, items 1 and 7).

The review's case: a YAML alias bomb of 4.6 KB under `params:` pinned the API at 100% CPU and
grew it by gigabytes. Every place that parses a policy (the API, the dashboard's push form, the
CLI, stored versions) goes through one loader; each shape of bomb is refused there, quickly, as
`422 invalid_rule`. Each test carries a tight timeout: a regression fails in seconds instead of
hanging the suite.
"""
from __future__ import annotations

import dataclasses
import re
import subprocess
import time
from pathlib import Path

import pytest

from api import create_app
from db.session import session_scope
from docket.rules import RuleError, evaluate, load_rule_source
from docket.tenants import create_key
from tests.conftest import DOCKET, ROOT

BUILTIN = (ROOT / "rules" / "expense_policy.yaml").read_text()
PUSH = "/v1/rules/expense_policy/versions"


def with_params(extra: str) -> str:
    """The built-in expense policy with `extra` (YAML lines, indented two spaces) added under params."""
    assert "\nparams:\n" in BUILTIN
    return BUILTIN.replace("\nparams:\n", "\nparams:\n" + extra.rstrip("\n") + "\n", 1)


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The review's shape: each anchor a list of `width` aliases to the previous one."""
    lines = [f"  lol0: &lol0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"  lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * width)}]")
    return with_params("\n".join(lines))


def merge_bomb(levels: int = 9, width: int = 9) -> str:
    """Merge keys copy a mapping's entries: the same growth through `<<`."""
    lines = ["  m0: &m0 {a: 1, b: 2, c: 3}"]
    for i in range(1, levels):
        refs = ", ".join([f"*m{i - 1}"] * width)
        lines.append(f"  m{i}: &m{i}\n    <<: [{refs}]\n    k{i}: {i}")
    return with_params("\n".join(lines))


def with_check(expr: str) -> str:
    """The built-in policy with its first check's (one-line) expression replaced."""
    quoted = "'" + expr.replace("'", "''") + "'"
    return re.sub(r"(?m)^(\s*)expr: .*$", lambda m: f"{m.group(1)}expr: {quoted}", BUILTIN, count=1)


HOSTILE_SOURCES = {
    "alias_bomb_in_params": alias_bomb(),
    "alias_bomb_wide": alias_bomb(levels=5, width=40),
    "merge_key_bomb": merge_bomb(),
    "alias_bomb_in_fields_schema": BUILTIN.replace(
        "\nfields:\n", "\nx-bomb: &b0 [a, a, a, a, a, a, a, a]\n"
        + "".join(f"x-b{i}: &b{i} [{', '.join([f'*b{i - 1}' if i > 1 else '*b0'] * 8)}]\n" for i in range(1, 8))
        + "fields:\n", 1),
    "recursive_alias": with_params("  loop: &loop [1, *loop]"),
    "deep_flow_nesting": with_params("  deep: " + "[" * 50_000 + "]" * 50_000),
    "deep_block_nesting": with_params("".join("  " * (i + 1) + f"k{i}:\n" for i in range(200)) + "  " * 201 + "x: 1"),
    "deep_mapping_flow": with_params("  deep: " + "{a: " * 5_000 + "1" + "}" * 5_000),
    "too_many_nodes": with_params("  many: [" + ", ".join(["1"] * 60_000) + "]"),
    "oversize_source": BUILTIN + "\n# " + "x" * (300 * 1024) + "\n",
    "nested_comprehensions": with_check(
        "[1,2,3,4,5,6,7,8].all(a, [1,2,3,4,5,6,7,8].all(b, [1,2,3,4,5,6,7,8].all(c, a + b + c > 0)))"),
    "huge_expression": with_check(" || ".join(["fields.total > 0.0"] * 2_000)),
    "huge_params_list": with_params("  big_list: [" + ", ".join(str(i) for i in range(5_000)) + "]"),
    "invalid_schema_pattern": BUILTIN.replace('pattern: "^[A-Z]{3}$"', 'pattern: "(?P<x"', 1),
}


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory, redis_url):
    """One migrated embedded database and app for the many body-shape cases (an app a case made
    the parametrised tests slow); each test still uses a tenant of its own."""
    from db.migrate import upgrade
    from docket.config import Settings

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DOCKET_DATABASE_URL", raising=False)
        mp.setenv("DOCKET_DATA_DIR", str(tmp_path_factory.mktemp("bombs")))
        settings = Settings.from_env()
        upgrade(settings.database_url)
        yield settings, make_client(settings, redis_url)


def make_client(settings, redis_url, **overrides):
    app = create_app(dataclasses.replace(settings, **overrides), broker_url=redis_url.rsplit("/", 1)[0] + "/14")
    return app.test_client()


def admin(settings, tenant: str = "bombs") -> dict:
    with session_scope(settings.database_url) as s:
        _, plaintext = create_key(s, tenant, "admin")
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", sorted(HOSTILE_SOURCES))
def test_loader_refuses_hostile_policy_source(name):
    started = time.monotonic()
    with pytest.raises(RuleError):
        load_rule_source(HOSTILE_SOURCES[name], name="expense_policy")
    assert time.monotonic() - started < 3


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", ["alias_bomb_in_params", "merge_key_bomb", "deep_flow_nesting", "too_many_nodes"])
def test_api_answers_hostile_policy_with_422(shared_app, name):
    settings, client = shared_app
    headers = admin(settings, f"bombs-{name}")
    for body in ({"data": HOSTILE_SOURCES[name].encode(), "content_type": "application/yaml"},
                 {"json": {"source": HOSTILE_SOURCES[name]}}):
        started = time.monotonic()
        resp = client.post(PUSH, headers=headers, **body)
        assert resp.status_code == 422, resp.get_data(as_text=True)[:300]
        assert resp.mimetype == "application/problem+json" and resp.get_json()["code"] == "invalid_rule"
        assert time.monotonic() - started < 5
    # Nothing was stored, and the service still answers.
    versions = client.get(PUSH, headers=headers).get_json()["versions"]
    assert all(v["status"] == "active" or v.get("builtin") for v in versions)
    assert client.get("/healthz").status_code == 200


@pytest.mark.timeout(30)
def test_dashboard_push_form_refuses_alias_bomb(settings, redis_url):
    client, headers = make_client(settings, redis_url), admin(settings, "dash-bombs")
    key = headers["Authorization"].split()[1]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/dashboard").get_data(as_text=True))
    assert client.post("/dashboard/sign-in", data={"key": key, "csrf_token": token.group(1)}).status_code == 302
    page = client.get("/dashboard/policies/expense_policy").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    started = time.monotonic()
    resp = client.post("/dashboard/policies/expense_policy/versions",
                       data={"source": HOSTILE_SOURCES["alias_bomb_in_params"], "csrf_token": token})
    assert resp.status_code == 422
    assert "refused YAML" in resp.get_data(as_text=True)
    assert time.monotonic() - started < 5


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["validate", "push"])
def test_cli_refuses_alias_bomb(tmp_path, command):
    path = tmp_path / "expense_policy.yaml"
    path.write_text(HOSTILE_SOURCES["alias_bomb_in_params"])
    args = [DOCKET, "rules", command, str(path)] + (["--tenant", "t"] if command == "push" else [])
    env = {"DOCKET_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(args, capture_output=True, text=True, timeout=40, env=env)
    assert out.returncode == 1 and "refused YAML" in out.stderr


@pytest.mark.timeout(30)
def test_fields_schema_pattern_cannot_backtrack_forever():
    """A tenant's fields schema meets values read from documents: `(a+)+$` on a crafted value takes
    minutes in Python's backtracking `re`. RE2 runs it in linear time; the verdict is unchanged."""
    source = BUILTIN.replace('pattern: "^[A-Z]{3}$"', 'pattern: "^([A-Z]+)+$"', 1)
    rule = load_rule_source(source, name="expense_policy")
    fields = {"merchant": "x", "date": "2026-01-05", "total": 1.0, "currency": "A" * 40 + "!"}
    started = time.monotonic()
    verdict = evaluate(rule, fields, {})
    assert time.monotonic() - started < 2
    assert any(r["check"].startswith("schema:") for r in verdict.reasons)
    # A pattern RE2 cannot run (a repetition over 1000) runs with a timeout in the fallback engine.
    source = BUILTIN.replace('pattern: "^[A-Z]{3}$"', 'pattern: "^(([A-Z]|[A-Z]){1,2000})+$"', 1)
    rule = load_rule_source(source, name="expense_policy")
    started = time.monotonic()
    verdict = evaluate(rule, {**fields, "currency": "A" * 30 + "!"}, {})
    assert time.monotonic() - started < 2
    assert any(r["check"].startswith("schema:") for r in verdict.reasons)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", [
    "/v1/jobs", "/v1/batches", "/v1/webhooks", "/v1/redecisions", PUSH,
    "/v1/rules/expense_policy/versions/v/simulate", "/v1/jobs/some-job/reviews",
])
@pytest.mark.parametrize("shape", ["arrays", "objects", "mixed_under_limit_twice"])
def test_deeply_nested_json_is_a_problem_not_a_500(shared_app, path, shape):
    settings, client = shared_app
    headers = admin(settings, "deep-json")
    body = {
        "arrays": "[" * 100_000 + "]" * 100_000,
        "objects": '{"a":' * 100_000 + "1" + "}" * 100_000,
        # Under the interpreter's recursion limit, over Docket's: refused before any code walks it.
        "mixed_under_limit_twice": '{"rule": "expense_policy", "x": ' + '[{"a": ' * 200 + "1" + "}]" * 200 + "}",
    }[shape]
    resp = client.post(path, data=body, content_type="application/json", headers=headers)
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "application/problem+json" and resp.get_json()["code"] == "invalid_json"


def test_ordinary_bodies_and_policies_still_pass(settings, redis_url):
    """The bounds leave room: the built-in policies load, and a body nested a few levels is read."""
    load_rule_source(BUILTIN, name="expense_policy")
    for path in Path(ROOT / "rules").glob("*.yaml"):
        load_rule_source(path.read_text(), name=path.stem)
    client, headers = make_client(settings, redis_url), admin(settings, "ordinary")
    resp = client.post("/v1/webhooks", json={"url": "https://hooks.example.com/x", "event_types": ["job.succeeded"],
                                             "x": {"a": [{"b": [1, 2]}]}}, headers=headers)
    assert resp.status_code != 500 and resp.get_json().get("code") != "invalid_json"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path,content_type", [("/v1/webhooks", "application/json"), (PUSH, "application/yaml"),
                                               ("/v1/jobs", "application/json")])
def test_in_memory_bodies_are_bounded_by_one_document_not_a_batch(shared_app, path, content_type):
    """MAX_CONTENT_LENGTH is sized for a batch of uploads that stream to disk (25 GB by default);
    a JSON or YAML body is read into memory, so it may be at most one base64 document."""
    settings, client = shared_app
    headers = admin(settings, "big-bodies")
    size = settings.max_upload_bytes * 4 // 3 + (1 << 20)
    resp = client.post(path, data=b" " * size, content_type=content_type, headers=headers)
    assert resp.status_code == 413 and resp.mimetype == "application/problem+json"
    # A document at the limit, as base64 JSON, still goes through the size check of its own.
    body = b'{"rule": "expense_policy", "content_base64": "' + b"A" * (settings.max_upload_bytes * 4 // 3 + 8) + b'"}'
    resp = client.post("/v1/jobs", data=body, content_type="application/json", headers=headers)
    assert resp.status_code == 413 and resp.get_json()["code"] == "file_too_large"
