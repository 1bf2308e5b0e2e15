"""Per-tenant policies through the whole running service (`docket serve`: API, Celery worker,
OCR), on the embedded default (SQLite) and on Postgres + Redis: a tenant pushes a stricter meal
cap, simulates it on analysed receipts, activates it, re-decides a batch in the background, and
gets `job.redecided` at its webhook; another tenant is untouched. Then the dashboard's Policies
pages in a real browser: versions, YAML, the diff, a simulation with its chart and transitions
linking to example jobs, roll back. Screenshots land in test-artifacts/dashboard/."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import requests

from db.session import session_scope
from docket.tenants import create_key
from tests.conftest import ROOT, Server, base_env
from tests.documents import encode, receipt_image
from tests.test_dashboard import shoot, sign_in
from tests.test_webhooks_delivery import Receiver
from tests.test_worker_faults import wait_for

SOURCE = (ROOT / "rules" / "expense_policy.yaml").read_text()
STRICT = SOURCE.replace("meal_cap: 100.0", "meal_cap: 30.0")
# Laid out differently (item counts), so that no receipt looks like a re-scan of another
# (expense_policy's near-duplicate check would send it to review).
MEALS = {"meal1.png": ("NASI KANDAR RESTORAN", "45.00", (("NASI LEMAK SET", "45.00"),)),
         "meal2.png": ("KOPITIAM CAFE SDN BHD", "60.00", (("CHICKEN RICE", "20.00"), ("TEH TARIK", "15.00"),
                                                          ("ROTI CANAI", "10.00"), ("MEE GORENG", "15.00")))}
MEAL3 = ("NASI KANDAR RESTORAN", "41.00", (("NASI AYAM", "20.00"), ("AIS KOSONG", "1.00"), ("SAYUR", "20.00")))


def weekday() -> date:
    day = date.today() - timedelta(days=2)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def image(merchant: str, total: str, items) -> bytes:
    return encode(receipt_image(weekday(), total=total, merchant=merchant, items=items), "PNG")


@pytest.fixture(scope="module", params=["embedded", "postgres+redis"])
def stack(request, tmp_path_factory):
    env = base_env(tmp_path_factory.mktemp("policies") / "data")
    env.update(DOCKET_WEBHOOK_ALLOW_HOSTS="127.0.0.1", DOCKET_LOGIN_RATE_LIMIT="1000/minute")
    if request.param == "postgres+redis":
        env.update(DOCKET_DATABASE_URL=request.getfixturevalue("postgres_url"),
                   DOCKET_REDIS_URL=request.getfixturevalue("redis_url"))
    srv = Server(env)
    receiver = Receiver()
    srv.receiver, srv.kind = receiver, request.param
    try:
        yield srv
    finally:
        srv.stop()
        receiver.close()


def admin_key(srv: Server, tenant: str) -> str:
    """As `docket keys create`, without starting a process."""
    url = srv.env.get("DOCKET_DATABASE_URL") or f"sqlite:///{srv.env['DOCKET_DATA_DIR']}/docket.db"
    with session_scope(url) as session:
        return create_key(session, tenant, "admin")[1]


def test_stricter_meal_cap_for_one_tenant(stack):
    srv, http = stack, stack.http
    other = requests.Session()
    other.headers["Authorization"] = f"Bearer {admin_key(srv, srv.tenant + '-other')}"
    builtin = {r["name"]: r for r in http.get(f"{srv.url}/v1/rules", timeout=5).json()["rules"]}["expense_policy"]

    # Receipts analysed by the real pipeline under the built-in policy: two meals in a batch, a
    # meal of another tenant. (Unchanged decisions and reviewed jobs: tests/test_policies.py.)
    files = [("files", (name, image(*spec))) for name, spec in MEALS.items()]
    resp = http.post(f"{srv.url}/v1/batches", files=files, data={"rule": "expense_policy", "cache": "false"},
                     timeout=30)
    assert resp.status_code == 202, resp.text
    batch_id, job_ids = resp.json()["id"], resp.json()["job_ids"]
    names = dict(zip(job_ids, MEALS))
    theirs = other.post(f"{srv.url}/v1/jobs", data={"rule": "expense_policy", "cache": "false"}, timeout=30,
                        files={"file": ("meal.png", image(*MEALS["meal1.png"]))}).json()["id"]
    first = {job_id: srv.wait_job(job_id) for job_id in job_ids}
    assert {names[j]: (b["status"], b["decision"]) for j, b in first.items()} == {
        n: ("succeeded", "approve") for n in names.values()}, {j: b["reasons"] for j, b in first.items()}
    assert all(b["rule"]["version"] == builtin["version"] for b in first.values())

    # Push the stricter cap (validated, a draft), and simulate it on the stored fields.
    resp = http.post(f"{srv.url}/v1/rules/expense_policy/versions", data=STRICT.encode(), timeout=10,
                     headers={"Content-Type": "application/yaml"})
    assert resp.status_code == 201, resp.text
    strict = resp.json()["version"]
    srv.strict_version, srv.builtin_version, srv.batch_id, srv.job_names = strict, builtin["version"], batch_id, names
    sim = http.post(f"{srv.url}/v1/rules/expense_policy/versions/{strict}/simulate", json={"batch": batch_id},
                    timeout=30).json()
    meals = sorted(names)
    assert (sim["evaluated"], sim["changed"], sim["transitions"]) == (2, 2, {"approve→needs_review": 2}), sim
    assert sorted(sim["examples"]["approve→needs_review"]) == meals
    assert sim["checks"]["meal_cap"]["change"] == 2

    # Activate it; subscribe to job.redecided; re-decide the batch in the background (the worker).
    act = http.post(f"{srv.url}/v1/rules/expense_policy/versions/{strict}/activate", timeout=10).json()
    assert (act["status"], act["previous_version"]) == ("active", builtin["version"])
    sub = http.post(f"{srv.url}/v1/webhooks", json={"url": srv.receiver.url("/redecided"),
                                                    "event_types": ["job.redecided"]}, timeout=10).json()
    srv.receiver.route("/redecided", sub["secret"])
    resp = http.post(f"{srv.url}/v1/redecisions", json={"rule": "expense_policy", "version": strict,
                                                        "filter": {"batch": batch_id}}, timeout=10)
    assert resp.status_code == 202, resp.text
    location = srv.url + resp.headers["Location"]
    run = wait_for(lambda: (r := http.get(location, timeout=5).json())["status"] in ("succeeded", "failed") and r,
                   60, "the re-decision run")
    assert (run["status"], run["processed"], run["changed"], run["total"]) == ("succeeded", 2, 2, 2), run

    # New decisions for the meals, the old ones kept as history.
    for job_id in names:
        job = http.get(f"{srv.url}/v1/jobs/{job_id}", timeout=5).json()
        assert (job["decision"], job["rule"]["version"]) == ("needs_review", strict), job
        assert [(d["kind"], d["decision"], d["rule"]["version"]) for d in job["decisions"]] == [
            ("redecision", "needs_review", strict), ("analysis", "approve", builtin["version"])]
        assert job["decided_at"] == job["decisions"][0]["created_at"]
    hits = wait_for(lambda: len(srv.receiver.hits("/redecided")) >= 2 and srv.receiver.hits("/redecided"), 60,
                    "job.redecided at the receiver")
    assert all(h["verified"] and h["payload"]["type"] == "job.redecided" for h in hits)
    assert sorted(h["payload"]["data"]["id"] for h in hits) == meals
    assert {h["payload"]["data"]["redecision"]["to"] for h in hits} == {"needs_review"}

    # A new submission of this tenant is decided by the worker with the exact active version.
    fresh = http.post(f"{srv.url}/v1/jobs", data={"rule": "expense_policy", "cache": "false"}, timeout=30,
                      files={"file": ("meal3.png", image(*MEAL3))})
    done = srv.wait_job(fresh.json()["id"])
    assert (done["decision"], done["rule"]["version"]) == ("needs_review", strict), done["reasons"]
    assert [r["check"] for r in done["reasons"]] == ["meal_cap"]

    # The other tenant: still the built-in, its job untouched, our versions invisible.
    assert {r["name"]: r["version"] for r in other.get(f"{srv.url}/v1/rules", timeout=5).json()["rules"]}[
        "expense_policy"] == builtin["version"]
    job = other.get(f"{srv.url}/v1/jobs/{theirs}", timeout=5).json()
    assert (job["status"], job["decision"], len(job["decisions"])) == ("succeeded", "approve", 1), job
    assert other.get(f"{srv.url}/v1/rules/expense_policy/versions/{strict}", timeout=5).status_code == 404
    assert other.get(location, timeout=5).status_code == 404


# In the browser on the production shape, as tests/test_dashboard.py (the same server as above).
@pytest.mark.parametrize("stack", ["postgres+redis"], indirect=True)
def test_dashboard_policies(stack, page):  # noqa: F811
    srv = stack
    if not hasattr(srv, "strict_version"):
        pytest.fail("test_stricter_meal_cap_for_one_tenant must run first (it analyses the documents)")
    strict, builtin = srv.strict_version, srv.builtin_version
    sign_in(page, srv, srv.key)  # an admin
    page.click("header nav >> text=Policies")
    row = page.locator("table.policies tr[data-policy=expense_policy]")
    assert strict[7:19] in row.inner_text() and "own" in row.inner_text()
    row.locator("a").click()
    versions = page.locator("#versions tbody tr")
    assert versions.count() >= 2
    assert "active" in page.locator(f"#versions tr[data-version='{strict}']").inner_text()
    shoot(page, f"policies-versions-{srv.kind}")

    # The diff between the built-in and the stricter version: the line and the param that changed.
    page.select_option("#diff-form select[name=from]", builtin)
    page.select_option("#diff-form select[name=to]", strict)
    page.click("#diff-form button[type=submit]")
    assert "100.0" in page.locator("#param-changes tr[data-param=meal_cap]").inner_text()
    assert "30.0" in page.locator("#param-changes tr[data-param=meal_cap]").inner_text()
    assert page.locator("#diff tr.del").count() == 1 and page.locator("#diff tr.add").count() == 1
    assert "meal_cap: 30.0" in page.locator("#diff tr.add").inner_text()
    assert "No check changed" in page.locator("#check-changes").inner_text()
    shoot(page, f"policies-diff-{srv.kind}")

    # The built-in version's YAML, then a simulation of it over the batch: back to approve.
    page.goto(f"{srv.url}/dashboard/policies/expense_policy/versions/{builtin}")
    assert "meal_cap: 100.0" in page.locator("#yaml").inner_text()
    page.fill("#simulate-form input[name=batch]", srv.batch_id)
    page.click("#simulate-form button[type=submit]")
    assert page.locator("#sim-evaluated").inner_text() == "2"
    assert page.locator("#sim-changed").inner_text() == "2"
    assert page.locator("#sim-chart rect.move[data-transition='needs_review→approve']").count() == 1
    transition = page.locator("#transitions tr[data-transition='needs_review→approve']")
    assert re.search(r"\b2\b", transition.locator("td.num").inner_text())
    assert transition.locator("a.example").count() == 2
    assert "meal_cap" in page.locator("#check-counts").inner_text()
    shoot(page, f"policies-simulation-{srv.kind}")

    # An example job's page names the version its decision used, linking to its text.
    transition.locator("a.example").first.click()
    assert page.locator("#rule-version").get_attribute("title") == strict
    assert page.locator("#trail").inner_text().count("re-decided") == 1
    page.click("#rule-version")
    assert "meal_cap: 30.0" in page.locator("#yaml").inner_text()

    # A broken version is refused with its line; then roll back to the built-in.
    page.goto(f"{srv.url}/dashboard/policies/expense_policy")
    page.fill("#source", STRICT.replace("document_type: receipt", "document_type: invoice"))
    page.click("#push-form button[type=submit]")
    assert re.search(r"document_type \(line \d+\)", page.locator("#push-error").inner_text())
    page.goto(f"{srv.url}/dashboard/policies/expense_policy")
    page.locator(f"#versions tr[data-version='{builtin}'] button.activate").click()
    assert "Rolled back to" in page.locator(".flash.ok").inner_text()
    assert "rollback" in page.locator("#activations").inner_text()
    shoot(page, f"policies-rolled-back-{srv.kind}")
    rules = {r["name"]: r for r in srv.http.get(f"{srv.url}/v1/rules", timeout=5).json()["rules"]}
    assert rules["expense_policy"]["version"] == builtin
