"""which API key submitted a job or batch (jobs.submitted_by, batches.submitted_by), for
"My submissions" and GET /v1/jobs?submitted_by=me

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No foreign key: a key's id is kept on its jobs even after the key is deleted.
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submitted_by', sa.String(length=32), nullable=True))
        batch_op.create_index('ix_jobs_tenant_submitter', ['tenant_id', 'submitted_by', 'created_at'], unique=False)
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submitted_by', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('submitted_by')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_tenant_submitter')
        batch_op.drop_column('submitted_by')
