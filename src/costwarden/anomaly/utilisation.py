"""Utilisation anomalies in daily usage peaks: CPU saturation, GPU nodes without GPU work, egress.

The input is a ``UsageSource``. ``StoredUsage`` reads the Palette usage facts (``usage_facts``);
a Prometheus source can take its place later. Each series is scored day by day with a
``SeriesScorer`` (the streaming detector when installed). A scored day opens a rise only when the
series then stays up: the median after the day must be ``MIN_RISE`` above the median of the
``BEFORE_DAYS`` before it for at least ``sustained_days`` days.

- ``sustained_cpu`` (likely cryptomining): a namespace's CPU peak rises and stays up. Its memory
  peak and its cluster's pool node counts stay flat, and no workload scaling event names it.
  The cluster's CPU peak reaches ``cpu_saturation`` of its cores, or, when the cores are not
  known, the namespace's CPU reaches that share of its quota.
- ``gpu_misuse``: a GPU pool's GPU count rises together with the CPU of a namespace that has no
  GPU quota.
- ``egress_jump``: any ``egress`` series (GiB sent per day) that rises and stays up. Palette
  reports no egress, so only Prometheus (``prometheus_usage``) feeds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.anomaly.scorers import SeriesScorer, default_scorer
from costwarden.config import Settings
from costwarden.domain.anomaly import (
    Anomaly,
    AnomalyContributor,
    AnomalyScope,
    DayValue,
    Triage,
    anomaly_fingerprint,
)
from costwarden.domain.event import POOL_SCALED, WORKLOAD_SCALED, ClusterEvent
from costwarden.errors import PriceNotFoundError
from costwarden.quota.model import UNITS
from costwarden.sources.prices import PriceCatalog
from costwarden.store.events import events_between
from costwarden.store.tables import Cluster, QuotaLimit, UsageFact

MIN_RISE = 0.5
"""Relative rise of the median that counts as a lasting rise."""
FLAT = 0.2
"""Largest relative rise of memory or node counts that still counts as unchanged."""
BEFORE_DAYS = 14
HISTORY_DAYS = 42


@dataclass(frozen=True, eq=False)
class UsageSeries:
    """Daily peaks of one usage series from the source's first day, NaN where missing."""

    scope_kind: str
    scope_id: str
    cluster_uid: str | None
    name: str
    resource: str
    values: np.ndarray


class UsageSource(Protocol):
    """A provider of utilisation series: stored Palette usage today, Prometheus later."""

    def load(self, session: Session, first_day: date, last_day: date) -> list[UsageSeries]: ...


class StoredUsage:
    """Usage series from the ``usage_facts`` table that the Palette usage ingestion fills."""

    def load(self, session: Session, first_day: date, last_day: date) -> list[UsageSeries]:
        query = select(
            UsageFact.scope_kind,
            UsageFact.scope_id,
            UsageFact.cluster_uid,
            UsageFact.name,
            UsageFact.resource,
            UsageFact.day,
            UsageFact.value,
        ).where(UsageFact.day >= first_day, UsageFact.day <= last_day)
        days = (last_day - first_day).days + 1
        found: dict[tuple[str, str, str], UsageSeries] = {}
        for kind, scope_id, uid, name, resource, day, value in session.execute(query):
            key = (kind, scope_id, resource)
            if key not in found:
                found[key] = UsageSeries(kind, scope_id, uid, name, resource, np.full(days, np.nan))
            found[key].values[(day - first_day).days] = value
        return list(found.values())


@dataclass(frozen=True, slots=True)
class Rise:
    """A lasting rise of one series: columns ``start`` to ``end``, and the medians around it."""

    start: int
    end: int
    before: float
    after: float
    score: float

    @property
    def ratio(self) -> float:
        return self.after / self.before - 1.0 if self.before > 0 else float("inf")


