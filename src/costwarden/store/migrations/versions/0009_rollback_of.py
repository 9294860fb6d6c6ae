"""Add rollback_of to approval requests and action runs: the apply run a rollback undoes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


TABLES = ("approval_requests", "action_runs")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("rollback_of", sa.String(length=36), nullable=True))
            batch.create_index(f"ix_{table}_rollback_of", ["rollback_of"])


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_rollback_of")
            batch.drop_column("rollback_of")
