"""Policies as data through the API, in-process, on SQLite and on Postgres: push (validated by the
strict loader), versions, tenant isolation, simulation (now and in the background), activation
and roll-back, re-decision (decision history, reviews standing, second looks, job.redecided in
the outbox), re-analysis when stored fields are not enough, and the CLI. The worker's part is
played in-process with the real lifecycle (claim, succeed), and background runs are worked by
the same functions the Celery task calls."""
from __future__ import annotations

import io
import json
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api import create_app
from db.migrate import upgrade
from db.models import Decision, Document, Job, PolicyRun, WebhookDelivery
from db.queries import as_utc
from db.session import session_scope
from docket import lifecycle, policies, redecide, runs, simulation
from docket.config import Settings
from docket.rules import evaluate, load_rules
from docket.tenants import create_key
from tests.conftest import ROOT
from tests.documents import encode, receipt_image

SOURCE = (ROOT / "rules" / "expense_policy.yaml").read_text()
STRICT = SOURCE.replace("meal_cap: 100.0", "meal_cap: 30.0")


def weekday() -> str:
    day = date.today() - timedelta(days=2)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day.isoformat()


def receipt(merchant: str, total: float) -> dict:
    return {"merchant_name": merchant, "total": total, "currency": "MYR", "transaction_date": weekday()}


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKET_DATA_DIR", str(tmp_path))
    if request.param == "postgres":
        monkeypatch.setenv("DOCKET_DATABASE_URL", request.getfixturevalue("postgres_url"))
    else:
        monkeypatch.delenv("DOCKET_DATABASE_URL", raising=False)
    settings = Settings.from_env()
    upgrade(settings.database_url)
    suffix = uuid.uuid4().hex[:6]
    tenants = {"acme": f"acme-{suffix}", "globex": f"globex-{suffix}"}

    def key(role: str, tenant: str) -> dict:
        with session_scope(settings.database_url) as s:
            _, plaintext = create_key(s, tenant, role, f"{role} of {tenant}")
        return {"Authorization": f"Bearer {plaintext}"}

    keys = {"admin": key("admin", tenants["acme"]), "reviewer": key("reviewer", tenants["acme"]),
            "submitter": key("submitter", tenants["acme"]), "other": key("admin", tenants["globex"])}
    client = create_app(settings, broker_url="memory://").test_client()
    return settings, client, keys, tenants


def submit(client, headers, name: str) -> str:
    data = encode(receipt_image(date.today(), total=str(len(name))), "PNG")
    r = client.post("/v1/jobs", data={"rule": "expense_policy", "cache": "false", "file": (io.BytesIO(data), name)},
                    headers=headers)
    assert r.status_code == 202, r.get_json()
    return r.get_json()["id"]


def decide(settings: Settings, job_id: str, fields: dict) -> dict:
    """The worker's part: the job's exact submitted version applied to `fields`, stored through
    the real lifecycle (claim, succeed) as an analyzer's decision."""
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        rule = policies.submitted_rule(s, job.tenant_id, job.rule_name, job.rule_version, load_rules())
        verdict = evaluate(rule, fields, {"text": "", "pages": 1, "mime_type": "image/png", "filename": job.filename},
                           now=as_utc(job.created_at))
        attempt = lifecycle.claim(s, job_id, 600)
        assert lifecycle.succeed(s, job_id, attempt, Decision(
            job_id=job_id, decision=verdict.decision, fields=fields, reasons=verdict.reasons, confidence={},
            evidence={}, rule_name=rule.name, rule_version=rule.version, analyzer="ocr", timings={}, text=""))
    return {"decision": verdict.decision, "version": rule.version}


def problem(response, status: int, code: str) -> dict:
    body = response.get_json()
    assert (response.status_code, response.mimetype, body["code"]) == (status, "application/problem+json", code), body
    return body


