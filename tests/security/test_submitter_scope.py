"""What a submitter may read: only what its own key submitted, through every API route (the
dashboard's rule too). Employees of one tenant must not read each other's receipts; reviewers
and admins still read the whole tenant."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import update

from db.models import Job
from db.session import session_scope
from tests.test_security import PNG, finish, key, make_app, submit


@pytest.fixture
def office(settings, redis_url):
    """Tenant `t`: submitters a1 and a2 (one job and one batch each), a reviewer and an admin."""
    client = make_app(settings, redis_url).test_client()
    ks = {"a1": key(settings, "submitter", "t"), "a2": key(settings, "submitter", "t")}
    ks["reviewer"], ks["admin"] = key(settings, "reviewer", "t"), key(settings, "admin", "t")
    jobs = {who: submit(client, ks[who], data=PNG + who.encode()).get_json()["id"] for who in ("a1", "a2")}
    batches = {}
    for who in ("a1", "a2"):
        created = client.post("/v1/batches", data={"files": [(io.BytesIO(PNG + b"b" + who.encode()), "b.png")],
                                                   "rule": "expense_policy"},
                              content_type="multipart/form-data", headers=ks[who]).get_json()
        batches[who] = created["id"]
    for job_id in jobs.values():
        finish(settings, job_id)  # decided: stats and events have something to show
    return client, ks, jobs, batches


def _not_found(resp) -> bool:
    return resp.status_code == 404 and resp.mimetype == "application/problem+json"


def test_submitter_cannot_read_a_colleagues_job(office):
    client, ks, jobs, _ = office
    assert _not_found(client.get(f"/v1/jobs/{jobs['a2']}", headers=ks["a1"]))


def test_submitter_cannot_wait_on_a_colleagues_job(office):
    client, ks, jobs, _ = office
    resp = client.get(f"/v1/jobs/{jobs['a2']}", headers={**ks["a1"], "Prefer": "wait=1"})
    assert _not_found(resp)


def test_submitter_cannot_download_a_colleagues_document(office):
    client, ks, jobs, _ = office
    assert _not_found(client.get(f"/v1/jobs/{jobs['a2']}/document", headers=ks["a1"]))


def test_submitter_cannot_read_a_colleagues_pages(office):
    client, ks, jobs, _ = office
    assert _not_found(client.get(f"/v1/jobs/{jobs['a2']}/pages/1", headers=ks["a1"]))


def test_submitter_cannot_follow_a_colleagues_job_events(office):
    client, ks, jobs, _ = office
    assert _not_found(client.get(f"/v1/jobs/{jobs['a2']}/events", headers=ks["a1"]))


def test_submitter_cannot_read_a_colleagues_reviews(office):
    client, ks, jobs, _ = office
    assert _not_found(client.get(f"/v1/jobs/{jobs['a2']}/reviews", headers=ks["a1"]))


def test_submitter_cannot_read_a_colleagues_deliveries(office):
    client, ks, jobs, _ = office
    assert _not_found(client.get(f"/v1/jobs/{jobs['a2']}/deliveries", headers=ks["a1"]))


def test_submitter_cannot_read_a_colleagues_batch(office):
    client, ks, _, batches = office
    assert _not_found(client.get(f"/v1/batches/{batches['a2']}", headers=ks["a1"]))


def test_submitter_cannot_follow_a_colleagues_batch_events(office):
    client, ks, _, batches = office
    assert _not_found(client.get(f"/v1/batches/{batches['a2']}/events", headers=ks["a1"]))


def test_submitter_lists_only_its_own_jobs(office):
    client, ks, jobs, batches = office
    listed = client.get("/v1/jobs?counts=true", headers=ks["a1"]).get_json()
    mine = client.get(f"/v1/batches/{batches['a1']}", headers=ks["a1"]).get_json()["jobs"]
    assert sorted(j["id"] for j in listed["jobs"]) == sorted([jobs["a1"], mine[0]["id"]])
    assert sum(listed["counts"].values()) == 2  # counts over its own jobs too
    # Filtering by a colleague's batch, decision or text finds nothing of theirs either.
    assert client.get(f"/v1/jobs?batch={batches['a2']}", headers=ks["a1"]).get_json()["jobs"] == []
    decided = client.get("/v1/jobs?decision=approve", headers=ks["a1"]).get_json()["jobs"]
    assert [j["id"] for j in decided] == [jobs["a1"]]


def test_submitter_export_holds_only_its_own_rows(office):
    client, ks, jobs, _ = office
    resp = client.get("/v1/jobs/export.csv", headers=ks["a1"])
    assert resp.status_code == 200
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert jobs["a1"] in {r["job_id"] for r in rows} and jobs["a2"] not in {r["job_id"] for r in rows}
    assert len(rows) == 2  # its job and its batch's job


def test_submitter_stats_count_only_its_own_jobs(office):
    client, ks, _, _ = office
    mine = client.get("/v1/stats", headers=ks["a1"]).get_json()
    everyone = client.get("/v1/stats", headers=ks["reviewer"]).get_json()
    assert mine["decided"] == 1 and everyone["decided"] == 2
    assert sum(mine["by_status"].values()) == 2 and sum(everyone["by_status"].values()) == 4


def test_submitter_stats_count_only_reviews_of_its_own_jobs(office):
    client, ks, jobs, _ = office
    reviewed = client.post(f"/v1/jobs/{jobs['a2']}/reviews", headers=ks["reviewer"],
                           json={"decision": "reject", "comment": "not a business expense"})
    assert reviewed.status_code == 201
    assert client.get("/v1/stats", headers=ks["a1"]).get_json()["reviews"] == 0
    assert client.get("/v1/stats", headers=ks["reviewer"]).get_json()["reviews"] == 1


def test_submitter_never_sees_jobs_submitted_without_a_key(settings, office):
    """The CLI's jobs have no submitting key: no submitter key may read them."""
    client, ks, jobs, _ = office
    with session_scope(settings.database_url) as s:
        s.execute(update(Job).where(Job.id == jobs["a2"]).values(submitted_by=None))
    assert _not_found(client.get(f"/v1/jobs/{jobs['a2']}", headers=ks["a1"]))
    assert jobs["a2"] not in {j["id"] for j in client.get("/v1/jobs", headers=ks["a1"]).get_json()["jobs"]}
    assert client.get(f"/v1/jobs/{jobs['a2']}", headers=ks["reviewer"]).status_code == 200


