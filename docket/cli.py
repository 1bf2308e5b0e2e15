"""The `docket` command."""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

import click

from docket.config import Settings


@click.group()
@click.option("--lang", default=None, metavar="LANG",
              help="Language of what commands print for people: en or zh-Hans (default: the environment's "
                   "locale, e.g. LANG=zh_CN.UTF-8). JSON output stays English unless --lang is given.")
def main(lang: str | None) -> None:
    """Docket: receipts, contracts and screenshots in, structured decisions out."""
    from docket import i18n, logs
    from docket.data_dir import PRIVATE_UMASK

    global _LANG
    if lang is not None and i18n.normalize(lang) is None:
        raise click.BadParameter(f"{lang!r}: Docket speaks {', '.join(i18n.TAGS.values())}", param_hint="--lang")
    _LANG = lang

    logs.configure()  # DOCKET_LOG_LEVEL, DOCKET_LOG_FORMAT (text or json)
    # Whatever a command and the processes it starts create (database, documents, page images,
    # the embedded Redis's files, metrics) is readable by this user only (review item 9).
    os.umask(PRIVATE_UMASK)


@main.command()
def migrate() -> None:
    """Upgrade the database schema to the newest revision."""
    from db.migrate import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url)
    _archive_builtins(settings)
    click.echo(f"database at head: {_redact(settings.database_url)}")


#: --lang as given (None: the environment's locale decides, for human output).
_LANG: str | None = None


def _speak(machine_output: bool = False) -> None:
    """Print in the chosen language from here on: --lang, else (for people, not JSON) the
    environment's locale (LC_ALL, LC_MESSAGES, LANG), else English. Only commands that print
    for people call this: servers and workers keep English for what they store and send."""
    from docket import i18n

    i18n.set_current(i18n.choose(_LANG, None if machine_output else i18n.from_environment()))


def _archive_builtins(settings: Settings) -> None:
    """Keep the deployed built-in policies' sources by version (explains old decisions forever)."""
    from db.session import session_scope
    from docket.policies import archive_builtins
    from docket.rules import default_rules_dir, load_rules

    with session_scope(settings.database_url) as session:
        archive_builtins(session, load_rules(settings.rules_dir or default_rules_dir()))


@main.group()
def keys() -> None:
    """API keys: each belongs to one tenant and has one role."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(["submitter", "reviewer", "admin", "metrics"]))
@click.option("--tenant", required=True, help="Tenant id (created if new).")
@click.option("--name", default=None, help="A note to recognise the key by.")
def keys_create(role: str, tenant: str, name: str | None) -> None:
    """Create a key and print it on stdout — the only time it is shown."""
    from db.migrate import upgrade
    from db.session import session_scope
    from docket.tenants import create_key

    settings = Settings.from_env()
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        key, plaintext = create_key(session, tenant, role, name)
        key_id = key.id
    click.echo(plaintext)
    click.echo(f"created key {key_id} ({role}, tenant {tenant}); store it now, it is not shown again", err=True)


@keys.command("revoke")
@click.argument("key")
def keys_revoke(key: str) -> None:
    """Revoke a key, given its id or the key itself."""
    from db.session import session_scope
    from docket.tenants import revoke_key

    with session_scope(Settings.from_env().database_url) as session:
        found = revoke_key(session, key)
        if found is None:
            raise click.ClickException("no such key")
        key_id = found.id
    click.echo(f"revoked key {key_id}")


@keys.command("sign-out")
@click.argument("key")
def keys_sign_out(key: str) -> None:
    """End every dashboard session of a key (id or the key itself), in every browser; the key
    itself keeps working (`keys revoke` ends both)."""
    from db.models import ApiKey
    from db.session import session_scope
    from docket import dashboard_sessions
    from docket.tenants import KEY_PREFIX

    key_id = key[len(KEY_PREFIX):].split("_", 1)[0] if key.startswith(KEY_PREFIX) else key
    with session_scope(Settings.from_env().database_url) as session:
        if session.get(ApiKey, key_id) is None:
            raise click.ClickException("no such key")
        ended = dashboard_sessions.end_all(session, key_id)
    click.echo(f"ended {ended} session{'' if ended == 1 else 's'} of key {key_id}")


@keys.command("list")
@click.option("--tenant", default=None)
def keys_list(tenant: str | None) -> None:
    """Key ids, roles and tenants (never the keys)."""
    from sqlalchemy import select

    from db.models import ApiKey
    from db.session import session_scope

    with session_scope(Settings.from_env().database_url) as session:
        query = select(ApiKey).order_by(ApiKey.created_at)
        if tenant:
            query = query.where(ApiKey.tenant_id == tenant)
        for key in session.scalars(query):
            state = "revoked" if key.revoked_at else "active"
            click.echo(f"{key.id}  {key.tenant_id}  {key.role}  {state}  {key.name or ''}".rstrip())


@main.group()
def tenants() -> None:
    """Tenants' settings."""


