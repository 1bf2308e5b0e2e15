"""Submitters in the browser (issue 12): the Upload page, My submissions, what a submitter may
not open, and the live batch and job pages — Debian's Chromium driven by Playwright against a
real `docket serve` on Postgres + Redis, documents analysed by a real worker.

The server caps every dashboard event stream at 1 s (DOCKET_EVENT_STREAM_MAX_S), so each page
here lives through several dropped connections: EventSource reconnects with Last-Event-ID, and
the pages must still see every decision exactly once. The worker is started only once a page is
watching (jobs stay queued till then), so the reconnects happen before any decision, for sure.

Screenshots land in test-artifacts/dashboard/."""
from __future__ import annotations

import re
import subprocess
import time
from contextlib import contextmanager
from datetime import date

import pytest
import requests

from samples.make_samples import pdf_with_text
from tests.conftest import DOCKET, ROOT, Server, base_env
from tests.sse import read_events
from tests.test_worker_faults import stop_worker
from tests.documents import encode, receipt_image
from tests.test_dashboard import ARTIFACTS, last_weekday

LIMIT = 300_000  # DOCKET_MAX_UPLOAD_BYTES here: the page must refuse a bigger file before sending it


@pytest.fixture(scope="module")
def stack(tmp_path_factory, postgres_url, redis_url):
    env = base_env(tmp_path_factory.mktemp("upload") / "data")
    env.update(DOCKET_DATABASE_URL=postgres_url, DOCKET_REDIS_URL=redis_url, DOCKET_LOGIN_RATE_LIMIT="1000/minute",
               DOCKET_EVENT_STREAM_MAX_S="1", DOCKET_MAX_UPLOAD_BYTES=str(LIMIT))
    srv = Server(env, workers=0)  # the worker comes with `analysing` (see the module docstring)
    try:
        srv.submitter_key = srv.create_key("submitter", srv.tenant)
        srv.other_submitter_key = srv.create_key("submitter", srv.tenant)
        srv.reviewer_key = srv.create_key("reviewer", srv.tenant)
        yield srv
    finally:
        srv.stop()


@contextmanager
def analysing(stack):
    """A worker consuming the server's queue while the block runs."""
    proc = subprocess.Popen([DOCKET, "worker", "--concurrency", "1"], env=stack.env, cwd=ROOT, start_new_session=True)
    try:
        yield proc
    finally:
        stop_worker(proc)


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, stack, key: str) -> None:
    page.goto(f"{stack.url}/dashboard")
    page.fill("input#key", key)
    page.click("form button[type=submit]")


def signed_in_http(stack, key: str) -> requests.Session:
    """A dashboard session (cookie) outside the browser, for HTTP-level checks."""
    http = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get(f"{stack.url}/dashboard", timeout=10).text).group(1)
    resp = http.post(f"{stack.url}/dashboard/sign-in", data={"key": key, "csrf_token": token}, allow_redirects=False,
                     timeout=10)
    assert resp.status_code == 302, resp.text
    return http


def events_of(resp: requests.Response) -> list[tuple[str, str, dict]]:
    """(event, id, data) of each event of a stream, to the end."""
    return [(e["event"], e.get("id"), e["data"]) for e in read_events(resp)]


