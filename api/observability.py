"""Every API request is counted and timed (Prometheus) and carries a request id: the client's
X-Request-ID when it sends a sane one, else a new one, returned on the response and bound to
the request's log lines (and passed on with the tasks it publishes; see docket/queues.py)."""
from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, g, request

from api import context
from api.auth import authenticate, principal, require
from docket import logs, metrics
from docket.queues import CONTROL_QUEUE, CPU_QUEUE, GPU_QUEUE

bp = Blueprint("metrics", __name__)


@bp.before_request
def _operator_or_key() -> None:
    """The operator's DOCKET_METRICS_TOKEN (every tenant's series), else an API key as anywhere."""
    if metrics.operator_credential(request.headers.get("Authorization"), context.settings().metrics_token):
        g.metrics_operator = True
        return
    authenticate()


@require("metrics")
def _callers_tenant() -> str:
    return principal().tenant_id


@bp.get("/metrics")
def scrape():
    """Prometheus' scrape: every API and worker process's samples (multiprocess mode) and the
    queue depth measured now. The operator's token reads all of it; a key with role `metrics`
    (or `admin`) reads the deployment-wide series and its own tenant's, never another's."""
    tenant = None if g.get("metrics_operator") else _callers_tenant()
    broker_url = current_app.extensions["docket"]["celery"].conf.broker_url
    body, content_type = metrics.exposition(metrics.queue_depths(broker_url, (CPU_QUEUE, GPU_QUEUE, CONTROL_QUEUE)),
                                            tenant=tenant)
    return Response(body, content_type=content_type)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.request_id = logs.request_id(request.headers.get(logs.REQUEST_ID_HEADER))
        g.log_tokens = logs.bind(request_id=g.request_id, tenant=None, job_id=None)

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers[logs.REQUEST_ID_HEADER] = g.get("request_id") or ""
        # The route's pattern (/v1/jobs/<job_id>), never the raw path: labels stay few.
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.http_request(route, request.method, response.status_code,
                             time.perf_counter() - g.get("started", time.perf_counter()))
        return response

    @app.teardown_request
    def _unbind(_exc) -> None:
        tokens = g.pop("log_tokens", None)
        if tokens:
            logs.unbind(tokens)
