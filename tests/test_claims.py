"""Expense claims (issue 21) over HTTP, on the embedded SQLite database with the Flask test client
and the worker's part played in-process on real documents: a hotel VAT e-invoice (OFD) and two
China Railway tickets (photos, OCR). One app and one analysis per document for the module; the
claim checks' CEL is also exercised alone on hand-made documents for the cases no real document
here covers (meals, nights printed on the invoice), and the policy bounds on bad claim checks."""
from __future__ import annotations

import csv
import io
import json
from decimal import ROUND_HALF_UP, Decimal

import pytest

from db.claims import Claim
from db.models import WebhookDelivery, WebhookSubscription
from db.session import session_scope
from docket.rules import RuleError, load_rule_source, load_rules
from docket.rules.claim_checks import evaluate_claim
from tests.devdata import REPO_DATA, dev_set

HOTEL = REPO_DATA / "cn-fapiao-dev" / "files" / "renoyuan__25924000000001260164.ofd"  # 青岛, 2025-04-01, CNY 379
TO_QINGDAO = REPO_DATA / "cn-train-tickets-dev" / "images" / "20190827_163606.jpg"  # 日照西→青岛北 2019-04-21
NANJING_BEIJING = "images/20190827_180923.jpg"  # 南京南→北京南 2015-07-10 (../shared/data only)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from _pytest.monkeypatch import MonkeyPatch

    from api import create_app
    from db.migrate import upgrade
    from docket.config import Settings
    from docket.tenants import create_key
    from worker import tasks

    with MonkeyPatch.context() as mp:
        mp.delenv("DOCKET_DATABASE_URL", raising=False)
        mp.setenv("DOCKET_DATA_DIR", str(tmp_path_factory.mktemp("claims")))
        settings = Settings.from_env()
        upgrade(settings.database_url)
        mp.setattr(tasks, "settings", settings)

        def key(role, tenant="acme", name=None):
            with session_scope(settings.database_url) as s:
                _, plaintext = create_key(s, tenant, role, name)
            return {"Authorization": f"Bearer {plaintext}"}

        keys = {"submitter": key("submitter", name="Li Lei"), "admin": key("admin", name="Finance"),
                "reviewer": key("reviewer", name="Wang Fang"), "other": key("admin", "globex")}
        with session_scope(settings.database_url) as s:  # the tenant exists now
            s.add(WebhookSubscription(tenant_id="acme", url="https://hooks.example.com/claims",
                                      event_types=["claim.decided"], secret="whsec_" + "A" * 32, active=True))
        client = create_app(settings, broker_url="memory://").test_client()
        yield {"settings": settings, "client": client, **keys}


def analyze(env, job_id: str) -> None:
    """The worker's part, for real: claim the job, read the document, decide, finish."""
    from docket import lifecycle
    from worker import tasks

    with session_scope(env["settings"].database_url) as s:
        job, document = lifecycle.claim_with_document(s, job_id, 600)
        assert tasks._check(s, job, document, tasks._read(job, document), job.attempts)


def submit(env, header, paths, **extra):
    data = {"rule": "expense_policy", "claim": json.dumps(header, ensure_ascii=False),
            "files": [(open(p, "rb"), p.name) for p in paths]}
    r = env["client"].post("/v1/claims", data=data, headers={**env["submitter"], **extra.pop("headers", {})},
                           content_type="multipart/form-data")
    return r


def decided(env, header, paths) -> dict:
    r = submit(env, header, paths)
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert r.headers["Location"] == f"/v1/claims/{body['id']}" and len(body["job_ids"]) == len(paths)
    claim = env["client"].get(f"/v1/claims/{body['id']}", headers=env["submitter"]).get_json()
    assert claim["status"] == "open" and claim["decision"] is None
    for job_id in body["job_ids"]:
        analyze(env, job_id)
    claim = env["client"].get(f"/v1/claims/{body['id']}", headers=env["submitter"]).get_json()
    assert claim["status"] == "decided" and claim["job_ids"] == body["job_ids"]
    return claim


