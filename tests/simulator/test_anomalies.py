"""Planted anomalies: the generated data matches their ground truth, and the rest stays quiet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from costwarden.domain.event import POOL_SCALED, WORKLOAD_SCALED
from costwarden.simulator.anomalies import (
    ANOMALY_CLUSTERS,
    MINING_CLUSTER,
    MINING_CPU_UTILISATION,
    MINING_NAMESPACE,
    PLANTED_ANOMALIES,
    PlantedAnomaly,
)
from costwarden.simulator.fleet import PLANTED, build_fleet
from costwarden.simulator.model import Cluster, Fleet
from costwarden.simulator.usage import fleet_usage

AS_OF = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
COST_ANOMALIES = [anomaly for anomaly in PLANTED_ANOMALIES.values() if anomaly.extra_cost_per_day]
BACKGROUND_WEEKLY_SHIFT = 0.12
"""Bound on the change of a background cluster's 7-day mean cost from one week to the next."""
BACKGROUND_DAILY_RISE = 1.15
"""Bound on a background cluster's daily cost over the highest of its previous 14 days."""


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return build_fleet(7, AS_OF, history_days=90)


def _index(fleet: Fleet, offset: int) -> int:
    """Return the series index of the day ``offset`` days from the day of ``as_of``."""
    return fleet.days - 1 + offset


def _daily_total(cluster: Cluster) -> np.ndarray:
    return np.asarray(cluster.compute + cluster.storage)


def _windows(fleet: Fleet, anomaly: PlantedAnomaly) -> tuple[slice, slice]:
    """Return the 14 clean days before the anomaly and its days up to yesterday."""
    first = _index(fleet, anomaly.first_day)
    last = _index(fleet, anomaly.last_day if anomaly.last_day is not None else -1)
    return slice(first - 14, first), slice(first, last + 1)


def test_anomalies_sit_in_last_two_weeks() -> None:
    for anomaly in PLANTED_ANOMALIES.values():
        assert -14 <= anomaly.first_day <= -3, anomaly.name
        assert anomaly.last_day is None or anomaly.first_day <= anomaly.last_day < 0
        assert anomaly.cluster in ANOMALY_CLUSTERS
        assert anomaly.cluster not in PLANTED


def test_dates_follow_as_of() -> None:
    spike = PLANTED_ANOMALIES["gpu-inference-spike"]

    first, last = spike.dates(AS_OF)

    assert first == AS_OF.date() + timedelta(days=spike.first_day)
    assert last == AS_OF.date() + timedelta(days=spike.last_day or 0)
    assert PLANTED_ANOMALIES["batch-spot-fallback"].dates(AS_OF)[1] is None


@pytest.mark.parametrize("anomaly", COST_ANOMALIES, ids=lambda anomaly: anomaly.name)
def test_cost_jumps_by_planted_amount(fleet: Fleet, anomaly: PlantedAnomaly) -> None:
    total = _daily_total(fleet.cluster_named(anomaly.cluster))
    before, during = _windows(fleet, anomaly)
    extra = float(anomaly.extra_cost_per_day)
    full_days = total[during][1:] if anomaly.kind == "level_shift" else total[during]

    jump = full_days.mean() - total[before].mean()

    noise = total[before].std()
    assert abs(jump - extra) <= 0.05 * extra + 3 * noise, (jump, extra, noise)
    assert total[before].max() - total[before].min() < 0.5 * extra


def test_spike_returns_to_baseline(fleet: Fleet) -> None:
    spike = PLANTED_ANOMALIES["gpu-inference-spike"]
    total = _daily_total(fleet.cluster_named(spike.cluster))
    before, _ = _windows(fleet, spike)
    assert spike.last_day is not None
    after = total[_index(fleet, spike.last_day) + 1 : _index(fleet, 0)]

    assert len(after) >= 7
    assert abs(after.mean() - total[before].mean()) < 0.05 * total[before].mean()