def find_utilisation_anomalies(
    session: Session,
    settings: Settings,
    as_of: datetime,
    *,
    source: UsageSource | None = None,
    scorer: SeriesScorer | None = None,
) -> list[Anomaly]:
    """Return the utilisation anomalies of the checked days before ``as_of``."""
    last_day = as_of.date() - timedelta(days=1)
    first_day = last_day - timedelta(days=HISTORY_DAYS - 1)
    series = (source or StoredUsage()).load(session, first_day, last_day)
    if not series:
        return []
    context = _Context.build(session, settings, as_of, first_day, last_day, series, scorer)
    anomalies = _sustained_cpu(context) + _gpu_misuse(context) + _egress(context)
    return anomalies


@dataclass(eq=False)
class _Context:
    settings: Settings
    as_of: datetime
    first_day: date
    last_day: date
    first_checked: int
    by_key: dict[tuple[str, str, str], UsageSeries]
    events: list[ClusterEvent]
    limits: dict[tuple[str, str, str], QuotaLimit]
    clusters: dict[str, tuple[str, str | None, str]]
    scorer: SeriesScorer

    @classmethod
    def build(
        cls,
        session: Session,
        settings: Settings,
        as_of: datetime,
        first_day: date,
        last_day: date,
        series: list[UsageSeries],
        scorer: SeriesScorer | None,
    ) -> _Context:
        days = (last_day - first_day).days + 1
        first_checked = max(days - settings.anomaly.lookback_days, 0)
        start = datetime.combine(first_day, time(0), tzinfo=UTC)
        limits = {
            (row.scope_kind, row.scope_id, row.resource): row
            for row in session.scalars(select(QuotaLimit))
        }
        clusters = {
            uid: (name, project, cloud)
            for uid, name, project, cloud in session.execute(
                select(Cluster.uid, Cluster.name, Cluster.project_uid, Cluster.cloud)
            )
        }
        return cls(
            settings,
            as_of,
            first_day,
            last_day,
            first_checked,
            {(s.scope_kind, s.scope_id, s.resource): s for s in series},
            events_between(session, start=start, end=as_of),
            limits,
            clusters,
            scorer or default_scorer(),
        )

    def day(self, column: int) -> date:
        return self.first_day + timedelta(days=column)

    def rise(self, values: np.ndarray) -> Rise | None:
        """Return the first lasting rise that opens on a checked day, or None."""
        config = self.settings.anomaly
        scores = self.scorer.score_series(np.nan_to_num(values, nan=np.nanmedian(values)))
        for start in range(self.first_checked, len(values)):
            if scores[start] < config.utilisation_score:
                continue
            found = _lasting(values, start, config.sustained_days, float(scores[start]))
            if found is not None:
                return found
        return None

    def link(self, cluster_uid: str | None) -> str | None:
        if cluster_uid is None or cluster_uid not in self.clusters:
            return None
        name, project, _ = self.clusters[cluster_uid]
        return self.settings.palette.ui_url_template.format(
            cluster_uid=cluster_uid, project_uid=project or "", cluster_name=name
        )

    def cluster_name(self, cluster_uid: str | None) -> str:
        if cluster_uid is None:
            return "?"
        return self.clusters.get(cluster_uid, (cluster_uid, None, ""))[0]


def _lasting(values: np.ndarray, start: int, min_days: int, score: float) -> Rise | None:
    before = values[max(start - BEFORE_DAYS, 0) : start]
    before = before[np.isfinite(before)]
    after = values[start:]
    if len(before) < 3 or np.isfinite(after).sum() < min(min_days, len(after)):
        return None
    if len(after) < min_days and start + len(after) < len(values):
        return None
    level_before = float(np.median(before))
    level_after = float(np.nanmedian(after))
    if level_after < (1.0 + MIN_RISE) * level_before or level_after <= 0:
        return None
    halfway = level_before + 0.5 * (level_after - level_before)
    end = start
    for column in range(start, len(values)):
        if np.isfinite(values[column]) and values[column] >= halfway:
            end = column
    return Rise(start, end, level_before, level_after, score)