def fired(claim, check) -> list[list[str]]:
    return [r["job_ids"] for r in claim["reasons"] if r["check"] == check]


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def test_trip_with_railway_tickets(env):
    """Qingdao trip 2019-04-22..24: the ticket to Qingdao the day before is within the travel slack;
    a 2015 Nanjing-Beijing ticket is outside the dates and off the route; the claimed amount is wrong."""
    other = dev_set("cn-train-tickets-dev") / NANJING_BEIJING
    header = {"employee": "Li Lei", "purpose": "Customer visit", "claimed_amount": 100,
              "trip": {"start": "2019-04-22", "end": "2019-04-24", "destination": "青岛市", "origin": "日照"}}
    claim = decided(env, header, [TO_QINGDAO, other])
    to_qingdao, nanjing = claim["job_ids"]
    assert fired(claim, "outside_trip_dates") == [[nanjing]]
    assert fired(claim, "trip_route_mismatch") == [[nanjing]]
    assert fired(claim, "claimed_total_mismatch") == [[to_qingdao, nanjing]]
    assert not fired(claim, "duplicate_across_claims") and not fired(claim, "lodging_over_city_cap")
    route = next(r for r in claim["reasons"] if r["check"] == "trip_route_mismatch")
    assert "南京南站" in route["message"] and "北京南站" in route["message"] and route["outcome"] == "needs_review"
    assert "templates" not in route and "args" not in route
    # In the reader's language: the policy's zh-Hans template with the values it was decided with.
    zh = env["client"].get(f"/v1/claims/{claim['id']}", headers={**env["submitter"], "Accept-Language": "zh-CN"})
    [zh_route] = [r for r in zh.get_json()["reasons"] if r["check"] == "trip_route_mismatch"]
    assert zh_route["message"] == "火车票 20190827_180923.jpg（南京南站 至 北京南站）的出发站和到达站都不在 青岛市"
    # Totals in the policy's currency (MYR), converted at each ticket's date; input VAT of a railway
    # ticket is fare / 1.09 x 9%, converted alike.
    jobs = {j["id"]: j for j in claim["jobs"]}
    assert claim["totals"]["currency"] == "MYR"
    amounts = [money(jobs[i]["converted"]["amount"]) for i in (to_qingdao, nanjing)]
    assert money(claim["totals"]["amount"]) == sum(amounts)
    assert claim["totals"]["by_category"] == {"travel": float(sum(amounts))}
    vat = sum(money(Decimal(str(jobs[i]["fields"]["total"])) / Decimal("1.09") * Decimal("0.09")
                    * Decimal(str(jobs[i]["converted"]["rate"]))) for i in (to_qingdao, nanjing))
    assert money(claim["totals"]["deductible_vat"]) == vat
    assert claim["claim"]["trip"]["destination"] == "青岛市" and claim["claim"]["claimed_amount"] == 100.0
    # Both tickets are years old (the per-document policy rejects them): the claim takes the worst.
    assert claim["decision"] == "reject"
    assert {tuple(r["job_ids"]) for r in claim["reasons"] if r["check"] == "document_decision"} == {
        (to_qingdao,), (nanjing,)}

    # A reviewer corrects the Nanjing ticket (a misread: Rizhao to Qingdao on the 23rd) and approves
    # it: the claim's checks look again; the other ticket still rejects the claim.
    travel = {"from": "日照西站", "to": "青岛北站", "train_number": "D1692", "seat_class": "二等座",
              "departure": "2019-04-23T08:00"}
    r = env["client"].post(f"/v1/jobs/{nanjing}/reviews", headers=env["reviewer"], json={
        "decision": "approve", "comment": "Ticket misread; checked the original",
        "fields": {"travel": travel, "transaction_date": "2019-04-23"}})
    assert r.status_code == 201, r.get_json()
    again = env["client"].get(f"/v1/claims/{claim['id']}", headers=env["submitter"]).get_json()
    assert not fired(again, "outside_trip_dates") and not fired(again, "trip_route_mismatch")
    assert fired(again, "claimed_total_mismatch") and again["decision"] == "reject"
    assert {tuple(r["job_ids"]) for r in again["reasons"] if r["check"] == "document_decision"} == {(to_qingdao,)}

    # The events stream of a decided claim: its state, then done, with the decision.
    stream = env["client"].get(f"/v1/claims/{claim['id']}/events", headers=env["submitter"])
    text = stream.get_data(as_text=True)
    assert "event: status" in text and "event: done" in text
    done = json.loads(text.split("event: done\ndata: ", 1)[1].split("\n", 1)[0])
    assert done["id"] == claim["id"] and done["decision"] == "reject"
    # A decided claim takes no more documents.
    r = env["client"].post(f"/v1/claims/{claim['id']}/documents", headers=env["submitter"],
                           data={"files": [(open(HOTEL, "rb"), HOTEL.name)]}, content_type="multipart/form-data")
    assert r.status_code == 409 and r.get_json()["code"] == "claim_decided"


