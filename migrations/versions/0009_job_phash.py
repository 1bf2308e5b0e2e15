"""each job's copy of its document's perceptual hash (jobs.phash): the near-duplicate scan reads
the tenant's recent jobs alone, instead of joining every one of them to its document

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 23:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phash', sa.String(length=32), nullable=True))
    op.execute("UPDATE jobs SET phash = (SELECT documents.phash FROM documents "
               "WHERE documents.sha256 = jobs.document_sha256) WHERE phash IS NULL")


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('phash')