def _sustained_cpu(context: _Context) -> list[Anomaly]:
    anomalies = []
    for (kind, _, resource), series in sorted(context.by_key.items()):
        if kind != "namespace" or resource != "cpu" or series.cluster_uid is None:
            continue
        rise = context.rise(series.values)
        if rise is None or not _quiet_otherwise(context, series, rise):
            continue
        saturation = _saturation(context, series, rise)
        if saturation is None or saturation < context.settings.anomaly.cpu_saturation:
            continue
        anomalies.append(_cpu_anomaly(context, series, rise, saturation))
    return anomalies


def _quiet_otherwise(context: _Context, series: UsageSeries, rise: Rise) -> bool:
    """Check that memory and node counts stayed flat and no workload scaled in the namespace."""
    memory = context.by_key.get(("namespace", series.scope_id, "memory"))
    if memory is not None and _relative_change(memory.values, rise.start) > FLAT:
        return False
    for (kind, _, resource), pool in context.by_key.items():
        if kind == "pool" and resource == "nodes" and pool.cluster_uid == series.cluster_uid:
            if _relative_change(pool.values, rise.start) > FLAT:
                return False
    since = datetime.combine(context.day(rise.start) - timedelta(days=1), time(0), tzinfo=UTC)
    for event in context.events:
        if event.cluster_uid != series.cluster_uid or event.created_at < since:
            continue
        if event.reason == WORKLOAD_SCALED and _names(event, series.name):
            return False
    return True


def _saturation(context: _Context, series: UsageSeries, rise: Rise) -> float | None:
    """Return the cluster's CPU peak over its cores after the rise, else the namespace's CPU over
    its quota; None when neither the cores nor a quota are known."""
    uid = series.cluster_uid or ""
    cores = cluster_cores(context, uid)
    cluster = context.by_key.get(("cluster", uid, "cpu"))
    if cores is not None and cluster is not None:
        peak = float(np.nanmedian(cluster.values[rise.start :]))
        capacity = float(np.nanmedian(cores[rise.start :]))
        if capacity > 0:
            return peak / capacity
    quota = context.limits.get(("namespace", series.scope_id, "cpu"))
    if quota is not None and quota.limit_value > 0:
        return rise.after / quota.limit_value
    return None


def cluster_cores(context: _Context, cluster_uid: str) -> np.ndarray | None:
    """Return the cluster's worker cores per day: fixed pools from its autoscaler-maximum limit,
    autoscaled pools from their node counts. None when a shape or node count is unknown."""
    limit = context.limits.get(("cluster", cluster_uid, "cpu"))
    if limit is None:
        return None
    cloud = context.clusters.get(cluster_uid, ("", None, ""))[2]
    days = (context.last_day - context.first_day).days + 1
    cores = np.zeros(days)
    fixed = limit.limit_value
    for (kind, scope_id, _), row in context.limits.items():
        if kind != "pool" or row.cluster_uid != cluster_uid:
            continue
        details = row.details or {}
        try:
            vcpus = PriceCatalog.packaged().shape(cloud, str(details.get("instance_type"))).vcpus
        except PriceNotFoundError:
            return None
        nodes = context.by_key.get(("pool", scope_id, "nodes"))
        if nodes is None or details.get("max_size") is None:
            return None
        fixed -= float(details["max_size"]) * vcpus
        cores += np.nan_to_num(nodes.values, nan=float(details.get("size") or 0)) * vcpus
    return cores + max(fixed, 0.0)