@tenants.command("language")
@click.argument("tenant")
@click.argument("language", required=False)
def tenants_language(tenant: str, language: str | None) -> None:
    """Print, or set to LANGUAGE (en or zh-Hans), the tenant's default language: the dashboard's
    and the API's for its people who chose none (no switch, no Accept-Language)."""
    from db.migrate import upgrade
    from db.session import session_scope
    from docket import i18n
    from docket.tenants import ensure_tenant

    locale = i18n.normalize(language) if language is not None else None
    if language is not None and locale is None:
        raise click.BadParameter(f"{language!r}: Docket speaks {', '.join(i18n.TAGS.values())}", param_hint="LANGUAGE")
    settings = Settings.from_env()
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        row = ensure_tenant(session, tenant)
        if locale is not None:
            row.default_locale = locale
        click.echo(i18n.tag(row.default_locale or i18n.DEFAULT))


@main.group()
def webhooks() -> None:
    """Webhook signing secrets."""


@webhooks.command("secret")
@click.option("--tenant", required=True)
def webhooks_secret(tenant: str) -> None:
    """Print the tenant's whsec_ secret (signs callback_url deliveries)."""
    from db.migrate import upgrade
    from db.session import session_scope
    from docket.tenants import ensure_tenant

    settings = Settings.from_env()
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        secret = ensure_tenant(session, tenant).webhook_secret
    if not secret:
        raise click.ClickException(f"the secret of tenant {tenant} cannot be read: {getattr(secret, 'reason', '')}")
    click.echo(secret)


@main.group("secrets")
def secrets_group() -> None:
    """The keys that encrypt stored webhook secrets (DOCKET_SECRETS_KEYS)."""


@secrets_group.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new Fernet key, to put first in DOCKET_SECRETS_KEYS."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode("ascii"))


@secrets_group.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored webhook secret under the first key of DOCKET_SECRETS_KEYS (plaintext
    rows from before encryption too). Afterwards the other keys may be removed."""
    from db import sealed
    from db.migrate import upgrade
    from db.session import session_scope

    settings = Settings.from_env()
    upgrade(settings.database_url)
    try:
        with session_scope(settings.database_url) as session:
            counts = sealed.rotate(session)
    except sealed.SecretsKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"rotated {counts['rotated']}, encrypted {counts['encrypted']} stored in plaintext, "
               f"unreadable {counts['unreadable']}")
    if counts["unreadable"]:
        raise click.ClickException(f"{counts['unreadable']} secret(s) open with none of the keys in "
                                   f"{sealed.KEYS_ENV} (left as they were): add the key they were encrypted with")


def _prepare(settings: Settings) -> None:
    """The data directory private and the secrets' key usable, or no start."""
    from db.sealed import SecretsKeyError
    from docket import data_dir

    try:
        data_dir.prepare(settings)
    except SecretsKeyError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes' concurrency (0: none).")