def test_submitter_still_reads_everything_of_its_own(office):
    client, ks, jobs, batches = office
    a1 = ks["a1"]
    assert client.get(f"/v1/jobs/{jobs['a1']}", headers=a1).get_json()["id"] == jobs["a1"]
    assert client.get(f"/v1/jobs/{jobs['a1']}/document", headers=a1).status_code == 200
    page = client.get(f"/v1/jobs/{jobs['a1']}/pages/1", headers=a1)
    assert page.status_code == 200 and page.mimetype == "image/png"
    events = client.get(f"/v1/jobs/{jobs['a1']}/events", headers=a1)
    assert events.status_code == 200 and "event: done" in events.get_data(as_text=True)
    assert client.get(f"/v1/jobs/{jobs['a1']}/reviews", headers=a1).status_code == 200
    assert client.get(f"/v1/jobs/{jobs['a1']}/deliveries", headers=a1).status_code == 200
    assert client.get(f"/v1/batches/{batches['a1']}", headers=a1).status_code == 200
    mine = client.get("/v1/jobs?submitted_by=me", headers=a1).get_json()["jobs"]
    assert len(mine) == 2


@pytest.mark.parametrize("role", ["reviewer", "admin"])
def test_reviewers_and_admins_still_read_the_whole_tenant(office, role):
    client, ks, jobs, batches = office
    h = ks[role]
    for who in ("a1", "a2"):
        assert client.get(f"/v1/jobs/{jobs[who]}", headers=h).status_code == 200
        assert client.get(f"/v1/jobs/{jobs[who]}/document", headers=h).status_code == 200
        assert client.get(f"/v1/batches/{batches[who]}", headers=h).status_code == 200
    assert len(client.get("/v1/jobs", headers=h).get_json()["jobs"]) == 4
    rows = list(csv.DictReader(io.StringIO(client.get("/v1/jobs/export.csv", headers=h)
                                           .get_data(as_text=True).lstrip("\ufeff"))))
    assert len(rows) == 4


def test_submitter_cannot_read_a_policy_simulation(office):
    """A simulation reads the whole tenant's past jobs (counts, example job ids): a reviewer's."""
    client, ks, jobs, _ = office
    started = client.post("/v1/rules/expense_policy/versions/expense_policy/simulate", json={"background": True},
                          headers=ks["reviewer"])
    if started.status_code == 404:  # the built-in's version is its hash: ask for it by listing
        version = client.get("/v1/rules/expense_policy/versions", headers=ks["reviewer"]).get_json()["active"]
        started = client.post(f"/v1/rules/expense_policy/versions/{version}/simulate", json={"background": True},
                              headers=ks["reviewer"])
    assert started.status_code == 202, started.get_data(as_text=True)
    run_id = started.get_json()["id"]
    assert client.get(f"/v1/simulations/{run_id}", headers=ks["reviewer"]).status_code == 200
    assert _not_found(client.get(f"/v1/simulations/{run_id}", headers=ks["a1"]))
