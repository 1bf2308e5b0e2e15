"""Prometheus metrics, in prometheus-client's multiprocess mode: gunicorn and Celery prefork run
several processes, each writes its samples to files in one folder, and whoever serves /metrics
(the API, or `docket worker --metrics-port`) adds them up.

Who reads what: a series whose labels are a tenant's own (`tenant`, and the policy name `rule`,
which a tenant chooses) carries a `tenant` label and is shown to that tenant's keys only
(`exposition(tenant=...)`); deployment-wide series (HTTP, stages, queues, webhooks, model) have
no such label. The full exposition is the operator's (DOCKET_METRICS_TOKEN, the workers' port).

The folder is `PROMETHEUS_MULTIPROC_DIR` (prometheus-client's own variable); `configure()` sets
it under the data directory when unset. It must be set before prometheus_client is first
imported in a process, so the metric objects are made lazily, on first use.
"""
from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path

from db.private_files import private_dir

ENV = "PROMETHEUS_MULTIPROC_DIR"
STAGES = ("queue_wait", "preprocess", "analyze", "rules", "total")
# Seconds: from a fast instant analysis to a slow multi-page model job.
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def configure(data_dir: Path, *, fresh: bool = False) -> str:
    """Point this process (and the children it starts) at the multiprocess folder; `fresh`
    empties it first (a new deployment starts counting from zero, as Prometheus expects)."""
    folder = os.environ.get(ENV) or str(data_dir / "metrics")
    if fresh and Path(folder).is_dir():
        shutil.rmtree(folder, ignore_errors=True)
    private_dir(folder)
    os.environ[ENV] = folder
    return folder


def enabled() -> bool:
    return bool(os.environ.get(ENV))


class _Metrics:
    def __init__(self):
        from prometheus_client import Counter, Histogram

        self.jobs_submitted = Counter("docket_jobs_submitted_total", "Jobs recorded", ["tenant", "rule", "analyzer"])
        self.jobs_finished = Counter("docket_jobs_finished_total", "Jobs that ended",
                                     ["tenant", "status", "decision", "rule"])
        self.stage_seconds = Histogram("docket_job_stage_seconds", "Time a job spent per stage", ["stage"],
                                       buckets=STAGE_BUCKETS)
        self.webhook_deliveries = Counter("docket_webhook_deliveries_total", "Webhook delivery attempts",
                                          ["outcome"])
        self.http_requests = Counter("docket_http_requests_total", "HTTP requests answered",
                                     ["route", "method", "status"])
        self.http_seconds = Histogram("docket_http_request_seconds", "HTTP request time", ["route"],
                                      buckets=HTTP_BUCKETS)
        self.model_batch_size = Histogram("docket_model_batch_size", "Jobs per model generate() call",
                                          buckets=(1, 2, 4, 8, 16, 32, 64))
        self.model_tokens = Counter("docket_model_tokens_total", "Model tokens", ["kind"])


@lru_cache(maxsize=1)
def get() -> _Metrics | None:
    """The process's metrics, or None when metrics are off (no multiprocess folder): every
    recording call below is then a no-op, so code paths never depend on them."""
    return _Metrics() if enabled() else None


def job_submitted(tenant: str, rule: str, analyzer: str) -> None:
    if (m := get()) is not None:
        m.jobs_submitted.labels(tenant, rule, analyzer).inc()


def job_finished(tenant: str, status: str, decision: str | None, rule: str) -> None:
    if (m := get()) is not None:
        m.jobs_finished.labels(tenant, status, decision or "", rule).inc()


def stage(name: str, seconds: float | None) -> None:
    if (m := get()) is not None and seconds is not None and seconds >= 0:
        m.stage_seconds.labels(name).observe(seconds)


def webhook_delivery(outcome: str) -> None:
    if (m := get()) is not None:
        m.webhook_deliveries.labels(outcome).inc()


def http_request(route: str, method: str, status: int, seconds: float) -> None:
    if (m := get()) is not None:
        m.http_requests.labels(route, method, str(status)).inc()
        m.http_seconds.labels(route).observe(seconds)


def model_batch(size: int, input_tokens: int, output_tokens: int) -> None:
    if (m := get()) is not None:
        m.model_batch_size.observe(size)
        m.model_tokens.labels("input").inc(input_tokens)
        m.model_tokens.labels("output").inc(output_tokens)


# Labels whose values belong to one tenant: a sample carrying any is shown only to its tenant.
TENANT_LABELS = frozenset({"tenant", "rule"})


def tenant_may_see(labels: dict[str, str], tenant: str) -> bool:
    """A deployment-wide sample, or one of `tenant`'s own. A tenant-specific label without a
    `tenant` (a sample from an older process) is nobody's but the operator's."""
    return TENANT_LABELS.isdisjoint(labels) or labels.get("tenant") == tenant


class _OneTenant:
    """A registry's families with only the samples `tenant` may see."""

    def __init__(self, registry, tenant: str):
        self.registry, self.tenant = registry, tenant

    def collect(self):
        for family in self.registry.collect():
            family.samples = [s for s in family.samples if tenant_may_see(s.labels, self.tenant)]
            yield family


def exposition(queue_depth: dict[str, int] | None = None, tenant: str | None = None) -> tuple[bytes, str]:
    """The text exposition of every process's samples (plus the queue depth, measured now);
    with `tenant`, only the deployment-wide samples and that tenant's own."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
    from prometheus_client.core import GaugeMetricFamily

    registry = CollectorRegistry()
    if enabled():
        multiprocess.MultiProcessCollector(registry)
    if queue_depth is not None:
        class _QueueDepth:
            def collect(self):
                family = GaugeMetricFamily("docket_queue_depth", "Messages waiting per queue", labels=["queue"])
                for queue, depth in sorted(queue_depth.items()):
                    family.add_metric([queue], depth)
                yield family

        registry.register(_QueueDepth())
    return generate_latest(registry if tenant is None else _OneTenant(registry, tenant)), CONTENT_TYPE_LATEST


def operator_credential(authorization: str | None, token: str | None) -> bool:
    """`Authorization: Bearer <DOCKET_METRICS_TOKEN>`, compared in constant time; never with no token set."""
    import hmac

    scheme, _, presented = (authorization or "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


def serve(port: int, token: str | None, depths, host: str = "0.0.0.0"):
    """The workers' --metrics-port: the full exposition, an operator's port. With a token set
    (DOCKET_METRICS_TOKEN) it answers only that bearer; without one, only those who reach the
    port (keep it on the operator's network). `depths()` measures the queues at each scrape."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server name
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            if token and not operator_credential(self.headers.get("Authorization"), token):
                self.send_response(401)
                self.send_header("WWW-Authenticate", "Bearer")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body, content_type = exposition(depths())
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # scrapes every 15 s are not worth a log line
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="docket-metrics", daemon=True).start()
    return server


def queue_depths(redis_url: str | None, queues) -> dict[str, int]:
    """Messages waiting in each Celery queue (a Redis list per queue); empty when unreachable."""
    import redis

    if not redis_url:
        return {}
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
        return {queue: int(client.llen(queue)) for queue in queues}
    except redis.RedisError:
        return {}
