"""languages: a key's chosen language (the dashboard's switch), a tenant's default language, and
the language of a webhook subscription's reasons

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 04:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('default_locale', sa.String(length=16), nullable=True))
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.drop_column('locale')
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('default_locale')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('locale')
