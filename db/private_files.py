"""Docket's files are private to the user running it: directories 0700, files 0600, set at
creation whatever the umask, so other users of a shared host cannot read the database (webhook
secrets, extracted fields), stored documents, page images or keys (review item 9)."""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Callable

from sqlalchemy.engine import make_url

DIR_MODE = 0o700
FILE_MODE = 0o600
# The files SQLite keeps beside its database (it gives them the database file's mode).
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")

log = logging.getLogger(__name__)


def tighten(path: Path | str, mode: int) -> bool:
    """Drop group/other permissions from an existing file or directory; True if it changed."""
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return False
    if not current & 0o077:
        return False
    try:
        os.chmod(path, current & mode)
    except PermissionError:  # someone else's file: say so rather than fail the start
        log.warning("%s is readable by other users (mode %o) and cannot be made private", path, current)
        return False
    return True


def private_dir(path: Path | str, *, tighten_existing: bool = False) -> Path:
    """Make `path` (and missing parents) as 0700 directories. `tighten_existing` also narrows an
    existing one (the data directory at start-up; never a folder Docket did not make its own)."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, DIR_MODE)  # an odd umask (0o277) could have narrowed it further
    if tighten_existing:
        tighten(path, DIR_MODE)
    return path


def private_file(path: Path | str) -> Path:
    """Create `path` empty with mode 0600 if it is missing, else narrow it to 0600."""
    path = Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        tighten(path, FILE_MODE)
    return path


def sqlite_file(database_url: str) -> Path | None:
    """The file behind a SQLite URL (None: not SQLite, or in memory)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return None
    return Path(url.database)


def private_sqlite(database_url: str) -> None:
    """Before SQLite opens it: the database file exists as 0600 (SQLite then makes its -wal,
    -shm and -journal files with the same mode), and an older world-readable one is narrowed."""
    path = sqlite_file(database_url)
    if path is None:
        return
    private_dir(path.parent)
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        tighten(path.with_name(path.name + suffix), FILE_MODE)


def kept_secret(path: Path | str, make: Callable[[], str]) -> str:
    """The secret kept in `path` (narrowed to 0600 if it is not), else a new one from `make`,
    written 0600 and linked into place whole, so processes starting together agree on one."""
    path = Path(path)
    try:
        tighten(path, FILE_MODE)
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(make())
    try:
        os.link(tmp, path)  # appears whole or not at all; fails if another process won
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()