def test_hotel_caps_duplicates_review_webhook_and_export(env):
    client = env["client"]
    # The tenant's own version of the policy: the shipped claim window (90 days) would reject this
    # 2025 invoice outright; finance widens it for the test's old documents.
    source = RULE.path.read_text(encoding="utf-8").replace("max_age_days: 90 ", "max_age_days: 100000 ")
    pushed = client.post("/v1/rules/expense_policy/versions", json={"source": source}, headers=env["admin"])
    assert pushed.status_code == 201, pushed.get_json()
    version = pushed.get_json()["version"]
    assert client.post(f"/v1/rules/expense_policy/versions/{version}/activate", headers=env["admin"]).status_code == 200
    qingdao = {"employee": "Li Lei", "purpose": "Audit", "claimed_amount": 231.33,
               "trip": {"start": "2025-03-31", "end": "2025-04-02", "destination": "青岛"}}
    first = decided(env, qingdao, [HOTEL])
    [hotel] = first["job_ids"]
    converted = first["jobs"][0]["converted"]
    assert converted["currency"] == "MYR" and money(first["totals"]["amount"]) == money(converted["amount"])
    assert first["totals"]["by_category"] == {"lodging": converted["amount"]}
    # A VAT invoice's deductible input VAT is its tax amount (21.45 CNY), converted.
    assert money(first["totals"]["deductible_vat"]) == money(Decimal("21.45") * Decimal(str(converted["rate"])))
    # In the dates, in a tier-2 city (cap 300 a night), amount as claimed, first claim of it: the
    # document approves, no claim check fires, so the claim is approved.
    assert first["reasons"] == [] and first["decision"] == "approve", first["reasons"]
    assert first["rule"]["version"] == version

    # The same invoice again, one night in Ipoh (no tier: the default cap, 200): over the cap, and
    # already in the first claim.
    ipoh = {"employee": "Li Lei", "purpose": "Audit", "trip": {"start": "2025-04-01", "end": "2025-04-02",
                                                                "destination": "Ipoh"}}
    second = decided(env, ipoh, [HOTEL])
    assert fired(second, "lodging_over_city_cap") == [second["job_ids"]]
    dup = next(r for r in second["reasons"] if r["check"] == "duplicate_across_claims")
    assert dup["job_ids"] == second["job_ids"] and first["id"] in dup["message"]
    assert not fired(second, "claimed_total_mismatch")  # no amount claimed: nothing to compare
    # One night in Qingdao (tier 2, 300): 231 MYR is within its cap.
    third = decided(env, {**ipoh, "trip": {**ipoh["trip"], "destination": "青岛市"}}, [HOTEL])
    assert not fired(third, "lodging_over_city_cap") and fired(third, "duplicate_across_claims")

    # claim.decided went to the outbox for each, with the claim as the API shows it.
    with session_scope(env["settings"].database_url) as s:
        sent = {d.payload["data"]["id"]: d.payload for d in s.query(WebhookDelivery)
                .filter(WebhookDelivery.event_type == "claim.decided")}
    assert {first["id"], second["id"], third["id"]} <= set(sent)
    assert sent[second["id"]]["data"]["reasons"] == second["reasons"]

    # The reviewers' queue lists claims needing a person; a submitter may not review.
    assert second["decision"] == "needs_review"
    queue = client.get("/v1/claims?needs_review=true", headers=env["reviewer"]).get_json()["claims"]
    assert {c["id"] for c in queue} == {second["id"], third["id"]}
    r = client.post(f"/v1/claims/{second['id']}/reviews", json={"decision": "approve", "comment": "ok"},
                    headers=env["submitter"])
    assert r.status_code == 403
    r = client.post(f"/v1/claims/{second['id']}/reviews", json={"decision": "approve"}, headers=env["reviewer"])
    assert r.status_code == 422
    r = client.post(f"/v1/claims/{second['id']}/reviews", headers=env["reviewer"],
                    json={"decision": "reject", "comment": "Invoice already claimed in the Qingdao claim"})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["review"]["reviewer"].startswith("Wang Fang") and body["review"]["decision_after"] == "reject"
    assert body["claim"]["decision"] == "reject" and body["claim"]["checks_decision"] == second["decision"]
    assert body["claim"]["reviews"][0]["comment"] == "Invoice already claimed in the Qingdao claim"
    assert second["id"] not in {c["id"] for c in client.get("/v1/claims?needs_review=true",
                                                             headers=env["reviewer"]).get_json()["claims"]}
    # Lists: the submitter's own, another tenant sees none and cannot read one.
    mine = client.get("/v1/claims?submitted_by=me&limit=2", headers=env["submitter"]).get_json()
    assert len(mine["claims"]) == 2 and mine["next_cursor"]
    more = client.get(f"/v1/claims?submitted_by=me&limit=50&cursor={mine['next_cursor']}",
                      headers=env["submitter"]).get_json()
    assert not {c["id"] for c in mine["claims"]} & {c["id"] for c in more["claims"]}
    assert client.get("/v1/claims", headers=env["other"]).get_json()["claims"] == []
    assert client.get("/v1/claims?created_since=2999-01-01", headers=env["reviewer"]).get_json()["claims"] == []
    assert client.get("/v1/claims?status=maybe", headers=env["reviewer"]).status_code == 400
    assert client.get(f"/v1/claims/{first['id']}", headers=env["other"]).status_code == 404

    # Export for accounting: one row per document.
    r = client.get("/v1/claims/export.csv?employee=Li%20Lei", headers=env["reviewer"])
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    row = next(x for x in rows if x["claim"] == first["id"])
    assert (row["employee"], row["category"], row["date"], row["seller"]) == (
        "Li Lei", "lodging", "2025-04-01", "青岛嘉仕汇酒店管理有限公司")
    assert (row["amount"], row["currency"], row["converted_currency"]) == ("379.0", "CNY", "MYR")
    assert money(row["converted_amount"]) == money(converted["amount"]) and row["job_id"] == hotel
    assert next(x for x in rows if x["claim"] == second["id"])["claim_decision"] == "reject"

    # Simulation covers the claim checks: a draft with Qingdao's nightly cap at 100 would send the
    # approved two-night claim (115.67 a night) to review; the one-night claim was already there.
    stricter = source.replace("tier2: 300.0", "tier2: 100.0")
    draft = client.post("/v1/rules/expense_policy/versions", json={"source": stricter}, headers=env["admin"])
    sim = client.post(f"/v1/rules/expense_policy/versions/{draft.get_json()['version']}/simulate", json={},
                      headers=env["reviewer"])
    assert sim.status_code == 200, sim.get_json()
    claims = sim.get_json()["claims"]
    assert claims["evaluated"] >= 3 and claims["checks"]["lodging_over_city_cap"] == {"more": 2, "fewer": 0}
    assert claims["transitions"] == {"approve→needs_review": 1} and claims["examples"][0]["claim_id"] == first["id"]
    # The same in the background (a run the workers work in chunks).
    from docket import runs, simulation

    bg = client.post(f"/v1/rules/expense_policy/versions/{draft.get_json()['version']}/simulate",
                     json={"background": True}, headers=env["reviewer"])
    assert bg.status_code == 202, bg.get_json()
    assert runs.drive(env["settings"].database_url, bg.get_json()["id"], simulation.background_step(load_rules())) \
        == "succeeded"
    done = client.get(bg.headers["Location"], headers=env["reviewer"]).get_json()
    assert done["result"]["claims"]["transitions"] == claims["transitions"], done

    # A re-decision under that version decides the claims again once their documents are re-decided:
    # the approved claim now needs review; the reviewed one keeps the reviewer's decision.
    from docket import redecide

    strict_version = draft.get_json()["version"]
    r = client.post("/v1/redecisions", json={"rule": "expense_policy", "version": strict_version}, headers=env["admin"])
    assert r.status_code == 202, r.get_json()
    assert redecide.execute(env["settings"].database_url, r.get_json()["id"], load_rules()) == "succeeded"
    run = client.get(f"/v1/redecisions/{r.get_json()['id']}", headers=env["reviewer"]).get_json()
    assert run["result"]["claims"]["transitions"].get("approve→needs_review") == 1, run["result"]
    now_first = client.get(f"/v1/claims/{first['id']}", headers=env["reviewer"]).get_json()
    assert now_first["decision"] == "needs_review" and now_first["rule"]["version"] == strict_version
    assert [c["check"] for c in now_first["reasons"]] == ["lodging_over_city_cap"]
    assert client.get(f"/v1/claims/{second['id']}", headers=env["reviewer"]).get_json()["decision"] == "reject"


