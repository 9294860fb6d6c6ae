"""Ingest Palette usage and quotas for the quota exhaustion forecasts.

One ingestion reads the active clusters with their machine pools (cloud config) and namespace
quotas (namespace config), and the workspaces with their quotas. It also reads CPU and memory
consumption per namespace, per cluster and per workspace over a window of complete UTC days. It
stores the daily peaks as usage facts and replaces the stored limits: namespace and workspace
quotas, and the autoscaler maximums of machine pools and clusters.

Everything is fetched before anything is written, in one transaction, so a Palette failure part
way through leaves the database as it was. Usage facts are upserted on their series and day, so
re-running the same window changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from costwarden.config import PaletteSettings, QuotaSettings
from costwarden.domain.cost import IngestReport
from costwarden.errors import PaletteApiError, StoreError
from costwarden.sources.palette.client import PaletteClient
from costwarden.sources.palette.ingest import new_batch
from costwarden.sources.palette.models import ClusterSummary, ConsumptionSeries, DashboardWorkspaces
from costwarden.sources.palette.usage_rows import (
    ClusterMeta,
    LimitRow,
    Units,
    UsageRow,
    cluster_limits,
    derive_pool_rows,
    namespace_limits,
    points,
    pool_info,
    pool_limits,
    resolve_units,
    snapshot_rows,
    usage_rows,
    workspace_limits,
)
from costwarden.store import Store
from costwarden.store.tables import IngestBatch, QuotaLimit, UsageFact

logger = logging.getLogger(__name__)

SOURCE = "palette-usage"
OVERLAP_DAYS = 2
"""Days before the last stored day that are fetched again, to pick up late corrections."""

CONSUMPTION_BATCH = 20
"""Clusters per namespace consumption request: fewer calls under the /v1/dashboard rate limit."""

Progress = Callable[[str, int, int], None]


@dataclass
class _Fetched:
    """Everything read from Palette for one usage ingestion, before it is turned into rows."""

    clusters: dict[str, ClusterMeta] = field(default_factory=dict)
    workspaces: DashboardWorkspaces = field(default_factory=DashboardWorkspaces)
    namespace_series: dict[str, list[ConsumptionSeries]] = field(default_factory=dict)
    namespace_units: dict[str, Units] = field(default_factory=dict)
    cluster_series: list[ConsumptionSeries] = field(default_factory=list)
    workspace_series: list[ConsumptionSeries] = field(default_factory=list)
    cluster_units: Units | None = None
    workspace_units: Units | None = None
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        logger.warning("%s", message)
        self.warnings.append(message)


@dataclass(frozen=True, slots=True)
class _Window:
    start: date
    end: date
    period_minutes: int

    @property
    def has_days(self) -> bool:
        return self.start < self.end


def ingest_palette_usage(
    store: Store,
    settings: PaletteSettings,
    quota: QuotaSettings,
    *,
    as_of: datetime,
    since: date | None = None,
    progress: Progress | None = None,
    client: PaletteClient | None = None,
) -> IngestReport:
    """Fetch Palette usage up to ``as_of`` and the current quotas, and store them together.

    The usage window covers complete UTC days before the day of ``as_of``. It starts on
    ``since`` when given, else ``OVERLAP_DAYS`` before the day after the last stored usage day,
    else ``quota.usage_history_days`` before the end. ``client`` replaces the client built from
    ``settings`` (tests inject one) and is left open.

    Raises ``PaletteError`` subclasses when Palette fails and ``StoreError`` when the write fails.
    Nothing is stored in either case.
    """
    if as_of.tzinfo is None:
        raise ValueError(f"naive as_of {as_of!r}: pass a timezone-aware UTC datetime")
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    end = as_of.astimezone(UTC).date()
    window = _Window(_window_start(store, quota, since, end), end, quota.usage_period_minutes)

    if client is not None:
        fetched = _fetch(client, window, progress)
    else:
        with PaletteClient(settings) as owned:
            fetched = _fetch(owned, window, progress)

    rows, points_read = _usage_rows(fetched, window)
    limits = _limits(fetched)
    batch = new_batch(settings, started_at, points_read, fetched.warnings, source=SOURCE)
    _write(store, rows, limits, batch, window)

    report = _report(batch, window)
    logger.info(
        "Palette usage ingestion %s: %s, %d clusters, %d usage rows (%d new, %d updated, "
        "%d unchanged), %d limits, %d warnings, %.1f s",
        report.batch_id,
        f"days {window.start} to {end - timedelta(days=1)}"
        if window.has_days
        else "no complete day",
        len(fetched.clusters),
        len(rows),
        report.inserted,
        report.updated,
        report.unchanged,
        len(limits),
        len(report.warnings),
        time.monotonic() - clock,
    )
    return report


def _window_start(store: Store, quota: QuotaSettings, since: date | None, end: date) -> date:
    if since is not None:
        return since
    with store.transaction() as session:
        last_day = session.scalar(
            select(func.max(UsageFact.day)).where(UsageFact.source == "consumption")
        )
    if last_day is not None:
        return min(last_day + timedelta(days=1 - OVERLAP_DAYS), end)
    return end - timedelta(days=quota.usage_history_days)


def _fetch(client: PaletteClient, window: _Window, progress: Progress | None) -> _Fetched:
    """Read clusters, pools, quotas, workspaces and consumption from Palette."""
    fetched = _Fetched()
    summaries = client.search_clusters(active_only=True)
    total = len(summaries) + 2
    for index, summary in enumerate(summaries, start=1):
        cluster = _cluster_meta(client, summary, fetched)
        if cluster is not None:
            fetched.clusters[cluster.uid] = cluster
        if progress:
            progress(f"Reading quotas of {summary.metadata.name}", index, total)

    fetched.workspaces = client.workspaces()
    if window.has_days and fetched.clusters:
        _fetch_consumption(client, window, fetched)
    if progress:
        progress("Reading usage", total, total)
    return fetched


def _cluster_meta(
    client: PaletteClient, summary: ClusterSummary, fetched: _Fetched
) -> ClusterMeta | None:
    """Read a cluster's machine pools and namespace quotas; None when it has disappeared."""
    meta = summary.metadata
    spec = summary.spec_summary
    cloud = spec.cloud_config.cloud_type if spec.cloud_config else ""
    config_uid = spec.cloud_config.uid if spec.cloud_config else ""
    where = f"cluster {meta.name} ({meta.uid})"
    try:
        quotas = client.namespace_quotas(meta.uid)
        pools = []
        if cloud and config_uid:
            config = client.cloud_config(cloud, config_uid)
            pools = [
                pool_info(cloud, pool, fetched.warn, where)
                for pool in config.spec.machine_pool_config
                if not pool.is_control_plane
            ]
        else:
            fetched.warn(f"{where} has no cloud config reference; its pools are not read")
    except PaletteApiError as exc:
        if exc.status != 404:
            raise
        fetched.warn(f"{where} not found when reading its quotas and pools; skipped")
        return None

    project = spec.project_meta.uid if spec.project_meta and spec.project_meta.uid else None
    return ClusterMeta(meta.uid, meta.name, project, cloud, tuple(pools), tuple(quotas))


