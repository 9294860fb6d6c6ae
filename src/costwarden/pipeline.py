"""The main job, stage by stage: ingest, evaluate every budget, decide alerts, record them."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.orm import Session

from costwarden.anomaly import anomaly_payload, evaluate_anomalies, record_anomalies
from costwarden.anomaly.utilisation import StoredUsage, UsageSeries, UsageSource
from costwarden.approvals import GovernanceReport, govern_recommendations
from costwarden.audit import hooks as audit_hooks
from costwarden.audit.retention import prune as prune_audit
from costwarden.budgets.alerts import alert_payload, crossed_thresholds
from costwarden.budgets.evaluate import evaluate_budget
from costwarden.budgets.snapshot import status_snapshot
from costwarden.config import Settings
from costwarden.domain.alert import Alert, BudgetStatus
from costwarden.domain.anomaly import AnomalyReport
from costwarden.domain.budget import Budget
from costwarden.domain.cost import IngestReport
from costwarden.errors import AuditIntegrityError, PolicyFileError, SourceError
from costwarden.notify.outbox import PassNotifier
from costwarden.quota import (
    QuotaAlert,
    QuotaReport,
    evaluate_quotas,
    quota_payload,
    record_quota_alerts,
)
from costwarden.recommend.runner import (
    RecommendOutcome,
    actions_for_scope,
    recommend_for_pass,
    scope_filter,
)
from costwarden.review import record_realised_savings
from costwarden.store import Store
from costwarden.store.tables import (
    AlertRecord,
    BudgetStatusRecord,
    RecommendationReportRecord,
    Run,
)

if TYPE_CHECKING:
    from costwarden.service.state import RefreshScope

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""Progress callback: (description, completed, total)."""


@dataclass(frozen=True, slots=True, eq=False)
class RunResult:
    run_id: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime
    ingest: tuple[IngestReport, ...]
    statuses: tuple[BudgetStatus, ...]
    alerts: tuple[Alert, ...]
    quota: QuotaReport | None = None
    anomalies: AnomalyReport | None = None
    anomaly_alerts: tuple[dict[str, object], ...] = ()
    recommendations: RecommendOutcome | None = None
    queued: int = 0
    """Outbox rows that the pass queued for the notification channels."""
    governance: GovernanceReport | None = None
    """What the policies decided for the recommendations; None when the pass failed before."""

    @property
    def quota_alerts(self) -> tuple[QuotaAlert, ...]:
        return self.quota.alerts if self.quota is not None else ()

    def payloads(self) -> list[dict[str, object]]:
        """Return the budget alert payloads, then the quota and the anomaly alert payloads."""
        budget = [alert_payload(alert) for alert in self.alerts]
        quota = [quota_payload(alert) for alert in self.quota_alerts]
        return budget + quota + list(self.anomaly_alerts)