def test_open_claims_bad_headers_and_idempotency(env, monkeypatch):
    client = env["client"]
    header = {"employee": "Li Lei", "trip": {"start": "2025-04-01", "end": "2025-04-02", "destination": "青岛"}}
    r = submit(env, header, [HOTEL], headers={"Idempotency-Key": "claim-1"})
    assert r.status_code == 202
    again = submit(env, header, [HOTEL], headers={"Idempotency-Key": "claim-1"})
    assert again.get_json()["id"] == r.get_json()["id"]
    claim_id = r.get_json()["id"]
    # Documents added to the open claim become its jobs (the same intake: a bad file is rejected).
    added = client.post(f"/v1/claims/{claim_id}/documents", headers=env["submitter"],
                        data={"files": [(open(TO_QINGDAO, "rb"), TO_QINGDAO.name), (io.BytesIO(b"not a document"),
                                                                                    "x.pdf")]},
                        content_type="multipart/form-data")
    assert added.status_code == 202, added.get_json()
    assert added.get_json()["id"] == claim_id and len(added.get_json()["job_ids"]) == 1
    assert [x["index"] for x in added.get_json()["rejected"]] == [1]
    claim = client.get(f"/v1/claims/{claim_id}", headers=env["submitter"]).get_json()
    assert claim["status"] == "open" and len(claim["jobs"]) == 2 and claim["totals"] is None
    r = client.post(f"/v1/claims/{claim_id}/reviews", json={"decision": "approve", "comment": "x"},
                    headers=env["reviewer"])
    assert r.status_code == 409
    with session_scope(env["settings"].database_url) as s:
        held = s.query(Claim).count()
    for bad, code in (({"purpose": "no employee"}, "invalid_claim"),
                      ({"employee": "x", "trip": {"start": "2025-04-02", "end": "2025-04-01"}}, "invalid_claim"),
                      ({"employee": "x", "claimed_amount": "lots"}, "invalid_claim"),
                      ({"employee": "x", "colour": "red"}, "invalid_claim")):
        r = submit(env, bad, [HOTEL])
        assert r.status_code == 422 and r.get_json()["code"] == code, (bad, r.get_json())
    r = client.post("/v1/claims", headers=env["submitter"], content_type="multipart/form-data",
                    data={"rule": "expense_policy", "claim": "{not json", "files": [(open(HOTEL, "rb"), "h.ofd")]})
    assert r.status_code == 422 and r.get_json()["code"] == "invalid_claim"
    r = client.post("/v1/claims", headers=env["submitter"], content_type="multipart/form-data",
                    data={"rule": "nope", "claim": json.dumps({"employee": "x"}),
                          "files": [(open(HOTEL, "rb"), "h.ofd")]})
    assert r.status_code == 422 and r.get_json()["code"] == "unknown_rule"
    from docket import claims as core

    # A claim whose checks cannot be evaluated (a bug, a bad table) goes to a person; the job that
    # finished it still finishes.
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    r = submit(env, header, [HOTEL])
    held += 1
    monkeypatch.setattr(core, "evaluate", broken)
    analyze(env, r.get_json()["job_ids"][0])
    monkeypatch.undo()
    failed = client.get(f"/v1/claims/{r.get_json()['id']}", headers=env["reviewer"]).get_json()
    assert failed["jobs"][0]["status"] == "succeeded" and failed["status"] == "decided"
    assert (failed["decision"], [x["check"] for x in failed["reasons"]]) == ("needs_review", ["claim_evaluation"])

    monkeypatch.setattr(core, "MAX_CLAIM_DOCUMENTS", 1)
    r = submit(env, {"employee": "x"}, [HOTEL, TO_QINGDAO])
    assert r.status_code == 413 and r.get_json()["code"] == "claim_too_large"
    with session_scope(env["settings"].database_url) as s:
        assert s.query(Claim).count() == held  # nothing recorded for a refused claim


