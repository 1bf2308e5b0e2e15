"""policies as data: per-tenant policy versions, activations, built-in archive, background runs;
decisions become a history (unique per job and origin instead of per job)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

ACTIVE = sa.text("status = 'active'")
# 0001 created decisions.job_id's unique constraint without a name: on SQLite batch mode finds
# it through this convention; Postgres named it itself.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    op.create_table('builtin_policies',
    sa.Column('version', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )
    with op.batch_alter_table('builtin_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_builtin_policies_name'), ['name'], unique=False)

    op.create_table('policy_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.String(length=80), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('builtin', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_by_key_id', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('activated_by', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'name', 'version', name='uq_policy_versions_tenant_name_version')
    )
    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.create_index('ix_policy_versions_tenant_name', ['tenant_id', 'name', 'created_at'], unique=False)
        # One active version per tenant and policy name.
        batch_op.create_index('uq_policy_versions_active', ['tenant_id', 'name'], unique=True,
                              sqlite_where=ACTIVE, postgresql_where=ACTIVE)

    op.create_table('policy_activations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.String(length=80), nullable=False),
    sa.Column('previous_version', sa.String(length=80), nullable=True),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('actor_key_id', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('policy_activations', schema=None) as batch_op:
        batch_op.create_index('ix_policy_activations_tenant_name', ['tenant_id', 'name', 'id'], unique=False)

    op.create_table('policy_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('rule_name', sa.String(length=100), nullable=False),
    sa.Column('rule_version', sa.String(length=80), nullable=False),
    sa.Column('filter', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('changed', sa.Integer(), nullable=False),
    sa.Column('flagged', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('cursor', sa.JSON(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_by_key_id', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('policy_runs', schema=None) as batch_op:
        batch_op.create_index('ix_policy_runs_status', ['status', 'heartbeat_at'], unique=False)
        batch_op.create_index('ix_policy_runs_tenant_created', ['tenant_id', 'created_at'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('analysis_round', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('second_look_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('second_look_reason', sa.String(length=500), nullable=True))

    # Existing decisions are each their job's first analysis: origin 'analysis:0'.
    bind = op.get_bind()
    unique_job = 'decisions_job_id_key' if bind.dialect.name == 'postgresql' else 'uq_decisions_job_id'
    with op.batch_alter_table('decisions', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=60), server_default='analysis:0', nullable=False))
        batch_op.add_column(sa.Column('run_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('created_by', sa.String(length=200), nullable=True))
        batch_op.drop_constraint(unique_job, type_='unique')
        batch_op.create_unique_constraint('uq_decisions_job_origin', ['job_id', 'origin'])
        batch_op.create_index('ix_decisions_job', ['job_id', 'id'], unique=False)
        batch_op.create_foreign_key('fk_decisions_run', 'policy_runs', ['run_id'], ['id'])


def downgrade() -> None:
    # Back to one decision per job: the newest of each job's history is kept.
    op.execute("DELETE FROM decisions WHERE id NOT IN (SELECT max(id) FROM decisions GROUP BY job_id)")
    bind = op.get_bind()
    unique_job = 'decisions_job_id_key' if bind.dialect.name == 'postgresql' else 'uq_decisions_job_id'
    with op.batch_alter_table('decisions', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint('fk_decisions_run', type_='foreignkey')
        batch_op.drop_index('ix_decisions_job')
        batch_op.drop_constraint('uq_decisions_job_origin', type_='unique')
        batch_op.create_unique_constraint(unique_job, ['job_id'])
        batch_op.drop_column('created_by')
        batch_op.drop_column('run_id')
        batch_op.drop_column('origin')

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('second_look_reason')
        batch_op.drop_column('second_look_at')
        batch_op.drop_column('analysis_round')

    with op.batch_alter_table('policy_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_policy_runs_tenant_created')
        batch_op.drop_index('ix_policy_runs_status')
    op.drop_table('policy_runs')
    with op.batch_alter_table('policy_activations', schema=None) as batch_op:
        batch_op.drop_index('ix_policy_activations_tenant_name')
    op.drop_table('policy_activations')
    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.drop_index('uq_policy_versions_active', sqlite_where=ACTIVE, postgresql_where=ACTIVE)
        batch_op.drop_index('ix_policy_versions_tenant_name')
    op.drop_table('policy_versions')
    with op.batch_alter_table('builtin_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_builtin_policies_name'))
    op.drop_table('builtin_policies')
