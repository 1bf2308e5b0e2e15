"""Document rows: content-addressed, so concurrent uploads of the same bytes meet on one row."""
from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import Document
from db.rows import as_loaded

_DOCUMENTS = Document.__table__
# Built once per dialect, and Core rather than ORM: an ORM INSERT … RETURNING(Document) spent
# more CPU loading the row into an object than the database spent on the statement.
# rowcount (1: inserted, 0: the row was there) is kept for an INSERT only when asked.
_INSERT = {name: insert(_DOCUMENTS).on_conflict_do_nothing(index_elements=["sha256"])
           .execution_options(preserve_rowcount=True)
           for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))}


def add_once(session: Session, **values: Any) -> Document:
    """Insert the document unless a row with its sha256 exists (another request may be storing
    the same bytes right now: ON CONFLICT DO NOTHING, never a unique-key error); return the row.
    New bytes, the usual case, cost one statement; known ones a second."""
    result = session.execute(_INSERT[session.get_bind().dialect.name], values)
    if result.rowcount == 1:
        return as_loaded(session, Document, result.last_inserted_params())
    return session.get(Document, values["sha256"])
