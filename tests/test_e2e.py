"""The whole flow, on the embedded default and on real Postgres + Redis: upload → queue →
worker → decision → stored → served back."""
from __future__ import annotations

import io
import json
import time
from datetime import date, timedelta

import requests
from celery import Celery
from sqlalchemy import create_engine, text

from tests.documents import encode, receipt_image

DECISIONS = {"approve", "needs_review", "reject"}


def recent_weekday() -> date:
    day = date.today() - timedelta(days=2)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def submit(server, path_or_bytes, rule: str, name: str | None = None, **fields: str) -> dict:
    data = path_or_bytes.read_bytes() if hasattr(path_or_bytes, "read_bytes") else path_or_bytes
    resp = server.http.post(f"{server.url}/v1/jobs", files={"file": (name or getattr(path_or_bytes, "name", "doc"), data)},
                         data={"rule": rule, **fields}, timeout=30)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert resp.headers["Location"].endswith("/v1/jobs/" + body["id"])
    return body


def test_documents_end_to_end(server, sample):
    rules = {r["name"]: r for r in server.http.get(f"{server.url}/v1/rules", timeout=5).json()["rules"]}
    assert {"expense_policy", "contract_review", "screenshot_moderation"} <= set(rules)

    # A clean, recent weekday receipt: every required field read, every check passes.
    clean = submit(server, encode(receipt_image(recent_weekday()), "PNG"), "expense_policy", "clean.png")
    done = server.wait_job(clean["id"])
    assert done["status"] == "succeeded", done
    fields = done["fields"]
    assert fields["merchant_name"] == "KEDAI BUKU MAJU SDN BHD"
    assert fields["total"] == 32.5 and fields["currency"] == "MYR"
    assert fields["transaction_date"] == recent_weekday().isoformat()
    assert done["decision"] == "approve", done["reasons"]
    assert done["rule"] == {"name": "expense_policy", "version": rules["expense_policy"]["version"]}
    assert done["rule"]["version"].startswith("sha256:") and done["analyzer"] == "ocr"
    assert done["timings"]["analyze_s"] > 0

    # The same receipt again, re-saved as JPEG: the classic double claim is flagged.
    again = server.wait_job(submit(server, encode(receipt_image(recent_weekday()), "JPEG"), "expense_policy",
                                   "again.jpg")["id"])
    assert again["decision"] == "needs_review"
    assert [r for r in again["reasons"] if r["check"] == "duplicate_receipt"][0]["message"].count(clean["id"]) == 1

    # Bundled samples: each policy's checks fire and cite themselves.
    contract = server.wait_job(submit(server, sample("contract-en.pdf"), "contract_review")["id"])
    assert contract["status"] == "succeeded", contract
    assert contract["fields"]["jurisdiction"] == "Delaware"
    assert contract["decision"] in ("needs_review", "reject")
    assert any("liab" in r["check"] for r in contract["reasons"]), contract["reasons"]

    shot = server.wait_job(submit(server, sample("screenshot-zh.png"), "screenshot_moderation")["id"])
    assert shot["status"] == "succeeded", shot
    assert set(shot["fields"]["personal_data_types"]) == {"phone", "email"}
    assert "13812345678" not in json.dumps(shot["fields"]["personal_data"])  # stored masked
    assert shot["decision"] == "needs_review"
    for reason in shot["reasons"]:
        assert reason["rule"] == "screenshot_moderation" and reason["check"] and reason["message"]

    zh = server.wait_job(submit(server, sample("receipt-zh.png"), "expense_policy")["id"])
    assert zh["status"] == "succeeded", zh
    assert zh["fields"]["total"] == 128.0 and zh["fields"]["currency"] == "CNY"
    assert zh["fields"]["transaction_date"] == "2026-11-21"
    assert zh["decision"] in DECISIONS and zh["decision"] != "approve"  # beer on the bill, weekend

    listed = server.http.get(f"{server.url}/v1/jobs?status=succeeded&limit=500", timeout=5).json()["jobs"]
    assert {clean["id"], contract["id"], shot["id"], zh["id"]} <= {j["id"] for j in listed}
    approved = server.http.get(f"{server.url}/v1/jobs?decision=approve", timeout=5).json()["jobs"]
    approved = [j for j in approved if j["rule"]["name"] == "expense_policy"]
    assert [j["id"] for j in approved] == [clean["id"]]


