"""Near-duplicate documents within a tenant, by perceptual hash: the double-claimed receipt
(photographed twice, rescanned, re-saved as another format) that byte hashes miss."""
from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

import imagehash
import numpy as np
from PIL import Image
from sqlalchemy import BigInteger, Integer, bindparam, cast, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.orm import Session

from db.models import Document, Job

# Newest first and bounded, in rows and in time: a tenant's recent history is where double
# claims happen, and the scan must cost the same at the 10th job and the 1,000,000th.
SCAN_LIMIT = 5_000


def read_by(rule) -> bool:
    """Whether the rule's checks look at near-duplicates at all (the scan is bounded, not free)."""
    return rule.reads_document("near_duplicate") or rule.reads_document("duplicate_of")


NEAREST = 1  # what `facts` reads of the earlier near-duplicates


def facts(earlier: list[str]) -> dict:
    """The `document` keys CEL checks read: `near_duplicate` and the nearest `duplicate_of`."""
    return {"near_duplicate": bool(earlier), "duplicate_of": earlier[0] if earlier else ""}


def perceptual_hash(image: Image.Image) -> str:
    return str(imagehash.phash(image))


def record_hash(session: Session, document: Document, phash: str) -> None:
    """Keep a hash just computed: on the document, and on every job of it that has no copy yet
    (the one being checked among them). One statement on Postgres. The caller commits."""
    values = {"of_document": document.sha256, "new_hash": phash}
    connection = session.connection()  # Core statements built once: no ORM unit of work, no cache key per job
    if connection.dialect.name == "postgresql":
        connection.execute(_record_hash()[0], values)
    else:  # SQLite has no UPDATE inside WITH
        for statement in _record_hash()[1:]:
            connection.execute(statement, values)


@lru_cache(maxsize=1)
def _record_hash():
    """(the Postgres statement, then SQLite's two) with bound `of_document` and `new_hash` (an
    UPDATE takes a parameter named like a column as a value to set: these names are no column's)."""
    documents, jobs = Document.__table__, Job.__table__
    hashed = (update(documents).where(documents.c.sha256 == bindparam("of_document"))
              .values(phash=bindparam("new_hash")))
    copies = (update(jobs).where(jobs.c.document_sha256 == bindparam("of_document"), jobs.c.phash.is_(None))
              .values(phash=bindparam("new_hash")))
    return copies.add_cte(hashed.cte("hashed")), hashed, copies


def hamming(target: str, others: list[str]) -> np.ndarray:
    """Bit distances between one 64-bit hex hash and many, vectorised."""
    values = np.array([int(h, 16) for h in others], dtype=np.uint64)
    return np.bitwise_count(values ^ np.uint64(int(target, 16)))


def earlier_near_duplicates(session: Session, job: Job, phash: str, max_distance: int, *,
                            window_days: int = 365, most: int = SCAN_LIMIT) -> list[str]:
    """Ids of this tenant's earlier jobs (within `window_days`, the newest SCAN_LIMIT of them)
    whose first page is within max_distance bits, nearest first; at most `most` of them (the
    checks read the nearest only, and a tenant of look-alike documents, such as blank pages,
    has thousands)."""
    values = {"tenant_id": job.tenant_id, "job_id": job.id, "created_at": job.created_at,
              "since": job.created_at - timedelta(days=window_days)}
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # The distances are computed where the rows are: only the near ones travel (a busy
        # tenant's scan is 5,000 rows, which cost the worker more than the rest of the job).
        return list(connection.execute(_near_on_postgres(), {**values, "bits": _signed_bits(phash),
                                                             "max_distance": max_distance, "most": most}).scalars())
    rows = connection.execute(_recent(), values).all()
    if not rows:
        return []
    distances = hamming(phash, [row.phash for row in rows])
    near = np.flatnonzero(distances <= max_distance)
    return [rows[i].id for i in near[np.argsort(distances[near], kind="stable")][:most]]


def _window(jobs) -> tuple:
    """This tenant's jobs before this one (bound: tenant_id, job_id, created_at, since)."""
    return (jobs.c.tenant_id == bindparam("tenant_id"), jobs.c.id != bindparam("job_id"),
            jobs.c.created_at <= bindparam("created_at"), jobs.c.created_at >= bindparam("since"))


@lru_cache(maxsize=1)
def _recent():
    """The tenant's newest SCAN_LIMIT hashed jobs before this one, each with its copy of its
    document's hash. Built once with bound parameters: building it cost more than running it."""
    jobs = Job.__table__
    return (select(jobs.c.id, jobs.c.created_at, jobs.c.phash)
            .where(*_window(jobs), jobs.c.phash.is_not(None))
            .order_by(jobs.c.created_at.desc()).limit(SCAN_LIMIT))


@lru_cache(maxsize=1)
def _near_on_postgres():
    # The same rows, compared as 64-bit integers Postgres keeps beside each hash (jobs.phash_bits,
    # migration 0010): parsing 5,000 hex hashes per job cost more than the rest of the scan.
    jobs = Job.__table__
    bits = literal_column("jobs.phash_bits", BigInteger)
    recent = (select(jobs.c.id, jobs.c.created_at, bits.label("bits"))
              .where(*_window(jobs), bits.is_not(None))
              .order_by(jobs.c.created_at.desc()).limit(SCAN_LIMIT)).subquery()
    distance = func.bit_count(cast(recent.c.bits.op("#")(bindparam("bits", type_=BigInteger)), BIT(64)))
    return (select(recent.c.id).where(distance <= bindparam("max_distance", type_=Integer))
            .order_by(distance, recent.c.created_at.desc()).limit(bindparam("most", type_=Integer)))


def _signed_bits(phash: str) -> int:
    """A 16-digit hex hash as Postgres's bigint holds it (two's complement: the top bit is the sign)."""
    value = int(phash, 16)
    return value - (1 << 64) if value >= 1 << 63 else value


