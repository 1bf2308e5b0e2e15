"""Expense claims in the browser (issue 21): a submitter creates a claim from the Upload page
(header + a real hotel VAT e-invoice), watches it fill in and get decided; a reviewer opens it
from the claims list and decides it with a comment, on the record. Debian's Chromium through
Playwright against a real `docket serve` (Postgres and Redis, one worker)."""
from __future__ import annotations

import pytest

from tests.conftest import Server, base_env
from tests.devdata import REPO_DATA
from tests.test_dashboard import ARTIFACTS

HOTEL = REPO_DATA / "cn-fapiao-dev" / "files" / "renoyuan__25924000000001260164.ofd"  # 青岛, 2025-04-01


@pytest.fixture(scope="module")
def stack(tmp_path_factory, postgres_url, redis_url):
    env = base_env(tmp_path_factory.mktemp("claims-ui") / "data")
    # Postgres + Redis (the production shape; tests/test_claims.py covers SQLite)
    env.update(DOCKET_DATABASE_URL=postgres_url, DOCKET_REDIS_URL=redis_url, DOCKET_LOGIN_RATE_LIMIT="1000/minute")
    srv = Server(env, workers=1)
    try:
        srv.submitter_key = srv.create_key("submitter", srv.tenant)
        srv.reviewer_key = srv.create_key("reviewer", srv.tenant)
        yield srv
    finally:
        srv.stop()


def sign_in(page, stack, key: str) -> None:
    page.goto(f"{stack.url}/dashboard")
    page.fill("input#key", key)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


def test_claim_from_upload_to_review(stack, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, stack, stack.submitter_key)
    page.goto(f"{stack.url}/dashboard/upload")
    page.click("#claim-link a[href$='/claims/new']")
    page.fill("#employee", "Li Lei")
    page.fill("#purpose", "Audit in Qingdao")
    page.fill("#trip_start", "2025-03-31")
    page.fill("#trip_end", "2025-04-02")
    page.fill("#trip_destination", "青岛")
    page.fill("#claimed_amount", "999")
    page.set_input_files("#files", [str(HOTEL)])
    page.click("#send")
    page.wait_for_url("**/dashboard/claims/*")
    claim_id = page.url.rsplit("/", 1)[1]
    # The page follows the claim's events and shows it decided (the worker reads the invoice).
    page.wait_for_selector("#claim[data-status=decided]", timeout=90_000)
    reasons = page.locator("#claim-reasons li")
    checks = reasons.evaluate_all("items => items.map(i => i.dataset.check)")
    assert "claimed_total_mismatch" in checks and "outside_trip_dates" not in checks, checks
    # The reason names the document it concerns, linked to its job.
    assert page.locator("#claim-reasons li[data-check=claimed_total_mismatch] a").count() == 1
    assert page.locator("#claim-totals td[data-category=lodging]").count() == 1
    assert page.locator("#claim-vat").inner_text().strip() != ""
    row = page.locator("#claim-documents tbody tr")
    assert row.count() == 1 and "renoyuan__25924000000001260164.ofd" in row.inner_text()
    page.wait_for_function("() => document.querySelector('#claim-documents img.thumb').naturalWidth > 0")
    assert page.locator("#claim-review").count() == 0  # a submitter does not review
    page.screenshot(path=str(ARTIFACTS / "claim-submitter.png"), full_page=True)
    page.goto(f"{stack.url}/dashboard/claims")
    assert page.locator(f"#claims tr[data-claim='{claim_id}']").count() == 1
    context.close()

    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, stack, stack.reviewer_key)
    page.goto(f"{stack.url}/dashboard/claims?show=all")
    page.click(f"#claims tr[data-claim='{claim_id}'] a")
    page.check("#claim-review input[value=approve]")
    page.fill("#claim-comment", "Hotel confirmed with the employee's manager")
    page.click("#claim-review button[type=submit]")
    page.wait_for_selector("#claim-reviews li")
    assert "Hotel confirmed with the employee's manager" in page.locator("#claim-reviews").inner_text()
    assert page.locator("#claim-decision .badge.approve").count() == 1
    page.screenshot(path=str(ARTIFACTS / "claim-reviewer.png"), full_page=True)
    context.close()
    api = stack.http.get(f"{stack.url}/v1/claims/{claim_id}", timeout=10).json()
    assert api["decision"] == "approve" and api["reviews"][0]["reviewer_key_id"]
