"""money in the policy's currency: reference rates loaded by `docket fx import` (fx_rates), tenants'
fixed rates (fx_fixed_rates), and the conversion each decision made (decisions.converted)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 11:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fx_rates',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('per_eur', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('day', 'currency')
    )
    with op.batch_alter_table('fx_rates', schema=None) as batch_op:
        batch_op.create_index('ix_fx_rates_currency_day', ['currency', 'day'], unique=False)
    op.create_table('fx_fixed_rates',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('quote', sa.String(length=3), nullable=False),
    sa.Column('rate', sa.String(length=32), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('fx_fixed_rates', schema=None) as batch_op:
        batch_op.create_index('ix_fx_fixed_rates_tenant', ['tenant_id', 'currency', 'quote'], unique=False)
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('converted', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_column('converted')
    with op.batch_alter_table('fx_fixed_rates', schema=None) as batch_op:
        batch_op.drop_index('ix_fx_fixed_rates_tenant')
    op.drop_table('fx_fixed_rates')
    with op.batch_alter_table('fx_rates', schema=None) as batch_op:
        batch_op.drop_index('ix_fx_rates_currency_day')
    op.drop_table('fx_rates')