def test_policy_lifecycle(stack):
    settings, client, keys, tenants = stack
    admin, reviewer, other = keys["admin"], keys["reviewer"], keys["other"]
    builtin = load_rules()["expense_policy"].version

    # Jobs decided under the built-in policy: three in a batch, one on its own, one of another tenant.
    files = [("m1.png", receipt("NASI KANDAR RESTORAN", 45.0)), ("m2.png", receipt("KOPITIAM CAFE", 60.0)),
             ("b1.png", receipt("KEDAI BUKU MAJU", 45.0))]
    batch = client.post("/v1/batches", headers=admin, data={
        "rule": "expense_policy", "cache": "false",
        "files": [(io.BytesIO(encode(receipt_image(date.today(), total=f"{i}.00"), "PNG")), n)
                  for i, (n, _) in enumerate(files)]})
    assert batch.status_code == 202, batch.get_json()
    batch_id, batch_jobs = batch.get_json()["id"], batch.get_json()["job_ids"]
    jobs = dict(zip(["m1", "m2", "b1"], batch_jobs))
    jobs["m3"] = submit(client, admin, "m3.png")
    theirs = submit(client, other, "g1.png")
    fields = {"m1": receipt("NASI KANDAR RESTORAN", 45.0), "m2": receipt("KOPITIAM CAFE", 60.0),
              "b1": receipt("KEDAI BUKU MAJU", 45.0), "m3": receipt("DIM SUM RESTAURANT", 150.0)}
    before = {name: decide(settings, job_id, fields[name]) for name, job_id in jobs.items()}
    decide(settings, theirs, receipt("NASI KANDAR RESTORAN", 45.0))
    assert {n: b["decision"] for n, b in before.items()} == {
        "m1": "approve", "m2": "approve", "b1": "approve", "m3": "needs_review"}
    assert {b["version"] for b in before.values()} == {builtin}

    # Push: refused with the line and key when invalid (nothing stored), stored as a draft otherwise.
    broken = STRICT.replace("    outcome: reject\n    message:\n      en: \"Receipts older",
                            "    outcome: maybe\n    message:\n      en: \"Receipts older")
    body = problem(client.post("/v1/rules/expense_policy/versions", data=broken, headers={
        **admin, "Content-Type": "application/yaml"}), 422, "invalid_rule")
    assert body["key"] == "checks[3].outcome" and body["line"] == broken.splitlines().index("    outcome: maybe") + 1
    assert f"line {body['line']}" in body["detail"]
    body = problem(client.post("/v1/rules/expense_policy/versions", json={"source": STRICT.replace(
        "fields.total <= params.meal_cap\n", "fields.total <= params.meal_capp\n")}, headers=admin), 422, "invalid_rule")
    assert body["key"] == "checks[7].expr" and "params.meal_capp" in body["detail"]
    problem(client.post("/v1/rules/contract_review/versions", json={"source": STRICT}, headers=admin), 422,
            "invalid_rule")  # the name inside must be the policy's
    problem(client.post("/v1/rules/expense_policy/versions", json={"source": STRICT}, headers=reviewer), 403,
            "forbidden")
    assert [v["builtin"] for v in client.get("/v1/rules/expense_policy/versions", headers=admin)
            .get_json()["versions"]] == [True]
    r = client.post("/v1/rules/expense_policy/versions", data=STRICT, headers={**admin, "Content-Type": "application/yaml"})
    assert r.status_code == 201, r.get_json()
    strict = r.get_json()
    assert (strict["name"], strict["status"], strict["version"].startswith("sha256:")) == ("expense_policy", "draft", True)
    assert r.headers["Location"].endswith(f"/v1/rules/expense_policy/versions/{strict['version']}")
    again = client.post("/v1/rules/expense_policy/versions", json={"source": STRICT}, headers=admin)
    assert again.status_code == 200 and again.get_json()["version"] == strict["version"]
    listed = client.get("/v1/rules/expense_policy/versions", headers=reviewer).get_json()
    assert [(v["version"], v["status"]) for v in listed["versions"]] == [(strict["version"], "draft"),
                                                                       (builtin, "active")]
    assert listed["active"] == builtin
    shown = client.get(f"/v1/rules/expense_policy/versions/{strict['version'][:20]}", headers=reviewer).get_json()
    assert shown["source"] == STRICT and shown["params"]["meal_cap"] == 30.0 and shown["created_by"].startswith("admin of")
    assert client.get(f"/v1/rules/expense_policy/versions/{builtin}", headers=reviewer).get_json()["source"] == SOURCE

    # Another tenant sees none of it, and cannot touch it.
    problem(client.get(f"/v1/rules/expense_policy/versions/{strict['version']}", headers=other), 404, "not_found")
    problem(client.post(f"/v1/rules/expense_policy/versions/{strict['version']}/activate", headers=other), 404,
            "not_found")
    assert [v["version"] for v in client.get("/v1/rules/expense_policy/versions", headers=other)
            .get_json()["versions"]] == [builtin]

    # Simulate: stored fields, nothing changes; the stricter cap sends two approvals to review.
    url = f"/v1/rules/expense_policy/versions/{strict['version']}/simulate"
    problem(client.post(url, json={}, headers=keys["submitter"]), 403, "forbidden")
    sim = client.post(url, json={}, headers=reviewer).get_json()
    assert (sim["evaluated"], sim["changed"], sim["transitions"]) == (4, 2, {"approve→needs_review": 2})
    assert sim["examples"] == {"approve→needs_review": [jobs["m1"], jobs["m2"]]}
    assert sim["checks"] == {"meal_cap": {"before": 1, "after": 3, "change": 2}}
    assert sim["unchanged"] == {"approve": 1, "needs_review": 1} and sim["stored_fields_sufficient"] is True
    assert client.post(url, json={"batch": batch_id}, headers=reviewer).get_json()["evaluated"] == 3
    assert client.post(url, json={"filter": {"decision": "needs_review"}}, headers=reviewer).get_json()["changed"] == 0
    problem(client.post(url, json={"decision": "maybe"}, headers=reviewer), 400, "invalid_filter")
    problem(client.post(url, json={"since": "yesterday"}, headers=reviewer), 400, "invalid_filter")
    with session_scope(settings.database_url) as s:
        assert s.query(Decision).join(Job).filter(Job.tenant_id == tenants["acme"]).count() == 4

    # In the background: 202, a run to poll, worked by the task's own functions, the same answer.
    r = client.post(url, json={"background": True}, headers=reviewer)
    assert r.status_code == 202 and r.headers["Location"] == f"/v1/simulations/{r.get_json()['id']}"
    assert r.get_json()["status"] == "queued" and r.get_json()["total"] == 4
    step = simulation.background_step(load_rules(), chunk=3)  # two chunks
    assert runs.drive(settings.database_url, r.get_json()["id"], step) == "succeeded"
    assert runs.drive(settings.database_url, r.get_json()["id"], step) == "skipped"  # a redelivery
    polled = client.get(r.headers["Location"], headers=reviewer).get_json()
    assert (polled["status"], polled["processed"], polled["progress"]) == ("succeeded", 4, 1.0)
    assert {k: polled["result"][k] for k in ("evaluated", "changed", "transitions", "checks", "examples")} == \
        {k: sim[k] for k in ("evaluated", "changed", "transitions", "checks", "examples")}
    problem(client.get(r.headers["Location"], headers=other), 404, "not_found")

    # Activate: acme's new submissions use the stricter version (the worker resolves it exactly);
    # globex keeps the built-in.
    problem(client.post(f"/v1/rules/expense_policy/versions/{strict['version']}/activate", headers=reviewer), 403,
            "forbidden")
    act = client.post(f"/v1/rules/expense_policy/versions/{strict['version']}/activate", headers=admin).get_json()
    assert (act["status"], act["action"], act["previous_version"]) == ("active", "activate", builtin)
    rules_of = {t: {r["name"]: r for r in client.get("/v1/rules", headers=h).get_json()["rules"]}
                for t, h in (("acme", admin), ("globex", other))}
    assert rules_of["acme"]["expense_policy"]["version"] == strict["version"]
    assert not rules_of["acme"]["expense_policy"]["builtin"]
    assert rules_of["globex"]["expense_policy"]["version"] == builtin
    assert rules_of["acme"]["contract_review"]["builtin"]
    fresh = submit(client, admin, "m4.png")
    assert client.get(f"/v1/jobs/{fresh}", headers=admin).get_json()["rule"]["version"] == strict["version"]
    assert decide(settings, fresh, receipt("NASI KANDAR RESTORAN", 45.0)) == {
        "decision": "needs_review", "version": strict["version"]}
    assert client.get(f"/v1/jobs/{submit(client, other, 'g2.png')}", headers=other).get_json()["rule"]["version"] == builtin
    # The analyzer's decision is unique per job and analysis round: a redelivery adds nothing.
    with pytest.raises(IntegrityError), session_scope(settings.database_url) as s:
        s.add(Decision(job_id=fresh, tenant_id=tenants["acme"], decision="approve", fields={}, reasons=[],
                       confidence={}, evidence={}, rule_name="expense_policy", rule_version=builtin, analyzer="ocr",
                       timings={}))

    # A person reviews m2 before the re-decision: that review will stand.
    r = client.post(f"/v1/jobs/{jobs['m2']}/reviews", headers=reviewer,
                    json={"decision": "approve", "comment": "team lunch, pre-approved"})
    assert r.status_code == 201

    # Re-decide the batch under the active version.
    sub = client.post("/v1/webhooks", headers=admin, json={"url": "https://hooks.example.com/docket",
                                                          "event_types": ["job.redecided"]})
    assert sub.status_code == 201, sub.get_json()
    problem(client.post("/v1/redecisions", json={"rule": "expense_policy", "filter": {"batch": batch_id}},
                        headers=reviewer), 403, "forbidden")
    r = client.post("/v1/redecisions", json={"rule": "expense_policy", "version": strict["version"],
                                             "filter": {"batch": batch_id}}, headers=admin)
    assert r.status_code == 202, r.get_json()
    run = r.get_json()
    assert (run["status"], run["total"], run["kind"]) == ("queued", 3, "redecision")
    assert r.headers["Location"] == f"/v1/redecisions/{run['id']}"
    assert redecide.execute(settings.database_url, run["id"], load_rules(), chunk=2) == "succeeded"
    assert redecide.execute(settings.database_url, run["id"], load_rules()) == "skipped"
    done = client.get(f"/v1/redecisions/{run['id']}", headers=reviewer).get_json()
    assert (done["status"], done["processed"], done["changed"], done["flagged"]) == ("succeeded", 3, 2, 1)
    assert done["result"]["transitions"] == {"approve→needs_review": 2}
    problem(client.get(f"/v1/redecisions/{run['id']}", headers=other), 404, "not_found")

    got = {n: client.get(f"/v1/jobs/{jobs[n]}", headers=admin).get_json() for n in jobs}
    m1 = got["m1"]
    assert (m1["decision"], m1["analyzer_decision"], m1["rule"]["version"]) == ("needs_review", "needs_review",
                                                                              strict["version"])
    assert [(d["kind"], d["decision"], d["rule"]["version"], d["current"]) for d in m1["decisions"]] == [
        ("redecision", "needs_review", strict["version"], True), ("analysis", "approve", builtin, False)]
    assert m1["decisions"][0]["redecision_id"] == run["id"] and m1["second_look"] is None
    assert any(reason["check"] == "meal_cap" for reason in m1["reasons"])
    m2 = got["m2"]  # reviewed: the review stands, and the job asks for a second look
    assert (m2["decision"], m2["analyzer_decision"]) == ("approve", "needs_review")
    assert "review stands" in m2["second_look"]["reason"]
    assert [d["decision"] for d in m2["decisions"]] == ["needs_review", "approve"]
    assert [d["decision"] for d in got["b1"]["decisions"]] == ["approve", "approve"]  # a new row, unchanged
    assert len(got["m3"]["decisions"]) == 1 and got["m3"]["rule"]["version"] == builtin  # not in the batch
    listed = client.get(f"/v1/jobs?batch={batch_id}&decision=needs_review", headers=admin).get_json()["jobs"]
    assert [j["id"] for j in listed] == [jobs["m1"]]
    theirs_now = client.get(f"/v1/jobs/{theirs}", headers=other).get_json()
    assert (theirs_now["decision"], len(theirs_now["decisions"])) == ("approve", 1)
    with session_scope(settings.database_url) as s:
        events = s.scalars(select(WebhookDelivery).where(WebhookDelivery.event_type == "job.redecided")
                           .where(WebhookDelivery.tenant_id.in_(tenants.values()))).all()
        payloads = {e.job_id: e.payload["data"] for e in events}
    assert set(payloads) == {jobs["m1"], jobs["m2"]}
    assert payloads[jobs["m1"]]["redecision"] == {"id": run["id"], "from": "approve", "to": "needs_review",
                                                  "rule": {"name": "expense_policy", "version": strict["version"]},
                                                  "review_stands": False}
    assert payloads[jobs["m2"]]["redecision"]["review_stands"] and payloads[jobs["m2"]]["decision"] == "approve"
    # A second look is cleared by the next review.
    client.post(f"/v1/jobs/{jobs['m2']}/reviews", headers=reviewer, json={"decision": "approve", "comment": "seen"})
    assert client.get(f"/v1/jobs/{jobs['m2']}", headers=admin).get_json()["second_look"] is None

    # Roll back to the built-in: recorded (who, when, from what); globex never moved.
    back = client.post(f"/v1/rules/expense_policy/versions/{builtin}/activate", headers=admin).get_json()
    assert (back["action"], back["previous_version"], back["builtin"]) == ("rollback", strict["version"], True)
    listed = client.get("/v1/rules/expense_policy/versions", headers=admin).get_json()
    assert listed["active"] == builtin
    assert [(a["action"], a["version"]) for a in listed["activations"]] == [("rollback", builtin),
                                                                           ("activate", strict["version"])]
    assert all(a["by"].startswith("admin of") and a["at"] for a in listed["activations"])
    assert {v["version"]: v["status"] for v in listed["versions"]} == {strict["version"]: "retired", builtin: "active"}
    assert [v["status"] for v in client.get("/v1/rules/expense_policy/versions", headers=other)
            .get_json()["versions"]] == ["active"]

    # A version that changes the prompt: stored fields cannot show it; re-analysis re-queues jobs.
    reworded = client.post("/v1/rules/expense_policy/versions", headers=admin, json={
        "source": STRICT.replace("You are reading a receipt", "You are reading a receipt or a bill")}).get_json()
    sim = client.post(f"/v1/rules/expense_policy/versions/{reworded['version']}/simulate", json={},
                      headers=admin).get_json()
    assert sim["stored_fields_sufficient"] is False and sim["reanalysis"]["because"] == ["prompt"]
    decide(settings, submit(client, other, "g3.png"), receipt("KEDAI BUKU MAJU", 12.0))  # the newest decision: not ours
    body = problem(client.post("/v1/redecisions", headers=admin, json={
        "rule": "expense_policy", "version": reworded["version"], "filter": {"batch": batch_id}}),
        409, "reanalysis_required")
    assert body["because"] == ["prompt"] and "reanalyze" in body["detail"]
    r = client.post("/v1/redecisions", headers=admin, json={"rule": "expense_policy", "version": reworded["version"],
                                                            "filter": {"batch": batch_id}, "reanalyze": True})
    assert r.status_code == 202 and r.get_json()["kind"] == "reanalysis"
    published = []
    assert redecide.execute(settings.database_url, r.get_json()["id"], load_rules(),
                            publish=lambda session, js: published.extend(j.id for j in js)) == "succeeded"
    assert sorted(published) == sorted([jobs["m1"], jobs["b1"]])  # m2 was reviewed: not re-queued
    run = client.get(f"/v1/redecisions/{r.get_json()['id']}", headers=admin).get_json()
    assert run["result"] == {"requeued": 2, "skipped_reviewed": 1} and run["flagged"] == 1
    queued = client.get(f"/v1/jobs/{jobs['m1']}", headers=admin).get_json()
    assert queued["status"] == "queued" and queued["decision"] == "needs_review"  # the old one, until analysed
    assert decide(settings, jobs["m1"], fields["m1"])["version"] == reworded["version"]
    with session_scope(settings.database_url) as s:
        origins = s.scalars(select(Decision.origin).where(Decision.job_id == jobs["m1"]).order_by(Decision.id)).all()
    assert origins == ["analysis:0", f"run:{done['id']}", "analysis:1"]
    assert len(client.get(f"/v1/jobs/{jobs['m1']}", headers=admin).get_json()["decisions"]) == 3