def serve(host: str, port: int, workers: int) -> None:
    """Run the API and a worker; embedded Redis and SQLite when nothing is configured."""
    from waitress import serve as serve_wsgi

    from api import create_app
    from docket.runtime import local_stack

    from docket import live, metrics

    # SIGTERM (docker stop, a supervisor) must unwind like Ctrl-C so started servers stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _prepare(Settings.from_env())
    # The API and the worker it starts write their samples to one folder: /metrics shows both.
    metrics.configure(Settings.from_env().data_dir, fresh=True)
    # Waitress, a production WSGI server, in place of Werkzeug's development server (which
    # parsed every request's headers through the email package and cost a sixth of the API's
    # CPU per submission). Its threads are a fixed pool: event streams and waits may hold all
    # but a reserve of them (docket/live.py), so ordinary requests always find one.
    threads = live.server_threads()
    with local_stack(Settings.from_env(), workers=workers) as settings:
        app = create_app(settings)
        click.echo(f"Docket API on http://{host}:{port}  (database {_redact(settings.database_url)}, "
                   f"broker {settings.redis_url})", err=True)
        try:
            serve_wsgi(app, host=host, port=port, threads=threads, connection_limit=max(1000, 4 * threads),
                       ident="Docket")
        except KeyboardInterrupt:
            pass


@main.command()
@click.option("--queues", default="cpu", show_default=True, help="Comma-separated queues: cpu, gpu.")
@click.option("--concurrency", default=None, type=int,
              help="Processes (default: CPU count); for gpu, jobs in flight in one process (default: the model batch size).")
@click.option("--beat/--no-beat", default=False, help="Also run the periodic sweeper (one per deployment).")
@click.option("--pool", default=None, type=click.Choice(["prefork", "solo", "threads"]),
              help="Default: prefork; threads for gpu (one process, one model, jobs batched).")
@click.option("--metrics-port", default=None, type=int, help="Serve Prometheus metrics on this port (/metrics).")
def worker(queues: str, concurrency: int | None, beat: bool, pool: str | None, metrics_port: int | None) -> None:
    """Run a Celery worker for the given queues."""
    settings = Settings.from_env()
    _prepare(settings)
    if metrics_port is not None:
        _serve_metrics(settings, metrics_port)
    gpu = "gpu" in queues.split(",")
    if pool is None:
        pool = "threads" if gpu else "prefork"
    if gpu:
        _load_model(settings, pool)  # refuse to start without a usable model
    try:
        _archive_builtins(settings)
    except Exception as exc:  # noqa: BLE001 - a worker still starts; `docket migrate` archives too
        logging.getLogger(__name__).warning("built-in policies not archived: %s", exc)
    server = None
    if settings.redis_url is None:
        from docket.embedded import ensure_redis

        url, server = ensure_redis(settings)
        os.environ["DOCKET_REDIS_URL"] = url
    from worker.celery_app import celery

    if concurrency is None:
        concurrency = settings.model.batch_size if gpu and pool == "threads" else 1 if gpu else (os.cpu_count() or 1)
    # worker/ocr.py gives each process's OCR engine the cores divided by this (DOCKET_OCR_THREADS=0).
    os.environ["DOCKET_WORKER_CONCURRENCY"] = str(concurrency)
    argv = ["worker", "--queues", queues, "--concurrency", str(concurrency), "--pool", pool,
            "--loglevel", os.environ.get("DOCKET_LOG_LEVEL", "INFO"), "--without-gossip", "--without-mingle"]
    if beat:
        argv.append("--beat")
    from celery.signals import worker_shutdown, worker_shutting_down

    # Celery's programmatic entry points drop the worker's exit status (a crashed worker would
    # exit 0, and a supervisor's on-failure restart would never fire): read it off the worker.
    asked_to_stop, ended = [], {}
    worker_shutting_down.connect(lambda **_: asked_to_stop.append(True), weak=False)
    worker_shutdown.connect(lambda sender=None, **_: ended.update(code=getattr(sender, "exitcode", 0)), weak=False)
    try:
        celery.worker_main(argv)
        code = ended.get("code") or 0
        if code and not asked_to_stop:
            _restart_after_crash(code, server)  # returns only when it may not restart
    finally:
        if server is not None:
            server.stop()
    sys.exit(code)


