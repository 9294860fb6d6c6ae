"""Add the governance tables: audit trail, approvals, action runs and realised savings

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from costwarden.store.tables import Money, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("tenant", "prev_hash", name="uq_audit_entries_prev"),
        sa.UniqueConstraint("entry_hash", name="uq_audit_entries_hash"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_entries_tenant_seq", "audit_entries", ["tenant", "seq"])
    op.create_index("ix_audit_entries_subject", "audit_entries", ["kind", "subject"])

    op.create_table(
        "audit_checkpoints",
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("seq", BIG_ID, nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("pruned_before", UTCDateTime(timezone=True), nullable=False),
        sa.Column("pruned_count", BIG_ID, nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant"),
    )

    op.create_table(
        "approval_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("params_digest", sa.String(length=64), nullable=False),
        sa.Column("production", sa.Boolean(), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("approver_groups", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "tenant", "subject_id", "action", "params_digest", name="uq_approval_requests_change"
        ),
    )
    op.create_index("ix_approval_requests_status", "approval_requests", ["tenant", "status"])
    op.create_index("ix_approval_requests_subject_id", "approval_requests", ["subject_id"])

    op.create_table(
        "approval_decisions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=True),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_id", name="uq_approval_decisions_token"),
        sa.UniqueConstraint("request_id", "actor", name="uq_approval_decisions_actor"),
    )
    op.create_index("ix_approval_decisions_request_id", "approval_decisions", ["request_id"])

    op.create_table(
        "action_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("run_key", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_key", name="uq_action_runs_key"),
    )
    op.create_index("ix_action_runs_tenant_started", "action_runs", ["tenant", "started_at"])
    op.create_index("ix_action_runs_request_id", "action_runs", ["request_id"])

    op.create_table(
        "realised_savings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("action_run_id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=255), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("forecast_without_change", Money(precision=24, scale=10), nullable=False),
        sa.Column("actual", Money(precision=24, scale=10), nullable=False),
        sa.Column("estimated_per_month", Money(precision=24, scale=10), nullable=True),
        sa.Column("realised_per_month", Money(precision=24, scale=10), nullable=False),
        sa.Column("computed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("action_run_id", "window_end", name="uq_realised_savings_window"),
    )
    op.create_index("ix_realised_savings_action_run_id", "realised_savings", ["action_run_id"])


def downgrade() -> None:
    op.drop_index("ix_realised_savings_action_run_id", table_name="realised_savings")
    op.drop_table("realised_savings")
    op.drop_index("ix_action_runs_request_id", table_name="action_runs")
    op.drop_index("ix_action_runs_tenant_started", table_name="action_runs")
    op.drop_table("action_runs")
    op.drop_index("ix_approval_decisions_request_id", table_name="approval_decisions")
    op.drop_table("approval_decisions")
    op.drop_index("ix_approval_requests_subject_id", table_name="approval_requests")
    op.drop_index("ix_approval_requests_status", table_name="approval_requests")
    op.drop_table("approval_requests")
    op.drop_table("audit_checkpoints")
    op.drop_index("ix_audit_entries_subject", table_name="audit_entries")
    op.drop_index("ix_audit_entries_tenant_seq", table_name="audit_entries")
    op.drop_table("audit_entries")
