"""Settings, read once from the environment.

Every setting has an embedded default, so `docket serve` on a laptop needs nothing: SQLite
and a Redis-compatible server started by Docket itself, both under the data directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _heartbeat_ttl() -> float:
    """At least two heartbeats fit in the TTL, or a live worker would flicker dead."""
    interval = max(0.2, _float("DOCKET_HEARTBEAT_INTERVAL", 5.0))
    return max(2.5 * interval, _float("DOCKET_HEARTBEAT_TTL", 4 * interval))


@dataclass(frozen=True)
class ModelSettings:
    """The vision-language model analyzer: which model, how it runs, how much it may read/write."""

    path: Path | None = None                # DOCKET_MODEL_PATH: a local model folder
    device: str = "auto"                    # DOCKET_MODEL_DEVICE: auto (cuda if present), cuda, cuda:1, cpu
    dtype: str = "auto"                     # DOCKET_MODEL_DTYPE: auto (bfloat16 on GPU, float32 on CPU), float16, ...
    attn_implementation: str | None = None  # DOCKET_MODEL_ATTN: sdpa, flash_attention_2, eager (default: the model's)
    max_new_tokens: int = 1024              # DOCKET_MODEL_MAX_NEW_TOKENS: the answer is cut (needs_review) beyond
    batch_size: int = 8                     # DOCKET_MODEL_BATCH_SIZE: B, jobs per generate() call
    batch_wait_ms: int = 50                 # DOCKET_MODEL_BATCH_WAIT_MS: T, the longest wait to fill a batch
    max_pages: int = 4                      # DOCKET_MODEL_MAX_PAGES: page images shown per document
    max_pixels: int = 512 * 512             # DOCKET_MODEL_MAX_PIXELS: each page is scaled to at most this
    rule_max_pixels: tuple = ()             # DOCKET_MODEL_RULE_PIXELS: per-rule budget, "contract_review=1048576,..."
    text_layer_chars: int = 4000            # DOCKET_MODEL_TEXT_LAYER_CHARS: PDF text added to the prompt (0: none)
    # Decoding caps on top of the rule's own bounds (0: the rule's bounds). Only ever narrower:
    max_string: int = 0                     # DOCKET_MODEL_MAX_STRING: longest string repetition in the grammar
    max_items: int = 0                      # DOCKET_MODEL_MAX_ITEMS: longest array in the grammar

    @classmethod
    def from_env(cls) -> "ModelSettings":
        path = os.environ.get("DOCKET_MODEL_PATH")
        rule_pixels = []
        for item in filter(None, (x.strip() for x in os.environ.get("DOCKET_MODEL_RULE_PIXELS", "").split(","))):
            name, _, value = item.partition("=")
            rule_pixels.append((name.strip(), int(value)))
        return cls(
            path=Path(path).expanduser().resolve() if path else None,
            device=os.environ.get("DOCKET_MODEL_DEVICE") or "auto",
            dtype=os.environ.get("DOCKET_MODEL_DTYPE") or "auto",
            attn_implementation=os.environ.get("DOCKET_MODEL_ATTN") or None,
            max_new_tokens=_int("DOCKET_MODEL_MAX_NEW_TOKENS", 1024),
            batch_size=max(1, _int("DOCKET_MODEL_BATCH_SIZE", 8)),
            batch_wait_ms=max(0, _int("DOCKET_MODEL_BATCH_WAIT_MS", 50)),
            max_pages=max(1, _int("DOCKET_MODEL_MAX_PAGES", 4)),
            max_pixels=_int("DOCKET_MODEL_MAX_PIXELS", 512 * 512),
            rule_max_pixels=tuple(rule_pixels),
            text_layer_chars=_int("DOCKET_MODEL_TEXT_LAYER_CHARS", 4000),
            max_string=_int("DOCKET_MODEL_MAX_STRING", 0),
            max_items=_int("DOCKET_MODEL_MAX_ITEMS", 0),
        )

    def pixels_for(self, rule_name: str) -> int:
        return dict(self.rule_max_pixels).get(rule_name, self.max_pixels)


OCR_ENGINES = ("onnxruntime", "openvino")
OCR_CLASSIFIER_MODES = ("auto", "always", "never")


def _ocr_choice(name: str, default: str, allowed: tuple) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _ocr_number(name: str, default, low, high, kind=int):
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a {'whole ' if kind is int else ''}number "
                         f"from {low} to {high}, not {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}, not {raw!r}")
    return value


@dataclass(frozen=True)
class OcrSettings:
    """The `ocr` analyzer's engine (worker/ocr.py). Defaults chosen by measurement (issue 24)."""

    engine: str = "openvino"                # DOCKET_OCR_ENGINE: openvino or onnxruntime (same models, same accuracy)
    threads: int = 0                        # DOCKET_OCR_THREADS: intra-op threads per process (0: cores / concurrency)
    page_threads: int = 0                   # DOCKET_OCR_PAGE_THREADS: pages of one document read at once (0: = threads)
    det_limit_side: int = 736               # DOCKET_OCR_DET_LIMIT_SIDE: detector input side (rapidocr Det.limit_side_len)
    det_limit_type: str = "min"             # DOCKET_OCR_DET_LIMIT_TYPE: min (shorter side at least) or max (longer at most)
    classifier: str = "auto"                # DOCKET_OCR_CLASSIFIER: auto (only lines that need it), always, never
    classifier_below: float = 0.9           # DOCKET_OCR_CLASSIFIER_BELOW: auto: lines read under this score, or vertical
    rec_batch: int = 6                      # DOCKET_OCR_REC_BATCH: text lines per recogniser call

    @classmethod
    def from_env(cls) -> "OcrSettings":
        """A bad DOCKET_OCR_* value stops the start (ValueError naming the variable)."""
        return cls(
            engine=_ocr_choice("DOCKET_OCR_ENGINE", "openvino", OCR_ENGINES),
            threads=_ocr_number("DOCKET_OCR_THREADS", 0, 0, 256),
            page_threads=_ocr_number("DOCKET_OCR_PAGE_THREADS", 0, 0, 64),
            det_limit_side=_ocr_number("DOCKET_OCR_DET_LIMIT_SIDE", 736, 32, 4096),
            det_limit_type=_ocr_choice("DOCKET_OCR_DET_LIMIT_TYPE", "min", ("min", "max")),
            classifier=_ocr_choice("DOCKET_OCR_CLASSIFIER", "auto", OCR_CLASSIFIER_MODES),
            classifier_below=_ocr_number("DOCKET_OCR_CLASSIFIER_BELOW", 0.9, 0.0, 1.0, float),
            rec_batch=_ocr_number("DOCKET_OCR_REC_BATCH", 6, 1, 256),
        )


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    # None means "embedded": Docket starts its own server (see docket/embedded.py).
    redis_url: str | None
    rules_dir: Path | None
    max_upload_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_pdf_pages: int = 50
    max_batch_files: int = 1000
    # Pages are downscaled to this longest side before OCR: bigger costs time, not accuracy.
    max_image_side: int = 2560
    ocr_pdf_pages: int = 10
    # Celery: the job's truth lives in the database, these only bound how long a lost
    # message or a dead worker can delay it.
    task_soft_time_limit: int = 240
    task_time_limit: int = 300
    visibility_timeout: int = 600
    max_attempts: int = 3
    sweep_interval: float = 10.0
    # Only for jobs claimed without a worker id (rows from before 0005): a `running` job older
    # than this is presumed orphaned. Jobs that name their worker are judged by its heartbeat.
    stale_after: int = 360
    # A `queued` job published this long ago is published again (a backstop: the sweeper
    # republishes missing messages as soon as it sees them missing, see docket/recovery.py).
    requeue_after: int = 900
    broker_connect_timeout: float = 2.0
    # --- recovery (docket/liveness.py, docket/recovery.py, docket/broker.py) ---
    # Every worker process refreshes its heartbeat key this often; a key unrefreshed for
    # heartbeat_ttl seconds means the process is gone and its jobs are reclaimed.
    heartbeat_interval: float = 5.0
    heartbeat_ttl: float = 20.0
    # A worker that cannot reach the database holds the message this long (polling), then hands
    # it back to the queue and waits again on the next delivery: a message is never dropped.
    database_wait: float = 60.0
    # After a failed publish the API leaves publishing to the sweeper for this long instead of
    # paying the broker's connect timeout on every request.
    broker_retry_after: float = 5.0
    # Retry-After (seconds) sent with 503 database_unavailable.
    database_retry_after: int = 5
    # "required" forbids the open first-run mode of the embedded default (see api/auth.py).
    auth_mode: str = "auto"
    rate_limit: str = "600/minute"
    submit_rate_limit: str = "120/minute"
    # Failed authentications (unknown, revoked, malformed keys) per client address: key guessing.
    auth_failure_limit: str = "20/minute"
    # Whose X-Forwarded-For to believe (api/proxies.py): 0 = nobody (the default: the peer's
    # address counts), N = the N proxies in front (1: one nginx), or trusted CIDRs.
    trusted_proxies: int | tuple = 0
    max_queue_depth: int = 10_000
    idempotency_ttl: int = 24 * 3600
    # Perceptual-hash distance (of 64 bits) at or under which two receipts are near-duplicates.
    duplicate_distance: int = 6
    # --- the reviewer dashboard ---
    # Signs session cookies; unset: a random key kept in the data directory (see docket/session_key.py).
    secret_key: str | None = None
    # Send cookies over HTTPS only: turn on wherever the dashboard is served over TLS.
    secure_cookies: bool = False
    session_hours: int = 8
    login_rate_limit: str = "10/minute"
    # The dashboard's live streams (Server-Sent Events) end after this many seconds and the
    # browser reconnects with Last-Event-ID: no connection outlives a proxy's idle timeout or
    # holds a server thread for ever, and nothing is missed (the state is read again).
    event_stream_max_s: float = 300.0
    # The operator's credential for /metrics (every tenant's series, and the workers'
    # --metrics-port); a tenant's metrics key reads only its own tenant's series.
    metrics_token: str | None = None
    # --- where document bytes live (docket/storage.py) ---
    # None: the local folder $DOCKET_DATA_DIR/documents; "s3://bucket/prefix": an S3-compatible
    # store (credentials from the usual AWS variables), shared by API and workers on any machine.
    storage_url: str | None = None
    # An S3-compatible endpoint other than AWS (MinIO, Ceph, R2...), e.g. http://minio:9000.
    s3_endpoint_url: str | None = None
    # --- the `model` analyzer (GPU workers; see worker/vlm/) ---
    model: ModelSettings = field(default_factory=ModelSettings)
    # --- the `ocr` analyzer's engine (worker/ocr.py) ---
    ocr: OcrSettings = field(default_factory=OcrSettings)

    @classmethod
    def from_env(cls) -> "Settings":
        data_dir = Path(os.environ.get("DOCKET_DATA_DIR") or "docket-data").resolve()
        database_url = os.environ.get("DOCKET_DATABASE_URL") or f"sqlite:///{data_dir / 'docket.db'}"
        rules_dir = os.environ.get("DOCKET_RULES_DIR")
        task_time_limit = _int("DOCKET_TASK_TIME_LIMIT", 300)
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            redis_url=os.environ.get("DOCKET_REDIS_URL") or None,
            rules_dir=Path(rules_dir).resolve() if rules_dir else None,
            max_upload_bytes=_int("DOCKET_MAX_UPLOAD_BYTES", 25 * 1024 * 1024),
            max_image_pixels=_int("DOCKET_MAX_IMAGE_PIXELS", 40_000_000),
            max_pdf_pages=_int("DOCKET_MAX_PDF_PAGES", 50),
            max_batch_files=_int("DOCKET_MAX_BATCH_FILES", 1000),
            max_image_side=_int("DOCKET_MAX_IMAGE_SIDE", 2560),
            ocr_pdf_pages=_int("DOCKET_OCR_PDF_PAGES", 10),
            task_soft_time_limit=_int("DOCKET_TASK_SOFT_TIME_LIMIT",
                                      max(1, task_time_limit - max(5, task_time_limit // 5))),
            task_time_limit=task_time_limit,
            visibility_timeout=_int("DOCKET_VISIBILITY_TIMEOUT", 600),
            max_attempts=_int("DOCKET_MAX_ATTEMPTS", 3),
            sweep_interval=_float("DOCKET_SWEEP_INTERVAL", 10.0),
            stale_after=_int("DOCKET_STALE_AFTER", task_time_limit + 60),
            requeue_after=_int("DOCKET_REQUEUE_AFTER", 900),
            broker_connect_timeout=_float("DOCKET_BROKER_CONNECT_TIMEOUT", 2.0),
            heartbeat_interval=max(0.2, _float("DOCKET_HEARTBEAT_INTERVAL", 5.0)),
            heartbeat_ttl=_heartbeat_ttl(),
            database_wait=max(0.0, _float("DOCKET_DATABASE_WAIT", 60.0)),
            broker_retry_after=max(0.0, _float("DOCKET_BROKER_RETRY_AFTER", 5.0)),
            database_retry_after=max(1, _int("DOCKET_DATABASE_RETRY_AFTER", 5)),
            auth_mode=os.environ.get("DOCKET_AUTH") or "auto",
            rate_limit=os.environ.get("DOCKET_RATE_LIMIT") or "600/minute",
            submit_rate_limit=os.environ.get("DOCKET_SUBMIT_RATE_LIMIT") or "120/minute",
            auth_failure_limit=os.environ.get("DOCKET_AUTH_FAILURE_LIMIT") or "20/minute",
            trusted_proxies=_trusted_proxies(os.environ.get("DOCKET_TRUSTED_PROXIES")),
            max_queue_depth=_int("DOCKET_MAX_QUEUE_DEPTH", 10_000),
            idempotency_ttl=_int("DOCKET_IDEMPOTENCY_TTL", 24 * 3600),
            duplicate_distance=_int("DOCKET_DUPLICATE_DISTANCE", 6),
            secret_key=os.environ.get("DOCKET_SECRET_KEY") or None,
            secure_cookies=(os.environ.get("DOCKET_SECURE_COOKIES") or "").lower() in ("1", "true", "yes", "on"),
            session_hours=_int("DOCKET_SESSION_HOURS", 8),
            login_rate_limit=os.environ.get("DOCKET_LOGIN_RATE_LIMIT") or "10/minute",
            event_stream_max_s=max(0.1, _float("DOCKET_EVENT_STREAM_MAX_S", 300.0)),
            metrics_token=os.environ.get("DOCKET_METRICS_TOKEN") or None,
            storage_url=_storage_url(os.environ.get("DOCKET_STORAGE_URL") or None),
            s3_endpoint_url=os.environ.get("DOCKET_S3_ENDPOINT_URL") or None,
            model=ModelSettings.from_env(),
            ocr=OcrSettings.from_env(),
        )

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "documents"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def embedded(self) -> bool:
        return self.redis_url is None


def _trusted_proxies(value: str | None) -> int | tuple:
    """A bad DOCKET_TRUSTED_PROXIES stops the start (ValueError naming the entry)."""
    import ipaddress

    value = (value or "").strip()
    if value.isdigit() or not value:
        return int(value or 0)
    networks = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"DOCKET_TRUSTED_PROXIES: {item!r} is neither a proxy count nor an address or "
                             "CIDR (e.g. 1, or 10.0.0.0/8,127.0.0.1)") from None
    return tuple(networks)


def _storage_url(url: str | None) -> str | None:
    """None (the local folder) or s3://bucket[/prefix]; anything else is refused at start."""
    if url is None:
        return None
    if not url.startswith("s3://") or not url[len("s3://"):].split("/", 1)[0]:
        raise ValueError(f"DOCKET_STORAGE_URL must look like s3://bucket/prefix, not {url!r}")
    return url.rstrip("/")


def describe(settings: Settings) -> dict:
    """Settings as plain values, for logs and `docket config`."""
    return {f.name: str(getattr(settings, f.name)) for f in fields(settings)}
