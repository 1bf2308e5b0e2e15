"""Near-duplicate documents within a tenant, by perceptual hash: the double-claimed receipt
(photographed twice, rescanned, re-saved as another format) that byte hashes miss."""
from __future__ import annotations

from datetime import datetime, timedelta

import imagehash
import numpy as np
from PIL import Image
from sqlalchemy import cast, func, literal, select, update
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.orm import Session

from db.models import Document, Job

# Newest first and bounded, in rows and in time: a tenant's recent history is where double
# claims happen, and the scan must cost the same at the 10th job and the 1,000,000th.
SCAN_LIMIT = 5_000


def read_by(rule) -> bool:
    """Whether the rule's checks look at near-duplicates at all (the scan is bounded, not free)."""
    return rule.reads_document("near_duplicate") or rule.reads_document("duplicate_of")


def facts(earlier: list[str]) -> dict:
    """The `document` keys CEL checks read: `near_duplicate` and the nearest `duplicate_of`."""
    return {"near_duplicate": bool(earlier), "duplicate_of": earlier[0] if earlier else ""}


def perceptual_hash(image: Image.Image) -> str:
    return str(imagehash.phash(image))


def record_hash(session: Session, document: Document, phash: str) -> None:
    """Keep a hash just computed: on the document, and on every job of it that has no copy yet
    (the one being checked among them). One statement on Postgres. The caller commits."""
    hashed = update(Document).where(Document.sha256 == document.sha256).values(phash=phash)
    copies = (update(Job).where(Job.document_sha256 == document.sha256, Job.phash.is_(None)).values(phash=phash)
              .execution_options(synchronize_session=False))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(copies.add_cte(hashed.cte("hashed")))
    else:  # SQLite has no UPDATE inside WITH
        session.execute(hashed)
        session.execute(copies)


def hamming(target: str, others: list[str]) -> np.ndarray:
    """Bit distances between one 64-bit hex hash and many, vectorised."""
    values = np.array([int(h, 16) for h in others], dtype=np.uint64)
    return np.bitwise_count(values ^ np.uint64(int(target, 16)))


def earlier_near_duplicates(session: Session, job: Job, phash: str, max_distance: int, *,
                            window_days: int = 365) -> list[str]:
    """Ids of this tenant's earlier jobs (within `window_days`, the newest SCAN_LIMIT of them)
    whose first page is within max_distance bits, nearest first."""
    since: datetime = job.created_at - timedelta(days=window_days)
    recent = (select(Job.id, Job.created_at, Job.phash)  # each job's copy of its document's hash
              .where(Job.tenant_id == job.tenant_id, Job.id != job.id, Job.created_at <= job.created_at,
                     Job.created_at >= since, Job.phash.is_not(None))
              .order_by(Job.created_at.desc()).limit(SCAN_LIMIT))
    if session.get_bind().dialect.name == "postgresql":
        # The distances are computed where the rows are: only the near ones travel (a busy
        # tenant's scan is 5,000 rows, which cost the worker more than the rest of the job).
        recent = recent.subquery()
        distance = func.bit_count(_bits(recent.c.phash).op("#")(_bits(literal(phash))))
        return list(session.scalars(select(recent.c.id).where(distance <= max_distance)
                                    .order_by(distance, recent.c.created_at.desc())))
    rows = session.execute(recent).all()
    if not rows:
        return []
    distances = hamming(phash, [row.phash for row in rows])
    near = np.flatnonzero(distances <= max_distance)
    return [rows[i].id for i in near[np.argsort(distances[near], kind="stable")]]


def _bits(hex_hash):
    """A 16-digit hex hash as Postgres bit(64) (x'…' notation), for `#` (xor) and bit_count."""
    return cast(literal("x").op("||")(hex_hash), BIT(64))