def test_cli(tmp_path):
    from click.testing import CliRunner

    from docket.cli import main

    env = {k: None for k in ("DOCKET_DATABASE_URL", "DOCKET_REDIS_URL", "DOCKET_RULES_DIR")}
    env["DOCKET_DATA_DIR"] = str(tmp_path / "data")
    strict = tmp_path / "expense_policy.yaml"
    strict.write_text(STRICT)
    broken = tmp_path / "broken.yaml"
    broken.write_text(STRICT.replace("meal_cap: 30.0", "meal_cap: 30.0\n  meal_cap: 40.0"))
    runner = CliRunner()

    def docket(*args, ok=True):
        out = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert (out.exit_code == 0) == ok, out.output
        return out

    assert "valid (15 checks)" in docket("rules", "validate", str(strict)).stdout
    assert "duplicate key 'meal_cap'" in docket("rules", "validate", str(broken), ok=False).stderr
    version = docket("rules", "push", str(strict), "--tenant", "acme", "--by", "finance").stdout.strip()
    assert version.startswith("sha256:")

    # Two decided jobs of tenant acme, as the worker would have stored them.
    with session_scope(f"sqlite:///{tmp_path / 'data' / 'docket.db'}") as s:
        s.add(Document(sha256="d" * 64, mime_type="image/png", size=1, page_count=1, storage_path="dd/d.png"))
        s.flush()
        rule = load_rules()["expense_policy"]
        for i, total in enumerate((45.0, 150.0)):
            fields = receipt("NASI KANDAR RESTORAN", total)
            job = Job(id=f"job{i}", tenant_id="acme", document_sha256="d" * 64, rule_name=rule.name,
                      rule_version=rule.version, analyzer="ocr", status="succeeded", attempts=1)
            s.add(job)
            s.flush()
            verdict = evaluate(rule, fields, {}, now=as_utc(job.created_at))
            s.add(Decision(job_id=job.id, tenant_id="acme", decision=verdict.decision, fields=fields,
                           reasons=verdict.reasons, confidence={}, evidence={}, rule_name=rule.name,
                           rule_version=rule.version, analyzer="ocr", timings={}))
            job.current_decision = verdict.decision

    out = docket("rules", "simulate", "expense_policy", "--version", version[:20], "--tenant", "acme").stdout
    assert "2 job(s) evaluated, 1 would change" in out and "approve→needs_review" in out and "job0" in out
    sim = json.loads(docket("rules", "simulate", "expense_policy", "--version", version, "--tenant", "acme",
                            "--decision", "approve", "--json").stdout)
    assert sim["transitions"] == {"approve→needs_review": 1}
    assert "no version" in docket("rules", "simulate", "expense_policy", "--version", "sha256:00000000",
                                  "--tenant", "other", ok=False).stderr.lower()
    assert "(activate; was sha256:" in docket("rules", "activate", "expense_policy", version, "--tenant", "acme").stdout
    out = docket("rules", "redecide", "expense_policy", "--tenant", "acme", "--by", "finance")
    body = json.loads(out.stdout)
    assert (body["status"], body["processed"], body["changed"]) == ("succeeded", 2, 1)
    with session_scope(f"sqlite:///{tmp_path / 'data' / 'docket.db'}") as s:
        job = s.get(Job, "job0")
        assert (job.current_decision, [d.decision for d in job.decisions]) == ("needs_review", ["needs_review", "approve"])
        assert job.decisions[0].created_by == "finance"
        assert s.get(PolicyRun, body["id"]).created_by == "finance"


