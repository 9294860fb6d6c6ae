"""Create cost facts, fleet metadata, alerts and runs

Revision ID: 0001
Revises: 
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa
import costwarden.store.tables


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('alert_id', sa.String(length=64), nullable=False),
    sa.Column('budget', sa.String(length=255), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=128), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('first_seen', costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('alert_id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_budget'), ['budget'], unique=False)

    op.create_table('clusters',
    sa.Column('uid', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('project_uid', sa.String(length=64), nullable=True),
    sa.Column('project_name', sa.String(length=255), nullable=True),
    sa.Column('cloud', sa.String(length=32), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=True),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('profiles', sa.JSON(), nullable=False),
    sa.Column('cloud_config_uid', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=True),
    sa.Column('created_at', costwarden.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('uid')
    )
    with op.batch_alter_table('clusters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clusters_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_clusters_project_uid'), ['project_uid'], unique=False)

    op.create_table('cost_facts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('fact_key', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('grain', sa.String(length=16), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('period_start', costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('period_end', costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('amount', costwarden.store.tables.Money(precision=24, scale=10), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('cloud', sa.String(length=32), nullable=True),
    sa.Column('project_uid', sa.String(length=64), nullable=True),
    sa.Column('project_name', sa.String(length=255), nullable=True),
    sa.Column('cluster_uid', sa.String(length=64), nullable=True),
    sa.Column('cluster_name', sa.String(length=255), nullable=True),
    sa.Column('namespace', sa.String(length=255), nullable=True),
    sa.Column('account_id', sa.String(length=255), nullable=True),
    sa.Column('service', sa.String(length=255), nullable=True),
    sa.Column('resource_id', sa.Text(), nullable=True),
    sa.Column('region', sa.String(length=64), nullable=True),
    sa.Column('breakdown', sa.JSON(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('batch_id', sa.String(length=36), nullable=False),
    sa.Column('updated_at', costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fact_key', name='uq_cost_facts_fact_key')
    )
    with op.batch_alter_table('cost_facts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cost_facts_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index('ix_cost_facts_cluster_day', ['cluster_uid', 'day'], unique=False)
        batch_op.create_index('ix_cost_facts_grain_day', ['grain', 'day'], unique=False)

    op.create_table('ingest_batches',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('origin', sa.Text(), nullable=False),
    sa.Column('started_at', costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rows_read', sa.Integer(), nullable=False),
    sa.Column('facts_inserted', sa.Integer(), nullable=False),
    sa.Column('facts_updated', sa.Integer(), nullable=False),
    sa.Column('facts_unchanged', sa.Integer(), nullable=False),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('namespaces',
    sa.Column('cluster_uid', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('updated_at', costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('cluster_uid', 'name')
    )
    op.create_table('projects',
    sa.Column('uid', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('updated_at', costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('uid')
    )
    op.create_table('runs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('as_of', costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', costwarden.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('budgets', sa.Integer(), nullable=False),
    sa.Column('alerts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('runs')
    op.drop_table('projects')
    op.drop_table('namespaces')
    op.drop_table('ingest_batches')
    with op.batch_alter_table('cost_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_cost_facts_grain_day')
        batch_op.drop_index('ix_cost_facts_cluster_day')
        batch_op.drop_index(batch_op.f('ix_cost_facts_batch_id'))

    op.drop_table('cost_facts')
    with op.batch_alter_table('clusters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_clusters_project_uid'))
        batch_op.drop_index(batch_op.f('ix_clusters_name'))

    op.drop_table('clusters')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_budget'))

    op.drop_table('alerts')
