"""Near-duplicate documents within a tenant, by perceptual hash: the double-claimed receipt
(photographed twice, rescanned, re-saved as another format) that byte hashes miss."""
from __future__ import annotations

import imagehash
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Document, Job

# Newest first, bounded: a tenant's recent history is where double claims happen.
SCAN_LIMIT = 20_000


def perceptual_hash(image: Image.Image) -> str:
    return str(imagehash.phash(image))


def earlier_near_duplicates(session: Session, job: Job, phash: str, max_distance: int) -> list[str]:
    """Ids of this tenant's earlier jobs whose first page is within max_distance bits."""
    target = imagehash.hex_to_hash(phash)
    rows = session.execute(
        select(Job.id, Document.phash).join(Document, Document.sha256 == Job.document_sha256)
        .where(Job.tenant_id == job.tenant_id, Job.id != job.id, Job.created_at <= job.created_at,
               Document.phash.is_not(None))
        .order_by(Job.created_at.desc()).limit(SCAN_LIMIT))
    return [job_id for job_id, other in rows if target - imagehash.hex_to_hash(other) <= max_distance]
