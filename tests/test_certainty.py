"""Certainty in the policy (issue 20): a rule's `certainty:` map names the fields its decision
rests on and the least confidence each must have been read with; below it (or with none recorded)
the job goes to a person with an `uncertain_field` reason naming the field, its value, confidence
and evidence box. Values from an e-invoice's own data or a verified QR code are exact. The test
is part of the policy version, so simulations and re-decisions apply it with stored confidences."""
from __future__ import annotations

import io
import textwrap
from datetime import date, timedelta

import pytest
import yaml

from api import create_app
from db.models import Decision, Job
from db.queries import as_utc
from db.session import session_scope
from docket import lifecycle, policies
from docket.rules import RuleError, evaluate, load_rule, load_rule_source, load_rules
from docket.tenants import create_key
from tests.conftest import ROOT
from tests.documents import encode, receipt_image

RULE = textwrap.dedent("""\
    name: certain
    description: A receipt whose total and date must be read with certainty.
    document_type: receipt
    params: {cap: 100.0}
    prompt: Read the receipt.
    certainty:
      total: 0.97
      transaction_date: 0.95
    fields:
      type: object
      required: [total]
      properties:
        total: {type: number}
        transaction_date: {type: string}
        merchant_name: {type: string}
    checks:
      - id: cap
        expr: "fields.total <= params.cap"
        outcome: reject
        message: "over the cap"
    """)
FIELDS = {"total": 42.5, "transaction_date": "2024-05-06", "merchant_name": "Kedai"}
BOX = [[10.0, 20.4, 110.0, 40.0, 0]]


def rule(source: str = RULE, **change):
    data = yaml.safe_load(source)
    data.update(change)
    return load_rule_source(yaml.safe_dump(data, allow_unicode=True), name=data["name"])


def uncertain(verdict) -> list[dict]:
    return [r for r in verdict.reasons if r["check"] == "uncertain_field"]


def test_certainty_loads_and_is_validated(tmp_path):
    loaded = rule()
    assert loaded.certainty == {"total": 0.97, "transaction_date": 0.95}
    assert rule(certainty={}).certainty == {} and "certainty" not in yaml.safe_load(
        (ROOT / "rules" / "screenshot_moderation.yaml").read_text())
    with pytest.raises(RuleError, match="certainty names field 'amount'") as exc:
        rule(certainty={"amount": 0.9})
    assert exc.value.key == "certainty.amount"
    for bad in (1.5, -0.1, "high", True):
        with pytest.raises(RuleError, match="certainty"):
            rule(certainty={"total": bad})
    path = tmp_path / "certain.yaml"
    path.write_text(RULE)
    assert load_rule(path).certainty == loaded.certainty


def test_shipped_expense_policy_names_its_certain_fields():
    certainty = load_rules()["expense_policy"].certainty
    assert {"total", "transaction_date"} <= set(certainty)
    assert all(0.0 < v <= 1.0 for v in certainty.values())


def test_low_confidence_goes_to_review_naming_field_value_confidence_and_box():
    verdict = evaluate(rule(), FIELDS, {}, confidence={"total": 0.72, "transaction_date": 0.99},
                       evidence={"total": BOX}, sources={"total": "ocr"})
    assert verdict.decision == "needs_review"
    [reason] = uncertain(verdict)
    assert reason["outcome"] == "needs_review" and reason["rule"] == "certain"
    assert (reason["field"], reason["value"], reason["confidence"], reason["threshold"]) == ("total", 42.5, 0.72, 0.97)
    assert reason["evidence"] == BOX
    for part in ("total", "42.5", "0.72", "0.97", "[10, 20, 110, 40, 0]"):
        assert part in reason["message"], reason["message"]


def test_high_confidence_approves_and_each_uncertain_field_is_named():
    sure = {"total": 0.97, "transaction_date": 0.951, "merchant_name": 0.1}  # merchant_name is not named
    assert evaluate(rule(), FIELDS, {}, confidence=sure).decision == "approve"
    both = evaluate(rule(), FIELDS, {}, confidence={"total": 0.5, "transaction_date": 0.94})
    assert [r["field"] for r in uncertain(both)] == ["total", "transaction_date"]


