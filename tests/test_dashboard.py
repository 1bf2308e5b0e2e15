"""The reviewer dashboard in a real browser (Debian's Chromium driven by Playwright) against a
real `docket serve` on Postgres + Redis, with documents analysed by the real pipeline.

Screenshots of every page land in test-artifacts/dashboard/ (look at them)."""
from __future__ import annotations

import re
import time
from datetime import date

import pytest
import requests

from tests.conftest import ROOT, SAMPLES, Server, base_env
from tests.documents import encode, last_weekday, receipt_image

ARTIFACTS = ROOT / "test-artifacts" / "dashboard"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, postgres_url, redis_url):
    env = base_env(tmp_path_factory.mktemp("dash") / "data")
    # Every test signs in afresh; the sign-in throttle has its own test (test_dashboard_session.py).
    env.update(DOCKET_DATABASE_URL=postgres_url, DOCKET_REDIS_URL=redis_url, DOCKET_LOGIN_RATE_LIMIT="1000/minute")
    srv = Server(env)
    try:
        _load(srv)
        yield srv
    finally:
        srv.stop()


def _load(srv: Server) -> None:
    """Documents of every kind through the real pipeline, and keys of every role."""
    today = date.today()
    docs = {
        "clean.png": (encode(receipt_image(last_weekday(today, 2)), "PNG"), "expense_policy"),
        "weekend.png": (encode(receipt_image(last_weekday(today, 5), merchant="WEEKEND MART SDN BHD", total="45.00",
                                             items=(("SNACKS", "45.00"),)), "PNG"), "expense_policy"),
        "receipt-zh.png": ((SAMPLES / "receipt-zh.png").read_bytes(), "expense_policy"),
        "screenshot-zh.png": ((SAMPLES / "screenshot-zh.png").read_bytes(), "screenshot_moderation"),
        "contract-en.pdf": ((SAMPLES / "contract-en.pdf").read_bytes(), "contract_review"),
    }
    jobs = {}
    for name, (data, rule) in docs.items():
        resp = srv.http.post(f"{srv.url}/v1/jobs", files={"file": (name, data)}, data={"rule": rule}, timeout=30)
        assert resp.status_code == 202, resp.text
        jobs[name] = resp.json()["id"]
    batch = srv.http.post(f"{srv.url}/v1/batches", data={"rule": "expense_policy"}, timeout=30,
                          files=[("files", ("b1.png", docs["clean.png"][0])),
                                 ("files", ("b2.png", docs["weekend.png"][0]))])
    assert batch.status_code == 202, batch.text
    finished = {name: srv.wait_job(job_id) for name, job_id in jobs.items()}
    for job_id in batch.json()["job_ids"]:
        srv.wait_job(job_id)
    assert finished["weekend.png"]["decision"] == "needs_review", finished["weekend.png"]
    srv.jobs, srv.finished, srv.batch_id = jobs, finished, batch.json()["id"]
    srv.reviewer_key = srv.create_key("reviewer", srv.tenant)
    srv.submitter_key = srv.create_key("submitter", srv.tenant)
    srv.other_tenant_key = srv.create_key("reviewer", srv.tenant + "-other")


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, stack, key: str) -> None:
    page.goto(f"{stack.url}/dashboard")
    field = page.locator("input#key")
    assert field.get_attribute("type") == "password"
    field.fill(key)
    page.click("form button[type=submit]")


def test_submitter_signs_in_to_its_own_pages_and_unknown_keys_are_refused(page, stack):
    # A submitter's home is the Upload page; the queue and the tenant's pages are not theirs
    # (tests/test_dashboard_upload.py goes through what a submitter can and cannot do).
    sign_in(page, stack, stack.submitter_key)
    page.wait_for_url("**/dashboard/upload")
    nav = page.locator("header nav a")
    assert [nav.nth(i).inner_text() for i in range(nav.count())] == ["Upload", "My submissions", "Claims"]
    assert page.goto(f"{stack.url}/dashboard/jobs/{stack.jobs['weekend.png']}").status == 404  # not its job
    page.click(".sign-out button")
    sign_in(page, stack, "dk_not_a_key")
    assert "Unknown or revoked key" in page.locator(".flash.error").inner_text()
    shoot(page, "sign-in-refused")


