"""Storing and reading Palette cluster events."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.domain.event import ClusterEvent
from costwarden.store.tables import ClusterEventRecord

_EVENT_FIELDS = (
    "cluster_uid",
    "cluster_name",
    "created_at",
    "reason",
    "message",
    "severity",
    "involved_kind",
    "involved_name",
    "related_kind",
    "related_name",
    "source_component",
)

_CHUNK = 500


def upsert_events(
    session: Session, events: Iterable[ClusterEvent], batch_id: str, now: datetime
) -> tuple[int, int]:
    """Store events inside the caller's transaction, matching on the event uid.

    Returns ``(inserted, unchanged)``. A stored event whose fields differ from the incoming one
    is overwritten and counted as inserted, so storing the same events twice returns
    ``(0, n)`` the second time.
    """
    unique = {event.uid: event for event in events}
    uids = list(unique)
    inserted = unchanged = 0
    for start in range(0, len(uids), _CHUNK):
        chunk = {uid: unique[uid] for uid in uids[start : start + _CHUNK]}
        written, same = _upsert_chunk(session, chunk, batch_id, now)
        inserted += written
        unchanged += same
    session.flush()
    return inserted, unchanged


def _upsert_chunk(
    session: Session, chunk: dict[str, ClusterEvent], batch_id: str, now: datetime
) -> tuple[int, int]:
    query = select(ClusterEventRecord).where(ClusterEventRecord.uid.in_(chunk))
    stored = {record.uid: record for record in session.scalars(query)}

    written = unchanged = 0
    new_rows = []
    for uid, event in chunk.items():
        record = stored.get(uid)
        if record is None:
            new_rows.append(_row(event, batch_id, now))
            written += 1
        elif _to_event(record) == event:
            unchanged += 1
        else:
            for name, value in _row(event, batch_id, now).items():
                setattr(record, name, value)
            written += 1

    if new_rows:
        session.execute(ClusterEventRecord.__table__.insert(), new_rows)
    return written, unchanged


def events_between(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    cluster_uids: Collection[str] | None = None,
) -> list[ClusterEvent]:
    """Return the events created in ``[start, end)``, oldest first, of all or some clusters."""
    query = select(ClusterEventRecord).where(
        ClusterEventRecord.created_at >= start, ClusterEventRecord.created_at < end
    )
    if cluster_uids is not None:
        query = query.where(ClusterEventRecord.cluster_uid.in_(list(cluster_uids)))
    query = query.order_by(ClusterEventRecord.created_at, ClusterEventRecord.uid)
    return [_to_event(record) for record in session.scalars(query)]


def _row(event: ClusterEvent, batch_id: str, now: datetime) -> dict[str, object]:
    row: dict[str, object] = {name: getattr(event, name) for name in _EVENT_FIELDS}
    row.update(uid=event.uid, batch_id=batch_id, updated_at=now)
    return row


def _to_event(record: ClusterEventRecord) -> ClusterEvent:
    values = {name: getattr(record, name) for name in _EVENT_FIELDS}
    return ClusterEvent(uid=record.uid, **values)
