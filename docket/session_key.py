"""The key that signs dashboard session cookies.

DOCKET_SECRET_KEY wins; otherwise a random key is made once and kept in the data directory
(mode 0600), so every API process sharing that directory accepts the same cookies and a
restart does not sign everyone out.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from db.private_files import private_dir
from docket.config import Settings


def session_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    key = secrets.token_urlsafe(48)
    tmp = path.with_name(f"secret_key.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    try:
        os.link(tmp, path)  # appears whole or not at all; fails if another process won
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink()
    return key
