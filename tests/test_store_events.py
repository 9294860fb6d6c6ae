from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from costwarden.domain.event import POOL_SCALED, ClusterEvent
from costwarden.store.events import events_between, upsert_events
from costwarden.store.tables import ClusterEventRecord

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def _event(index: int, cluster_uid: str = "c1", message: str = "scaled") -> ClusterEvent:
    return ClusterEvent(
        uid=f"ev-{cluster_uid}-{index}",
        cluster_uid=cluster_uid,
        cluster_name=f"name-{cluster_uid}",
        created_at=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=index * 7),
        reason=POOL_SCALED,
        message=message,
        severity="Normal",
        involved_kind="MachinePool",
        involved_name="gpu-pool",
        related_kind=None,
        related_name=None,
        source_component="palette",
    )


def test_upsert_events_twice_changes_nothing(store):
    events = [_event(index) for index in range(20)]

    with store.transaction() as session:
        first = upsert_events(session, events, "b1", NOW)
    with store.transaction() as session:
        second = upsert_events(session, events, "b2", NOW)

    assert first == (20, 0)
    assert second == (0, 20)
    with store.transaction() as session:
        count = session.scalar(select(func.count()).select_from(ClusterEventRecord))
        batches = set(session.scalars(select(ClusterEventRecord.batch_id)))
    assert count == 20
    assert batches == {"b1"}


def test_upsert_events_rewrites_changed_event(store):
    with store.transaction() as session:
        upsert_events(session, [_event(1)], "b1", NOW)
    with store.transaction() as session:
        counts = upsert_events(session, [_event(1, message="scaled again")], "b2", NOW)

    assert counts == (1, 0)
    with store.transaction() as session:
        stored = events_between(session, start=NOW - timedelta(days=60), end=NOW)
    assert [event.message for event in stored] == ["scaled again"]


def test_events_between_filters_and_orders(store):
    events = [_event(index, "c1") for index in range(10)]
    events += [_event(index, "c2") for index in range(10)]
    with store.transaction() as session:
        upsert_events(session, reversed(events), "b1", NOW)

    start = datetime(2026, 11, 1, 14, tzinfo=UTC)
    end = datetime(2026, 11, 2, 11, tzinfo=UTC)
    with store.transaction() as session:
        every = events_between(session, start=start, end=end)
        only_c2 = events_between(session, start=start, end=end, cluster_uids=["c2"])

    assert [event.created_at.hour for event in every] == [14, 14, 21, 21, 4, 4]
    assert every == sorted(every, key=lambda event: (event.created_at, event.uid))
    assert {event.cluster_uid for event in only_c2} == {"c2"}
    assert len(only_c2) == 3
    assert only_c2[0] == _event(2, "c2")
    assert only_c2[0].created_at.tzinfo is not None
