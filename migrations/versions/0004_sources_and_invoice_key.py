"""where each field came from (decisions.sources), and the invoice identity on jobs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 17:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sources', sa.JSON(), nullable=True))
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invoice_key', sa.String(length=300), nullable=True))
        batch_op.create_index('ix_jobs_tenant_invoice', ['tenant_id', 'invoice_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_tenant_invoice')
        batch_op.drop_column('invoice_key')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_column('sources')
