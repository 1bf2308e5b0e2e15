"""The Upload page: the files of one form as one batch, accepted exactly as POST /v1/batches
accepts them (api.batches.accept_batch), the submitter's note included."""
from __future__ import annotations

from flask import url_for

from api import context, intake
from api.auth import Principal
from api.batches import accept_batch
from docket.documents import SUPPORTED

# The picker's hint (the server decides from the bytes): types browsers may not name get extensions.
ACCEPT = ",".join([*SUPPORTED, ".pdf", ".ofd", ".xml"])


def page_limits() -> dict:
    """What the page checks before sending: the same limits the server applies."""
    settings = context.settings()
    return {"max_file_bytes": settings.max_upload_bytes, "max_files": settings.max_batch_files, "accept": ACCEPT}


def accept(who: Principal) -> tuple[dict, int]:
    """The 202 body of the batch (with `rejected`, each unusable file's problem) plus the links
    the page follows; raises DocketError (422 with `rejected` when no file could be accepted)."""
    opts = intake.options()  # the note with them: stored with the batch, in its transaction
    body, status, _ = accept_batch(intake.many_documents(), opts, who)
    links = {"batch": url_for("dashboard.batch_page", batch_id=body["id"]),
             "events": url_for("dashboard.batch_events", batch_id=body["id"])}
    return {**body, "note": opts["note"], "links": links}, status


def refused_summary(rejected: list[dict]) -> str:
    """The refused files in one line, for the page the script-less form lands on."""
    from docket import i18n

    return i18n.gettext("%(n)s file(s) refused: ", n=len(rejected)) + "; ".join(
        f"{r['filename'] or i18n.gettext('file %(n)s', n=r['index'] + 1)}: {r['detail']}" for r in rejected)
