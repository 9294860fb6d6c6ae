"""The events a triage cites: the cause's reasons first, and those naming its subject."""

from __future__ import annotations

from datetime import UTC, date, datetime

from costwarden.anomaly.triage import MAX_EVENTS, relevant_events
from costwarden.domain.event import POOL_SCALED, WORKLOAD_SCALED, ClusterEvent


def _event(uid: str, day: int, reason: str, involved: str) -> ClusterEvent:
    return ClusterEvent(
        uid=uid,
        cluster_uid="c1",
        cluster_name="recs-eks",
        created_at=datetime(2026, 11, day, 12, tzinfo=UTC),
        reason=reason,
        message=f"{involved} changed",
        severity="Normal",
        involved_kind="Deployment",
        involved_name=involved,
        related_kind=None,
        related_name=None,
        source_component=None,
    )


def test_subject_events_come_first() -> None:
    events = [
        _event("near-other", 11, WORKLOAD_SCALED, "monitoring/monitoring-app"),
        *(
            _event(f"step-{day}", day, WORKLOAD_SCALED, "recommendations/recs-ranker")
            for day in (9, 10, 12, 13)
        ),
        _event("pool", 11, POOL_SCALED, "worker-pool"),
    ]

    chosen = relevant_events(events, "hpa_runaway", date(2026, 11, 11), "recommendations")

    uids = [event.uid for event in chosen]
    assert len(uids) == MAX_EVENTS
    assert set(uids[:4]) == {"step-9", "step-10", "step-12", "step-13"}


def test_without_subject_nearest_first() -> None:
    events = [
        _event("far", 1, WORKLOAD_SCALED, "a/x"),
        _event("near", 11, WORKLOAD_SCALED, "b/y"),
    ]

    chosen = relevant_events(events, "hpa_runaway", date(2026, 11, 11))

    assert [event.uid for event in chosen] == ["near", "far"]
