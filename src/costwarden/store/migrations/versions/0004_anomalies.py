"""Create anomalies and anomaly feedback

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op

import costwarden.store.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    money = costwarden.store.tables.Money()
    utc = costwarden.store.tables.UTCDateTime(timezone=True)
    op.create_table(
        "anomalies",
        sa.Column("anomaly_id", sa.String(length=32), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_key", sa.String(length=400), nullable=False),
        sa.Column("scope_name", sa.String(length=400), nullable=False),
        sa.Column("cluster_uid", sa.String(length=64), nullable=True),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("cause", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.String(length=32), nullable=True),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("expected", money, nullable=False),
        sa.Column("actual", money, nullable=False),
        sa.Column("impact_per_day", money, nullable=True),
        sa.Column("impact_total", money, nullable=True),
        sa.Column("percent", sa.Float(precision=53), nullable=True),
        sa.Column("score", sa.Float(precision=53), nullable=False),
        sa.Column("top_contributor", sa.String(length=400), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("first_seen", utc, nullable=False),
        sa.Column("last_seen", utc, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("anomaly_id"),
    )
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.create_index("ix_anomalies_scope", ["scope_key", "metric"], unique=False)

    op.create_table(
        "anomaly_feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("anomaly_id", sa.String(length=32), nullable=False),
        sa.Column("scope_key", sa.String(length=400), nullable=False),
        sa.Column("cause", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("anomaly_feedback", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_anomaly_feedback_anomaly_id"), ["anomaly_id"], unique=False
        )
        batch_op.create_index("ix_anomaly_feedback_scope", ["scope_key", "cause"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("anomaly_feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_anomaly_feedback_scope")
        batch_op.drop_index(batch_op.f("ix_anomaly_feedback_anomaly_id"))
    op.drop_table("anomaly_feedback")

    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.drop_index("ix_anomalies_scope")
    op.drop_table("anomalies")