RULE = load_rules()["expense_policy"]


def docs(*rows):
    return [{"job_id": f"j{i}", "filename": f"f{i}", "kind": "receipt", "category": "other", **row}
            for i, row in enumerate(rows)]


def test_meals_and_nights_from_the_invoice():
    claim = {"trip": {"start": "2025-04-01", "end": "2025-04-03", "city": "上海", "destination": "上海",
                      "days": 3, "nights": 2}}
    meals = docs({"category": "meals", "amount": 100.0}, {"category": "meals", "amount": 140.0},
                 {"category": "travel", "amount": 500.0})
    totals = {"currency": "MYR", "amount": 740.0, "by_category": {"meals": 240.0, "travel": 500.0}}
    assert not [r for r in evaluate_claim(RULE, claim, meals, totals) if r["check"] == "meals_over_daily_cap"]
    totals["by_category"]["meals"] = 240.5  # 80 a day for 3 days: 240
    [over] = [r for r in evaluate_claim(RULE, claim, meals, totals) if r["check"] == "meals_over_daily_cap"]
    assert over["job_ids"] == ["j0", "j1"] and "240.5" in over["message"]
    # Shanghai is tier 1 (450 a night): 800 for the trip's 2 nights passes, for 1 night printed does not.
    hotel = {"category": "lodging", "amount": 800.0}
    assert not [r for r in evaluate_claim(RULE, claim, docs(hotel), totals) if r["check"] == "lodging_over_city_cap"]
    [lodging] = [r for r in evaluate_claim(RULE, claim, docs({**hotel, "nights": 1}), totals)
                 if r["check"] == "lodging_over_city_cap"]
    assert lodging["job_ids"] == ["j0"]


