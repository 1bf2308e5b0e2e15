"""The `docket` command."""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import click

from docket.config import Settings


@click.group()
def main() -> None:
    """Docket: receipts, contracts and screenshots in, structured decisions out."""
    logging.basicConfig(level=os.environ.get("DOCKET_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
def migrate() -> None:
    """Upgrade the database schema to the newest revision."""
    from db.migrate import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url)
    click.echo(f"database at head: {_redact(settings.database_url)}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes' concurrency (0: none).")
def serve(host: str, port: int, workers: int) -> None:
    """Run the API and a worker; embedded Redis and SQLite when nothing is configured."""
    from werkzeug.serving import run_simple

    from api import create_app
    from docket.runtime import local_stack

    # SIGTERM (docker stop, a supervisor) must unwind like Ctrl-C so started servers stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with local_stack(Settings.from_env(), workers=workers) as settings:
        app = create_app(settings)
        click.echo(f"Docket API on http://{host}:{port}  (database {_redact(settings.database_url)}, "
                   f"broker {settings.redis_url})", err=True)
        try:
            run_simple(host, port, app, threaded=True)
        except KeyboardInterrupt:
            pass


@main.command()
@click.option("--queues", default="cpu", show_default=True, help="Comma-separated queues: cpu, gpu.")
@click.option("--concurrency", default=None, type=int, help="Processes (default: CPU count; 1 for gpu).")
@click.option("--beat/--no-beat", default=False, help="Also run the periodic sweeper (one per deployment).")
@click.option("--pool", default="prefork", show_default=True, type=click.Choice(["prefork", "solo", "threads"]))
def worker(queues: str, concurrency: int | None, beat: bool, pool: str) -> None:
    """Run a Celery worker for the given queues."""
    settings = Settings.from_env()
    server = None
    if settings.redis_url is None:
        from docket.embedded import ensure_redis

        url, server = ensure_redis(settings)
        os.environ["DOCKET_REDIS_URL"] = url
    from worker.celery_app import celery
    import worker.tasks  # noqa: F401  (registers the tasks)

    if concurrency is None:
        concurrency = 1 if "gpu" in queues.split(",") else (os.cpu_count() or 1)
    argv = ["worker", "--queues", queues, "--concurrency", str(concurrency), "--pool", pool,
            "--loglevel", os.environ.get("DOCKET_LOG_LEVEL", "INFO"), "--without-gossip", "--without-mingle"]
    if beat:
        argv.append("--beat")
    try:
        celery.worker_main(argv)
    finally:
        if server is not None:
            server.stop()


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rule", required=True, help="Policy name from rules/ (see GET /v1/rules).")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines on stdout, one object per document.")
@click.option("--analyzer", default="ocr", show_default=True)
@click.option("--workers", default=None, type=int, help="Worker concurrency for the embedded run.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for all jobs.")
def analyze(files: tuple[Path, ...], rule: str, as_json: bool, analyzer: str, workers: int | None,
            timeout: float) -> None:
    """Send FILES through the pipeline (queue, worker, database) and print the decisions."""
    from docket.analyze import run
    from docket.errors import DocketError

    try:
        results = run(list(files), rule=rule, analyzer=analyzer,
                      workers=workers or min(len(files), os.cpu_count() or 1), timeout=timeout,
                      progress=len(files) > 1)
    except DocketError as exc:
        raise click.UsageError(exc.detail) from None
    ok = True
    for result in results:
        ok &= result["status"] == "succeeded"
        if as_json:
            click.echo(json.dumps(result, ensure_ascii=False))
        else:
            click.echo(_human(result))
    sys.exit(0 if ok else 1)


def _human(result: dict) -> str:
    if result["status"] != "succeeded":
        err = result.get("error") or {}
        return f"{result['file']}: {result['status'].upper()} {err.get('code', '')} {err.get('message', '')}".rstrip()
    lines = [f"{result['file']}: {result['decision'].upper()}"]
    for key, value in result["fields"].items():
        if key != "text":
            lines.append(f"    {key}: {json.dumps(value, ensure_ascii=False)}")
    for reason in result["reasons"]:
        lines.append(f"    - [{reason['outcome']}] {reason['check']}: {reason['message']}")
    return "\n".join(lines)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