@pytest.mark.parametrize("anomaly", COST_ANOMALIES, ids=lambda anomaly: anomaly.name)
def test_top_contributor_rises_most(fleet: Fleet, anomaly: PlantedAnomaly) -> None:
    cluster = fleet.cluster_named(anomaly.cluster)
    before, during = _windows(fleet, anomaly)
    dimension, value = anomaly.top_contributor
    if dimension == "namespace":
        names = [namespace.name for namespace in cluster.namespaces]
        series = cluster.namespace_compute + cluster.namespace_storage
    else:
        assert dimension == "node_pool"
        names = [pool.name for pool in cluster.pools]
        series = cluster.pool_compute

    rises = series[:, during].mean(axis=1) - series[:, before].mean(axis=1)

    assert names[int(np.argmax(rises))] == value
    assert rises.max() > 0.6 * float(anomaly.extra_cost_per_day)


def test_new_namespace_has_no_cost_before_creation(fleet: Fleet) -> None:
    anomaly = PLANTED_ANOMALIES["checkout-v2-namespace"]
    cluster = fleet.cluster_named(anomaly.cluster)
    index = [namespace.name for namespace in cluster.namespaces].index("checkout-v2")
    first = _index(fleet, anomaly.first_day)

    assert cluster.namespace_compute[index, :first].sum() == 0
    assert cluster.namespace_storage[index].sum() == 0
    assert cluster.namespaces[index].created_at.date() == anomaly.dates(AS_OF)[0]


def test_spot_fallback_changes_capacity_type(fleet: Fleet) -> None:
    anomaly = PLANTED_ANOMALIES["batch-spot-fallback"]
    cluster = fleet.cluster_named(anomaly.cluster)
    pool = next(pool for pool in cluster.pools if pool.name == anomaly.top_contributor[1])
    index = cluster.pools.index(pool)

    assert pool.capacity_type == "on-demand"
    assert pool.capacity_type_before == "spot"
    assert pool.capacity_changed_at is not None
    assert pool.capacity_changed_at.date() == anomaly.dates(AS_OF)[0]
    np.testing.assert_array_equal(cluster.node_counts[index], cluster.node_counts[index, 0])


@pytest.mark.parametrize("anomaly", PLANTED_ANOMALIES.values(), ids=lambda anomaly: anomaly.name)
def test_anomaly_has_its_event(fleet: Fleet, anomaly: PlantedAnomaly) -> None:
    cluster = fleet.cluster_named(anomaly.cluster)
    first = anomaly.dates(AS_OF)[0]
    on_first_day = [
        event
        for event in fleet.events
        if event.cluster_uid == cluster.uid and event.created_at.date() == first
    ]

    reasons = {event.reason for event in on_first_day}
    if anomaly.event_reason is None:
        assert not reasons & {POOL_SCALED, WORKLOAD_SCALED}
    else:
        assert anomaly.event_reason in reasons
        planted = next(event for event in on_first_day if event.reason == anomaly.event_reason)
        assert planted.related_kind == "spectrocluster"
        assert planted.related_name == cluster.name


def test_spike_events_scale_up_then_down(fleet: Fleet) -> None:
    anomaly = PLANTED_ANOMALIES["gpu-inference-spike"]
    cluster = fleet.cluster_named(anomaly.cluster)

    messages = [
        event.message
        for event in fleet.events
        if event.cluster_uid == cluster.uid and event.involved_name == "gpu-inference"
    ]

    assert messages == [
        "Machine pool gpu-inference scaled from 2 to 10 nodes",
        "Machine pool gpu-inference scaled from 10 to 2 nodes",
    ]


def test_hpa_runaway_events_name_the_workload(fleet: Fleet) -> None:
    anomaly = PLANTED_ANOMALIES["recs-hpa-runaway"]
    cluster = fleet.cluster_named(anomaly.cluster)

    scaled = [
        event
        for event in fleet.events
        if event.cluster_uid == cluster.uid and event.involved_name == "recommendations/recs-ranker"
    ]

    assert len(scaled) == 4
    assert {event.reason for event in scaled} == {WORKLOAD_SCALED}
    assert scaled[-1].message.endswith("from 120 to 160 replicas by its horizontal pod autoscaler")