def test_batch_end_to_end(server, sample):
    files = [("files", ("a.png", encode(receipt_image(recent_weekday(), total="10.00"), "PNG"))),
             ("files", ("b.jpg", encode(receipt_image(recent_weekday(), total="20.00"), "JPEG"))),
             ("files", ("broken.png", b"\x89PNG\r\n\x1a\nthis is not a png")),
             ("files", ("c.webp", encode(receipt_image(recent_weekday(), total="30.00"), "WEBP")))]
    resp = server.http.post(f"{server.url}/v1/batches", files=files, data={"rule": "expense_policy"}, timeout=30)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert len(body["job_ids"]) == 3 and body["rejected"][0]["filename"] == "broken.png"
    totals = sorted(server.wait_job(job_id)["fields"]["total"] for job_id in body["job_ids"])
    assert totals == [10.0, 20.0, 30.0]
    batch = server.http.get(f"{server.url}/v1/batches/{body['id']}", timeout=5).json()
    assert batch["counts"] == {"queued": 0, "running": 0, "succeeded": 3, "failed": 0} and batch["done"]
    by_batch = server.http.get(f"{server.url}/v1/jobs?batch={body['id']}", timeout=5).json()["jobs"]
    assert sorted(j["id"] for j in by_batch) == sorted(body["job_ids"])


def test_redelivered_message_makes_no_second_decision(server, stack_env):
    # cache=false: the session's server has seen this image before, and a cache hit never reaches a worker.
    job = submit(server, encode(receipt_image(recent_weekday()), "PNG"), "expense_policy", "r.png", cache="false")
    first = server.wait_job(job["id"])
    assert first["status"] == "succeeded" and first["attempts"] == 1
    # The same message again (what a broker redelivery looks like): the worker must skip it.
    broker = stack_env.get("DOCKET_REDIS_URL") or _embedded_url(stack_env)
    app = Celery(broker=broker)
    for _ in range(2):
        app.send_task("docket.analyze_job", args=[job["id"]], queue="cpu")
    nudge = submit(server, encode(receipt_image(recent_weekday()), "PNG"), "expense_policy", "n.png", cache="false")
    server.wait_job(nudge["id"])  # one worker, FIFO: the duplicates were consumed before this one
    again = server.http.get(f"{server.url}/v1/jobs/{job['id']}", timeout=5).json()
    assert again["attempts"] == 1 and again["decided_at"] == first["decided_at"]
    engine = create_engine(stack_env.get("DOCKET_DATABASE_URL") or f"sqlite:///{stack_env['DOCKET_DATA_DIR']}/docket.db")
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM decisions WHERE job_id = :j"), {"j": job["id"]}).scalar()
    engine.dispose()
    assert n == 1


def _embedded_url(env: dict) -> str:
    from pathlib import Path

    return json.loads((Path(env["DOCKET_DATA_DIR"]) / "redis" / "server.json").read_text())["url"]


def test_serve_stops_what_it_started(stack_env):
    from pathlib import Path

    from tests.conftest import Server

    srv = Server(stack_env, workers=1)
    state = Path(stack_env["DOCKET_DATA_DIR"]) / "redis" / "server.json"
    pid = json.loads(state.read_text())["pid"] if state.exists() else None
    assert (pid is not None) == ("DOCKET_REDIS_URL" not in stack_env)
    assert srv.stop() == 0
    if pid is not None:
        import os

        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        assert not alive, "embedded Redis left running"
        assert not state.exists()


def _pids_with_data_dir(data_dir: str) -> set[int]:
    from pathlib import Path

    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f"DOCKET_DATA_DIR={data_dir}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.add(int(proc.name))
        except OSError:
            pass
    return found


def test_serve_killed_outright_leaves_nothing_running(stack_env):
    """SIGKILL gives `docket serve` no chance to clean up; what it started must go anyway."""
    import os
    import signal

    from tests.conftest import Server

    data_dir = stack_env["DOCKET_DATA_DIR"]
    srv = Server(stack_env, workers=1)
    assert _pids_with_data_dir(data_dir) - {srv.proc.pid}, "expected a worker (and, embedded, a Redis server) started by docket serve"
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()

    def running() -> set[int]:
        # Scanned afresh each time: the worker may still be forking its pool and beat when serve
        # dies (a loaded machine starts it slowly), and those must go too; a pid that has exited
        # meanwhile (its /proc entry gone) or is a zombie is not running.
        alive = set()
        for p in _pids_with_data_dir(data_dir):
            try:
                if b"zombie" not in open(f"/proc/{p}/status", "rb").read().lower():
                    alive.add(p)
            except OSError:
                pass
        return alive

    deadline = time.monotonic() + 30
    while (left := running()) and time.monotonic() < deadline:
        time.sleep(0.3)
    for pid in left:  # do not leak them into the rest of the run
        try:
            os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"still running after docket serve was killed: {left}"