def _fetch_consumption(client: PaletteClient, window: _Window, fetched: _Fetched) -> None:
    start, end, period = window.start, window.end, window.period_minutes
    uids = list(fetched.clusters)
    for index in range(0, len(uids), CONSUMPTION_BATCH):
        _fetch_namespace_consumption(
            client, uids[index : index + CONSUMPTION_BATCH], window, fetched
        )

    clusters = client.resource_consumption(
        start, end, group_by="cluster", clusters=uids, period_minutes=period
    )
    fetched.cluster_units = resolve_units(
        clusters.cpu_unit, clusters.memory_unit, "cluster consumption", fetched.warn
    )
    fetched.cluster_series = list(clusters.resources)

    if fetched.workspaces.items:
        workspaces = client.resource_consumption(
            start, end, group_by="workspace", period_minutes=period
        )
        fetched.workspace_units = resolve_units(
            workspaces.cpu_unit, workspaces.memory_unit, "workspace consumption", fetched.warn
        )
        fetched.workspace_series = list(workspaces.resources)


def _fetch_namespace_consumption(
    client: PaletteClient, uids: list[str], window: _Window, fetched: _Fetched
) -> None:
    """Fetch the namespace consumption of several clusters in one call where Palette allows it.

    Each series goes to the one cluster its ``associatedResources`` name. When a series names no
    cluster or several, the batch is fetched again one cluster per call.
    """
    found = client.resource_consumption(
        window.start,
        window.end,
        group_by="namespace",
        clusters=uids,
        period_minutes=window.period_minutes,
    )
    units = resolve_units(found.cpu_unit, found.memory_unit, "namespace consumption", fetched.warn)
    by_cluster: dict[str, list[ConsumptionSeries]] = {uid: [] for uid in uids}
    for series in found.resources:
        owners = {ref.uid for ref in series.associated_resources if ref.kind == "spectrocluster"}
        if len(owners) == 1 and owners <= by_cluster.keys():
            by_cluster[owners.pop()].append(series)
        elif len(uids) == 1:
            by_cluster[uids[0]].append(series)
        else:
            logger.info(
                "namespace consumption of %d clusters is not attributable; fetching per cluster",
                len(uids),
            )
            for uid in uids:
                _fetch_namespace_consumption(client, [uid], window, fetched)
            return
    fetched.namespace_series.update(by_cluster)
    fetched.namespace_units.update({uid: units for uid in uids})