def test_missing_confidence_is_uncertain_and_absent_fields_are_not_judged():
    verdict = evaluate(rule(), FIELDS, {}, confidence={"transaction_date": 0.99})
    [reason] = uncertain(verdict)
    assert reason["field"] == "total" and reason["confidence"] is None
    assert "no recorded confidence" in reason["message"] and "no evidence box" in reason["message"]
    # A field that was not found is the schema's business (required:*), not a certainty one.
    no_date = evaluate(rule(), {"total": 10.0}, {}, confidence={"total": 0.99})
    assert (no_date.decision, uncertain(no_date)) == ("approve", [])
    # Without any analysis (a test of the checks alone) the certainty test is not applied.
    assert evaluate(rule(), FIELDS, {}).decision == "approve"


def test_embedded_xml_and_verified_qr_values_are_certain():
    confidence = {"total": 0.3, "transaction_date": 0.2}
    verdict = evaluate(rule(), FIELDS, {}, confidence=confidence,
                       sources={"total": "embedded_xml", "transaction_date": "qr"})
    assert (verdict.decision, uncertain(verdict)) == ("approve", [])
    text_layer = evaluate(rule(), FIELDS, {}, confidence=confidence, sources={"total": "text_layer", "transaction_date": "qr"})
    assert [r["field"] for r in uncertain(text_layer)] == ["total"]


def test_a_reject_stays_a_reject():
    verdict = evaluate(rule(), {**FIELDS, "total": 500.0}, {}, confidence={"total": 0.1, "transaction_date": 1.0})
    assert verdict.decision == "reject"  # decisions only get stricter
    assert {r["check"] for r in verdict.reasons} == {"cap", "uncertain_field"}


def _weekday() -> str:
    day = date.today() - timedelta(days=2)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day.isoformat()


def client_and_key(settings, role: str = "admin"):
    client = create_app(settings, broker_url="memory://").test_client()
    with session_scope(settings.database_url) as s:
        _, token = create_key(s, "acme", role, role)
    return client, {"Authorization": f"Bearer {token}"}


def record_job(settings, client, headers, name: str, total_confidence: float | None) -> str:
    """Submit a receipt and play the worker's part: the submitted version applied to the fields
    with their confidences (the total's as given, None: not recorded), stored as the analyzer's."""
    data = encode(receipt_image(date.today(), total="12.00"), "PNG")
    r = client.post("/v1/jobs", data={"rule": "expense_policy", "cache": "false", "file": (io.BytesIO(data), name)},
                    headers=headers)
    assert r.status_code == 202, r.get_json()
    job_id = r.get_json()["id"]
    fields = {"merchant_name": "KEDAI BUKU", "total": 12.0, "currency": "MYR", "transaction_date": _weekday()}
    confidence = {k: 1.0 for k in fields}
    if total_confidence is None:
        del confidence["total"]
    else:
        confidence["total"] = total_confidence
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        rule_now = policies.submitted_rule(s, job.tenant_id, job.rule_name, job.rule_version, load_rules())
        verdict = evaluate(rule_now, fields, {"text": "", "pages": 1, "mime_type": "image/png", "filename": name},
                           now=as_utc(job.created_at), confidence=confidence)
        attempt = lifecycle.claim(s, job_id, 600)
        assert lifecycle.succeed(s, job_id, attempt, Decision(
            job_id=job_id, decision=verdict.decision, fields=fields, reasons=verdict.reasons,
            confidence=confidence, evidence={"total": BOX}, rule_name=rule_now.name,
            rule_version=rule_now.version, analyzer="ocr", timings={}, text=""))
    return job_id


