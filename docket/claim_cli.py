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
    """The claim's decision with its reasons, totals and documents, for a terminal (in the current
    language, docket.i18n: values themselves in English, their words in other languages)."""
    from docket import i18n

    _, word = i18n.gettext, i18n.value_word
    header = body["claim"]
    trip = header.get("trip") or {}
    where = _(", trip %(start)s..%(end)s %(destination)s", start=trip.get("start"), end=trip.get("end"),
              destination=trip.get("destination") or "").rstrip() if trip else ""
    lines = [_("claim %(id)s: %(decision)s  (%(employee)s%(where)s)", id=body["id"],
               decision=word(body["decision"] or body["status"]), employee=header["employee"], where=where)]
    names = {d["job_id"]: d["filename"] for d in body.get("documents") or []}
    names.update({j["id"]: j["filename"] for j in body["jobs"] if j["id"] not in names})
    totals = body.get("totals")
    if totals:
        parts = ", ".join(f"{word(k)} {v:g}" for k, v in sorted(totals["by_category"].items()))
        lines.append(_("  totals: %(currency)s %(amount)s (%(parts)s); deductible VAT %(currency)s %(vat)s",
                       currency=totals["currency"], amount=f"{totals['amount']:g}", parts=parts,
                       vat=f"{totals['deductible_vat']:g}"))
    for reason in body["reasons"]:
        concerned = ", ".join(names.get(j, j) for j in reason.get("job_ids") or [])
        lines.append(f"  - [{word(reason['outcome'])}] {reason['check']}: {reason['message']}"
                     + (f"  [{concerned}]" if concerned else ""))
    for doc in body.get("documents") or []:
        amount = f"{doc['amount']:g}" if doc.get("amount") is not None else "?"
        category = word(doc["category"]) if doc.get("category") else doc.get("category")
        lines.append(f"  {doc['filename']}: {word(doc['decision']) if doc.get('decision') else doc.get('decision')}  "
                     f"{category}  {doc.get('date') or ''}  {amount}")
    if body["status"] != "decided":
        lines.append(_("  not decided before the deadline: ") + ", ".join(
            f"{j['filename']} {word(j['status'])}" for j in body["jobs"] if j["status"] in ("queued", "running")))
    for r in rejected:
        lines.append(_("  rejected %(file)s: %(code)s: %(detail)s", file=r["file"], code=r["code"], detail=r["detail"]))
    return "\n".join(lines)