def test_claim_checks_are_checked_when_the_policy_loads():
    source = (RULE.path.read_text(encoding="utf-8"))
    tuned = source.replace("lodging_caps: {tier1: 450.0, tier2: 300.0, default: 200.0}",
                           "lodging_caps: {tier1: 450.0, tier2: 100.0, default: 200.0}")
    assert tuned != source
    rule = load_rule_source(tuned, name="expense_policy")  # a tenant's version tunes the table
    claim = {"trip": {"city": "青岛", "destination": "青岛", "nights": 1, "days": 2}}
    hotel = docs({"category": "lodging", "amount": 231.33})
    assert [r["check"] for r in evaluate_claim(rule, claim, hotel, {})] == ["lodging_over_city_cap"]
    assert [r["check"] for r in evaluate_claim(RULE, claim, hotel, {})] == []
    broken = source.replace('expr: "!has(doc.duplicate_claims) || size(doc.duplicate_claims) == 0"',
                            'expr: "size(fields.x) == 0"')
    with pytest.raises(RuleError, match="unknown variable 'fields'"):
        load_rule_source(broken, name="expense_policy")
    no_param = source.replace("params.meal_daily_allowance * ", "params.meal_allowance * ")
    with pytest.raises(RuleError, match="params.meal_allowance is not defined"):
        load_rule_source(no_param, name="expense_policy")
    klingon = source.replace("      zh-Hans: \"报销金额", "      tlh: \"报销金额")
    assert klingon != source
    with pytest.raises(RuleError, match="not one Docket speaks"):
        load_rule_source(klingon, name="expense_policy")
    loose = source.replace("  - id: meals_over_daily_cap\n", "  - id: meals_over_daily_cap\n    for_each: document\n")
    with pytest.raises(RuleError, match="'jobs' is for claim-wide checks"):
        load_rule_source(loose, name="expense_policy")


def test_docket_claim_cli(tmp_path):
    """`docket claim` submits, follows the claim's events and prints the API's object (--json)."""
    import subprocess

    from tests.conftest import DOCKET, ROOT, base_env

    out = subprocess.run([DOCKET, "claim", str(HOTEL), "--rule", "expense_policy", "--employee", "Li Lei",
                          "--trip-start", "2025-04-01", "--trip-end", "2025-04-02", "--destination", "Ipoh",
                          "--claimed-amount", "50", "--json"], env=base_env(tmp_path / "data"), cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr[-2000:]  # not approved
    body = json.loads(out.stdout)
    assert body["status"] == "decided" and body["claim"]["employee"] == "Li Lei" and body["rejected"] == []
    assert body["claim"]["trip"] == {"start": "2025-04-01", "end": "2025-04-02", "destination": "Ipoh",
                                     "origin": None}
    checks = {r["check"]: r["job_ids"] for r in body["reasons"]}
    assert checks["lodging_over_city_cap"] == body["job_ids"] and checks["claimed_total_mismatch"] == body["job_ids"]
    assert "outside_trip_dates" not in checks and body["totals"]["by_category"].keys() == {"lodging"}
    bad = subprocess.run([DOCKET, "claim", str(HOTEL), "--rule", "expense_policy", "--employee", "Li Lei",
                          "--trip-start", "2025-04-03", "--trip-end", "2025-04-01"], env=base_env(tmp_path / "data"),
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "before its 'start'" in bad.stderr
