"""Utilisation anomalies from a usage source: CPU saturation, GPU nodes and egress."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from anomaly_helpers import AS_OF, at, event

from costwarden.anomaly.scorers import RobustZScorer, default_scorer
from costwarden.anomaly.utilisation import (
    HISTORY_DAYS,
    StoredUsage,
    UsageSeries,
    find_utilisation_anomalies,
)
from costwarden.config import Settings
from costwarden.domain.cost import ClusterInfo
from costwarden.domain.event import WORKLOAD_SCALED
from costwarden.store import Store, upsert_fleet
from costwarden.store.events import upsert_events
from costwarden.store.tables import QuotaLimit, UsageFact

CLUSTER = "c" * 24
LAST = AS_OF.date() - timedelta(days=1)
FIRST = LAST - timedelta(days=HISTORY_DAYS - 1)
START = HISTORY_DAYS - 8


class MemorySource:
    """A usage source held in memory, standing in for Prometheus."""

    def __init__(self, series: list[UsageSeries]) -> None:
        self.series = series
        self.asked: tuple[date, date] | None = None

    def load(self, session, first_day: date, last_day: date) -> list[UsageSeries]:  # type: ignore[no-untyped-def]
        self.asked = (first_day, last_day)
        return self.series


def _series(name: str, resource: str, values: np.ndarray, kind: str = "namespace") -> UsageSeries:
    return UsageSeries(kind, f"{CLUSTER}/{name}", CLUSTER, name, resource, values)


def _flat(level: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return level * (1.0 + 0.04 * rng.standard_normal(HISTORY_DAYS))


def _mining_cpu() -> np.ndarray:
    cpu = _flat(2.0, 1)
    cpu[START:] = 9.6 + 0.1 * np.random.default_rng(2).standard_normal(HISTORY_DAYS - START)
    return cpu


@pytest.fixture
def usage_store(sqlite_store: Store) -> Store:
    now = datetime.now(UTC)
    with sqlite_store.transaction() as session:
        upsert_fleet(session, clusters=[ClusterInfo(CLUSTER, "ci-gke", "p1", "platform", "gke")])
        session.add(
            QuotaLimit(
                scope_kind="namespace",
                scope_id=f"{CLUSTER}/runners",
                resource="cpu",
                limit_kind="namespace_quota",
                limit_value=10.0,
                cluster_uid=CLUSTER,
                name="runners",
                details={"cluster_name": "ci-gke"},
                observed_at=now,
                batch_id="test",
                updated_at=now,
            )
        )
    return sqlite_store


def _find(store: Store, series: list[UsageSeries]) -> list:
    source = MemorySource(series)
    with store.transaction() as session:
        found = find_utilisation_anomalies(
            session, Settings(), AS_OF, source=source, scorer=RobustZScorer()
        )
    assert source.asked == (FIRST, LAST)
    return found


def test_cpu_saturation_without_other_change(usage_store: Store) -> None:
    found = _find(
        usage_store,
        [_series("runners", "cpu", _mining_cpu()), _series("runners", "memory", _flat(6.0, 3))],
    )

    assert len(found) == 1
    anomaly = found[0]
    assert anomaly.kind == "sustained_cpu"
    assert anomaly.cause == "cryptomining"
    assert anomaly.first_day == FIRST + timedelta(days=START)
    assert anomaly.status == "ongoing"
    assert anomaly.unit == "cores"
    assert float(anomaly.actual) == pytest.approx(9.6, rel=0.05)
    assert anomaly.impact_per_day is None
    assert anomaly.triage is not None and "96%" in anomaly.triage.evidence[1]


def test_memory_rise_means_more_replicas(usage_store: Store) -> None:
    memory = _flat(6.0, 3)
    memory[START:] *= 3.0

    found = _find(
        usage_store,
        [_series("runners", "cpu", _mining_cpu()), _series("runners", "memory", memory)],
    )

    assert found == []


def test_workload_scaling_event_explains_rise(usage_store: Store) -> None:
    class Cluster:
        uid = CLUSTER
        name = "ci-gke"

    scaled = event(
        Cluster(),  # type: ignore[arg-type]
        at(FIRST + timedelta(days=START)),
        WORKLOAD_SCALED,
        "Deployment runners/agent scaled from 2 to 10 replicas",
        "Deployment",
        "runners/agent",
    )
    with usage_store.transaction() as session:
        upsert_events(session, [scaled], "b", datetime.now(UTC))

    found = _find(
        usage_store,
        [_series("runners", "cpu", _mining_cpu()), _series("runners", "memory", _flat(6.0, 3))],
    )

    assert found == []


def test_rise_far_below_quota_is_not_saturation(usage_store: Store) -> None:
    cpu = _flat(1.0, 1)
    cpu[START:] = 3.0

    found = _find(
        usage_store, [_series("runners", "cpu", cpu), _series("runners", "memory", _flat(6.0, 3))]
    )

    assert found == []


def test_egress_jump_from_other_source(usage_store: Store) -> None:
    egress = _flat(20.0, 5)
    egress[START:] = 90.0

    found = _find(usage_store, [_series("runners", "egress", egress)])

    assert [(item.kind, item.cause, item.metric) for item in found] == [
        ("egress_jump", "egress_jump", "egress")
    ]


def test_stored_usage_reads_usage_facts(usage_store: Store) -> None:
    now = datetime.now(UTC)
    with usage_store.transaction() as session:
        for offset, value in enumerate(_mining_cpu()):
            session.add(
                UsageFact(
                    scope_kind="namespace",
                    scope_id=f"{CLUSTER}/runners",
                    cluster_uid=CLUSTER,
                    name="runners",
                    resource="cpu",
                    day=FIRST + timedelta(days=offset),
                    value=float(value),
                    source="consumption",
                    batch_id="b",
                    updated_at=now,
                )
            )
        loaded = StoredUsage().load(session, FIRST, LAST)
        found = find_utilisation_anomalies(session, Settings(), AS_OF, scorer=RobustZScorer())

    assert [(item.scope_kind, item.resource, len(item.values)) for item in loaded] == [
        ("namespace", "cpu", HISTORY_DAYS)
    ]
    assert [item.cause for item in found] == ["cryptomining"]


def test_robust_scorer_is_causal_and_bounded() -> None:
    values = _flat(10.0, 7)
    values[30] = 30.0
    changed = values.copy()
    changed[31:] = 100.0
    scorer = RobustZScorer()

    scores = scorer.score_series(values)

    assert np.all((scores >= 0.0) & (scores <= 1.0))
    assert scores[30] > 0.9
    assert scores[:30].max() < 0.9
    assert np.array_equal(scores[:31], scorer.score_series(changed)[:31])


def test_default_scorer_flags_jump() -> None:
    values = _flat(10.0, 7)
    values[30:] = 40.0
    scorer = default_scorer()

    scores = scorer.score_series(values)

    assert scorer.name == "streaming"
    assert np.all((scores >= 0.0) & (scores <= 1.0))
    assert scores[30] >= Settings().anomaly.utilisation_score
    assert scores[:30].max() < Settings().anomaly.utilisation_score
