"""Document bytes on disk, content-addressed by SHA-256: one copy however often uploaded.

Uploads are streamed to a temporary file while hashing, so a large batch never sits in memory.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from docket.errors import DocumentError

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """A streamed upload waiting in a temporary file."""

    temp_path: Path
    sha256: str
    size: int


def receive(stream: BinaryIO, uploads_dir: Path, max_bytes: int) -> Upload:
    uploads_dir.mkdir(parents=True, exist_ok=True)
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


def keep(upload: Upload, documents_dir: Path) -> Path:
    """Move the upload to its content address (or drop it when the bytes are already kept)."""
    target = documents_dir / upload.sha256[:2] / upload.sha256
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        discard(upload)
    else:
        os.replace(upload.temp_path, target)
    return target
