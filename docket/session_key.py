"""The key that signs dashboard session cookies.

DOCKET_SECRET_KEY wins; otherwise a random key is made once and kept in the data directory
(mode 0600), so every API process sharing that directory accepts the same cookies and a
restart does not sign everyone out.
"""
from __future__ import annotations

import secrets
from pathlib import Path

from db.private_files import kept_secret
from docket.config import Settings


def session_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    return kept_secret(Path(settings.data_dir) / "secret_key", lambda: secrets.token_urlsafe(48))