def run_pass(
    store: Store,
    settings: Settings,
    budgets: Sequence[Budget],
    as_of: datetime,
    *,
    ingest: bool = True,
    progress: Progress | None = None,
    run_id: str | None = None,
    trigger: str = "cli",
    tenant: str | None = None,
    scope: RefreshScope | None = None,
) -> RunResult:
    """Run one pass of the main job and return what it found.

    With ``ingest`` set and a Palette API key configured, new cost data is fetched first. Without a
    key, the pass uses the data already stored, for example FOCUS files ingested earlier. A
    ``scope`` naming clusters fetches only their cost for ``scope.days`` days, then evaluates
    every budget. ``run_id`` names a run row that the service queued earlier; the pass marks it
    running instead of inserting a new row. At the end each budget's status and the
    recommendations are stored for the service's API.
    """
    run_id = run_id or str(uuid.uuid4())
    audit_tenant = tenant or settings.service.tenant
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    _record_run(store, run_id, as_of, started_at, trigger, tenant, scope)
    _audit_policies(store, settings, audit_tenant)
    notifier = PassNotifier(settings.notify, started_at)

    try:
        reports: tuple[IngestReport, ...] = ()
        if ingest and settings.palette.api_key is not None:
            reports = _ingest(store, settings, as_of, scope, progress)
            _audit_ingest(store, audit_tenant, run_id, reports)
        elif ingest:
            logger.warning(
                "no Palette API key configured (COSTWARDEN_PALETTE_API_KEY); "
                "using the cost data already stored"
            )

        statuses = _evaluate(store, settings, budgets, as_of, progress)
        alerts = tuple(
            alert for status in statuses for alert in crossed_thresholds(status, started_at)
        )
        recommendations = _recommend(store, settings, as_of, progress)
        alerts = _with_actions(store, settings, alerts, recommendations)
        # Governance comes before the alerts, so a budget alert's message carries the approval
        # request of the change it recommends.
        governance = _govern(store, settings, run_id, recommendations, audit_tenant, started_at)
        _record_alerts(store, run_id, alerts, statuses, notifier, audit_tenant,
                       governance.approvals)
        quota = _evaluate_quotas(
            store, settings, run_id, as_of, started_at, notifier, audit_tenant
        )
        anomalies, anomaly_alerts = _evaluate_anomalies(
            store, settings, run_id, as_of, started_at, notifier, audit_tenant
        )
        _record_statuses(store, run_id, statuses, audit_tenant, settings)
        _record_recommendations(
            store, run_id, recommendations, started_at, notifier, audit_tenant,
            governance.approvals,
        )
        _record_realised_savings(store, settings, started_at)
        notifier.collect_digests(store)
    except Exception as exc:
        _fail_run(store, run_id, exc)
        raise

    finished_at = datetime.now(UTC)
    quota_count = len(quota.alerts) if quota is not None else 0
    fired = len(alerts) + quota_count + len(anomaly_alerts)
    _finish_run(store, run_id, finished_at, len(budgets), fired)
    _prune_audit(store, settings, audit_tenant, finished_at)
    logger.info(
        "pass %s done: %d budgets, %d alerts, %d notifications queued, %.1f s",
        run_id, len(budgets), len(alerts), notifier.queued, time.monotonic() - clock,
    )
    return RunResult(
        run_id, as_of, started_at, finished_at, reports, statuses, alerts, quota, anomalies,
        anomaly_alerts, recommendations, notifier.queued, governance,
    )


def _ingest(
    store: Store,
    settings: Settings,
    as_of: datetime,
    scope: RefreshScope | None,
    progress: Progress | None,
) -> tuple[IngestReport, ...]:
    """Fetch Palette's cost, events and usage; a scope with clusters fetches their cost only."""
    if scope is not None and (scope.cluster_uids or scope.cluster_names):
        return (_ingest_palette_clusters(store, settings, as_of, scope, progress),)

    reports = (_ingest_palette(store, settings, as_of, progress),)
    reports += (_ingest_palette_events(store, settings, as_of, progress),)
    if settings.quota.enabled:
        reports += (_ingest_palette_usage(store, settings, as_of, progress),)
    return reports


def _ingest_palette(
    store: Store, settings: Settings, as_of: datetime, progress: Progress | None
) -> IngestReport:
    from costwarden.sources.palette.ingest import ingest_palette

    return ingest_palette(store, settings.palette, as_of=as_of, progress=progress)


def _ingest_palette_clusters(
    store: Store,
    settings: Settings,
    as_of: datetime,
    scope: RefreshScope,
    progress: Progress | None,
) -> IngestReport:
    from costwarden.sources.palette.ingest import ingest_palette

    since = as_of.astimezone(UTC).date() - timedelta(days=scope.days)
    clusters = frozenset(scope.cluster_uids) | frozenset(scope.cluster_names)
    logger.info(
        "targeted refresh of %d clusters for %d days from %s", len(clusters), scope.days, since
    )
    return ingest_palette(
        store, settings.palette, as_of=as_of, since=since, clusters=clusters, progress=progress
    )


def _ingest_palette_events(
    store: Store, settings: Settings, as_of: datetime, progress: Progress | None
) -> IngestReport:
    from costwarden.sources.palette.events import ingest_palette_events

    return ingest_palette_events(store, settings.palette, as_of=as_of, progress=progress)


