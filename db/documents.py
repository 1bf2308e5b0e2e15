"""Document rows: content-addressed, so concurrent uploads of the same bytes meet on one row."""
from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import Document

# Built once per dialect: a statement's cache key is computed once per object, not per upload.
_INSERT = {name: insert(Document).on_conflict_do_nothing(index_elements=["sha256"]).returning(Document)
           for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))}


def add_once(session: Session, **values: Any) -> Document:
    """Insert the document unless a row with its sha256 exists (another request may be storing
    the same bytes right now: ON CONFLICT DO NOTHING, never a unique-key error); return the row.
    New bytes, the usual case, cost one statement (INSERT … RETURNING); known ones a second."""
    added = session.scalars(_INSERT[session.get_bind().dialect.name], values).first()
    if added is not None:
        return added
    return session.get(Document, values["sha256"])
