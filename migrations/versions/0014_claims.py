"""expense claims: claims, claim_reviews and jobs.claim_id (issue 21)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 04:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('claims',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('rule_name', sa.String(length=100), nullable=False),
    sa.Column('rule_version', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('employee', sa.String(length=200), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=True),
    sa.Column('trip_start', sa.Date(), nullable=True),
    sa.Column('trip_end', sa.Date(), nullable=True),
    sa.Column('destination', sa.String(length=100), nullable=True),
    sa.Column('origin', sa.String(length=100), nullable=True),
    sa.Column('cost_center', sa.String(length=100), nullable=True),
    sa.Column('claimed_amount', sa.String(length=40), nullable=True),
    sa.Column('callback_url', sa.String(length=2000), nullable=True),
    sa.Column('submitted_by', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=True),
    sa.Column('totals', sa.JSON(), nullable=True),
    sa.Column('lines', sa.JSON(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('current_decision', sa.String(length=20), nullable=True),
    sa.Column('review_rank', sa.SmallInteger(), nullable=False),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.create_index('ix_claims_status', ['status', 'created_at'], unique=False)
        batch_op.create_index('ix_claims_tenant_created', ['tenant_id', 'created_at'], unique=False)
        batch_op.create_index('ix_claims_tenant_queue', ['tenant_id', 'review_rank', 'created_at'], unique=False)
        batch_op.create_index('ix_claims_tenant_submitter', ['tenant_id', 'submitted_by', 'created_at'],
                              unique=False)
    op.create_table('claim_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('claim_id', sa.String(length=32), nullable=False),
    sa.Column('reviewer_key_id', sa.String(length=16), nullable=True),
    sa.Column('reviewer', sa.String(length=200), nullable=False),
    sa.Column('decision_before', sa.String(length=20), nullable=False),
    sa.Column('decision_after', sa.String(length=20), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('claim_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_claim_reviews_claim', ['claim_id', 'id'], unique=False)
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_id', sa.String(length=32), nullable=True))
        batch_op.create_foreign_key('fk_jobs_claim_id_claims', 'claims', ['claim_id'], ['id'])
        batch_op.create_index('ix_jobs_claim', ['claim_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_claim')
        batch_op.drop_constraint('fk_jobs_claim_id_claims', type_='foreignkey')
        batch_op.drop_column('claim_id')
    with op.batch_alter_table('claim_reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_claim_reviews_claim')
    op.drop_table('claim_reviews')
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.drop_index('ix_claims_tenant_submitter')
        batch_op.drop_index('ix_claims_tenant_queue')
        batch_op.drop_index('ix_claims_tenant_created')
        batch_op.drop_index('ix_claims_status')
    op.drop_table('claims')
