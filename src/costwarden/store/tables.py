"""SQLAlchemy tables. The Alembic migrations in ``migrations/versions`` create the same schema."""

from __future__ import annotations

from datetime import UTC as _UTC
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Money(TypeDecorator[Decimal]):
    """An exact decimal amount: ``NUMERIC(24, 10)`` on PostgreSQL, decimal text on SQLite.

    SQLite has no decimal type, so amounts are stored as text and read back into ``Decimal``.
    Aggregates computed by SQLite itself (``SUM``) are floating point.
    """

    impl = Numeric(24, 10)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(24, 10, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return format(Decimal(value), "f")
        return Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value))


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: costwarden stores UTC-aware datetimes only")
        return value.astimezone(_UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=_UTC)
        return value.astimezone(_UTC)




class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Cluster(Base):
    __tablename__ = "clusters"

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    project_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    project_name: Mapped[str | None] = mapped_column(String(255))
    cloud: Mapped[str] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(64))
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    profiles: Mapped[list[str]] = mapped_column(JSON, default=list)
    cloud_config_uid: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Namespace(Base):
    __tablename__ = "namespaces"

    cluster_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CostFact(Base):
    """One cost fact, upserted on ``fact_key`` so that re-ingesting a window changes nothing."""

    __tablename__ = "cost_facts"
    __table_args__ = (
        UniqueConstraint("fact_key", name="uq_cost_facts_fact_key"),
        Index("ix_cost_facts_grain_day", "grain", "day"),
        Index("ix_cost_facts_cluster_day", "cluster_uid", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fact_key: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32))
    grain: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    cloud: Mapped[str | None] = mapped_column(String(32))
    project_uid: Mapped[str | None] = mapped_column(String(64))
    project_name: Mapped[str | None] = mapped_column(String(255))
    cluster_uid: Mapped[str | None] = mapped_column(String(64))
    cluster_name: Mapped[str | None] = mapped_column(String(255))
    namespace: Mapped[str | None] = mapped_column(String(255))
    account_id: Mapped[str | None] = mapped_column(String(255))
    service: Mapped[str | None] = mapped_column(String(255))
    resource_id: Mapped[str | None] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(String(64))
    breakdown: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    batch_id: Mapped[str] = mapped_column(String(36), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IngestBatch(Base):
    """One ingestion: a file or an API window, committed in one transaction with its facts."""

    __tablename__ = "ingest_batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rows_read: Mapped[int] = mapped_column(Integer)
    facts_inserted: Mapped[int] = mapped_column(Integer)
    facts_updated: Mapped[int] = mapped_column(Integer)
    facts_unchanged: Mapped[int] = mapped_column(Integer)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)


