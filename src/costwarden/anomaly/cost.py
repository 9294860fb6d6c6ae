"""Cost anomalies: detect runs on the scope panel and explain each one.

``find_cost_anomalies`` reads the stored Palette cost facts, detects anomalous runs on every
scope (``detect``), and gives each run its contributors, drivers, events and triage summary
(``rootcause`` and ``triage``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.anomaly.detect import (
    Detection,
    Run,
    Thresholds,
    detect_runs,
    money,
    money_per_day,
)
from costwarden.anomaly.pools import Pool, load_pools
from costwarden.anomaly.rootcause import Window, breakdown
from costwarden.anomaly.scopes import CostPanel, last_cost_day, load_panel
from costwarden.anomaly.triage import triage_cost
from costwarden.config import AnomalySettings, Settings
from costwarden.domain.anomaly import Anomaly, DayValue, anomaly_fingerprint
from costwarden.domain.event import ClusterEvent
from costwarden.store import queries
from costwarden.store.events import events_between
from costwarden.store.queries import ResolvedScope
from costwarden.store.tables import CostFact, QuotaLimit

logger = logging.getLogger(__name__)

METHOD = "robust-baseline"
METHOD_VERSION = "1"
MAX_SCORE = 1e6
"""Cap of the robust z-score: a series flat at 0 before a new namespace gives an unbounded one."""
EVENT_MARGIN_DAYS = 2
"""Days before the first and after the last anomalous day whose cluster events are read."""


@dataclass(frozen=True, eq=False)
class CostFindings:
    """The cost anomalies of one pass with the panel and the counts behind them."""

    anomalies: tuple[Anomaly, ...]
    panel: CostPanel | None
    detection: Detection | None
    note: str | None = None


def find_cost_anomalies(session: Session, settings: Settings, as_of: datetime) -> CostFindings:
    """Detect and explain the cost anomalies of the checked days before ``as_of``."""
    config = settings.anomaly
    currency = settings.palette.currency
    last = last_cost_day(session, as_of.date(), currency)
    if last is None:
        note = f"no Palette cost facts in {currency} before {as_of.date()}"
        others = _other_palette_currencies(session, currency)
        if others:
            note += (
                f"; the stored Palette facts are in {', '.join(others)}, so set "
                f"palette.currency (COSTWARDEN_PALETTE_CURRENCY) to {others[0]}"
            )
            logger.warning("anomaly pass: cost is not checked: %s", note)
        return CostFindings((), None, None, note)

    history = max(config.season_weeks * 7, config.baseline_days)
    first_checked = last - timedelta(days=config.lookback_days - 1)
    first_day = first_checked - timedelta(days=history)
    panel = load_panel(session, first_day, last, currency, config.scopes, config.label_keys)
    detection = detect_runs(
        panel.values,
        history,
        Thresholds.from_settings(config),
        baseline_days=config.baseline_days,
        season_weeks=config.season_weeks,
        min_history_days=config.min_history_days,
        scale_floor=config.scale_floor,
    )
    anomalies = explain_runs(session, settings, as_of, panel, detection.runs)
    return CostFindings(tuple(anomalies), panel, detection)


def explain_runs(
    session: Session,
    settings: Settings,
    as_of: datetime,
    panel: CostPanel,
    runs: Sequence[Run],
) -> list[Anomaly]:
    """Turn detected runs into anomalies with their root cause."""
    if not runs:
        return []
    uids = {uid for run in runs for uid in panel.scopes[run.row].cluster_uids}
    clouds = {uid: meta.cloud for uid, meta in panel.clusters.items()}
    pools = load_pools(session, uids, clouds, panel.first_day, panel.last_day)
    first = min(panel.day(run.start) for run in runs)
    events = events_between(
        session,
        start=_midnight(first - timedelta(days=EVENT_MARGIN_DAYS)),
        end=_midnight(panel.last_day + timedelta(days=EVENT_MARGIN_DAYS)),
        cluster_uids=uids,
    )
    context = _Context(
        settings,
        as_of,
        panel,
        pools,
        events,
        gpu_namespaces(session, uids),
        cluster_links(session, uids, settings.palette.ui_url_template),
    )
    return [_explain(run, context) for run in runs]


@dataclass(frozen=True, eq=False)
class _Context:
    settings: Settings
    as_of: datetime
    panel: CostPanel
    pools: Sequence[Pool]
    events: Sequence[ClusterEvent]
    gpu_namespaces: frozenset[tuple[str, str]]
    links: dict[str, str]


def _explain(run: Run, context: _Context) -> Anomaly:
    config = context.settings.anomaly
    panel = context.panel
    scope = panel.scopes[run.row]
    first_day, last_day = panel.day(run.start), panel.day(run.end)
    window = Window(
        run.start, run.end, config.baseline_days, config.season_weeks, config.scale_floor
    )
    delta = float(np.mean(run.excess))

    start = _midnight(first_day - timedelta(days=EVENT_MARGIN_DAYS))
    end = _midnight(last_day + timedelta(days=EVENT_MARGIN_DAYS))
    events = [
        event
        for event in context.events
        if event.cluster_uid in scope.cluster_uids and start <= event.created_at < end
    ]
    pools = [pool for pool in context.pools if pool.cluster_uid in scope.cluster_uids]
    parts = breakdown(scope, panel, pools, window, delta, events, config.max_contributors)
    result = triage_cost(
        scope, first_day, parts, events, context.gpu_namespaces, panel.currency, context.links
    )

    band = config.z_threshold * run.sigma
    expected_total = float(np.sum(run.expected))
    return Anomaly(
        anomaly_id=anomaly_fingerprint(scope.key, "cost", first_day),
        scope=scope,
        kind=run.kind,  # type: ignore[arg-type]
        metric="cost",
        unit=panel.currency,
        currency=panel.currency,
        first_day=first_day,
        last_day=last_day,
        status="ongoing" if run.ongoing else "resolved",
        expected=money_per_day(run.expected),
        actual=money_per_day(run.actual),
        lower=money_per_day(np.clip(run.expected - band, 0.0, None)),
        upper=money_per_day(run.expected + band),
        impact_per_day=money_per_day(run.excess),
        impact_total=money(float(np.sum(run.excess))),
        percent=float(np.sum(run.excess) / expected_total) if expected_total > 0 else None,
        score=min(float(np.max(run.z)), MAX_SCORE),
        as_of=context.as_of,
        data_start=panel.first_day,
        data_end=panel.last_day,
        daily=_daily(run, panel, band),
        contributors=result.contributors,
        drivers=parts.drivers,
        events=result.events,
        triage=result.triage,
        params=_params(config, run),
    )


def _daily(run: Run, panel: CostPanel, band: np.ndarray) -> tuple[DayValue, ...]:
    return tuple(
        DayValue(
            day=panel.day(run.start + offset),
            expected=round(float(run.expected[offset]), 4),
            actual=round(float(run.actual[offset]), 4),
            lower=round(max(float(run.expected[offset] - band[offset]), 0.0), 4),
            upper=round(float(run.expected[offset] + band[offset]), 4),
            score=round(min(float(run.z[offset]), MAX_SCORE), 3),
        )
        for offset in range(run.days)
    )


def _params(config: AnomalySettings, run: Run) -> dict[str, object]:
    return {
        "method": METHOD,
        "version": METHOD_VERSION,
        "z_threshold": config.z_threshold,
        "continue_z": config.continue_z,
        "min_impact_per_day": float(config.min_impact_per_day),
        "min_percent": config.min_percent,
        "baseline_days": config.baseline_days,
        "season_weeks": config.season_weeks,
        "level_shift_min_days": config.level_shift_min_days,
        "max_z": round(min(float(np.max(run.z)), MAX_SCORE), 3),
    }


def gpu_namespaces(session: Session, cluster_uids: set[str]) -> frozenset[tuple[str, str]]:
    """Return the (cluster uid, namespace) pairs whose Palette quota allows GPUs."""
    query = select(QuotaLimit.cluster_uid, QuotaLimit.name).where(
        QuotaLimit.scope_kind == "namespace",
        QuotaLimit.resource == "gpu",
        QuotaLimit.limit_value > 0,
        QuotaLimit.cluster_uid.in_(list(cluster_uids)),
    )
    return frozenset((uid, name) for uid, name in session.execute(query) if uid is not None)


def cluster_links(session: Session, cluster_uids: set[str], template: str) -> dict[str, str]:
    """Return the Palette console link of each cluster."""
    resolved = ResolvedScope("palette", "cluster", frozenset(cluster_uids))
    return {
        uid: template.format(cluster_uid=uid, project_uid=project or "", cluster_name=name)
        for uid, project, name in queries.cluster_links(session, resolved)
    }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _other_palette_currencies(session: Session, currency: str) -> list[str]:
    """Return the currencies of stored Palette facts other than ``currency``."""
    query = (
        select(CostFact.currency)
        .where(CostFact.source == "palette", CostFact.currency != currency)
        .distinct()
    )
    return sorted(session.scalars(query))
