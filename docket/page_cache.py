"""Page images for people (the dashboard, GET /v1/jobs/{id}/pages/{n}): rendered on request
exactly as analyzers saw the page, cached on disk by content address, pruned when unused.
With an object store (DOCKET_STORAGE_URL) a rendered page is also kept there under
`prefix/pages/`, so other machines fetch it instead of rendering it again (a bucket lifecycle
rule on that prefix bounds it; local copies are pruned here)."""
from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

from db.models import Document
from db.private_files import private_dir
from docket import storage
from docket.config import Settings
from docket.pages import page_image

# A page nobody opened for this long is deleted; the next view renders it again.
MAX_IDLE_SECONDS = 7 * 24 * 3600


def cache_dir(settings: Settings) -> Path:
    return settings.data_dir / "pages"


def page_png(settings: Settings, document: Document, index: int) -> Path:
    """Path of page `index` (0-based) as PNG; raises IndexError past the last page."""
    path = cache_dir(settings) / document.sha256[:2] / f"{document.sha256}-{settings.max_image_side}-{index}.png"
    if path.exists():
        os.utime(path)  # recently viewed pages stay
        return path
    # With an object store, a page rendered on another machine is fetched rather than rendered again.
    key = f"pages/{path.parent.name}/{path.name}"
    if storage.fetch_derived(settings, key, path):
        return path
    image = page_image(storage.local_path(settings, document), document.mime_type, index,
                       max_side=settings.max_image_side)
    private_dir(path.parent)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(buffer.getvalue())
    os.replace(tmp.name, path)  # atomic: a concurrent reader sees all of it or nothing
    storage.keep_derived(settings, path, key)
    return path


def forget(settings: Settings, sha256: str) -> int:
    """Delete every rendered page of a document, here and in the object store (erasure and
    retention, docket/privacy.py); how many files there were."""
    removed = 0
    folder = cache_dir(settings) / sha256[:2]
    for path in folder.glob(f"{sha256}-*.png") if folder.is_dir() else ():
        path.unlink(missing_ok=True)
        removed += 1
    return removed + storage.delete_derived(settings, f"pages/{sha256[:2]}/{sha256}-")


def prune(settings: Settings, max_idle: float = MAX_IDLE_SECONDS, now: float | None = None) -> int:
    """Delete cached pages not viewed for `max_idle` seconds (and stray temp files); returns how many."""
    now = time.time() if now is None else now
    # Documents fetched from an object store to this machine are a cache too.
    return storage.prune_cache(settings, max_idle, now) + storage.prune_idle_files(cache_dir(settings), max_idle, now)
