"""Create cluster events

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op

import costwarden.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_events",
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("cluster_uid", sa.String(length=64), nullable=False),
        sa.Column("cluster_name", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at", costwarden.store.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=32), nullable=False),
        sa.Column("involved_kind", sa.String(length=64), nullable=False),
        sa.Column("involved_name", sa.String(length=255), nullable=False),
        sa.Column("related_kind", sa.String(length=64), nullable=True),
        sa.Column("related_name", sa.String(length=255), nullable=True),
        sa.Column("source_component", sa.String(length=128), nullable=True),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("updated_at", costwarden.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uid"),
    )
    with op.batch_alter_table("cluster_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cluster_events_batch_id"), ["batch_id"], unique=False
        )
        batch_op.create_index(
            "ix_cluster_events_cluster_created", ["cluster_uid", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("cluster_events", schema=None) as batch_op:
        batch_op.drop_index("ix_cluster_events_cluster_created")
        batch_op.drop_index(batch_op.f("ix_cluster_events_batch_id"))
    op.drop_table("cluster_events")
