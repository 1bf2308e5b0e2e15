"""A freshly started API process takes its very first requests concurrently (a deploy, a restart):
none of them may be refused because the process is still loading (issue 13's start-up race)."""
from __future__ import annotations

import threading
from datetime import date

import requests

from tests.conftest import Server, base_env
from tests.documents import encode, receipt_image

CONCURRENT = 8


def fire_at_once(requests_to_send) -> list[requests.Response]:
    """Send every request at the same instant, each from its own thread."""
    barrier = threading.Barrier(len(requests_to_send))
    answers: list = [None] * len(requests_to_send)

    def send(i, send_one):
        barrier.wait()
        try:
            answers[i] = send_one()
        except Exception as exc:  # noqa: BLE001 - report the failure, not a hang
            answers[i] = exc

    threads = [threading.Thread(target=send, args=(i, f)) for i, f in enumerate(requests_to_send)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def test_first_concurrent_submissions_to_a_fresh_process_are_accepted(tmp_path):
    image = encode(receipt_image(date.today()), "PNG")
    # Two fresh processes: one meets single jobs first, the other batches first.
    for first in ("jobs", "batches"):
        srv = Server(base_env(tmp_path / first))
        try:
            def post(i):
                if first == "jobs":
                    return lambda: requests.post(
                        f"{srv.url}/v1/jobs", headers={"Authorization": f"Bearer {srv.key}"},
                        files={"file": (f"r{i}.png", image)}, data={"rule": "expense_policy", "cache": "false"},
                        timeout=60)
                return lambda: requests.post(
                    f"{srv.url}/v1/batches", headers={"Authorization": f"Bearer {srv.key}"},
                    files=[("files", (f"r{i}a.png", image)), ("files", (f"r{i}b.png", image))],
                    data={"rule": "expense_policy", "cache": "false"}, timeout=60)

            answers = fire_at_once([post(i) for i in range(CONCURRENT)])
            codes = [a.status_code if isinstance(a, requests.Response) else repr(a) for a in answers]
            bodies = [a.text for a in answers if isinstance(a, requests.Response) and a.status_code != 202]
            assert codes == [202] * CONCURRENT, (first, codes, bodies)
            if first == "batches":
                for answer in answers:
                    body = answer.json()
                    assert len(body["job_ids"]) == 2 and body["rejected"] == [], body
        finally:
            srv.stop()
