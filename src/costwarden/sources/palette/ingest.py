"""Ingest Palette cost data: fleet metadata plus daily cluster and namespace cost facts.

Everything is fetched first and then written in one transaction, so a Palette failure part way
through leaves the database as it was. Facts are upserted on their natural key, so re-running
the same window changes nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from costwarden.config import PaletteSettings
from costwarden.domain.cost import ClusterInfo, CostRecord, IngestReport, NamespaceInfo, ProjectInfo
from costwarden.errors import PaletteApiError, StoreError
from costwarden.sources.palette.client import PaletteClient
from costwarden.sources.palette.models import (
    CloudCostSeries,
    ClusterSummary,
    ResourceCostSeries,
)
from costwarden.store import Store, upsert_facts, upsert_fleet
from costwarden.store.tables import CostFact, IngestBatch

logger = logging.getLogger(__name__)

SOURCE = "palette"
OVERLAP_DAYS = 2
"""Days before the last stored day that are fetched again, to pick up late corrections."""

DAILY_MINUTES = 1440
NAMESPACE_COST_BATCH = 20
"""Clusters per namespace-cost request: fewer calls under the /v1/dashboard rate limit."""
MONEY_EXPONENT = Decimal("1E-10")
"""Amounts keep 10 decimal places, the scale of the store's ``NUMERIC(24, 10)`` column."""

UNKNOWN_CLOUD = "unknown"

Progress = Callable[[str, int, int], None]
"""Progress callback: (description, completed, total)."""