def _usage_rows(fetched: _Fetched, window: _Window) -> tuple[list[UsageRow], int]:
    """Turn the consumption series into daily peaks, and add the pools' node counts."""
    rows: list[UsageRow] = []
    read = 0
    start, end = window.start, window.end

    for uid, series_list in fetched.namespace_series.items():
        units = fetched.namespace_units[uid]
        for series in series_list:
            read += len(series.data)
            name = series.entity.name or series.entity.uid
            found = points(series, units, start, end)
            rows.extend(usage_rows("namespace", f"{uid}/{name}", uid, name, found))

    if fetched.cluster_units is not None:
        for series in fetched.cluster_series:
            read += len(series.data)
            cluster = fetched.clusters.get(series.entity.uid)
            if cluster is None:
                fetched.warn(
                    f"consumption for cluster {series.entity.uid} that the search did not list"
                )
                continue
            found = points(series, fetched.cluster_units, start, end)
            rows.extend(usage_rows("cluster", cluster.uid, cluster.uid, cluster.name, found))
            rows.extend(derive_pool_rows(cluster, found, fetched.warn))

    if fetched.workspace_units is not None:
        for series in fetched.workspace_series:
            read += len(series.data)
            found = points(series, fetched.workspace_units, start, end)
            name = series.entity.name or series.entity.uid
            rows.extend(usage_rows("workspace", series.entity.uid, None, name, found))

    for cluster in fetched.clusters.values():
        rows.extend(snapshot_rows(cluster, end))
    return rows, read


def _limits(fetched: _Fetched) -> list[LimitRow]:
    limits: list[LimitRow] = []
    for cluster in fetched.clusters.values():
        names = {series.entity.name for series in fetched.namespace_series.get(cluster.uid, [])}
        names |= {config.name for config in cluster.quotas if not config.spec.is_regex}
        limits.extend(namespace_limits(cluster, names, fetched.warn))
        limits.extend(pool_limits(cluster))
        limits.extend(cluster_limits(cluster))

    if fetched.workspaces.items:
        workspaces = fetched.workspaces
        units = resolve_units(
            workspaces.cpu_unit, workspaces.memory_unit, "workspaces", fetched.warn
        )
        limits.extend(workspace_limits(workspaces, units))
    return limits