def test_events_stop_at_as_of(fleet: Fleet) -> None:
    times = [event.created_at for event in fleet.events]

    assert times == sorted(times)
    assert max(times) <= AS_OF
    assert min(times) >= fleet.start
    assert len({event.uid for event in fleet.events}) == len(fleet.events)


def test_cryptominer_fills_cpu_without_more_requests(fleet: Fleet) -> None:
    anomaly = PLANTED_ANOMALIES["ci-runners-cryptomining"]
    usage = fleet_usage(fleet).clusters[fleet.cluster_named(MINING_CLUSTER).uid]
    row = usage.namespace_index(MINING_NAMESPACE)
    before, during = _windows(fleet, anomaly)
    full_days = slice(during.start + 1, during.stop)

    utilisation = usage.namespace_cpu.sum(axis=0) / usage.capacity_cpu

    assert utilisation[before].max() < 0.75
    np.testing.assert_allclose(utilisation[full_days], MINING_CPU_UTILISATION, rtol=1e-9)
    assert usage.namespace_cpu[row, full_days].mean() > 3 * usage.namespace_cpu[row, before].mean()
    requests = usage.request_basis_cpu[row]
    assert requests[full_days].mean() < 1.25 * requests[before].mean()


def test_gpu_misuse_raises_namespace_cpu(fleet: Fleet) -> None:
    anomaly = PLANTED_ANOMALIES["gpu-without-request"]
    usage = fleet_usage(fleet).clusters[fleet.cluster_named(anomaly.cluster).uid]
    row = usage.namespace_index(anomaly.top_contributor[1])
    before, during = _windows(fleet, anomaly)

    cpu = usage.namespace_cpu[row]

    assert cpu[during][1:].mean() > 2 * cpu[before].mean()
    assert all(quota.namespace != anomaly.top_contributor[1] for quota in usage.quotas)


def test_anomaly_clusters_ignore_fleet_size() -> None:
    small = build_fleet(3, AS_OF, history_days=60, cluster_count=8)
    large = build_fleet(3, AS_OF, history_days=60, cluster_count=30)

    for name in ANOMALY_CLUSTERS:
        in_small, in_large = small.cluster_named(name), large.cluster_named(name)
        assert in_small.uid == in_large.uid
        np.testing.assert_array_equal(in_small.compute, in_large.compute)
        np.testing.assert_array_equal(in_small.namespace_compute, in_large.namespace_compute)
        np.testing.assert_array_equal(
            fleet_usage(small).clusters[in_small.uid].namespace_cpu,
            fleet_usage(large).clusters[in_large.uid].namespace_cpu,
        )
    assert [event.uid for event in small.events if event.cluster_name in ANOMALY_CLUSTERS] == [
        event.uid for event in large.events if event.cluster_name in ANOMALY_CLUSTERS
    ]


def test_fleet_smaller_than_planted_rejected() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        build_fleet(3, AS_OF, cluster_count=7)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_background_clusters_have_no_jumps(seed: int) -> None:
    fleet = build_fleet(seed, AS_OF, history_days=120)
    background = [
        cluster
        for cluster in fleet.clusters
        if cluster.name not in PLANTED and cluster.name not in ANOMALY_CLUSTERS
    ]

    assert len(background) == len(fleet.clusters) - 8
    for cluster in background:
        total = _daily_total(cluster)[:-1]
        start = max(cluster.first_day + 15, len(total) - 91)
        if len(total) - start < 21:
            continue
        weekly = np.convolve(total[start:], np.ones(7) / 7, mode="valid")
        shift = np.abs(weekly[7:] / weekly[:-7] - 1)
        rise = [total[day] / total[day - 14 : day].max() for day in range(start, len(total))]

        assert shift.max() < BACKGROUND_WEEKLY_SHIFT, cluster.name
        assert max(rise) < BACKGROUND_DAILY_RISE, cluster.name
