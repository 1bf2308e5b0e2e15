"""Document bytes, content-addressed by SHA-256: one copy however often uploaded.

Uploads are streamed to a temporary file while hashing, so a large batch never sits in memory.
They are kept in the local folder $DOCKET_DATA_DIR/documents (the default), or, with
DOCKET_STORAGE_URL=s3://bucket/prefix, in an S3-compatible store shared by API and workers on
any machine. Code that needs a file on disk (page rendering, OCR) asks `local_path`, which in
the object-store case fetches the object once into a content-addressed local cache.

A document's `storage_path` is its key relative to the store: "ab/ab12…" either way.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from db.private_files import private_dir
from docket.errors import DocketError, DocumentError

if TYPE_CHECKING:
    from db.models import Document
    from docket.config import Settings

CHUNK = 1024 * 1024
log = logging.getLogger(__name__)


class StorageUnavailable(DocketError):
    """The object store did not answer (or answered 5xx): worth retrying later."""

    status = 503
    code = "storage_unavailable"
    title = "Storage unavailable"


@dataclass(frozen=True)
class Upload:
    """A streamed upload waiting in a temporary file."""

    temp_path: Path
    sha256: str
    size: int


def receive(stream: BinaryIO, uploads_dir: Path, max_bytes: int) -> Upload:
    private_dir(uploads_dir)
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(dir=uploads_dir, prefix="upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise DocumentError(f"The file is larger than the {max_bytes}-byte limit.",
                                        code="file_too_large", status=413, title="File too large")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Upload(temp_path=Path(name), sha256=digest.hexdigest(), size=size)


def discard(upload: Upload) -> None:
    upload.temp_path.unlink(missing_ok=True)


def key_for(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256}"


def keep(upload: Upload, documents_dir: Path) -> Path:
    """Move the upload to its content address (or drop it when the bytes are already kept)."""
    target = documents_dir / upload.sha256[:2] / upload.sha256
    private_dir(target.parent)
    if target.exists():
        discard(upload)
    else:
        os.replace(upload.temp_path, target)
    return target


# --- where the kept bytes live ------------------------------------------------------------------

def put(settings: "Settings", upload: Upload) -> str:
    """Keep the upload in the configured store; returns its storage_path (key)."""
    if settings.storage_url is None:
        return str(keep(upload, settings.documents_dir).relative_to(settings.documents_dir))
    key = key_for(upload.sha256)
    store = _s3(settings)
    try:
        if not store.exists(key):
            with open(upload.temp_path, "rb") as stream:  # streamed in parts, never read whole
                store.upload(stream, key)
    finally:
        discard(upload)
    return key


def _key(document: "Document | str") -> str:
    key = document if isinstance(document, str) else document.storage_path
    if key.startswith("/") or ".." in Path(key).parts:
        raise ValueError(f"not a storage key: {key!r}")
    return key


def local_path(settings: "Settings", document: "Document | str") -> Path:
    """A file on this machine with the document's bytes (a Document or its storage_path).

    Local folder: the kept file itself. Object store: a content-addressed cache file under
    $DOCKET_DATA_DIR/object-cache, fetched on first use; a second read costs nothing."""
    key = _key(document)
    if settings.storage_url is None:
        return settings.documents_dir / key
    path = cache_dir(settings) / key
    if path.exists():
        try:
            os.utime(path)  # recently read documents stay (see prune_cache)
        except FileNotFoundError:
            pass
        else:
            return path
    private_dir(path.parent)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".fetch-")
    try:
        with os.fdopen(fd, "wb") as out:
            _s3(settings).download(key, out)
        os.replace(name, path)  # atomic: a concurrent reader sees all of it or nothing
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return path


def open_stream(settings: "Settings", document: "Document | str") -> tuple[BinaryIO, int] | Path:
    """The bytes to send: a local Path (the local folder), or (a readable stream, its length)
    straight from the object store; the caller reads it in chunks and closes it."""
    key = _key(document)
    if settings.storage_url is None:
        return settings.documents_dir / key
    return _s3(settings).stream(key)


def fetch_derived(settings: "Settings", key: str, path: Path) -> bool:
    """Object store only: copy a derived file (a page image) kept at `key` to `path`, if there is one."""
    if settings.storage_url is None:
        return False
    store = _s3(settings)
    private_dir(path.parent)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".fetch-")
    try:
        with os.fdopen(fd, "wb") as out:
            found = store.download(key, out, missing_ok=True)
        if found:
            os.replace(name, path)
        return found
    finally:
        Path(name).unlink(missing_ok=True)


def keep_derived(settings: "Settings", path: Path, key: str) -> None:
    """Object store only: keep a derived file for every other machine (best effort: it can be made again)."""
    if settings.storage_url is None:
        return
    try:
        with open(path, "rb") as stream:
            _s3(settings).upload(stream, key)
    except Exception as exc:  # noqa: BLE001 - the local copy serves this request anyway
        log.warning("could not keep %s in the object store: %s", key, exc)


def delete(settings: "Settings", document: "Document | str") -> bool:
    """Delete a document's kept bytes (local folder, or the object store and this machine's
    cached copy); whether there were any. Erasure and retention (docket/privacy.py)."""
    key = _key(document)
    if settings.storage_url is None:
        path = settings.documents_dir / key
        found = path.exists()
        path.unlink(missing_ok=True)
        return found
    store = _s3(settings)
    found = store.exists(key)
    store.delete(key)
    (cache_dir(settings) / key).unlink(missing_ok=True)
    return found


def delete_derived(settings: "Settings", prefix: str) -> int:
    """Object store only: delete every derived file whose key starts with `prefix`; how many."""
    if settings.storage_url is None:
        return 0
    store = _s3(settings)
    keys = store.keys(prefix)
    for key in keys:
        store.delete(key)
    return len(keys)


def cache_dir(settings: "Settings") -> Path:
    return settings.data_dir / "object-cache"


def prune_cache(settings: "Settings", max_idle: float, now: float | None = None) -> int:
    """Delete locally cached objects not read for `max_idle` seconds; returns how many."""
    return prune_idle_files(cache_dir(settings), max_idle, now)


def prune_idle_files(root: Path, max_idle: float, now: float | None = None) -> int:
    """Delete the files of a content-addressed cache (`root/xx/name`) untouched for `max_idle`
    seconds; returns how many."""
    now = time.time() if now is None else now
    removed = 0
    if not root.is_dir():
        return 0
    for path in root.glob("*/*"):
        try:
            if now - path.stat().st_mtime > max_idle:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


_NO_DEFAULT = object()


class S3Store:
    """One bucket and key prefix in an S3-compatible store, through boto3."""

    def __init__(self, url: str, endpoint_url: str | None):
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        bucket, _, prefix = url[len("s3://"):].partition("/")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60))
        # Multipart in 8 MiB parts, at most two in memory at once: a 50 MB upload never sits whole
        # in memory (it was received to a temp file; upload_fileobj reads it part by part).
        self.transfer = TransferConfig(multipart_threshold=8 * CHUNK, multipart_chunksize=8 * CHUNK,
                                       max_concurrency=2, max_io_queue=8)
        self.transfer.max_in_memory_upload_chunks = 2

    def name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @staticmethod
    def _missing(exc: Exception) -> bool:
        from botocore.exceptions import ClientError

        return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey",
                                                                                               "NotFound")

    def _call(self, what: str, key: str, fn, missing=_NO_DEFAULT):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn()
        except ClientError as exc:
            if missing is not _NO_DEFAULT and self._missing(exc):
                return missing
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if status >= 500 or exc.response.get("Error", {}).get("Code") in ("SlowDown", "Throttling"):
                raise StorageUnavailable(f"The object store failed to {what} {key}: {exc}") from exc
            raise
        except BotoCoreError as exc:  # could not connect, timed out, ...
            raise StorageUnavailable(f"The object store failed to {what} {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self._call("look up", key, lambda: bool(self.client.head_object(Bucket=self.bucket,
                                                                                 Key=self.name(key))), missing=False)

    def upload(self, stream: BinaryIO, key: str) -> None:
        self._call("store", key, lambda: self.client.upload_fileobj(stream, self.bucket, self.name(key),
                                                                     Config=self.transfer))

    def download(self, key: str, out: BinaryIO, missing_ok: bool = False) -> bool:
        def fetch() -> bool:
            self.client.download_fileobj(self.bucket, self.name(key), out, Config=self.transfer)
            return True
        return self._call("fetch", key, fetch, missing=False if missing_ok else _NO_DEFAULT)

    def delete(self, key: str) -> None:
        self._call("delete", key, lambda: self.client.delete_object(Bucket=self.bucket, Key=self.name(key)))

    def keys(self, prefix: str) -> list[str]:
        """The keys (relative to this store's prefix) that start with `prefix`."""
        def listed() -> list[str]:
            found, pages = [], self.client.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=self.name(prefix)):
                found += [item["Key"] for item in page.get("Contents", ())]
            return found
        names = self._call("list", prefix, listed)
        strip = len(self.name(""))
        return [name[strip:] for name in names]

    def stream(self, key: str) -> tuple[BinaryIO, int]:
        obj = self._call("fetch", key, lambda: self.client.get_object(Bucket=self.bucket, Key=self.name(key)))
        return obj["Body"], int(obj["ContentLength"])


_stores: dict[tuple, S3Store] = {}
_stores_lock = threading.Lock()


def _s3(settings: "Settings") -> S3Store:
    # One client per process (boto3 clients are thread-safe, but must not cross a fork).
    ident = (os.getpid(), settings.storage_url, settings.s3_endpoint_url)
    with _stores_lock:
        store = _stores.get(ident)
        if store is None:
            store = _stores[ident] = S3Store(settings.storage_url, settings.s3_endpoint_url)
        return store
