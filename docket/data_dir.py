"""Start-up of any process using the data directory (API, worker, serve, analyze): the directory
made private (0700, an older open one narrowed), the SQLite database 0600, and the key that
encrypts webhook secrets checked, so a bad DOCKET_SECRETS_KEYS stops the start, not a delivery."""
from __future__ import annotations

import logging

from db import sealed
from db.private_files import private_dir, private_sqlite, sqlite_file
from docket.config import Settings

log = logging.getLogger(__name__)
_warned: list[bool] = []  # once per process
PRIVATE_UMASK = 0o077  # for the entry points: what they and their children create is private


def prepare(settings: Settings) -> None:
    private_dir(settings.data_dir, tighten_existing=True)
    private_dir(settings.uploads_dir)
    private_sqlite(settings.database_url)
    sealed.keyring()  # raises SecretsKeyError with the reason; makes the embedded key if needed
    if not sealed.configured() and sqlite_file(settings.database_url) is None and not _warned:
        _warned.append(True)
        log.warning("%s is not set: webhook secrets are encrypted with the key in %s, which every API and "
                    "worker process must share; set %s (docket secrets generate-key) in production",
                    sealed.KEYS_ENV, settings.data_dir / sealed.KEY_FILE, sealed.KEYS_ENV)
