"""Create interval adjustments

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

import costwarden.store.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interval_adjustments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at", costwarden.store.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_interval_adjustments_source_created",
        "interval_adjustments",
        ["source", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_interval_adjustments_source_created", table_name="interval_adjustments")
    op.drop_table("interval_adjustments")
