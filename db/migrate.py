"""Schema upgrades through Alembic, callable from the CLI, the app and the tests."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from db.private_files import private_sqlite

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    private_sqlite(database_url)  # a new SQLite file is made 0600 here, not by Alembic's engine
    command.upgrade(alembic_config(database_url), revision)
