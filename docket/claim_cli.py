"""`docket claim`: an expense claim through the real pipeline — its documents stored and recorded
as the claim's jobs, analyzed by a worker, the claim decided when its last document is (the
job-finished event, docket/claims.py), followed on the jobs' live events and read back."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from db.claims import Claim
from db.models import DEFAULT_TENANT
from db.session import session_scope
from docket import claims, live, policies, submission
from docket.analyzers import route
from docket.config import Settings
from docket.errors import DocketError
from docket.queues import create_celery
from docket.rules import default_rules_dir, load_rules
from docket.runtime import local_stack


def run(files: list[Path], *, rule: str, header: dict[str, Any], analyzer: str = "ocr", workers: int = 1,
        timeout: float = 600.0) -> tuple[dict, list[dict]]:
    """The claim as the API shows it once decided (or as it stands at the deadline), and the
    files that could not be accepted (their problem each)."""
    header = claims.parse_header(header)
    claims.check_size(len(files))
    settings = Settings.from_env()
    rules = load_rules(settings.rules_dir or default_rules_dir())
    submission.resolve_rule(rules, rule)
    analyzer = submission.resolve_analyzer(analyzer)
    _, queue = route(analyzer)
    with local_stack(settings, workers=workers, quiet_workers=True, queues=queue) as settings:
        celery = create_celery(settings)
        rejected: list[dict] = []
        with session_scope(settings.database_url) as session:
            chosen = submission.resolve_rule(policies.active_rules(session, DEFAULT_TENANT, rules), rule)
            stored = []
            for index, path in enumerate(files):
                try:
                    with path.open("rb") as fh:
                        stored.append((path.name, submission.store_document(session, settings, fh, path.name)))
                except DocketError as exc:
                    rejected.append({"index": index, "file": str(path), "code": exc.code, "detail": exc.detail})
            if not stored:
                raise DocketError("No file of the claim could be accepted.", code="invalid_claim", status=422)
            claim = claims.new_claim(session, header, chosen, tenant_id=DEFAULT_TENANT, submitted_by=None,
                                     callback_url=None)
            jobs = submission.new_jobs(session, stored, chosen, analyzer=analyzer, tenant_id=DEFAULT_TENANT,
                                       claim_id=claim.id)
            claim_id, job_ids = claim.id, [j.id for j in jobs]
            session.commit()
            submission.publish(celery, session, jobs)
        _follow(settings, claim_id, job_ids, timeout)
        with session_scope(settings.database_url) as session:
            body = claims.claim_json(session, session.get(Claim, claim_id))
        celery.close()
    return body, rejected


def _follow(settings: Settings, claim_id: str, job_ids: list[str], timeout: float) -> None:
    """Wait on the jobs' live events until the claim is decided (read only when something happened)."""
    deadline = time.monotonic() + timeout
    subscription = live.Subscription(settings.redis_url, job_ids)
    try:
        while True:
            with session_scope(settings.database_url) as session:
                if session.scalar(select(Claim.status).where(Claim.id == claim_id)) == "decided":
                    return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            subscription.wait(min(left, 1.0))
    finally:
        subscription.close()


def human(body: dict, rejected: list[dict]) -> str:
    """The claim's decision with its reasons, totals and documents, for a terminal."""
    header = body["claim"]
    trip = header.get("trip") or {}
    where = f", trip {trip.get('start')}..{trip.get('end')} {trip.get('destination') or ''}".rstrip() if trip else ""
    lines = [f"claim {body['id']}: {body['decision'] or body['status']}  ({header['employee']}{where})"]
    names = {d["job_id"]: d["filename"] for d in body.get("documents") or []}
    names.update({j["id"]: j["filename"] for j in body["jobs"] if j["id"] not in names})
    totals = body.get("totals")
    if totals:
        parts = ", ".join(f"{k} {v:g}" for k, v in sorted(totals["by_category"].items()))
        lines.append(f"  totals: {totals['currency']} {totals['amount']:g} ({parts}); deductible VAT "
                     f"{totals['currency']} {totals['deductible_vat']:g}")
    for reason in body["reasons"]:
        concerned = ", ".join(names.get(j, j) for j in reason.get("job_ids") or [])
        lines.append(f"  - [{reason['outcome']}] {reason['check']}: {reason['message']}"
                     + (f"  [{concerned}]" if concerned else ""))
    for doc in body.get("documents") or []:
        amount = f"{doc['amount']:g}" if doc.get("amount") is not None else "?"
        lines.append(f"  {doc['filename']}: {doc['decision']}  {doc['category']}  {doc.get('date') or ''}  {amount}")
    if body["status"] != "decided":
        lines.append("  not decided before the deadline: " + ", ".join(
            f"{j['filename']} {j['status']}" for j in body["jobs"] if j["status"] in ("queued", "running")))
    for r in rejected:
        lines.append(f"  rejected {r['file']}: {r['code']}: {r['detail']}")
    return "\n".join(lines)