def test_simulating_a_threshold_change_uses_stored_confidences(settings):
    client, admin = client_and_key(settings)
    source = (ROOT / "rules" / "expense_policy.yaml").read_text()
    shipped = load_rules()["expense_policy"]
    totals = {"sure.png": 0.99, "unsure.png": 0.93, "unknown.png": None}
    jobs = {name: record_job(settings, client, admin, name, sure) for name, sure in totals.items()}
    decided = {n: client.get(f"/v1/jobs/{j}", headers=admin).get_json() for n, j in jobs.items()}
    assert decided["sure.png"]["confidence"]["total"] == 0.99  # confidence per field in the job JSON, as before
    threshold = shipped.certainty["total"]
    expected = {n: "approve" if (c or 0) >= threshold else "needs_review" for n, c in totals.items()}
    assert {n: d["decision"] for n, d in decided.items()} == expected
    assert "uncertain_field" in {r["check"] for r in decided["unknown.png"]["reasons"]}

    # A version that trusts totals read at 0.9: the 0.93 one would be approved; the unknown one stays.
    data = yaml.safe_load(source)
    assert data["certainty"]["total"] == threshold
    lenient = source.replace(f"  total: {threshold}", "  total: 0.9", 1)
    assert load_rule_source(lenient, name="expense_policy").certainty["total"] == 0.9
    r = client.post("/v1/rules/expense_policy/versions", json={"source": lenient}, headers=admin)
    assert r.status_code == 201, r.get_json()
    sim = client.post(f"/v1/rules/expense_policy/versions/{r.get_json()['version']}/simulate", json={},
                      headers=admin).get_json()
    assert (sim["evaluated"], sim["changed"], sim["transitions"]) == (3, 1, {"needs_review→approve": 1})
    assert sim["examples"] == {"needs_review→approve": [jobs["unsure.png"]]}
    assert sim["checks"] == {"uncertain_field": {"before": 2, "after": 1, "change": -1}}
    assert sim["stored_fields_sufficient"] is True


def test_stats_and_overview_show_automation_rate_and_corrections(settings):
    client, admin = client_and_key(settings)
    empty = client.get("/v1/stats", headers=admin).get_json()
    assert (empty["automation_rate"], empty["corrections"]) == (None, {})
    jobs = [record_job(settings, client, admin, f"r{i}.png", c) for i, c in enumerate((0.99, 0.99, 0.99, 0.5))]
    stats = client.get("/v1/stats", headers=admin).get_json()
    assert stats["decided"] == 4 and stats["by_decision"] == {"approve": 3, "needs_review": 1, "reject": 0}
    assert stats["automation_rate"] == 0.75 and stats["corrections"] == {}

    # Reviewers correct the total twice and the date once; a review without corrections counts none.
    for job_id, fields in ((jobs[3], {"total": 21.0}), (jobs[0], {"total": 13.0, "transaction_date": "2020-01-06"}),
                           (jobs[1], None)):
        body = {"decision": "approve", "comment": "checked"} | ({"fields": fields} if fields else {})
        r = client.post(f"/v1/jobs/{job_id}/reviews", json=body, headers=admin)
        assert r.status_code == 201, r.get_json()
    stats = client.get("/v1/stats", headers=admin).get_json()
    assert stats["corrections"] == {"total": 2, "transaction_date": 1}
    # Automation is the policy's own doing: a person approving the uncertain one does not raise it.
    assert stats["automation_rate"] == 0.75 and stats["by_decision"]["approve"] == 4
    assert client.get("/v1/stats?rule=contract_review", headers=admin).get_json()["corrections"] == {}
    old = client.get("/v1/stats?since=2000-01-01T00:00:00Z&until=2000-02-01T00:00:00Z", headers=admin).get_json()
    assert (old["automation_rate"], old["corrections"]) == (None, {})

    # The dashboard overview shows both.
    html = _overview_html(client, admin)
    assert 'id="stat-automation">75.0%<' in html
    assert '<th scope="row" translate="no">total</th><td class="num">2</td>' in html
    assert '<th scope="row" translate="no">transaction_date</th><td class="num">1</td>' in html


def _overview_html(client, headers) -> str:
    token = headers["Authorization"].split(" ", 1)[1]
    page = client.get("/dashboard").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = client.post("/dashboard/sign-in", data={"key": token, "csrf_token": csrf})
    assert r.status_code in (302, 303), r.get_data(as_text=True)[:500]
    r = client.get("/dashboard/overview")
    assert r.status_code == 200
    return r.get_data(as_text=True)
