"""The Flask application factory."""
from __future__ import annotations

import logging
import tempfile

from flask import Flask, Request

from api import multipart, observability, proxies
from api.json_bodies import BoundedJSONProvider, limit_in_memory_bodies
from docket import broker, logs
from docket.config import Settings
from docket.data_dir import prepare as prepare_data_dir
from docket.errors import NotFound
from docket.queues import CPU_QUEUE, DELIVER_WEBHOOK_TASK, create_celery
from docket.rules import default_rules_dir, load_rules


def create_app(settings: Settings | None = None, broker_url: str | None = None) -> Flask:
    settings = settings or Settings.from_env()
    if not logging.getLogger().handlers:  # under gunicorn: nobody configured logging yet
        logs.configure()
    app = Flask(__name__)
    app.json = BoundedJSONProvider(app)  # request bodies nested too deep are refused, not a 500
    app.json.sort_keys = False
    app.json.ensure_ascii = False  # Chinese fields stay readable
    # Whole requests may carry a batch; each file is checked against max_upload_bytes.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes * settings.max_batch_files
    app.config["MAX_FORM_PARTS"] = settings.max_batch_files + 100
    limit_in_memory_bodies(app, settings.max_upload_bytes)  # JSON and YAML are read into memory
    prepare_data_dir(settings)  # private data directory and uploads; a bad secrets key stops here
    app.request_class = _disk_request(str(settings.uploads_dir))
    # Behind trusted proxies the client's address comes from X-Forwarded-For (off by default).
    app.wsgi_app = proxies.wrap(app.wsgi_app, settings.trusted_proxies)
    multipart.install()

    from api import context

    app.extensions["docket"] = {
        "settings": settings,
        # Invalid rule files stop the app here, naming the file and the reason.
        "rules": load_rules(settings.rules_dir or default_rules_dir()),
        "celery": create_celery(settings, broker_url, fail_fast=True),
        # API keys and active policies are cached while the access stamp in this Redis stays
        # the same (api/context.py); without a Redis, every request reads them afresh.
        "stamp_url": _redis_only(broker_url or settings.redis_url),
        "caches": {"keys": context.StampedCache(), "rules": context.StampedCache()},
    }

    from api.problems import register_error_handlers
    from api import batches, documents, export, health, jobs, openapi, policies, reviews, rules, stats, webhooks
    from api.limits import init_limits

    from api import i18n as api_i18n

    api_i18n.init_app(app)  # the request's language (Accept-Language, ?lang=, the dashboard's switch)
    register_error_handlers(app)
    observability.init_app(app)

    @app.url_value_preprocessor
    def _refuse_unprintable_ids(endpoint, values):
        # Ids are printable; a NUL or control character in a path (a%00b) names nothing, and
        # must answer 404, not reach the database (Postgres refuses NUL in text: a 500).
        if values and any(isinstance(v, str) and not v.isprintable() for v in values.values()):
            raise NotFound("No such resource.")

    app.teardown_appcontext(context.close_db)
    for blueprint in (health.bp, openapi.bp, jobs.bp, reviews.bp, documents.bp, export.bp, stats.bp, batches.bp,
                      rules.bp, policies.bp, webhooks.bp):
        app.register_blueprint(blueprint)
    from api import claims as api_claims

    app.register_blueprint(api_claims.bp)  # /v1/claims (docket/claims.py)
    from api import privacy

    app.register_blueprint(privacy.bp)  # DELETE /v1/jobs/{id}, GET /v1/jobs/{id}/redacted/{n}
    from api import dashboard
    from api.dashboard import policies as dashboard_policies
    from api.dashboard import claims as dashboard_claims  # noqa: F401  (its routes join dashboard.bp)
    from api.dashboard import session as dashboard_session

    dashboard_session.configure(app, settings)
    dashboard.csrf.init_app(app)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(dashboard_policies.bp)
    app.context_processor(lambda: {"dashboard_user": dashboard_session.current})
    init_limits(app, settings, broker_url or settings.redis_url or "memory://")
    _publish_webhooks_from(app.extensions["docket"]["celery"])
    return app


def _publish_webhooks_from(celery) -> None:
    """Deliveries recorded by a request (reviews, reused decisions) are queued once it commits."""
    from docket.webhooks.outbox import publish_after_commit

    retry_after = Settings.from_env().broker_retry_after

    def publish(ids: list[str]) -> None:
        for delivery_id in ids:  # a broker known to be down is not waited for: the sweeper sends them
            if not broker.try_send(celery, DELIVER_WEBHOOK_TASK, [delivery_id], CPU_QUEUE, retry_after):
                return

    publish_after_commit(publish)


def _redis_only(url: str | None) -> str | None:
    return url if url and url.startswith(("redis://", "rediss://")) else None


def _disk_request(directory: str) -> type[Request]:
    class DiskRequest(Request):
        """Uploaded files go straight to disk: a 500-file batch never sits in memory."""

        def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
            return tempfile.TemporaryFile(dir=directory, prefix="multipart-")

    return DiskRequest
