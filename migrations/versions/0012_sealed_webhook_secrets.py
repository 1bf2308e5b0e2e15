"""Webhook signing secrets are stored encrypted (db/sealed.py): a Fernet token with its prefix is
171 characters, so tenants.webhook_secret and webhook_subscriptions.secret widen to 255, and the
plaintext rows (the default tenant's, from 0002, and any made before) are encrypted with the
configured key (DOCKET_SECRETS_KEYS, else the data directory's). Downgrading decrypts them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 10:00:00
"""
from alembic import op
import sqlalchemy as sa

from db import sealed


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

COLUMNS = (('tenants', 'webhook_secret'), ('webhook_subscriptions', 'secret'))


def upgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=100), type_=sa.String(length=255),
                                  existing_nullable=False)
    sealed.rotate(op.get_bind(), plaintext_only=True)


def downgrade() -> None:
    sealed.decrypt_all(op.get_bind())  # tokens fit neither 100 characters nor older code
    for table, column in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=255), type_=sa.String(length=100),
                                  existing_nullable=False)