def _restart_after_crash(code, server) -> None:
    """Celery gives up on some faults it calls unrecoverable (e.g. kombu failing to close a Redis
    connection that dropped while messages were unacknowledged) and exits. Nothing is lost — the
    sweeper and the heartbeats take the jobs back — but nothing runs either until something starts
    the worker again; without a supervisor that something is this process: it starts itself afresh
    (same pid, same arguments), a few times at most (docket/processes.may_restart)."""
    import time

    from docket.processes import may_restart

    log = logging.getLogger(__name__)
    if not may_restart(os.environ, time.time()):
        log.error("the Celery worker stopped (exit status %s) too often; not starting it again", code)
        return
    log.error("the Celery worker stopped on an unrecoverable error (exit status %s); starting it again", code)
    if server is not None:  # the embedded Redis: the new process starts its own
        server.stop()
        os.environ.pop("DOCKET_REDIS_URL", None)
    time.sleep(1.0)  # a broker that just went away gets a moment to come back
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.argv])


def _serve_metrics(settings: Settings, port: int) -> None:
    """This worker's processes (and only theirs, unless PROMETHEUS_MULTIPROC_DIR says otherwise)
    count into a fresh folder; a thread of the main process serves them on `port`."""
    import socket

    from docket import metrics
    from docket.queues import CONTROL_QUEUE, CPU_QUEUE, GPU_QUEUE

    if not metrics.enabled():
        os.environ[metrics.ENV] = str(settings.data_dir / "metrics" / f"worker-{socket.gethostname()}-{os.getpid()}")
    metrics.configure(settings.data_dir, fresh=True)

    def depths():
        url = os.environ.get("DOCKET_REDIS_URL") or settings.redis_url
        return metrics.queue_depths(url, (CPU_QUEUE, GPU_QUEUE, CONTROL_QUEUE))

    # An operator's port: every tenant's series (docket/metrics.py says who reads what).
    metrics.serve(port, settings.metrics_token, depths)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rule", required=True, help="Policy name from rules/ (see GET /v1/rules).")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines on stdout, one object per document.")
@click.option("--analyzer", default="ocr", show_default=True, help="ocr (CPU) or model (vision-language model).")
@click.option("--model", "model_dir", default=None, type=click.Path(path_type=Path),
              help="Model folder for --analyzer model (sets DOCKET_MODEL_PATH for the worker).")
@click.option("--workers", default=None, type=int, help="Worker concurrency for the embedded run.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for all jobs.")
def analyze(files: tuple[Path, ...], rule: str, as_json: bool, analyzer: str, model_dir: Path | None,
            workers: int | None, timeout: float) -> None:
    """Send FILES through the pipeline (queue, worker, database) and print each decision as it
    is made (JSON Lines with --json: one object per file, in the order they finish)."""
    from db.sealed import SecretsKeyError
    from docket.analyze import run
    from docket.errors import DocketError
    from docket.problem_text import localize

    _speak(machine_output=as_json)
    if model_dir is not None:
        os.environ["DOCKET_MODEL_PATH"] = str(model_dir.resolve())
    if analyzer == "model":
        from worker.vlm.loading import ModelUnavailable, check_folder

        try:
            check_folder(os.environ.get("DOCKET_MODEL_PATH"))
        except ModelUnavailable as exc:
            raise click.UsageError(f"{exc} (use --model DIR)") from None
        workers = workers or Settings.from_env().model.batch_size
    from tqdm import tqdm

    def show(result: dict) -> None:  # each file as its decision arrives, not all at the end
        with tqdm.external_write_mode():
            click.echo(json.dumps(result, ensure_ascii=False) if as_json else _human(result))

    try:
        results = run(list(files), rule=rule, analyzer=analyzer,
                      workers=workers or min(len(files), os.cpu_count() or 1), timeout=timeout,
                      progress=len(files) > 1, on_result=show)
    except DocketError as exc:
        raise click.UsageError(localize(exc.code, exc.title, exc.detail)[1]) from None
    except SecretsKeyError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(0 if all(r["status"] == "succeeded" for r in results) else 1)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rule", required=True, help="Policy name from rules/ (its claim_checks decide the claim).")
