"""personal data: erasure on request (jobs.erased_*) and retention purges (jobs.*_purged_at)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 04:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('erased_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('erased_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('erased_what', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('documents_purged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('text_purged_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('text_purged_at')
        batch_op.drop_column('documents_purged_at')
        batch_op.drop_column('erased_what')
        batch_op.drop_column('erased_reason')
        batch_op.drop_column('erased_by')
        batch_op.drop_column('erased_at')
