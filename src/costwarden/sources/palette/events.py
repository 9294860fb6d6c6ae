"""Ingest Palette cluster events: what changed on each cluster, for anomaly root causes.

One ingestion lists the clusters and reads each cluster's component events created inside the
window, up to ``as_of``. It stores them with their batch row in one transaction, so a Palette
failure part way through leaves the database as it was. Events are upserted on their uid, so
re-running the same window changes nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from costwarden.config import PaletteSettings
from costwarden.domain.cost import IngestReport
from costwarden.domain.event import ClusterEvent
from costwarden.errors import PaletteApiError, StoreError
from costwarden.sources.palette.client import PaletteClient
from costwarden.sources.palette.ingest import Progress, new_batch
from costwarden.sources.palette.models import ComponentEvent
from costwarden.store import Store
from costwarden.store.events import upsert_events
from costwarden.store.tables import ClusterEventRecord, IngestBatch

logger = logging.getLogger(__name__)

SOURCE = "palette-events"
OVERLAP = timedelta(days=1)
"""How far before the newest stored event a later ingestion starts reading again."""

CLUSTER_KIND = "spectrocluster"


@dataclass
class _Fetched:
    """The events read from Palette for one ingestion, before they are written."""

    events: list[ClusterEvent] = field(default_factory=list)
    read: int = 0
    clusters: int = 0
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        logger.warning("%s", message)
        self.warnings.append(message)


def ingest_palette_events(
    store: Store,
    settings: PaletteSettings,
    *,
    as_of: datetime,
    since: datetime | None = None,
    progress: Progress | None = None,
    client: PaletteClient | None = None,
) -> IngestReport:
    """Fetch the events of every cluster from ``since`` to ``as_of`` and store them.

    Without ``since``, the window starts ``OVERLAP`` before the newest stored event, or
    ``settings.history_days`` before ``as_of`` when none is stored. ``client`` replaces the
    client built from ``settings`` (tests inject one) and is left open.

    Raises ``PaletteError`` subclasses when Palette fails and ``StoreError`` when the write fails.
    Nothing is stored in either case.
    """
    if as_of.tzinfo is None:
        raise ValueError(f"naive as_of {as_of!r}: pass a timezone-aware UTC datetime")
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    end = as_of.astimezone(UTC)
    start = since.astimezone(UTC) if since is not None else _window_start(store, settings, end)

    if client is not None:
        fetched = _fetch(client, start, end, progress)
    else:
        with PaletteClient(settings) as owned:
            fetched = _fetch(owned, start, end, progress)

    batch = new_batch(settings, started_at, fetched.read, fetched.warnings, source=SOURCE)
    _write(store, fetched.events, batch)
    report = IngestReport(
        source=SOURCE,
        origin=batch.origin,
        batch_id=batch.id,
        rows_read=batch.rows_read,
        inserted=batch.facts_inserted,
        updated=batch.facts_updated,
        unchanged=batch.facts_unchanged,
        warnings=tuple(batch.warnings),
        window_start=start.date(),
        window_end=end.date(),
    )
    logger.info(
        "Palette event ingestion %s: %s to %s, %d clusters, %d events read, %d new, "
        "%d unchanged, %d warnings, %.1f s",
        report.batch_id,
        start.isoformat(),
        end.isoformat(),
        fetched.clusters,
        report.rows_read,
        report.inserted,
        report.unchanged,
        len(report.warnings),
        time.monotonic() - clock,
    )
    return report


def _window_start(store: Store, settings: PaletteSettings, end: datetime) -> datetime:
    with store.transaction() as session:
        newest = session.scalar(select(func.max(ClusterEventRecord.created_at)))
    if newest is not None:
        return min(newest - OVERLAP, end)
    return end - timedelta(days=settings.history_days)


def _fetch(
    client: PaletteClient, start: datetime, end: datetime, progress: Progress | None
) -> _Fetched:
    """Read the events of every cluster the search lists, one cluster at a time."""
    fetched = _Fetched()
    summaries = client.search_clusters()
    fetched.clusters = len(summaries)
    for index, summary in enumerate(summaries):
        uid, name = summary.metadata.uid, summary.metadata.name
        try:
            found = client.component_events(uid, since=start)
        except PaletteApiError as exc:
            if exc.status != 404:
                raise
            fetched.warn(f"cluster {name} ({uid}) not found when reading its events")
            continue
        fetched.read += len(found)
        for item in found:
            event = _event(item, uid, name, fetched)
            if event is not None and event.created_at <= end:
                fetched.events.append(event)
        if progress is not None:
            progress("Fetched cluster events", index + 1, len(summaries))
    return fetched


def _event(
    item: ComponentEvent, cluster_uid: str, cluster_name: str, fetched: _Fetched
) -> ClusterEvent | None:
    """Turn one Palette event into a ``ClusterEvent``, or warn and return None."""
    meta = item.metadata
    where = f"event {meta.uid or meta.name or '(no uid)'} of cluster {cluster_name} ({cluster_uid})"
    if not meta.uid or meta.creation_timestamp is None:
        fetched.warn(f"{where} has no uid or creationTimestamp; skipped")
        return None

    related = item.related_object
    if related.kind == CLUSTER_KIND and related.uid and related.uid != cluster_uid:
        fetched.warn(f"{where} belongs to cluster {related.uid}; skipped")
        return None
    return ClusterEvent(
        uid=meta.uid,
        cluster_uid=cluster_uid,
        cluster_name=related.name or cluster_name or None,
        created_at=meta.creation_timestamp,
        reason=item.reason,
        message=item.message,
        severity=item.severity,
        involved_kind=item.involved_object.kind,
        involved_name=item.involved_object.name,
        related_kind=related.kind or None,
        related_name=related.name or None,
        source_component=item.source.component or None,
    )


def _write(store: Store, events: list[ClusterEvent], batch: IngestBatch) -> None:
    """Upsert the events and add the batch row with its counts, in one transaction."""
    try:
        with store.transaction() as session:
            inserted, unchanged = upsert_events(session, events, batch.id, datetime.now(UTC))
            batch.facts_inserted = inserted
            batch.facts_unchanged = unchanged
            batch.finished_at = datetime.now(UTC)
            session.add(batch)
    except SQLAlchemyError as exc:
        reason = exc.args[0] if exc.args else exc
        raise StoreError(
            f"writing the Palette event batch failed: {type(exc).__name__}: {reason}; "
            "nothing from this batch was stored"
        ) from exc