def _ingest_palette_usage(
    store: Store, settings: Settings, as_of: datetime, progress: Progress | None
) -> IngestReport:
    from costwarden.sources.palette.usage import ingest_palette_usage

    return ingest_palette_usage(
        store, settings.palette, settings.quota, as_of=as_of, progress=progress
    )


def _recommend(
    store: Store, settings: Settings, as_of: datetime, progress: Progress | None
) -> RecommendOutcome:
    if progress:
        progress("Recommending savings", 0, 1)
    outcome = recommend_for_pass(store, settings, as_of)
    if progress:
        progress("Recommending savings", 1, 1)
    if outcome.note:
        logger.info("recommendations: %s", outcome.note)
    return outcome


def _with_actions(
    store: Store, settings: Settings, alerts: tuple[Alert, ...], outcome: RecommendOutcome
) -> tuple[Alert, ...]:
    """Attach to each budget alert the recommendations that lower its scope's cost."""
    limit = settings.recommend.alert_actions
    if not alerts or not outcome.items or limit == 0:
        return alerts

    scopes = {}
    with store.transaction() as session:
        for alert in alerts:
            budget = alert.status.budget
            if budget.name not in scopes:
                scopes[budget.name] = scope_filter(session, budget)
    return tuple(
        replace(
            alert,
            actions=actions_for_scope(outcome.items, *scopes[alert.status.budget.name], limit),
        )
        for alert in alerts
    )


def _evaluate_quotas(
    store: Store,
    settings: Settings,
    run_id: str,
    as_of: datetime,
    generated_at: datetime,
    notifier: PassNotifier,
    audit_tenant: str,
) -> QuotaReport | None:
    """Project stored usage against quotas, record the alerts and queue their notifications.

    Returns None when quota projection is disabled.
    """
    if not settings.quota.enabled:
        return None
    with store.transaction() as session:
        report = evaluate_quotas(session, settings, as_of, generated_at)
        record_quota_alerts(session, run_id, report.alerts)
        payloads = [quota_payload(alert) for alert in report.alerts]
        notifier.quota(session, payloads)
        audit_hooks.record_alerts(session, audit_tenant, run_id, payloads)
    return report


def _prometheus_usage(settings: Settings, stack: ExitStack) -> UsageSource | None:
    """Return the Prometheus usage source when Prometheus is configured, else None."""
    if settings.prometheus.url is None:
        return None

    from costwarden.anomaly.prometheus_usage import PrometheusUsage
    from costwarden.sources.prometheus import PrometheusSource

    source = stack.enter_context(PrometheusSource(settings.prometheus))
    return _FallbackUsage(PrometheusUsage(source))


class _FallbackUsage:
    """A usage source that falls back to the stored Palette usage when Prometheus fails."""

    def __init__(self, primary: UsageSource) -> None:
        self.primary = primary

    def load(self, session: Session, first_day: date, last_day: date) -> list[UsageSeries]:
        try:
            return self.primary.load(session, first_day, last_day)
        except SourceError as exc:
            logger.error(
                "anomaly pass: Prometheus usage failed, checking stored Palette usage only: %s",
                exc,
            )
            return StoredUsage().load(session, first_day, last_day)


def _evaluate_anomalies(
    store: Store,
    settings: Settings,
    run_id: str,
    as_of: datetime,
    generated_at: datetime,
    notifier: PassNotifier,
    audit_tenant: str,
) -> tuple[AnomalyReport | None, tuple[dict[str, object], ...]]:
    """Detect cost and utilisation anomalies, record them, and return the alert payloads.

    The notifications of the anomaly alerts are queued in the transaction that records them.
    """
    if not settings.anomaly.enabled:
        return None, ()
    with ExitStack() as stack:
        usage = _prometheus_usage(settings, stack)
        with store.transaction() as session:
            report = evaluate_anomalies(session, settings, as_of, generated_at, usage_source=usage)
            record_anomalies(session, run_id, report, settings.anomaly, generated_at)
            payloads = tuple(
                anomaly_payload(anomaly, settings.anomaly, generated_at)
                for anomaly in report.anomalies
            )
            notifier.anomalies(session, payloads)
            audit_hooks.record_alerts(session, audit_tenant, run_id, payloads)
    return report, payloads