@click.option("--employee", required=True, help="Who claims.")
@click.option("--purpose", default=None, help="What the expenses were for.")
@click.option("--trip-start", default=None, help="First day of the trip, YYYY-MM-DD.")
@click.option("--trip-end", default=None, help="Last day of the trip, YYYY-MM-DD.")
@click.option("--destination", default=None, help="The trip's destination city.")
@click.option("--origin", default=None, help="Where the trip started.")
@click.option("--cost-center", default=None)
@click.option("--claimed-amount", default=None, help="The amount claimed, in the policy's currency.")
@click.option("--json", "as_json", is_flag=True, help="The claim as GET /v1/claims/{id} shows it.")
@click.option("--analyzer", default="ocr", show_default=True)
@click.option("--workers", default=None, type=int, help="Worker concurrency for the embedded run.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for the claim's decision.")
def claim(files: tuple[Path, ...], rule: str, employee: str, purpose: str | None, trip_start: str | None,
          trip_end: str | None, destination: str | None, origin: str | None, cost_center: str | None,
          claimed_amount: str | None, as_json: bool, analyzer: str, workers: int | None, timeout: float) -> None:
    """Submit FILES as one expense claim, follow it, and print the claim's decision with its
    reasons, totals and documents (exit status 0 when it is approved)."""
    from docket.claim_cli import human, run
    from docket.errors import DocketError

    _speak(machine_output=as_json)

    trip = {k: v for k, v in (("start", trip_start), ("end", trip_end), ("destination", destination),
                              ("origin", origin)) if v}
    header = {"employee": employee, "purpose": purpose, "trip": trip or None, "cost_center": cost_center,
              "claimed_amount": claimed_amount}
    try:
        body, rejected = run(list(files), rule=rule, header=header, analyzer=analyzer,
                             workers=workers or min(len(files), os.cpu_count() or 1), timeout=timeout)
    except DocketError as exc:
        from docket.problem_text import localize

        raise click.UsageError(localize(exc.code, exc.title, exc.detail)[1]) from None
    click.echo(json.dumps({**body, "rejected": rejected}, ensure_ascii=False) if as_json else human(body, rejected))
    sys.exit(0 if body["status"] == "decided" and body["decision"] == "approve" else 1)


def _load_model(settings: Settings, pool: str) -> None:
    """A GPU worker loads its model before taking jobs, or does not start."""
    from worker.vlm.loading import ModelUnavailable, check_folder

    try:
        if pool == "prefork":  # CUDA must not be initialised before the fork: load in the child
            check_folder(settings.model.path)
        else:
            from worker.analyzers import get_analyzer

            get_analyzer("model").load()
    except ModelUnavailable as exc:
        raise click.ClickException(f"cannot start a GPU worker: {exc}") from None


@main.group()
def model() -> None:
    """Model folders for the `model` analyzer."""


@model.command("tiny")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--arch", default="glm46v", show_default=True,
              type=click.Choice(["glm46v", "glm4v", "qwen2_5_vl"]))
@click.option("--seed", default=0, show_default=True, type=int)
def model_tiny(out_dir: Path, arch: str, seed: int) -> None:
    """Build a tiny random-weight model of a real architecture (tests, CI; no download)."""
    from docket.tiny_models import build

    path = build(out_dir, arch, seed=seed)
    click.echo(str(path))


@main.group()
def rules() -> None:
    """Policies: validate a file, and per tenant push, simulate, activate and re-decide."""


def _actor(by: str | None) -> str:
    import getpass

    return by or f"cli ({getpass.getuser()})"


def _policy_file(path: Path):
    from docket.rules import RuleError, load_rule_source

    raw = path.read_bytes()
    try:
        return raw, load_rule_source(raw, where=str(path))
    except RuleError as exc:
        raise click.ClickException(f"invalid: {exc}") from None


def _policy_filter(since, until, batch, decision):
    from docket.errors import DocketError
    from docket.simulation import PolicyFilter

    try:
        return PolicyFilter.parse({k: v for k, v in {"since": since, "until": until, "batch": batch,
                                                       "decision": decision}.items() if v})
    except DocketError as exc:
        raise click.UsageError(exc.detail) from None


def _builtins(settings: Settings):
    from docket.rules import default_rules_dir, load_rules

    return load_rules(settings.rules_dir or default_rules_dir())


