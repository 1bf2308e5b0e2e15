"""reviews, and the reviewer queue's columns on jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 02:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

NEW_JOB_INDEXES = {
    'ix_jobs_tenant_queue': ['tenant_id', 'review_rank', 'created_at', 'id'],
    'ix_jobs_tenant_decision_created': ['tenant_id', 'current_decision', 'created_at'],
    'ix_jobs_tenant_decided': ['tenant_id', 'decided_at'],
}


def upgrade() -> None:
    op.create_table('reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('reviewer_key_id', sa.String(length=16), nullable=True),
    sa.Column('reviewer', sa.String(length=200), nullable=False),
    sa.Column('decision_before', sa.String(length=20), nullable=False),
    sa.Column('decision_after', sa.String(length=20), nullable=False),
    sa.Column('fields_before', sa.JSON(), nullable=False),
    sa.Column('fields_after', sa.JSON(), nullable=False),
    sa.Column('policy_after', sa.JSON(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name='fk_reviews_job'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name='fk_reviews_tenant'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index('ix_reviews_job', ['job_id', 'id'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('current_decision', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('review_rank', sa.SmallInteger(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('merchant', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('amount', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
    # Existing decisions fill the queue columns, so old jobs are found by the new filters too.
    op.execute("UPDATE jobs SET current_decision = (SELECT d.decision FROM decisions d WHERE d.job_id = jobs.id), "
               "decided_at = (SELECT d.created_at FROM decisions d WHERE d.job_id = jobs.id)")
    op.execute("UPDATE jobs SET review_rank = CASE WHEN current_decision = 'needs_review' THEN 0 ELSE 1 END")
    _backfill_merchant_and_amount()
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.alter_column('review_rank', server_default=None)
        for name, columns in NEW_JOB_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        # Substring search (ILIKE '%…%') over merchants and OCR text, Chinese included, stays
        # indexed: trigrams do not need a word splitter.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.execute('CREATE INDEX ix_trgm_jobs_merchant ON jobs USING gin (merchant gin_trgm_ops)')
        op.execute('CREATE INDEX ix_trgm_decisions_text ON decisions USING gin (text gin_trgm_ops)')


def _summarize(fields):
    # A frozen copy of db/review_queue.summarize as of this revision (migrations never import
    # application code, which keeps changing after them).
    fields = fields if isinstance(fields, dict) else {}
    merchant = fields.get('merchant_name')
    if not merchant and isinstance(fields.get('parties'), list):
        merchant = '; '.join(str(p) for p in fields['parties'] if p)
    amount = fields.get('total')
    if amount is None and isinstance(fields.get('amounts'), list):
        values = [a.get('value') for a in fields['amounts'] if isinstance(a, dict)]
        values = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        amount = max(values) if values else None
    if not isinstance(amount, (int, float)) or isinstance(amount, bool):
        amount = None
    return (str(merchant)[:300] if merchant else None), (float(amount) if amount is not None else None)


def _backfill_merchant_and_amount(chunk: int = 1000) -> None:
    bind = op.get_bind()
    decisions = sa.table('decisions', sa.column('id', sa.Integer), sa.column('job_id', sa.String),
                         sa.column('fields', sa.JSON))
    jobs = sa.table('jobs', sa.column('id', sa.String), sa.column('merchant', sa.String),
                    sa.column('amount', sa.Float))
    last = 0
    while True:
        rows = bind.execute(sa.select(decisions.c.id, decisions.c.job_id, decisions.c.fields)
                            .where(decisions.c.id > last).order_by(decisions.c.id).limit(chunk)).all()
        if not rows:
            return
        for _, job_id, fields in rows:
            merchant, amount = _summarize(fields)
            if merchant is not None or amount is not None:
                bind.execute(sa.update(jobs).where(jobs.c.id == job_id).values(merchant=merchant, amount=amount))
        last = rows[-1][0]


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_trgm_decisions_text')
        op.execute('DROP INDEX IF EXISTS ix_trgm_jobs_merchant')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        for name in NEW_JOB_INDEXES:
            batch_op.drop_index(name)
        for column in ('reviewed_at', 'decided_at', 'amount', 'merchant', 'review_rank', 'current_decision'):
            batch_op.drop_column(column)
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_reviews_job')
    op.drop_table('reviews')