def test_simulation_facts_match_the_workers(settings):
    """Simulations compute near-duplicates and earlier invoice claims for many jobs from one read;
    they must be what the worker's per-job queries (docket.duplicates, docket.invoice_facts) find."""
    import random
    from datetime import datetime, timezone

    from docket import duplicates, invoice_facts

    rng = random.Random(3)
    t0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    base = rng.getrandbits(64)
    with session_scope(settings.database_url) as s:
        create_key(s, "acme", "admin")
        create_key(s, "globex", "admin")
        rule = load_rules()["expense_policy"]
        for i in range(60):
            phash = base ^ (1 << rng.randrange(64)) if i % 3 == 0 else rng.getrandbits(64)
            if i % 11 == 0:
                phash = None
            sha = f"{i:064x}"
            phash = None if phash is None else f"{phash:016x}"
            s.add(Document(sha256=sha, mime_type="image/png", size=1, page_count=1, storage_path=f"{i}.png",
                           phash=phash))
            fields = {"merchant_name": "SHOP", "total": 10.0, "transaction_date": "2026-03-01",
                      "invoice_number": f"{i % 7:08d}", "seller_tax_id": "91350211MA2YJ6X64U"}
            created = t0 + timedelta(minutes=i // 2)  # pairs share a timestamp
            tenant = "globex" if i % 10 == 9 else "acme"
            job = Job(id=f"job{i:03d}", tenant_id=tenant, document_sha256=sha, phash=phash, rule_name=rule.name,
                      rule_version=rule.version, analyzer="ocr", status="succeeded", attempts=1, created_at=created,
                      **queue_values_for(fields))
            s.add(job)
            s.flush()
            s.add(Decision(job_id=job.id, tenant_id=tenant, decision="approve", fields=fields, reasons=[],
                           confidence={}, evidence={}, rule_name=rule.name, rule_version=rule.version,
                           analyzer="ocr", timings={}))
    with session_scope(settings.database_url) as s:
        rows = simulation.load_chunk(s, "acme", "expense_policy", simulation.PolicyFilter(), after=None, limit=100)
        facts = simulation.Facts(s, "acme", rule, duplicate_distance=6)
        facts.prepare(s, rows)
        assert facts.near and facts.history and len(rows) == 54
        for row in rows:
            job = s.get(Job, row.id)
            expected = (duplicates.earlier_near_duplicates(s, job, row.phash, 6) if row.phash else [])
            got = facts.document(row)
            assert (got["near_duplicate"], got["duplicate_of"]) == (bool(expected), expected[0] if expected else ""), row.id
            assert facts._near_duplicates(row) == expected, row.id
            earlier = invoice_facts.earlier_claim(s, job, row.fields)
            assert (got["duplicate_invoice"], got["duplicate_invoice_of"]) == (earlier is not None, earlier or ""), row.id
        assert any(facts._near_duplicates(r) for r in rows) and any(facts.document(r)["duplicate_invoice"] for r in rows)


def queue_values_for(fields: dict) -> dict:
    from db.review_queue import queue_values

    return queue_values("approve", fields)
