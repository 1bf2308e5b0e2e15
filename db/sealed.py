"""Secrets kept encrypted at rest (webhook signing secrets): the column holds a Fernet token, the
model attribute the plaintext, so a copy of the database (a backup, a dump, a stolen file) signs
nothing.

Keys: DOCKET_SECRETS_KEYS, comma-separated Fernet keys (`Fernet.generate_key()`); the first
encrypts, all decrypt (MultiFernet), so a key is rotated by putting a new one first, running
`docket secrets rotate`, then removing the old one. Unset: a key generated once and kept in the
data directory (`secrets_key`, mode 0600), shared by every process using that directory, as
the dashboard's secret_key is; production should set DOCKET_SECRETS_KEYS (`docket serve` and
`docket worker` warn on a server database without it). Nothing is ever stored in plaintext;
rows from before encryption (no prefix) are read as they are and encrypted by the rotation.
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import String, column, select, table, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from db.private_files import kept_secret

PREFIX = "fernet:"  # tells a token from a legacy plaintext row
KEYS_ENV = "DOCKET_SECRETS_KEYS"
KEY_FILE = "secrets_key"
# (table, column) of every sealed secret; `rotate` walks them.
SEALED_COLUMNS = (("tenants", "webhook_secret"), ("webhook_subscriptions", "secret"))

log = logging.getLogger(__name__)


class SecretsKeyError(RuntimeError):
    """No usable key to encrypt or decrypt with (never carries key material)."""


class UnreadableSecret(str):
    """A stored secret no configured key opens: reads as "" and says why, so one bad row fails
    its own delivery (recorded, retried) instead of every query that loads the row."""

    reason: str

    def __new__(cls, reason: str) -> "UnreadableSecret":
        value = super().__new__(cls, "")
        value.reason = reason
        return value


def _listed(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def configured() -> bool:
    return bool(_listed(os.environ.get(KEYS_ENV) or ""))


def keyring() -> MultiFernet:
    """The keys from the environment, else the data directory's key (made on first use)."""
    raw = os.environ.get(KEYS_ENV) or ""
    # The data directory as Settings.from_env reads it (db/ cannot import docket.config).
    return _keyring(raw, "" if _listed(raw) else os.environ.get("DOCKET_DATA_DIR") or "docket-data")


@lru_cache(maxsize=16)
def _keyring(raw: str, folder: str) -> MultiFernet:
    keys = _listed(raw) or [_file_key(Path(folder).resolve())]
    fernets = []
    for number, key in enumerate(keys, 1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            where = f"key {number} of {KEYS_ENV}" if _listed(raw) else f"{Path(folder) / KEY_FILE}"
            raise SecretsKeyError(f"{where} is not a Fernet key (32 url-safe base64-encoded bytes; "
                                  "make one with `docket secrets generate-key`)") from None
    return MultiFernet(fernets)


def _file_key(folder: Path) -> str:
    return kept_secret(folder / KEY_FILE, lambda: Fernet.generate_key().decode("ascii"))


def seal(plaintext: str) -> str:
    try:
        ring = keyring()
    except OSError as exc:
        raise SecretsKeyError(f"no key to encrypt secrets with: {exc}") from None
    return PREFIX + ring.encrypt(plaintext.encode("utf-8")).decode("ascii")


def unseal(stored: str) -> str:
    """The plaintext of a stored value (a legacy plaintext row as it is), or UnreadableSecret."""
    if not stored.startswith(PREFIX):
        return stored
    try:
        return keyring().decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
    except InvalidToken:
        return UnreadableSecret(f"none of the configured keys decrypts it (is {KEYS_ENV} missing "
                                "the key it was encrypted with?)")
    except (SecretsKeyError, OSError) as exc:
        return UnreadableSecret(str(exc))


class SealedSecret(TypeDecorator):
    """A String column whose values are encrypted on the way in and decrypted on the way out."""

    impl = String(255)  # a 50-character secret is a 171-character token
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, UnreadableSecret):
            raise SecretsKeyError(f"refusing to store an unreadable secret: {value.reason}")
        return seal(value)

    def process_result_value(self, value, dialect):
        return None if value is None else unseal(value)


def rotate(connection: Session | Connection, *, plaintext_only: bool = False) -> dict[str, int]:
    """Re-encrypt every stored secret under the first key (legacy plaintext rows too), in the
    caller's transaction; `plaintext_only` encrypts the plaintext rows and leaves tokens alone.
    Counts: rotated, encrypted (were plaintext), unreadable (left as they are: no configured
    key opens them)."""
    ring = keyring()
    counts = {"rotated": 0, "encrypted": 0, "unreadable": 0}
    for rows, stored_column, row_id, stored in _stored(connection):
        if stored.startswith(PREFIX):
            if plaintext_only:
                continue
            try:
                token = ring.rotate(stored[len(PREFIX):].encode("ascii"))
            except InvalidToken:
                counts["unreadable"] += 1
                log.warning("%s %s: its secret opens with none of the keys; left as it is", rows.name, row_id)
                continue
            counts["rotated"] += 1
        else:
            token = ring.encrypt(stored.encode("utf-8"))
            counts["encrypted"] += 1
        connection.execute(update(rows).where(rows.c.id == row_id)
                           .values({stored_column.name: PREFIX + token.decode("ascii")}))
    return counts


def decrypt_all(connection: Session | Connection) -> None:
    """Back to plaintext (a schema downgrade to before encryption); raises SecretsKeyError on a
    row no configured key opens, leaving the transaction to be rolled back."""
    for rows, stored_column, row_id, stored in _stored(connection):
        plaintext = unseal(stored)
        if isinstance(plaintext, UnreadableSecret):
            raise SecretsKeyError(f"{rows.name} {row_id}: {plaintext.reason}")
        if plaintext != stored:
            connection.execute(update(rows).where(rows.c.id == row_id).values({stored_column.name: plaintext}))


def _stored(connection):
    # Raw strings, not the models: this reads and writes the stored form itself.
    for table_name, column_name in SEALED_COLUMNS:
        rows = table(table_name, column("id", String), column(column_name, String))
        stored_column = rows.c[column_name]
        for row_id, stored in connection.execute(select(rows.c.id, stored_column)).all():
            if stored is not None:
                yield rows, stored_column, row_id, stored