_FILTERS = [
    click.option("--since", default=None, help="Jobs submitted from (ISO 8601 date or time)."),
    click.option("--until", default=None, help="Jobs submitted before (ISO 8601)."),
    click.option("--batch", default=None, help="Jobs of one batch."),
    click.option("--decision", default=None, type=click.Choice(["approve", "needs_review", "reject"]),
                 help="Jobs whose current decision is this (needs_review: the pending ones)."),
]


def _with_filters(command):
    for option in reversed(_FILTERS):
        command = option(command)
    return command


@rules.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rules_validate(file: Path) -> None:
    """Check a policy file with the strict loader (schema, CEL, params, patterns); exit 1 if invalid."""
    from docket import i18n

    _speak()
    _, rule = _policy_file(file)
    click.echo(i18n.ngettext("%(name)s %(version)s: valid (%(num)s check)", "%(name)s %(version)s: valid (%(num)s checks)",
                             len(rule.checks), name=rule.name, version=rule.version))


@rules.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", required=True)
@click.option("--by", default=None, help="Who pushes it (recorded; default: cli (user)).")
def rules_push(file: Path, tenant: str, by: str | None) -> None:
    """Store FILE as a draft version of its policy for TENANT; prints the version."""
    from db.migrate import upgrade
    from db.session import session_scope
    from docket import policies
    from docket.errors import DocketError
    from docket.tenants import ensure_tenant

    raw, rule = _policy_file(file)
    settings = Settings.from_env()
    upgrade(settings.database_url)
    try:
        with session_scope(settings.database_url) as session:
            ensure_tenant(session, tenant)
            view, created = policies.push(session, tenant, rule.name, raw, actor=_actor(by))
    except DocketError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(view.version)
    click.echo(f"{'stored' if created else 'already stored'}: {rule.name} {view.version} ({view.status}) "
               f"for tenant {tenant}", err=True)


@rules.command("simulate")
@click.argument("name")
@click.option("--version", "version", required=True, help="The version to try (a prefix of 8+ hex digits will do).")
@click.option("--tenant", required=True)
@_with_filters
@click.option("--json", "as_json", is_flag=True, help="The whole answer as JSON.")
def rules_simulate(name: str, version: str, tenant: str, since, until, batch, decision, as_json: bool) -> None:
    """What VERSION would have decided for the tenant's past jobs (stored fields; nothing changes)."""
    from db.migrate import upgrade
    from db.session import session_scope
    from docket import policies, simulation
    from docket.errors import DocketError

    settings = Settings.from_env()
    upgrade(settings.database_url)
    flt = _policy_filter(since, until, batch, decision)
    builtins = _builtins(settings)
    try:
        with session_scope(settings.database_url) as session:
            candidate = policies.find_rule(session, tenant, name, version, builtins)
            result = simulation.simulate(session, tenant, candidate, flt, builtins,
                                         duplicate_distance=settings.duplicate_distance)
    except DocketError as exc:
        raise click.ClickException(exc.detail) from None
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    click.echo(f"{name} {candidate.version}: {result['evaluated']} job(s) evaluated, {result['changed']} would change "
               f"({result['seconds']} s)")
    for transition, n in result["transitions"].items():
        examples = ", ".join(result["examples"].get(transition, []))
        click.echo(f"  {transition:<28} {n:>7}   e.g. {examples}")
    for check, counts in result["checks"].items():
        click.echo(f"  check {check:<22} {counts['before']:>7} -> {counts['after']:<7} ({counts['change']:+d})")
    if not result["stored_fields_sufficient"]:
        click.echo(f"note: {result['reanalysis']['note']}", err=True)


@rules.command("activate")
@click.argument("name")
@click.argument("version")
@click.option("--tenant", required=True)
@click.option("--by", default=None, help="Who activates it (recorded; default: cli (user)).")
def rules_activate(name: str, version: str, tenant: str, by: str | None) -> None:
    """Make VERSION the tenant's active version of NAME (an older one: a roll-back)."""
    from db.migrate import upgrade
    from db.session import session_scope
    from docket import policies
    from docket.errors import DocketError

    settings = Settings.from_env()
    upgrade(settings.database_url)
    try:
        with session_scope(settings.database_url) as session:
            done = policies.activate(session, tenant, name, version, _builtins(settings), actor=_actor(by))
    except DocketError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"{name} {done['version']} active for tenant {tenant} ({done['action']}; was {done['previous_version']})")