def _evaluate(
    store: Store,
    settings: Settings,
    budgets: Sequence[Budget],
    as_of: datetime,
    progress: Progress | None,
) -> tuple[BudgetStatus, ...]:
    statuses = []
    with store.transaction() as session:
        for index, budget in enumerate(budgets):
            if progress:
                progress(f"Forecasting {budget.name}", index, len(budgets))
            with structlog.contextvars.bound_contextvars(budget=budget.name):
                statuses.append(evaluate_budget(session, budget, as_of, settings))
    if progress:
        progress("Forecasting budgets", len(budgets), len(budgets))
    return tuple(statuses)


def _record_run(
    store: Store,
    run_id: str,
    as_of: datetime,
    started_at: datetime,
    trigger: str,
    tenant: str | None,
    scope: RefreshScope | None,
) -> None:
    """Insert the run row as running, or mark the row the service queued as running."""
    with store.transaction() as session:
        run = session.get(Run, run_id)
        if run is None:
            run = Run(id=run_id, trigger=trigger, tenant=tenant)
            run.scope = scope.as_json() if scope is not None else None
            session.add(run)
        run.as_of = as_of
        run.started_at = started_at
        run.status = "running"


def _finish_run(
    store: Store, run_id: str, finished_at: datetime, budgets: int, alerts: int
) -> None:
    with store.transaction() as session:
        run = session.get(Run, run_id)
        assert run is not None
        if run.status == "abandoned":
            logger.warning("pass %s finished after the service had marked it abandoned", run_id)
            return
        run.finished_at = finished_at
        run.status = "succeeded"
        run.budgets = budgets
        run.alerts = alerts


def _fail_run(store: Store, run_id: str, exc: Exception) -> None:
    logger.error("pass %s failed: %s: %s", run_id, exc.__class__.__name__, exc)
    with store.transaction() as session:
        run = session.get(Run, run_id)
        if run is not None:
            run.finished_at = datetime.now(UTC)
            run.status = "failed"
            run.error = f"{exc.__class__.__name__}: {exc}"


def _record_alerts(
    store: Store,
    run_id: str,
    alerts: Sequence[Alert],
    statuses: Sequence[BudgetStatus],
    notifier: PassNotifier,
    audit_tenant: str,
    approvals: Mapping[str, dict[str, Any]],
) -> None:
    """Upsert each alert on its stable id, keeping the time it was first seen.

    The notifications of the budget alerts are queued in the same transaction, each with the
    pending approval request of its recommended action from ``approvals``.
    """
    with store.transaction() as session:
        payloads = []
        for alert in alerts:
            payload = alert_payload(alert)
            payloads.append(payload)
            record = session.get(AlertRecord, alert.alert_id)
            if record is None:
                record = AlertRecord(
                    alert_id=alert.alert_id,
                    budget=alert.status.budget.name,
                    period_start=alert.status.window.start,
                    kind=f"{alert.kind}:{alert.threshold.key()}",
                    first_seen=alert.generated_at,
                )
                session.add(record)
            record.severity = alert.severity
            record.payload = payload
            record.last_seen = alert.generated_at
            record.run_id = run_id
        evaluated = [status.budget.name for status in statuses if status.problem is None]
        notifier.budgets(session, payloads, evaluated, approvals)
        audit_hooks.record_alerts(session, audit_tenant, run_id, payloads)


