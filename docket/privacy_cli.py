"""`docket erase`: erase a job's personal data on request (docket/privacy.py)."""
from __future__ import annotations

import getpass
import json

import click

from docket.config import Settings


@click.command("erase")
@click.argument("job_id")
@click.option("--reason", required=True, help="Why (kept on the record), e.g. the request's reference.")
@click.option("--by", default=None, help="Who erases it (recorded; default: cli (user)).")
@click.option("--json", "as_json", is_flag=True, help="Print the job as it is afterwards, as JSON.")
def erase_command(job_id: str, reason: str, by: str | None, as_json: bool) -> None:
    """Erase JOB_ID's personal data: its document, page images, extracted text and the fields its
    policy marks personal. The job stays with its decision, reasons and review trail; its
    document answers 410 Gone; webhook job.erased."""
    from db.migrate import upgrade
    from db.models import Job
    from db.session import session_scope
    from docket import policies, privacy
    from docket.errors import DocketError
    from docket.representation import job_json
    from docket.rules import default_rules_dir, load_rules

    settings = Settings.from_env()
    upgrade(settings.database_url)
    builtins = load_rules(settings.rules_dir or default_rules_dir())
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise click.ClickException(f"No job {job_id}.")
        try:
            privacy.erase(session, settings, job, policies.rule_for_job(session, job, builtins),
                          by=by or f"cli ({getpass.getuser()})", reason=reason)
        except DocketError as exc:
            raise click.ClickException(exc.detail) from None
        session.commit()
        body = job_json(job, history=True)
    if as_json:
        click.echo(json.dumps(body, ensure_ascii=False))
    else:
        erased = body["erased"]
        click.echo(f"{job_id}: erased {', '.join(erased['what'])} at {erased['at']} (decision kept: {body['decision']})")
