"""jobs.phash_bits (Postgres): each job's perceptual hash as a 64-bit integer, kept by Postgres
itself (a generated column). The near-duplicate scan computes up to 5,000 Hamming distances per
job; parsing each hex hash into bits cost most of that (5,000 rows: 2.5 ms, 1.1 ms from integers).
SQLite compares the hashes in Python and has no such column.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 02:00:00
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# A hash that is not 16 hex digits (none is: imagehash's 64-bit phash) has no bits rather than
# failing every write of its row.
BITS = "CASE WHEN phash ~ '^[0-9a-f]{16}$' THEN ('x' || phash)::bit(64)::bigint END"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE jobs ADD COLUMN phash_bits bigint GENERATED ALWAYS AS ({BITS}) STORED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE jobs DROP COLUMN phash_bits")