@rules.command("redecide")
@click.argument("name")
@click.option("--tenant", required=True)
@click.option("--version", "version", default=None, help="Default: the tenant's active version.")
@_with_filters
@click.option("--reanalyze", is_flag=True, help="Re-queue the jobs through the analyzers instead (needed when the "
                                                 "version changes the prompt or fields schema).")
@click.option("--queue", "queued", is_flag=True, help="Leave the run to the workers and print its id.")
@click.option("--by", default=None, help="Who re-decides (recorded; default: cli (user)).")
def rules_redecide(name: str, tenant: str, version: str | None, since, until, batch, decision, reanalyze: bool,
                   queued: bool, by: str | None) -> None:
    """Apply a version to the tenant's existing jobs: a new decision per job, the old ones kept."""
    from db.migrate import upgrade
    from db.session import session_scope
    from docket import policies, redecide, runs, submission
    from docket.errors import DocketError
    from docket.queues import CPU_QUEUE, POLICY_RUN_TASK, create_celery

    settings = Settings.from_env()
    upgrade(settings.database_url)
    flt = _policy_filter(since, until, batch, decision)
    builtins = _builtins(settings)
    try:
        with session_scope(settings.database_url) as session:
            if version is None:
                candidate = policies.active_rules(session, tenant, builtins).get(name)
                if candidate is None:
                    raise click.ClickException(f"no policy {name} for tenant {tenant}")
            else:
                candidate = policies.find_rule(session, tenant, name, version, builtins)
            run = redecide.start(session, tenant, candidate, flt, builtins, reanalyze=reanalyze, actor=_actor(by))
            run_id, total = run.id, run.total
    except DocketError as exc:
        raise click.ClickException(exc.detail) from None
    celery = create_celery(settings)
    if queued:
        celery.send_task(POLICY_RUN_TASK, args=[run_id], queue=CPU_QUEUE)
        with session_scope(settings.database_url) as session:
            runs.mark_published(session, run_id)
        click.echo(run_id)
        return

    def progress(run) -> None:
        click.echo(f"  {run.processed}/{total} jobs, {run.changed} changed, {run.flagged} flagged", err=True)

    status = redecide.execute(settings.database_url, run_id, builtins, progress=progress,
                              publish=lambda session, jobs: submission.publish(celery, session, jobs),
                              duplicate_distance=settings.duplicate_distance)
    with session_scope(settings.database_url) as session:
        from db.models import PolicyRun

        body = runs.run_json(session.get(PolicyRun, run_id))
    click.echo(json.dumps(body, ensure_ascii=False, indent=2))
    if status != "succeeded":
        sys.exit(1)


def _human(result: dict) -> str:
    """One result for people: in English the values themselves (NEEDS_REVIEW), else their words
    (待复核); field names and check ids never change; reasons come already in the language."""
    from docket import i18n

    def word(value: str) -> str:
        return value.upper() if i18n.current() == i18n.DEFAULT else i18n.label(value)

    if result["status"] != "succeeded":
        err = result.get("error") or {}
        return f"{result['file']}: {word(result['status'])} {err.get('code', '')} {err.get('message', '')}".rstrip()
    lines = [f"{result['file']}: {word(result['decision'])}"]
    for key, value in result["fields"].items():
        if key != "text":
            lines.append(f"    {key}: {json.dumps(value, ensure_ascii=False)}")
    for reason in result["reasons"]:
        outcome = reason["outcome"] if i18n.current() == i18n.DEFAULT else i18n.label(reason["outcome"])
        lines.append(f"    - [{outcome}] {reason['check']}: {reason['message']}")
    return "\n".join(lines)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


from docket.fx_cli import fx_group  # noqa: E402 - `docket fx …` (exchange rates)

main.add_command(fx_group)

from docket.privacy_cli import erase_command  # noqa: E402 - `docket erase JOB_ID --reason TEXT`

main.add_command(erase_command)

if __name__ == "__main__":
    main()