@dataclass
class _Fetched:
    """Everything read from Palette for one ingestion, before it is turned into rows."""

    projects: dict[str, ProjectInfo] = field(default_factory=dict)
    clusters: dict[str, ClusterInfo] = field(default_factory=dict)
    namespaces: list[NamespaceInfo] = field(default_factory=list)
    cluster_costs: list[CloudCostSeries] = field(default_factory=list)
    namespace_costs: dict[str, list[ResourceCostSeries]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        logger.warning("%s", message)
        self.warnings.append(message)


class _Steps:
    """Report progress as numbered steps to an optional callback."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self._progress = progress
        self.total = total
        self.completed = 0

    def advance(self, description: str) -> None:
        self.completed += 1
        if self._progress is not None:
            self._progress(description, self.completed, self.total)


def ingest_palette(
    store: Store,
    settings: PaletteSettings,
    *,
    as_of: datetime,
    since: date | None = None,
    progress: Progress | None = None,
    client: PaletteClient | None = None,
    clusters: Collection[str] | None = None,
) -> IngestReport:
    """Fetch Palette's fleet and daily costs up to ``as_of`` and store them in one transaction.

    The window covers complete UTC days only: it ends before the UTC day of ``as_of``. It starts on
    ``since`` when given, else ``OVERLAP_DAYS`` before the day after the last stored Palette cluster
    fact, else ``settings.history_days`` before the end. The report's ``window_end`` is the last
    day included. ``clusters`` (uids or names) narrows the fetch to those clusters. ``client``
    replaces the client built from ``settings`` (tests inject one) and is left open.

    Raises ``PaletteError`` subclasses when Palette fails and ``StoreError`` when the write fails.
    Nothing is stored in either case.
    """
    if as_of.tzinfo is None:
        raise ValueError(f"naive as_of {as_of!r}: pass a timezone-aware UTC datetime")
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    end = as_of.astimezone(UTC).date()
    start = _window_start(store, settings, since, end)

    steps = _Steps(progress, total=3)
    selected = frozenset(clusters) if clusters is not None else None
    if client is not None:
        fetched = _fetch(client, start, end, steps, selected)
    else:
        with PaletteClient(settings) as owned:
            fetched = _fetch(owned, start, end, steps, selected)

    records, points = _records(fetched, settings.currency, start, end)
    batch = new_batch(settings, started_at, points, fetched.warnings)
    _write(store, fetched, records, batch)
    steps.advance("Stored Palette data")

    report = _report(batch, start, end)
    logger.info(
        "Palette ingestion %s: %s, %d projects, %d clusters, %d namespaces, %d points read, "
        "%d inserted, %d updated, %d unchanged, %d warnings, %.1f s",
        report.batch_id,
        f"days {start} to {end - timedelta(days=1)}" if start < end else "no complete day",
        len(fetched.projects),
        len(fetched.clusters),
        len(fetched.namespaces),
        report.rows_read,
        report.inserted,
        report.updated,
        report.unchanged,
        len(report.warnings),
        time.monotonic() - clock,
    )
    return report


def _window_start(store: Store, settings: PaletteSettings, since: date | None, end: date) -> date:
    if since is not None:
        return since

    with store.transaction() as session:
        last_day = session.scalar(
            select(func.max(CostFact.day)).where(
                CostFact.source == SOURCE, CostFact.grain == "cluster"
            )
        )
    if last_day is not None:
        return last_day + timedelta(days=1 - OVERLAP_DAYS)
    return end - timedelta(days=settings.history_days)


def _fetch(
    client: PaletteClient,
    start: date,
    end: date,
    steps: _Steps,
    selected: frozenset[str] | None = None,
) -> _Fetched:
    """Read projects, clusters, namespace labels and daily costs from Palette.

    ``selected`` keeps only the clusters whose uid or name it contains.
    """
    fetched = _Fetched()

    for project in client.projects():
        fetched.projects[project.uid] = ProjectInfo(uid=project.uid, name=project.name)
    steps.advance("Listed Palette projects")

    summaries = client.search_clusters()
    if selected is not None:
        summaries = [
            item for item in summaries if {item.metadata.uid, item.metadata.name} & selected
        ]
        _warn_unmatched(selected, summaries, fetched)
    steps.advance("Listed Palette clusters")

    has_window = start < end
    steps.total += len(summaries) + (1 if has_window else 0)
    if has_window:
        costs = client.cluster_costs(start, end, DAILY_MINUTES).resources
        if selected is not None:
            selected_uids = {item.metadata.uid for item in summaries}
            costs = [series for series in costs if series.entity.uid in selected_uids]
        fetched.cluster_costs = costs
        steps.advance("Fetched daily cluster costs")

    for summary in summaries:
        cluster = _cluster_info(client, summary, fetched)
        fetched.clusters[cluster.uid] = cluster
        fetched.namespaces.extend(_namespaces(client, cluster, fetched))
        steps.advance(f"Fetched cluster {cluster.name}")

    if has_window:
        uids = list(fetched.clusters)
        for index in range(0, len(uids), NAMESPACE_COST_BATCH):
            _fetch_namespace_costs(
                client, uids[index : index + NAMESPACE_COST_BATCH], start, end, fetched
            )
    return fetched


def _warn_unmatched(
    selected: frozenset[str], summaries: list[ClusterSummary], fetched: _Fetched
) -> None:
    found = {item.metadata.uid for item in summaries} | {item.metadata.name for item in summaries}
    missing = sorted(selected - found)
    if missing:
        fetched.warn(f"clusters not found in Palette's cluster search: {', '.join(missing)}")


def _fetch_namespace_costs(
    client: PaletteClient, uids: list[str], start: date, end: date, fetched: _Fetched
) -> None:
    """Fetch the daily namespace costs of several clusters in one call where Palette allows it.

    Each series is assigned to the one cluster its ``associatedResources`` name. When a series
    names no cluster or several (Palette may merge namespaces of the same name), the batch is
    fetched again one cluster per call, which needs no attribution.
    """
    series = client.namespace_costs(start, end, uids, DAILY_MINUTES).resources
    by_cluster: dict[str, list[ResourceCostSeries]] = {uid: [] for uid in uids}
    for item in series:
        owners = {ref.uid for ref in item.associated_resources if ref.kind == "spectrocluster"}
        if len(owners) != 1 or not owners <= by_cluster.keys():
            if len(uids) == 1:
                by_cluster[uids[0]].append(item)
                continue
            logger.info(
                "namespace costs of %d clusters are not attributable; fetching per cluster",
                len(uids),
            )
            for uid in uids:
                _fetch_namespace_costs(client, [uid], start, end, fetched)
            return
        by_cluster[owners.pop()].append(item)
    fetched.namespace_costs.update(by_cluster)


def _cluster_info(client: PaletteClient, summary: ClusterSummary, fetched: _Fetched) -> ClusterInfo:
    """Build a ``ClusterInfo`` from a search summary, adding the full cluster for missing fields."""
    meta = summary.metadata
    spec = summary.spec_summary
    cloud = spec.cloud_config.cloud_type if spec.cloud_config else ""
    config_uid = spec.cloud_config.uid if spec.cloud_config else ""
    profiles = [profile.name for profile in spec.cluster_profile_templates if profile.name]

    if not (cloud and config_uid and profiles):
        try:
            detail = client.get_cluster(meta.uid)
        except PaletteApiError as exc:
            if exc.status != 404:
                raise
            fetched.warn(f"cluster {meta.name} ({meta.uid}) not found when reading its spec")
        else:
            cloud = cloud or detail.spec.cloud_type
            ref = detail.spec.cloud_config_ref
            config_uid = config_uid or (ref.uid if ref else "")
            names = [profile.name for profile in detail.spec.cluster_profile_templates]
            profiles = profiles or [name for name in names if name]

    # NOTE: the cloud region is in the cluster's cloud config, which is not read here, so
    # ClusterInfo.region stays unset.
    if not cloud:
        fetched.warn(f"cluster {meta.name} ({meta.uid}) has no cloud type; stored as unknown")
    project_uid = spec.project_meta.uid if spec.project_meta and spec.project_meta.uid else None
    project_name = spec.project_meta.name if spec.project_meta else ""
    if project_uid and not project_name and project_uid in fetched.projects:
        project_name = fetched.projects[project_uid].name
    return ClusterInfo(
        uid=meta.uid,
        name=meta.name,
        project_uid=project_uid,
        project_name=project_name or None,
        cloud=cloud or UNKNOWN_CLOUD,
        labels=dict(meta.labels),
        profiles=tuple(profiles),
        cloud_config_uid=config_uid or None,
        state=summary.status.state or None,
        created_at=meta.creation_timestamp,
    )


def _namespaces(
    client: PaletteClient, cluster: ClusterInfo, fetched: _Fetched
) -> list[NamespaceInfo]:
    try:
        found = client.namespace_labels(cluster.uid)
    except PaletteApiError as exc:
        if exc.status != 404:
            raise
        fetched.warn(f"cluster {cluster.name} ({cluster.uid}) not found when listing namespaces")
        return []
    return [
        NamespaceInfo(
            cluster_uid=cluster.uid, name=namespace.name, labels=dict(namespace.metadata.labels)
        )
        for namespace in found
        if namespace.name
    ]


def _records(
    fetched: _Fetched, currency: str, start: date, end: date
) -> tuple[list[CostRecord], int]:
    """Turn the fetched cost series into daily facts and count the data points read."""
    records: list[CostRecord] = []
    points = 0

    for series in fetched.cluster_costs:
        points += len(series.data)
        records.extend(_cluster_records(series, fetched, currency, start, end))

    labels = {(item.cluster_uid, item.name): item.labels for item in fetched.namespaces}
    for cluster_uid, namespace_series in fetched.namespace_costs.items():
        cluster = fetched.clusters[cluster_uid]
        for series in namespace_series:
            points += len(series.data)
            if not _belongs_to(series, cluster, fetched):
                continue
            records.extend(
                _namespace_records(series, cluster, labels, fetched, currency, start, end)
            )
    return records, points


def _belongs_to(series: ResourceCostSeries, cluster: ClusterInfo, fetched: _Fetched) -> bool:
    """Check that a namespace series fetched for ``cluster`` names no other cluster as its owner."""
    owners = {ref.uid for ref in series.associated_resources if ref.kind == "spectrocluster"}
    if not owners or cluster.uid in owners:
        return True
    fetched.warn(
        f"namespace {series.entity.name} returned for cluster {cluster.name} ({cluster.uid}) "
        f"belongs to {', '.join(sorted(owners))}; skipped"
    )
    return False


def _cluster_records(
    series: CloudCostSeries, fetched: _Fetched, currency: str, start: date, end: date
) -> Iterable[CostRecord]:
    uid = series.entity.uid
    cluster = fetched.clusters.get(uid)
    if cluster is None:
        fetched.warn(
            f"cost data for cluster {series.entity.name} ({uid}) that the search did not list"
        )
    name = cluster.name if cluster else series.entity.name or uid

    parts = [
        (point.timestamp, {"compute": point.compute, "storage": point.storage}, point.total)
        for point in series.data
    ]
    for day, breakdown, total in _daily(parts, f"cluster {name}", fetched, start, end):
        yield CostRecord(
            source=SOURCE,
            grain="cluster",
            period_start=_midnight(day),
            period_end=_midnight(day + timedelta(days=1)),
            amount=total,
            currency=currency,
            cloud=cluster.cloud if cluster else None,
            project_uid=cluster.project_uid if cluster else None,
            project_name=cluster.project_name if cluster else None,
            cluster_uid=uid,
            cluster_name=name,
            breakdown=breakdown,
            tags=dict(cluster.labels) if cluster else {},
        )


def _namespace_records(
    series: ResourceCostSeries,
    cluster: ClusterInfo,
    labels: dict[tuple[str, str], dict[str, str]],
    fetched: _Fetched,
    currency: str,
    start: date,
    end: date,
) -> Iterable[CostRecord]:
    """Yield one fact per day for a namespace, tagged with the cluster labels and then its own."""
    namespace = series.entity.name or series.entity.uid
    tags = {**cluster.labels, **labels.get((cluster.uid, namespace), {})}
    parts = [
        (
            point.timestamp,
            {"cpu": point.cpu, "memory": point.memory, "storage": point.storage},
            point.total,
        )
        for point in series.data
    ]
    where = f"namespace {namespace} of cluster {cluster.name}"
    for day, breakdown, total in _daily(parts, where, fetched, start, end):
        yield CostRecord(
            source=SOURCE,
            grain="namespace",
            period_start=_midnight(day),
            period_end=_midnight(day + timedelta(days=1)),
            amount=total,
            currency=currency,
            cloud=cluster.cloud,
            project_uid=cluster.project_uid,
            project_name=cluster.project_name,
            cluster_uid=cluster.uid,
            cluster_name=cluster.name,
            namespace=namespace,
            breakdown=breakdown,
            tags=tags,
        )


def _daily(
    parts: list[tuple[datetime, dict[str, Decimal], Decimal]],
    where: str,
    fetched: _Fetched,
    start: date,
    end: date,
) -> Iterable[tuple[date, dict[str, Decimal], Decimal]]:
    """Sum data points per UTC day inside ``[start, end)`` and drop points outside the window.

    Palette is asked for one point per day, so a day with several points gets a warning.
    """
    # NOTE: a point's timestamp is read as the start of its period. Palette does not document
    # whether it marks the start or the end. If it marks the end, every fact lands a day late.
    totals: dict[date, Decimal] = defaultdict(Decimal)
    breakdowns: dict[date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    counts: dict[date, int] = defaultdict(int)
    for moment, breakdown, total in parts:
        day = moment.date()
        if not start <= day < end:
            continue
        counts[day] += 1
        totals[day] += total
        for key, value in breakdown.items():
            breakdowns[day][key] += value

    crowded = sorted(day for day, count in counts.items() if count > 1)
    if crowded:
        fetched.warn(
            f"{where}: {len(crowded)} days had more than one data point and were summed, "
            f"first {crowded[0]}"
        )
    for day in sorted(totals):
        breakdown = {key: _money(value) for key, value in breakdowns[day].items()}
        yield day, breakdown, _money(totals[day])


def new_batch(
    settings: PaletteSettings,
    started_at: datetime,
    points: int,
    warnings: list[str],
    *,
    source: str = SOURCE,
) -> IngestBatch:
    """Return the batch row of one Palette ingestion, before its counts are known."""
    origin = settings.url
    if settings.project_uid:
        origin += f" project {settings.project_uid}"
    return IngestBatch(
        id=str(uuid.uuid4()),
        source=source,
        origin=origin,
        started_at=started_at,
        finished_at=started_at,
        rows_read=points,
        facts_inserted=0,
        facts_updated=0,
        facts_unchanged=0,
        warnings=list(warnings),
    )


def _write(store: Store, fetched: _Fetched, records: list[CostRecord], batch: IngestBatch) -> None:
    """Write fleet metadata, facts and the batch row with its counts in one transaction."""
    try:
        with store.transaction() as session:
            upsert_fleet(
                session, fetched.projects.values(), fetched.clusters.values(), fetched.namespaces
            )
            counts = upsert_facts(session, records, batch.id)

            batch.facts_inserted = counts.inserted
            batch.facts_updated = counts.updated
            batch.facts_unchanged = counts.unchanged
            batch.finished_at = datetime.now(UTC)
            session.add(batch)
    except SQLAlchemyError as exc:
        reason = exc.args[0] if exc.args else exc
        raise StoreError(
            f"writing the Palette batch failed: {type(exc).__name__}: {reason}; "
            "nothing from this batch was stored"
        ) from exc


def _report(batch: IngestBatch, start: date, end: date) -> IngestReport:
    has_window = start < end
    return IngestReport(
        source=SOURCE,
        origin=batch.origin,
        batch_id=batch.id,
        rows_read=batch.rows_read,
        inserted=batch.facts_inserted,
        updated=batch.facts_updated,
        unchanged=batch.facts_unchanged,
        warnings=tuple(batch.warnings),
        window_start=start if has_window else None,
        window_end=end - timedelta(days=1) if has_window else None,
    )


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _money(value: Decimal) -> Decimal:
    """Round to the store's 10 decimal places, so that re-ingesting compares equal."""
    return value.quantize(MONEY_EXPONENT).normalize()