def test_queue_filters_and_search(page, stack):
    sign_in(page, stack, stack.reviewer_key)
    cookie = next(c for c in page.context.cookies() if c["name"] == "docket_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    rows = page.locator("table.jobs tbody tr[data-job]")
    assert rows.count() == 7
    # Needs review first, then oldest first: the weekend receipt (and its batch twin) lead.
    decisions = [rows.nth(i).locator(".badge").inner_text() for i in range(rows.count())]
    first_other = next(i for i, d in enumerate(decisions) if d != "needs review")
    assert all(d != "needs review" for d in decisions[first_other:]), decisions
    assert rows.nth(0).get_attribute("data-job") == stack.jobs["weekend.png"]
    assert int(page.locator(".tabs b.count-needs_review").inner_text()) == decisions.count("needs review")
    shoot(page, "queue")

    # Filter by merchant, then by amount range, then full-text search in Chinese.
    page.fill("input[name=merchant]", "weekend mart")
    page.click(".filters button[type=submit]")
    assert {rows.nth(i).get_attribute("data-job") for i in range(rows.count())} >= {stack.jobs["weekend.png"]}
    assert all("WEEKEND" in rows.nth(i).inner_text() for i in range(rows.count()))
    page.goto(f"{stack.url}/dashboard?amount_min=40&amount_max=50&rule=expense_policy")
    assert rows.count() == 2 and all("45.00" in rows.nth(i).inner_text() for i in range(2))
    zh = stack.finished["receipt-zh.png"]["fields"].get("merchant_name") or ""
    assert re.search(r"[\u4e00-\u9fff]{2}", zh), f"the Chinese sample's merchant was not read: {zh!r}"
    term = re.search(r"[\u4e00-\u9fff]{2}", zh).group(0)
    page.goto(f"{stack.url}/dashboard")
    page.fill("input[name=q]", term)
    page.click(".filters button[type=submit]")
    assert rows.count() == 1 and rows.nth(0).get_attribute("data-job") == stack.jobs["receipt-zh.png"]
    assert term in rows.nth(0).inner_text()  # Chinese shown as Chinese
    shoot(page, "queue-search-zh")
    # The same filter exports as CSV (UTF-8 with BOM), through the signed-in session.
    csv_text = page.request.get(f"{stack.url}/dashboard/export.csv?q={term}").text()
    assert csv_text.count("\n") == 2 and stack.jobs["receipt-zh.png"] in csv_text and term in csv_text


def test_open_override_and_trail(page, stack):
    sign_in(page, stack, stack.reviewer_key)
    job_id = stack.jobs["weekend.png"]
    page.goto(f"{stack.url}/dashboard/jobs/{job_id}")
    # The document beside the fields, with the OCR boxes of the fields drawn on it.
    page.locator(".box.placed[data-field=total]").first.wait_for()  # placed once the page image loaded
    assert page.locator("figure.page img").evaluate("img => img.naturalWidth") > 100
    assert page.locator("table.fields input#f-total").input_value() == "45.0"
    # Beside each field, where it came from (a photographed receipt: read by OCR).
    assert page.locator("table.fields tr[data-field=total] td.source").inner_text().strip() == "ocr"
    assert "OCR" in page.locator("table.fields tr[data-field=total] td.source span").get_attribute("title")
    assert "weekend" in page.locator(".reasons").inner_text().lower()
    shoot(page, "job-before")
    page.check("input[name=decision][value=reject]")
    page.fill("#comment", "Weekend snacks are not a business expense. 周末零食不予报销。")
    page.fill("input#f-total", "44.5")
    page.click("button[value=stay]")
    assert "is now reject" in page.locator(".flash.ok").inner_text()
    trail = page.locator("#trail").inner_text()
    assert "reviewed: needs_review → reject" in trail and "周末零食不予报销" in trail
    assert re.search(r"total: 45\.0\s*→\s*44\.5", trail), trail
    # The policy's checks, run again on the corrected fields, still see a weekend receipt.
    assert "checks say needs_review" in page.locator(".flash.warn").inner_text()
    assert "weekend_spending" in page.locator("#trail .policy").inner_text()
    shoot(page, "job-after-review")
    # The API sees the same append-only record.
    api = requests.get(f"{stack.url}/v1/jobs/{job_id}/reviews", headers={"Authorization": f"Bearer {stack.reviewer_key}"},
                       timeout=5).json()["reviews"]
    assert [(r["decision_before"], r["decision_after"], r["fields_after"]["total"]) for r in api] == \
        [("needs_review", "reject", 44.5)]
    assert api[0]["policy_after"]["decision"] == "needs_review"
    assert [r["check"] for r in api[0]["policy_after"]["reasons"]] == ["weekend_spending"]
    job = requests.get(f"{stack.url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {stack.reviewer_key}"},
                       timeout=5).json()
    assert job["decision"] == "reject" and job["analyzer_decision"] == "needs_review" and job["review_count"] == 1