def _record_statuses(
    store: Store,
    run_id: str,
    statuses: Sequence[BudgetStatus],
    audit_tenant: str,
    settings: Settings,
) -> None:
    """Replace the latest stored status of each evaluated budget and audit the forecasts."""
    now = datetime.now(UTC)
    with store.transaction() as session:
        for status in statuses:
            record = session.get(BudgetStatusRecord, status.budget.name)
            if record is None:
                record = BudgetStatusRecord(budget=status.budget.name)
                session.add(record)
            record.run_id = run_id
            record.as_of = status.as_of
            record.payload = status_snapshot(status, run_id)
            record.updated_at = now
        if statuses:
            audit_hooks.record_forecasts(session, audit_tenant, run_id, statuses, settings.forecast)


def _record_recommendations(
    store: Store,
    run_id: str,
    outcome: RecommendOutcome,
    created_at: datetime,
    notifier: PassNotifier,
    audit_tenant: str,
    approvals: Mapping[str, dict[str, Any]] | None = None,
) -> None:
    """Store the pass's recommendations as the list that ``recommend --json`` prints.

    Their notifications are queued in the same transaction when the pass produced a report;
    ``approvals`` attaches the pending approval requests to them.
    """
    report = outcome.report
    items = [item.to_dict() for item in outcome.items]
    payload: dict[str, object] = {
        "items": items,
        "note": outcome.note,
        "currency": report.currency if report is not None else None,
        "total_per_day": format(report.total_per_day, "f") if report is not None else None,
        "added_cost_per_day": (
            format(report.added_cost_per_day, "f") if report is not None else None
        ),
    }
    with store.transaction() as session:
        session.merge(
            RecommendationReportRecord(
                run_id=run_id,
                created_at=created_at,
                source=outcome.source or "none",
                payload=payload,
            )
        )
        if report is not None:
            notifier.recommendations(session, items, approvals)
        audit_hooks.record_recommendations(session, audit_tenant, run_id, items)


# -- governance -------------------------------------------------------------------------------


def _govern(
    store: Store,
    settings: Settings,
    run_id: str,
    outcome: RecommendOutcome,
    audit_tenant: str,
    now: datetime,
) -> GovernanceReport:
    """Decide the recommendations under the policies: monitor, open approvals or run auto ones.

    Without ``policy.paths`` it only expires approval requests whose time ran out.
    """
    items = [item.to_dict() for item in outcome.items]
    return govern_recommendations(
        store, settings, items, run_id=run_id, tenant=audit_tenant, now=now
    )


def _record_realised_savings(store: Store, settings: Settings, now: datetime) -> None:
    """Compare the spend after applied actions with the forecast without them."""
    with store.transaction() as session:
        record_realised_savings(session, settings, now)


# -- audit trail ------------------------------------------------------------------------------


def _audit_ingest(
    store: Store, audit_tenant: str, run_id: str, reports: Sequence[IngestReport]
) -> None:
    """Append an ingest entry per report; each ingestion committed its rows already."""
    with store.transaction() as session:
        for report in reports:
            audit_hooks.record_ingest(session, audit_tenant, report, run_id)


def _audit_policies(store: Store, settings: Settings, audit_tenant: str) -> None:
    """Append a policy entry when the configured policy set differs from the last recorded one.

    An invalid policy file is logged and skipped here; ``costwarden policy validate`` names
    the problem.
    """
    if not settings.policy.paths:
        return
    from costwarden.policy import load_configured_policies

    try:
        policy_set = load_configured_policies(settings)
    except PolicyFileError as exc:
        logger.error("policy change not audited, the policy files do not load: %s", exc)
        return
    with store.transaction() as session:
        audit_hooks.record_policy_change(
            session, audit_tenant, policy_set.digest, [file.path for file in policy_set.files],
            policies=[policy.name for policy in policy_set.policies],
        )


def _prune_audit(store: Store, settings: Settings, audit_tenant: str, now: datetime) -> None:
    """Delete audit entries older than ``audit.retention_days``, when it is set.

    A trail that does not verify is left as it is and logged, and the pass still succeeds.
    """
    days = settings.audit.retention_days
    if days is None:
        return
    try:
        with store.transaction() as session:
            prune_audit(session, audit_tenant, retention_days=days, now=now)
    except AuditIntegrityError as exc:
        logger.error("audit retention skipped for tenant %s: %s", audit_tenant, exc)