def _write(
    store: Store, rows: list[UsageRow], limits: list[LimitRow], batch: IngestBatch, window: _Window
) -> None:
    """Upsert the usage rows, replace the limits and add the batch row, in one transaction."""
    try:
        with store.transaction() as session:
            inserted, updated, unchanged = _upsert_usage(session, rows, batch.id, window)
            _replace_limits(session, limits, batch.id)
            batch.facts_inserted = inserted
            batch.facts_updated = updated
            batch.facts_unchanged = unchanged
            batch.finished_at = datetime.now(UTC)
            session.add(batch)
    except SQLAlchemyError as exc:
        reason = exc.args[0] if exc.args else exc
        raise StoreError(
            f"writing the Palette usage batch failed: {type(exc).__name__}: {reason}; "
            "nothing from this batch was stored"
        ) from exc


def _upsert_usage(
    session: Session, rows: list[UsageRow], batch_id: str, window: _Window
) -> tuple[int, int, int]:
    """Insert new daily peaks and update changed ones; return the three counts."""
    unique = {row.key(): row for row in rows}
    days = [row.day for row in unique.values()]
    existing: dict[tuple[str, str, str, date], UsageFact] = {}
    if days:
        query = select(UsageFact).where(UsageFact.day >= min(days), UsageFact.day <= max(days))
        existing = {
            (fact.scope_kind, fact.scope_id, fact.resource, fact.day): fact
            for fact in session.scalars(query)
        }

    now = datetime.now(UTC)
    new_rows = []
    updated = unchanged = 0
    for key, row in unique.items():
        fact = existing.get(key)
        if fact is None:
            new_rows.append(_fact_values(row, batch_id, now))
        elif fact.value == row.value and fact.source == row.source and fact.name == row.name:
            unchanged += 1
        else:
            fact.value, fact.source, fact.name = row.value, row.source, row.name
            fact.batch_id, fact.updated_at = batch_id, now
            updated += 1
    if new_rows:
        session.execute(UsageFact.__table__.insert(), new_rows)
    session.flush()
    return len(new_rows), updated, unchanged


def _fact_values(row: UsageRow, batch_id: str, now: datetime) -> dict[str, object]:
    return {
        "scope_kind": row.scope_kind,
        "scope_id": row.scope_id,
        "cluster_uid": row.cluster_uid,
        "name": row.name,
        "resource": row.resource,
        "day": row.day,
        "value": row.value,
        "source": row.source,
        "batch_id": batch_id,
        "updated_at": now,
    }


def _replace_limits(session: Session, limits: list[LimitRow], batch_id: str) -> None:
    """Make the stored limits equal to ``limits``: insert, update, and delete the ones gone."""
    now = datetime.now(UTC)
    wanted = {limit.key(): limit for limit in limits}
    stored = {
        (item.scope_kind, item.scope_id, item.resource): item
        for item in session.scalars(select(QuotaLimit))
    }
    for key, item in stored.items():
        if key not in wanted:
            session.delete(item)

    for key, limit in wanted.items():
        item = stored.get(key)
        if item is None:
            item = QuotaLimit(scope_kind=key[0], scope_id=key[1], resource=key[2])
            session.add(item)
        item.limit_kind = limit.limit_kind
        item.limit_value = limit.limit_value
        item.cluster_uid = limit.cluster_uid
        item.name = limit.name
        item.details = limit.details
        item.observed_at = now
        item.batch_id = batch_id
        item.updated_at = now
    session.flush()


def _report(batch: IngestBatch, window: _Window) -> IngestReport:
    return IngestReport(
        source=SOURCE,
        origin=batch.origin,
        batch_id=batch.id,
        rows_read=batch.rows_read,
        inserted=batch.facts_inserted,
        updated=batch.facts_updated,
        unchanged=batch.facts_unchanged,
        warnings=tuple(batch.warnings),
        window_start=window.start if window.has_days else None,
        window_end=window.end - timedelta(days=1) if window.has_days else None,
    )