def _cpu_anomaly(context: _Context, series: UsageSeries, rise: Rise, saturation: float) -> Anomaly:
    cluster = context.cluster_name(series.cluster_uid)
    first_day = context.day(rise.start)
    likely = (
        f"Namespace {series.name} uses {rise.after:.1f} cores instead of {rise.before:.1f} with no "
        "change in memory, replicas or nodes: possible cryptomining"
    )
    evidence = (
        f"CPU peak of {cluster}/{series.name}: median {rise.before:.1f} cores in the two weeks "
        f"before {first_day}, {rise.after:.1f} cores since",
        f"CPU use reaches {saturation:.0%} of the available cores",
        "Memory peak and node counts changed by less than 20%; no workload scaling event names "
        "the namespace",
    )
    triage = Triage(
        cause="cryptomining",
        likely_cause=likely,
        evidence=evidence,
        next_step=f"Inspect the pods of {series.name} (images, processes, outbound "
        "connections) and rotate the credentials they use; delete them if a miner is confirmed.",
        confidence="medium",
        link=context.link(series.cluster_uid),
    )
    scope = AnomalyScope(
        "namespace",
        f"namespace:{series.scope_id}",
        f"{cluster}/{series.name}",
        frozenset({series.cluster_uid or ""}),
        cluster_name=cluster,
        namespace=series.name,
    )
    return _usage_anomaly(context, scope, "sustained_cpu", "cpu", series, rise, triage, "namespace")


def _gpu_misuse(context: _Context) -> list[Anomaly]:
    anomalies = []
    for (kind, _, resource), gpus in sorted(context.by_key.items()):
        if kind != "pool" or resource != "gpu" or gpus.cluster_uid is None:
            continue
        rise = context.rise(gpus.values)
        if rise is None or rise.ratio < FLAT:
            continue
        namespace = _fastest_cpu_rise(context, gpus.cluster_uid, rise.start)
        if namespace is None:
            continue
        anomalies.append(_gpu_anomaly(context, gpus, rise, namespace))
    return anomalies


def _fastest_cpu_rise(context: _Context, cluster_uid: str, start: int) -> str | None:
    """Return the namespace without a GPU quota whose CPU rose most from ``start`` on."""
    best, best_change = None, MIN_RISE
    for (kind, scope_id, resource), series in context.by_key.items():
        if kind != "namespace" or resource != "cpu" or series.cluster_uid != cluster_uid:
            continue
        if ("namespace", scope_id, "gpu") in context.limits:
            continue
        change = _relative_change(series.values, start)
        if change > best_change:
            best, best_change = series.name, change
    return best


def _gpu_anomaly(context: _Context, gpus: UsageSeries, rise: Rise, namespace: str) -> Anomaly:
    cluster = context.cluster_name(gpus.cluster_uid)
    triage = Triage(
        cause="gpu_without_request",
        likely_cause=f"GPU pool {gpus.name} grew from {rise.before:.0f} to {rise.after:.0f} GPUs "
        f"while namespace {namespace}, which has no GPU quota, grew with it",
        evidence=(
            f"GPUs of {cluster}/{gpus.name}: {rise.before:.0f} before {context.day(rise.start)}, "
            f"{rise.after:.0f} since",
            f"CPU peak of namespace {namespace} rose by more than {MIN_RISE:.0%} at the same time",
        ),
        next_step=f"Add a node selector or taint so that pods of {namespace} that request no GPU "
        f"stay off {gpus.name}, then let the pool scale down.",
        confidence="medium",
        link=context.link(gpus.cluster_uid),
    )
    scope = AnomalyScope(
        "pool",
        f"pool:{gpus.scope_id}",
        f"{cluster}/{gpus.name}",
        frozenset({gpus.cluster_uid or ""}),
        cluster_name=cluster,
    )
    return _usage_anomaly(context, scope, "gpu_misuse", "gpu", gpus, rise, triage, namespace)


def _egress(context: _Context) -> list[Anomaly]:
    anomalies = []
    for (kind, scope_id, resource), series in sorted(context.by_key.items()):
        if resource != "egress":
            continue
        rise = context.rise(series.values)
        if rise is None:
            continue
        name = (
            series.name
            if kind != "namespace"
            else f"{context.cluster_name(series.cluster_uid)}/{series.name}"
        )
        triage = Triage(
            cause="egress_jump",
            likely_cause=f"Egress of {kind} {name} jumped from {rise.before:.1f} to "
            f"{rise.after:.1f} GiB a day",
            evidence=(
                f"Median egress {rise.before:.1f} GiB a day before {context.day(rise.start)}, "
                f"{rise.after:.1f} since",
            ),
            next_step="Check which workloads send the traffic and where to; look for data "
            "exfiltration or a misrouted replication job.",
            confidence="low",
            link=context.link(series.cluster_uid),
        )
        scope = AnomalyScope(
            kind,  # type: ignore[arg-type]
            f"{kind}:{scope_id}",
            name,
            frozenset({series.cluster_uid}) if series.cluster_uid else frozenset(),
        )
        anomalies.append(
            _usage_anomaly(context, scope, "egress_jump", "egress", series, rise, triage, kind)
        )
    return anomalies