class AlertRecord(Base):
    """The latest state of each alert, keyed by its stable id (budget, period and kind)."""

    __tablename__ = "alerts"
    # The API lists alerts newest first; the index lets a page skip sorting the whole table.
    __table_args__ = (Index("ix_alerts_last_seen", "last_seen", "alert_id"),)

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    budget: Mapped[str] = mapped_column(String(255), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    run_id: Mapped[str] = mapped_column(String(36))


class Run(Base):
    """One pass of the main job."""

    __tablename__ = "runs"
    __table_args__ = (
        # At most one queued run per tenant: concurrent requests of two replicas join it.
        Index(
            "uq_runs_tenant_queued",
            "tenant",
            unique=True,
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    budgets: Mapped[int] = mapped_column(Integer, default=0)
    alerts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(16), default="cli", server_default="cli")
    tenant: Mapped[str | None] = mapped_column(String(200))
    scope: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class UsageFact(Base):
    """The daily peak of one usage series: a namespace, workspace, cluster or machine pool.

    ``scope_id`` identifies the series within its kind: ``cluster_uid/namespace`` for a
    namespace, ``cluster_uid/pool`` for a machine pool, the cluster uid for a cluster and the
    workspace uid for a workspace. ``value`` is in the resource's unit: cores for ``cpu``, GiB
    for ``memory``, nodes for ``nodes`` and GPUs for ``gpu``.
    """

    __tablename__ = "usage_facts"
    __table_args__ = (
        UniqueConstraint(
            "scope_kind", "scope_id", "resource", "day", name="uq_usage_facts_series_day"
        ),
        Index("ix_usage_facts_day", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[str] = mapped_column(String(320))
    cluster_uid: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    value: Mapped[float] = mapped_column(Float(53))
    source: Mapped[str] = mapped_column(String(16))
    batch_id: Mapped[str] = mapped_column(String(36), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QuotaLimit(Base):
    """A limit that a usage series is projected against, as Palette reported it last.

    ``limit_kind`` is ``namespace_quota``, ``workspace_quota`` or ``autoscaler_max``. ``details``
    keeps what the alert shows: names, the project, and a pool's sizes and instance shape.
    """

    __tablename__ = "quota_limits"

    scope_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_id: Mapped[str] = mapped_column(String(320), primary_key=True)
    resource: Mapped[str] = mapped_column(String(16), primary_key=True)
    limit_kind: Mapped[str] = mapped_column(String(32))
    limit_value: Mapped[float] = mapped_column(Float(53))
    cluster_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    batch_id: Mapped[str] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ClusterEventRecord(Base):
    """One Palette cluster event, keyed by the uid Palette gave it."""

    __tablename__ = "cluster_events"
    __table_args__ = (Index("ix_cluster_events_cluster_created", "cluster_uid", "created_at"),)

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    cluster_uid: Mapped[str] = mapped_column(String(64))
    cluster_name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(32))
    involved_kind: Mapped[str] = mapped_column(String(64))
    involved_name: Mapped[str] = mapped_column(String(255))
    related_kind: Mapped[str | None] = mapped_column(String(64))
    related_name: Mapped[str | None] = mapped_column(String(255))
    source_component: Mapped[str | None] = mapped_column(String(128))
    batch_id: Mapped[str] = mapped_column(String(36), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AnomalyRecord(Base):
    """The latest state of one detected anomaly, keyed by its stable id.

    ``role`` is ``alert`` for an anomaly that alerts, ``suppressed`` for one that matched an
    expected-pattern verdict, and ``related`` for one listed under ``parent_id``. Money columns
    are in ``currency``; ``expected`` and ``actual`` are per day in ``unit``. ``payload`` is the
    anomaly alert payload with the triage summary, contributors, drivers and events.
    """

    __tablename__ = "anomalies"
    __table_args__ = (Index("ix_anomalies_scope", "scope_key", "metric"),)

    anomaly_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_key: Mapped[str] = mapped_column(String(400))
    scope_name: Mapped[str] = mapped_column(String(400))
    cluster_uid: Mapped[str | None] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    cause: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[str | None] = mapped_column(String(32))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    unit: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    expected: Mapped[Decimal] = mapped_column(Money())
    actual: Mapped[Decimal] = mapped_column(Money())
    impact_per_day: Mapped[Decimal | None] = mapped_column(Money())
    impact_total: Mapped[Decimal | None] = mapped_column(Money())
    percent: Mapped[float | None] = mapped_column(Float(53))
    score: Mapped[float] = mapped_column(Float(53))
    top_contributor: Mapped[str | None] = mapped_column(String(400))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    run_id: Mapped[str] = mapped_column(String(36))


class AnomalyFeedbackRecord(Base):
    """A person's verdict on an anomaly: ``expected`` (with a reason and an optional expiry) or
    ``problem``. Expected verdicts suppress later anomalies of the same scope and cause."""

    __tablename__ = "anomaly_feedback"
    __table_args__ = (Index("ix_anomaly_feedback_scope", "scope_key", "cause"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    anomaly_id: Mapped[str] = mapped_column(String(32), index=True)
    scope_key: Mapped[str] = mapped_column(String(400))
    cause: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IntervalAdjustmentRecord(Base):
    """An interval adjustment fitted by ``costwarden backtest --save-adjustment``.

    The budget pass uses the latest one of the source whose data it forecasts.
    """

    __tablename__ = "interval_adjustments"
    __table_args__ = (Index("ix_interval_adjustments_source_created", "source", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    scope_kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class StoredBudget(Base):
    """A budget held in the database: imported from the budget file or created through the API.

    ``spec`` is the budget as the budget file writes it, so both paths validate it the same way.
    """

    __tablename__ = "budgets"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    origin: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BudgetStatusRecord(Base):
    """The latest evaluation of each budget: spend to date, forecast and exceedance, as JSON."""

    __tablename__ = "budget_statuses"

    budget: Mapped[str] = mapped_column(String(200), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36))
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookEvent(Base):
    """One inbound webhook, stored before it is acknowledged so that none is lost.

    ``id`` is the sender's ``webhook-id`` for signed events, and a hash of the body and its
    time window for Palette alerts, so a repeated delivery finds the row it already wrote.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_status", "status", "received_at"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    run_id: Mapped[str | None] = mapped_column(String(36))
    error: Mapped[str | None] = mapped_column(Text)


class PassLease(Base):
    """The holder allowed to run a pass for a tenant.

    A lease that is not renewed in time can be taken over.
    """

    __tablename__ = "pass_leases"

    tenant: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[str | None] = mapped_column(String(36))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RecommendationReportRecord(Base):
    """The recommendations of one pass, as the JSON the API returns."""

    __tablename__ = "recommendation_reports"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    source: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class OutboxRecord(Base):
    """One message waiting for, or done with, delivery to one channel.

    Rows are written in the transaction that records the alert, so an alert is never stored
    without its messages. ``status`` is pending, sending, sent, dead (gave up; visible in the
    API and ``costwarden deliveries``) or cancelled (the alert was snoozed or resolved first).
    A row in ``sending`` whose ``claimed_until`` has passed is taken again by any worker.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_channel", "channel", "status"),
        Index("ix_outbox_alert", "alert_id", "channel"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(200))
    alert_id: Mapped[str | None] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(16))
    route: Mapped[str | None] = mapped_column(String(200))
    notices: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    external_ref: Mapped[str | None] = mapped_column(String(500))


class NotificationRecord(Base):
    """What each channel was last told about each alert: the basis of deduplication.

    ``probability``, ``breach_date`` and ``overspend`` are the values of the last notice sent,
    which the next pass compares to decide whether the change is material. ``notice`` is the
    latest notice, kept for resolve notices and digests. ``digest_pending`` marks an alert
    waiting for the channel's next digest.
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_channel_state", "channel", "state"),)

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    budget: Mapped[str | None] = mapped_column(String(255))
    period_key: Mapped[str] = mapped_column(String(64))
    route: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    probability: Mapped[float | None] = mapped_column(Float)
    breach_date: Mapped[date | None] = mapped_column(Date)
    overspend: Mapped[float | None] = mapped_column(Float)
    notice: Mapped[dict[str, Any]] = mapped_column(JSON)
    external_ref: Mapped[str | None] = mapped_column(String(500))
    digest_pending: Mapped[bool] = mapped_column(default=False)
    first_notified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_notified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertResponseRecord(Base):
    """A decision made in a channel on an alert: approve, reject or snooze.

    ``dedupe_key`` is unique, so a callback that arrives twice is recorded once.
    """

    __tablename__ = "alert_responses"
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_alert_responses_dedupe"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(255))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditEntryRecord(Base):
    """One entry of the append-only audit trail of a tenant.

    ``entry_hash`` is SHA-256 over ``prev_hash`` and the canonical JSON of the entry's other
    fields, so editing or deleting an entry breaks every later hash. The unique
    ``(tenant, prev_hash)`` pair stops two writers from appending to the same entry: the second
    insert fails and the writer reads the new head and tries again.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        UniqueConstraint("tenant", "prev_hash", name="uq_audit_entries_prev"),
        UniqueConstraint("entry_hash", name="uq_audit_entries_hash"),
        Index("ix_audit_entries_tenant_seq", "tenant", "seq"),
        Index("ix_audit_entries_subject", "kind", "subject"),
        # SQLite reuses the largest rowid after the newest rows are deleted; AUTOINCREMENT
        # never does, so a seq stays unique after retention pruned every entry.
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(255))
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpointRecord(Base):
    """The last entry removed by retention, so that the remaining chain still verifies."""

    __tablename__ = "audit_checkpoints"

    tenant: Mapped[str] = mapped_column(String(200), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    entry_hash: Mapped[str] = mapped_column(String(64))
    pruned_before: Mapped[datetime] = mapped_column(UTCDateTime())
    pruned_count: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApprovalRequestRecord(Base):
    """A request for people to approve one action with its exact parameters.

    ``params_digest`` is SHA-256 over the canonical JSON of the action name, target and
    parameters. Approval tokens carry it, so a token approves only the change it was issued for.
    ``rollback_of`` names the apply run that a rollback request undoes, and is None otherwise.
    """

    __tablename__ = "approval_requests"
    __table_args__ = (
        UniqueConstraint(
            "tenant", "subject_id", "action", "params_digest", name="uq_approval_requests_change"
        ),
        Index("ix_approval_requests_status", "tenant", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    policy: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    params_digest: Mapped[str] = mapped_column(String(64))
    production: Mapped[bool] = mapped_column(Boolean)
    required_approvals: Mapped[int] = mapped_column(Integer)
    approver_groups: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    rollback_of: Mapped[str | None] = mapped_column(String(36), index=True)


class ApprovalDecisionRecord(Base):
    """One person's approve or reject on an approval request.

    ``token_id`` is unique, so a token is used once. ``(request_id, actor)`` is unique, so two
    required approvals come from two different people.
    """

    __tablename__ = "approval_decisions"
    __table_args__ = (
        UniqueConstraint("token_id", name="uq_approval_decisions_token"),
        UniqueConstraint("request_id", "actor", name="uq_approval_decisions_actor"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(255))
    groups: Mapped[list[str]] = mapped_column(JSON)
    channel: Mapped[str] = mapped_column(String(200))
    token_id: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class ActionRunRecord(Base):
    """One dry run, apply or rollback of an action, with the state read before it.

    ``run_key`` is unique (for example ``<request digest>:apply``), so an approval that arrives
    twice runs the action once. A rollback names the apply run it undoes in ``rollback_of``.
    """

    __tablename__ = "action_runs"
    __table_args__ = (
        UniqueConstraint("run_key", name="uq_action_runs_key"),
        Index("ix_action_runs_tenant_started", "tenant", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200))
    run_key: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rollback_of: Mapped[str | None] = mapped_column(String(36), index=True)


class RealisedSavingsRecord(Base):
    """Spend of a changed scope against the forecast without the change, per evaluation window."""

    __tablename__ = "realised_savings"
    __table_args__ = (
        UniqueConstraint("action_run_id", "window_end", name="uq_realised_savings_window"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200))
    action_run_id: Mapped[str] = mapped_column(String(36), index=True)
    scope: Mapped[str] = mapped_column(String(255))
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    forecast_without_change: Mapped[Decimal] = mapped_column(Money())
    actual: Mapped[Decimal] = mapped_column(Money())
    estimated_per_month: Mapped[Decimal | None] = mapped_column(Money())
    realised_per_month: Mapped[Decimal] = mapped_column(Money())
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
