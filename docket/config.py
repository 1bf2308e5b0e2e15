"""Settings, read once from the environment.

Every setting has an embedded default, so `docket serve` on a laptop needs nothing: SQLite
and a Redis-compatible server started by Docket itself, both under the data directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


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
    sweep_interval: float = 30.0
    # A `running` job older than this is presumed orphaned by a dead worker.
    stale_after: int = 360
    # A `queued` job this old is queued again (its message may have been lost).
    requeue_after: int = 900
    broker_connect_timeout: float = 2.0

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
            sweep_interval=_float("DOCKET_SWEEP_INTERVAL", 30.0),
            stale_after=_int("DOCKET_STALE_AFTER", task_time_limit + 60),
            requeue_after=_int("DOCKET_REQUEUE_AFTER", 900),
            broker_connect_timeout=_float("DOCKET_BROKER_CONNECT_TIMEOUT", 2.0),
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


def describe(settings: Settings) -> dict:
    """Settings as plain values, for logs and `docket config`."""
    return {f.name: str(getattr(settings, f.name)) for f in fields(settings)}