def api_batch(stack, key: str, names: list[str]) -> dict:
    """A batch submitted over the API with a submitter key (analysed when a worker runs)."""
    today = date.today()
    files = [("files", (name, encode(receipt_image(last_weekday(today, 1 + i), total=f"{20 + i}.50"), "PNG")))
             for i, name in enumerate(names)]
    resp = requests.post(f"{stack.url}/v1/batches", files=files, data={"rule": "expense_policy", "cache": "false"},
                         headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert resp.status_code == 202, resp.text
    return resp.json()


def ids_of(holder) -> list[int]:
    raw = holder.get_attribute("data-event-ids") or ""
    return [int(i) for i in raw.split(",") if i]


def test_submitter_uploads_three_files_and_watches_their_decisions(page, stack):
    sign_in(page, stack, stack.submitter_key)
    page.wait_for_url("**/dashboard/upload")
    nav = page.locator("header nav a")
    assert [nav.nth(i).inner_text() for i in range(nav.count())] == ["Upload", "My submissions", "Claims"]
    form = page.locator("form#upload[data-ready=true]")
    form.wait_for()
    # Marks this document: a reload would start a new one without it.
    page.evaluate("document.documentElement.dataset.since = 'first-load'")

    today = date.today()
    receipt_pdf = pdf_with_text([["KEDAI BUKU MAJU SDN BHD", f"DATE: {last_weekday(today, 3):%d/%m/%Y} 10:15",
                                  "NOTEBOOK A5 12.50", "TOTAL RM 12.50", "THANK YOU"]])
    good = [
        {"name": "lunch.png", "mimeType": "image/png", "buffer": encode(receipt_image(last_weekday(today, 2)), "PNG")},
        {"name": "weekend.jpg", "mimeType": "image/jpeg", "buffer": encode(receipt_image(
            last_weekday(today, 5), merchant="WEEKEND MART SDN BHD", total="45.00", items=(("SNACKS", "45.00"),)),
            "JPEG", quality=90)},
        {"name": "books.pdf", "mimeType": "application/pdf", "buffer": receipt_pdf},
    ]
    assert all(len(f["buffer"]) < LIMIT for f in good)
    too_large = {"name": "scan-huge.png", "mimeType": "image/png", "buffer": b"\x89PNG" + b"\0" * (2 * LIMIT)}
    page.set_input_files("#files", files=[*good, too_large])
    # Dropped, not picked: a file the server must refuse by its bytes.
    dropped = page.evaluate_handle("""() => { const t = new DataTransfer();
        t.items.add(new File(['these are not the receipts'], 'notes.txt', {type: 'text/plain'})); return t; }""")
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    rows = page.locator("#upload-files tbody tr")
    assert rows.count() == 5
    huge = page.locator('#upload-files tr[data-file="scan-huge.png"]')
    assert huge.get_attribute("data-problem") == "file_too_large"  # refused on the page, before sending
    assert huge.locator("td.reasons").inner_text() == "Too large: 586 KiB, the limit is 293 KiB."
    assert page.locator("#size-limit").inner_text() == "293 KiB"  # the server's limit, told to the page
    assert page.locator("#send").inner_text() == "Submit 4 files"
    page.select_option("#rule", "expense_policy")
    page.fill("#note", "Penang trip, March · 槟城出差")
    shoot(page, "upload-ready")

    with analysing(stack):
        page.click("#send")
        page.locator("form#upload[data-upload='202']").wait_for(timeout=60_000)
        txt = page.locator('#upload-files tr[data-file="notes.txt"]')
        assert txt.get_attribute("data-problem") == "unsupported_type"
        assert "Unsupported document type" in txt.locator("td.reasons").inner_text()
        assert "1 refused" in page.locator("#upload-message").inner_text()
        page.locator("form#upload[data-live=done]").wait_for(timeout=240_000)

    shoot(page, "upload-decided")
    for f in good:
        row = page.locator(f'#upload-files tr[data-file="{f["name"]}"]')
        assert row.get_attribute("data-status") == "succeeded", row.inner_text()
        assert row.get_attribute("data-decision") in ("approve", "needs_review", "reject")
        assert row.get_attribute("data-decided") == "1"  # each decision arrived once, live
        assert row.locator("td.decision .badge").count() == 1 and row.locator("td.reasons li").count() >= 1
        bar = row.locator("progress")
        assert bar.get_attribute("max") == str(len(f["buffer"]))
        assert row.locator("progress").evaluate("p => p.value === p.max")  # the upload's progress reached the end
    assert page.locator('#upload-files tr[data-file="weekend.jpg"]').get_attribute("data-decision") == "needs_review"
    assert "weekend" in page.locator('#upload-files tr[data-file="weekend.jpg"] td.reasons').inner_text().lower()
    ids = ids_of(page.locator("form#upload"))
    assert ids == sorted(set(ids)), ids  # nothing repeated across reconnects
    assert page.evaluate("document.documentElement.dataset.since") == "first-load"  # never reloaded

    # My submissions: the three jobs, their batch and its note, decisions and reasons.
    job_id = page.locator('#upload-files tr[data-file="weekend.jpg"]').get_attribute("data-job")
    batch_href = page.locator("#batch-link").get_attribute("href")
    page.click("header nav >> text=My submissions")
    mine = page.locator("table#mine tbody tr[data-job]")
    assert mine.count() == 3
    assert "槟城出差" in page.locator("table#mine").inner_text()
    assert "needs review" in page.locator(f'table#mine tr[data-job="{job_id}"] .badge').inner_text()
    shoot(page, "mine")
    # Their job page: the decision and reasons, no override form, no way into the queue.
    page.click(f'table#mine tr[data-job="{job_id}"] td a >> nth=0')
    page.wait_for_url(f"**/dashboard/jobs/{job_id}")
    assert "weekend" in page.locator("#decision .reasons").inner_text().lower()
    assert page.locator("#review-form").count() == 0 and page.locator("fieldset.override").count() == 0
    assert page.locator("#next-item").count() == 0 and page.locator("a#rule-version").count() == 0
    assert page.locator("table.fields tr[data-field=total] .value").inner_text() == "45.0"
    shoot(page, "job-submitter")
    page.goto(f"{stack.url}{batch_href}")
    assert page.locator("#batch-note").inner_text() == "Penang trip, March · 槟城出差"
    assert page.locator("progress#batch-progress").get_attribute("value") == "3"
    assert page.locator("text=Open in the queue").count() == 0

    # The API says the same: these jobs are this key's.
    mine_api = requests.get(f"{stack.url}/v1/jobs?submitted_by=me", timeout=10,
                            headers={"Authorization": f"Bearer {stack.submitter_key}"}).json()["jobs"]
    assert job_id in {j["id"] for j in mine_api}


def test_submitter_cannot_open_the_queue_or_anyone_elses_jobs(page, stack):
    theirs = api_batch(stack, stack.submitter_key, ["theirs.png"])
    job_id, batch_id = theirs["job_ids"][0], theirs["id"]
    sign_in(page, stack, stack.other_submitter_key)
    page.wait_for_url("**/dashboard/upload")
    page.goto(f"{stack.url}/dashboard")  # the queue's address: a submitter's home instead
    assert page.url == f"{stack.url}/dashboard/upload" and page.locator("#queue").count() == 0
    for path in ("/dashboard/overview", "/dashboard/export.csv", "/dashboard/policies",
                 "/dashboard/policies/expense_policy", "/dashboard?status=queued&sort=oldest"):
        resp = page.request.get(f"{stack.url}{path}", max_redirects=0)
        assert resp.status in (302, 403), (path, resp.status)
        if resp.status == 302:
            assert resp.headers["location"].endswith("/dashboard/upload"), path
    assert page.goto(f"{stack.url}/dashboard/overview").status == 403
    shoot(page, "submitter-forbidden")
    for path in (f"/dashboard/jobs/{job_id}", f"/dashboard/jobs/{job_id}/document", f"/dashboard/jobs/{job_id}/pages/1",
                 f"/dashboard/batches/{batch_id}", f"/dashboard/jobs/{job_id}/events",
                 f"/dashboard/batches/{batch_id}/events"):
        assert page.request.get(f"{stack.url}{path}").status == 404, path
    page.goto(f"{stack.url}/dashboard/mine")
    assert page.locator("table#mine tbody tr[data-job]").count() == 0
    # A reviewer sees the tenant's jobs, whoever submitted them, and may upload too.
    page.click(".sign-out button")
    sign_in(page, stack, stack.reviewer_key)
    nav = page.locator("header nav a")
    assert [nav.nth(i).inner_text() for i in range(nav.count())] == ["Queue", "Overview", "Policies", "Upload",
                                                                     "My submissions", "Claims"]
    assert page.goto(f"{stack.url}/dashboard/jobs/{job_id}").status == 200
    assert page.goto(f"{stack.url}/dashboard/upload").status == 200


def test_stream_resumes_after_a_dropped_connection(page, stack):
    batch = api_batch(stack, stack.submitter_key, ["first.png", "second.png"])
    sign_in(page, stack, stack.submitter_key)
    page.goto(f"{stack.url}/dashboard/batches/{batch['id']}")
    section = page.locator("#batch")
    # Nothing is analysed yet, and each stream ends after 1 s: wait for the page to reconnect.
    deadline = time.monotonic() + 30
    while int(section.get_attribute("data-connections") or 0) < 2:
        assert time.monotonic() < deadline, "the page's EventSource did not reconnect"
        time.sleep(0.2)
    assert ids_of(section) == [0]  # the reconnect (Last-Event-ID: 0) was told nothing it had seen
    # The first job's page, open beside it, follows that job the same way.
    job_page = page.context.new_page()
    job_page.goto(f"{stack.url}/dashboard/jobs/{batch['job_ids'][0]}")
    assert job_page.locator("#job-status").inner_text() == "queued"
    job_page.locator("#job-head[data-live=open]").wait_for()
    with analysing(stack):
        page.locator("#batch[data-live=done]").wait_for(timeout=180_000)
        job_page.locator("#job-head[data-live=done]").wait_for(timeout=30_000)
    shoot(page, "batch-live")
    assert job_page.locator("#job-status").inner_text() == "succeeded"
    assert job_page.locator("#job-badge .badge").inner_text() != "pending"
    assert job_page.locator("#decision h2").inner_text() == "Decision" and job_page.locator("#decision .reasons li").count() >= 1
    shoot(job_page, "job-live")
    assert int(section.get_attribute("data-connections")) >= 2
    ids = ids_of(section)
    assert ids == sorted(set(ids)) and len(ids) >= 2, ids
    assert page.locator("progress#batch-progress").get_attribute("value") == "2"
    assert page.locator("#batch-done").inner_text() == "2"
    for job_id in batch["job_ids"]:
        row = page.locator(f'tr[data-job="{job_id}"]')
        assert row.get_attribute("data-decided") == "1", row.inner_text()  # once each, across reconnects
        assert row.locator("td.state").inner_text() == "succeeded"
        # Merchant and amount arrive with the decision, as the page renders them on a reload.
        decided = requests.get(f"{stack.url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {stack.submitter_key}"},
                               timeout=30).json()
        assert decided["amount"] in (20.5, 21.5), decided["fields"]
        assert row.locator("td.amount").inner_text() == f"{decided['amount']:.2f}"
        assert row.locator("td.merchant").inner_text() == (decided["merchant"] or "")

    # The same over plain HTTP: Last-Event-ID decides what is sent again.
    http = signed_in_http(stack, stack.submitter_key)
    url = f"{stack.url}/dashboard/batches/{batch['id']}/events"
    fresh = events_of(http.get(url, stream=True, timeout=30, headers={"Accept": "text/event-stream"}))
    assert [e[0] for e in fresh] == ["status", "done"] and fresh[0][2]["done"] is True
    last = fresh[0][1]
    assert int(last) == ids[-1]
    resumed = events_of(http.get(url, stream=True, timeout=30, headers={"Last-Event-ID": last}))
    assert [(e[0], e[1]) for e in resumed] == [("done", last)]  # nothing new: no status again
    older = events_of(http.get(url, stream=True, timeout=30, headers={"Last-Event-ID": str(ids[0])}))
    assert [(e[0], e[1]) for e in older] == [("status", last), ("done", last)]
    job_url = f"{stack.url}/dashboard/jobs/{batch['job_ids'][0]}/events"
    job_events = events_of(http.get(job_url, stream=True, timeout=30))
    assert [e[0] for e in job_events] == ["status", "done"] and job_events[0][2]["status"] == "succeeded"
    assert requests.get(url, timeout=10, headers={"Accept": "text/event-stream"}).status_code == 401
    other = signed_in_http(stack, stack.other_submitter_key)
    assert other.get(url, timeout=10).status_code == 404