def test_keyboard_loop(page, stack):
    sign_in(page, stack, stack.reviewer_key)
    before = int(page.locator(".tabs b.count-needs_review").inner_text())
    assert before >= 1
    page.locator("html[data-keys=ready]").wait_for(state="attached")
    page.keyboard.press("j")
    first = page.locator("table.jobs tbody tr.selected").get_attribute("data-job")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/dashboard/jobs/{first}")
    page.locator("html[data-keys=ready]").wait_for(state="attached")
    page.keyboard.press("a")
    assert page.evaluate("document.activeElement.id") == "comment"
    assert page.locator("input[name=decision][value=approve]").is_checked()
    page.keyboard.type("Checked against the card statement.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    assert "is now approve" in page.locator(".flash.ok").inner_text()
    assert first not in page.url  # moved on to the next item (or back to the queue when none is left)
    page.goto(f"{stack.url}/dashboard")
    assert int(page.locator(".tabs b.count-needs_review").inner_text()) == before - 1


def test_csrf_token_required(page, stack):
    sign_in(page, stack, stack.reviewer_key)
    job_id = stack.jobs["clean.png"]
    page.goto(f"{stack.url}/dashboard/jobs/{job_id}")
    # A forged form (no token) posted from the signed-in browser is refused.
    resp = page.request.post(f"{stack.url}/dashboard/jobs/{job_id}/reviews",
                             form={"decision": "reject", "comment": "forged"})
    assert resp.status == 400 and "CSRF" in resp.text()
    resp = page.request.post(f"{stack.url}/dashboard/jobs/{job_id}/reviews",
                             form={"decision": "reject", "comment": "forged", "csrf_token": "x" * 40})
    assert resp.status == 400
    # The page's own form without its hidden token: refused too.
    page.evaluate("document.querySelector('#review-form input[name=csrf_token]').remove()")
    page.check("input[name=decision][value=reject]")
    page.fill("#comment", "no token")
    page.click("button[value=stay]")
    assert "refused" in page.locator("main").inner_text()
    shoot(page, "csrf-refused")
    trail = requests.get(f"{stack.url}/v1/jobs/{job_id}/reviews", timeout=5,
                         headers={"Authorization": f"Bearer {stack.reviewer_key}"}).json()["reviews"]
    assert trail == []


def test_other_tenant_sees_nothing_and_sign_out(page, stack):
    sign_in(page, stack, stack.other_tenant_key)
    assert page.locator("table.jobs tbody tr[data-job]").count() == 0
    resp = page.goto(f"{stack.url}/dashboard/jobs/{stack.jobs['weekend.png']}")
    assert resp.status == 404
    assert page.request.get(f"{stack.url}/dashboard/jobs/{stack.jobs['weekend.png']}/pages/1").status == 404
    page.goto(f"{stack.url}/dashboard")
    page.click(".sign-out button")
    assert page.locator("input#key").count() == 1
    assert page.goto(f"{stack.url}/dashboard/overview").url.startswith(f"{stack.url}/dashboard/?next=")


def test_batch_overview_and_contract_pages(page, stack):
    sign_in(page, stack, stack.reviewer_key)
    page.goto(f"{stack.url}/dashboard/batches/{stack.batch_id}")
    progress = page.locator("progress#batch-progress")
    assert progress.get_attribute("max") == "2" and progress.get_attribute("value") == "2"
    assert page.locator("table.jobs tbody tr").count() == 2
    shoot(page, "batch")
    page.goto(f"{stack.url}/dashboard/overview")
    assert int(page.locator("#stat-decided").inner_text()) == 7
    assert page.locator("#per-day rect").count() >= 1
    assert page.locator("table.per-rule tbody tr").count() == 3
    shoot(page, "overview")
    page.goto(f"{stack.url}/dashboard/jobs/{stack.jobs['contract-en.pdf']}")
    assert page.locator("figure.page img").count() == stack.finished["contract-en.pdf"]["document"]["page_count"]
    # Polled from here: wait_for_function would eval a string in the page, which its CSP forbids.
    images = page.locator("figure.page img")
    deadline = time.monotonic() + 15
    while not all(images.nth(i).evaluate("i => i.complete && i.naturalWidth > 100") for i in range(images.count())):
        assert time.monotonic() < deadline, "page images did not load"
        time.sleep(0.1)
    assert page.locator("table.fields tr[data-field=parties] textarea").count() == 1
    shoot(page, "job-contract")
    page.goto(f"{stack.url}/dashboard/jobs/{stack.jobs['screenshot-zh.png']}")
    shoot(page, "job-screenshot-zh")
