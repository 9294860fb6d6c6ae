"""Add the notification tables: outbox, notifications and alert responses

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from costwarden.store.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("alert_id", sa.String(length=64), nullable=True),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=True),
        sa.Column("notices", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("external_ref", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_channel", "outbox", ["channel", "status"])
    op.create_index("ix_outbox_alert", "outbox", ["alert_id", "channel"])

    op.create_table(
        "notifications",
        sa.Column("alert_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("budget", sa.String(length=255), nullable=True),
        sa.Column("period_key", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("breach_date", sa.Date(), nullable=True),
        sa.Column("overspend", sa.Float(), nullable=True),
        sa.Column("notice", sa.JSON(), nullable=False),
        sa.Column("external_ref", sa.String(length=500), nullable=True),
        sa.Column("digest_pending", sa.Boolean(), nullable=False),
        sa.Column("first_notified_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_notified_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("snoozed_until", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("alert_id", "channel"),
    )
    op.create_index(
        "ix_notifications_channel_state", "notifications", ["channel", "state"]
    )

    op.create_table(
        "alert_responses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("alert_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("snoozed_until", UTCDateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key", name="uq_alert_responses_dedupe"),
    )
    op.create_index("ix_alert_responses_alert_id", "alert_responses", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_responses_alert_id", table_name="alert_responses")
    op.drop_table("alert_responses")
    op.drop_index("ix_notifications_channel_state", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_outbox_alert", table_name="outbox")
    op.drop_index("ix_outbox_channel", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