def _usage_anomaly(
    context: _Context,
    scope: AnomalyScope,
    kind: str,
    metric: str,
    series: UsageSeries,
    rise: Rise,
    triage: Triage,
    contributor: str,
) -> Anomaly:
    values = series.values[rise.start : rise.end + 1]
    actual = float(np.nanmean(values))
    unit = UNITS.get(series.resource, series.resource)
    first_day = context.day(rise.start)
    top = AnomalyContributor(
        "namespace" if contributor != "pool" else "node_pool",
        series.name if contributor in ("namespace", "pool") else contributor,
        _decimal(rise.before),
        _decimal(actual),
        _decimal(actual - rise.before),
        1.0,
    )
    return Anomaly(
        anomaly_id=anomaly_fingerprint(scope.key, metric, first_day),
        scope=scope,
        kind=kind,  # type: ignore[arg-type]
        metric=metric,  # type: ignore[arg-type]
        unit=unit,
        currency=context.settings.palette.currency,
        first_day=first_day,
        last_day=context.day(rise.end),
        status="ongoing" if rise.end == len(series.values) - 1 else "resolved",
        expected=_decimal(rise.before),
        actual=_decimal(actual),
        lower=_decimal(0.0),
        upper=_decimal(rise.before * (1.0 + MIN_RISE)),
        impact_per_day=None,
        impact_total=None,
        percent=rise.ratio if rise.before > 0 else None,
        score=rise.score,
        as_of=context.as_of,
        data_start=context.first_day,
        data_end=context.last_day,
        daily=_daily(context, series.values, rise),
        contributors=(top,),
        events=_cluster_events(context, series.cluster_uid, first_day),
        triage=triage,
        params={
            "method": context.scorer.name,
            "score_threshold": context.settings.anomaly.utilisation_score,
            "min_rise": MIN_RISE,
            "sustained_days": context.settings.anomaly.sustained_days,
        },
    )


def _daily(context: _Context, values: np.ndarray, rise: Rise) -> tuple[DayValue, ...]:
    upper = rise.before * (1.0 + MIN_RISE)
    return tuple(
        DayValue(context.day(column), rise.before, float(values[column]), 0.0, upper, 0.0)
        for column in range(rise.start, rise.end + 1)
        if np.isfinite(values[column])
    )


def _cluster_events(
    context: _Context, cluster_uid: str | None, first_day: date
) -> tuple[ClusterEvent, ...]:
    since = datetime.combine(first_day - timedelta(days=2), time(0), tzinfo=UTC)
    found = [
        event
        for event in context.events
        if event.cluster_uid == cluster_uid
        and event.created_at >= since
        and event.reason in (POOL_SCALED, WORKLOAD_SCALED)
    ]
    return tuple(found[:5])


def _relative_change(values: np.ndarray, start: int) -> float:
    before = values[max(start - BEFORE_DAYS, 0) : start]
    after = values[start:]
    if not np.isfinite(before).any() or not np.isfinite(after).any():
        return 0.0
    level = float(np.nanmedian(before))
    if level <= 0:
        return 0.0
    return float(np.nanmedian(after)) / level - 1.0


def _names(event: ClusterEvent, namespace: str) -> bool:
    return (
        event.related_name == namespace
        or event.involved_name == namespace
        or event.involved_name.startswith(f"{namespace}/")
    )


def _decimal(value: float) -> Decimal:
    return Decimal(str(round(float(value), 6)))
