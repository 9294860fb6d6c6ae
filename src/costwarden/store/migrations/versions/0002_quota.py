"""Create usage facts and quota limits

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

import costwarden.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_facts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=320), nullable=False),
        sa.Column("cluster_uid", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("resource", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("updated_at", costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "scope_kind", "scope_id", "resource", "day", name="uq_usage_facts_series_day"
        ),
    )
    with op.batch_alter_table("usage_facts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_facts_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index("ix_usage_facts_day", ["day"], unique=False)

    op.create_table(
        "quota_limits",
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=320), nullable=False),
        sa.Column("resource", sa.String(length=16), nullable=False),
        sa.Column("limit_kind", sa.String(length=32), nullable=False),
        sa.Column("limit_value", sa.Float(precision=53), nullable=False),
        sa.Column("cluster_uid", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column(
            "observed_at", costwarden.store.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("updated_at", costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope_kind", "scope_id", "resource"),
    )
    with op.batch_alter_table("quota_limits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quota_limits_cluster_uid"), ["cluster_uid"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("quota_limits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quota_limits_cluster_uid"))
    op.drop_table("quota_limits")

    with op.batch_alter_table("usage_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_facts_day")
        batch_op.drop_index(batch_op.f("ix_usage_facts_batch_id"))
    op.drop_table("usage_facts")
