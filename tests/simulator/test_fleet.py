"""The seeded fleet itself: determinism, shape, and the cost formula behind every series."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sim_helpers import daily_hourly_price

from costwarden.simulator.fleet import OVERRUN_CLUSTER, PLANTED, STABLE_CLUSTER, build_fleet
from costwarden.sources.prices import PriceCatalog

AS_OF = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def test_same_seed_gives_same_fleet() -> None:
    first = build_fleet(11, AS_OF, cluster_count=40)
    second = build_fleet(11, AS_OF, cluster_count=41)

    for original, regenerated in zip(first.clusters, second.clusters[:40], strict=True):
        assert original.name == regenerated.name
        assert original.uid == regenerated.uid
        np.testing.assert_array_equal(original.compute, regenerated.compute)
        np.testing.assert_array_equal(original.namespace_compute, regenerated.namespace_compute)


def test_other_seed_gives_other_fleet() -> None:
    first = build_fleet(11, AS_OF)
    second = build_fleet(12, AS_OF)

    assert [c.uid for c in first.clusters] != [c.uid for c in second.clusters]
    assert [c.name for c in first.clusters[2:]] != [c.name for c in second.clusters[2:]]
    assert first.cluster_named(OVERRUN_CLUSTER).compute.sum() != pytest.approx(
        second.cluster_named(OVERRUN_CLUSTER).compute.sum(), rel=1e-9
    )


def test_fleet_shape() -> None:
    fleet = build_fleet(3, AS_OF)

    assert len(fleet.projects) >= 3
    assert len(fleet.clusters) >= 30
    assert {c.provider for c in fleet.clusters} == {"aws", "azure", "gcp"}
    assert len({c.name for c in fleet.clusters}) == len(fleet.clusters)
    assert any(pool.gpus for c in fleet.clusters for pool in c.pools if c.name != OVERRUN_CLUSTER)
    assert any(pool.is_control_plane for c in fleet.clusters for pool in c.pools)
    assert any(pool.capacity_type == "spot" for c in fleet.clusters for pool in c.pools)
    assert fleet.days == 181
    assert fleet.start == datetime(2025, 9, 16, tzinfo=UTC)


def test_namespaces_are_labelled() -> None:
    fleet = build_fleet(3, AS_OF)

    for cluster in fleet.clusters:
        names = [namespace.name for namespace in cluster.namespaces]
        assert names[0] == "kube-system"
        assert 4 <= len(names) <= 9
        assert len(set(names)) == len(names)
        for namespace in cluster.namespaces:
            assert set(namespace.labels) == {"team", "env", "cost-center"}


def test_daily_cost_follows_palette_formula() -> None:
    fleet = build_fleet(5, AS_OF)
    catalog = PriceCatalog.packaged()

    for cluster in fleet.clusters:
        storage_price = float(
            catalog.storage_price_per_gib_hour(cluster.cloud_type, cluster.region)
        )
        compute = np.zeros(fleet.days)
        storage = np.zeros(fleet.days)
        for index, pool in enumerate(cluster.pools):
            price = daily_hourly_price(catalog, fleet, cluster, pool)
            compute += cluster.node_counts[index] * price * 24
            storage += cluster.node_counts[index] * pool.disk_gib * storage_price * 24
        np.testing.assert_allclose(cluster.compute, compute, rtol=1e-12)
        np.testing.assert_allclose(cluster.storage, storage, rtol=1e-12)


def test_node_counts_stay_within_pool_limits() -> None:
    fleet = build_fleet(5, AS_OF)

    for cluster in fleet.clusters:
        active = cluster.node_counts[:, cluster.first_day + 1 :]
        for index, pool in enumerate(cluster.pools):
            assert active[index].min() >= pool.min_size
            assert active[index].max() <= pool.max_size
            assert pool.min_size <= pool.size <= pool.max_size


def test_namespaces_leave_idle_cost() -> None:
    fleet = build_fleet(5, AS_OF)

    for cluster in fleet.clusters:
        cluster_total = cluster.compute + cluster.storage
        namespaces = (
            cluster.namespace_compute + cluster.namespace_control_plane + cluster.namespace_storage
        ).sum(axis=0)
        assert np.all(namespaces <= cluster_total)
        assert (
            namespaces[cluster.first_day :].sum() < 0.95 * cluster_total[cluster.first_day :].sum()
        )


def test_no_cost_before_cluster_creation() -> None:
    fleet = build_fleet(5, AS_OF)
    created_inside = [c for c in fleet.clusters if c.first_day > 0]

    assert created_inside
    for cluster in created_inside:
        assert cluster.compute[: cluster.first_day].sum() == 0
        assert cluster.namespace_compute[:, : cluster.first_day].sum() == 0
        assert cluster.compute[cluster.first_day + 1] > 0


def test_other_clusters_do_not_dwarf_the_planted_ones() -> None:
    for seed in range(5):
        fleet = build_fleet(seed, AS_OF)
        overrun = fleet.cluster_named(OVERRUN_CLUSTER).compute[-2]
        others = [c.compute[-2] for c in fleet.clusters if c.name not in PLANTED]
        assert max(others) < overrun


@pytest.mark.parametrize("seed", [0, 1, 2, 99, 12345])
def test_planted_clusters_for_any_seed(seed: int) -> None:
    fleet = build_fleet(seed, AS_OF)
    overrun = fleet.cluster_named(OVERRUN_CLUSTER)
    stable = fleet.cluster_named(STABLE_CLUSTER)
    overrun_daily = overrun.compute + overrun.storage
    stable_daily = stable.compute + stable.storage

    assert overrun.project.name == "data-science"
    assert overrun.cloud_type == "eks"
    assert any(pool.gpus for pool in overrun.pools)
    assert 600 < overrun_daily[-2] < 850
    assert 330 < overrun_daily[-32] < 480
    assert overrun_daily[-8:-1].mean() > 1.4 * overrun_daily[-38:-31].mean()

    assert stable.project.name == "payments"
    assert stable.cloud_type == "aks"
    assert 180 < stable_daily[-29:-1].mean() < 215
    assert stable_daily[-29:-1].std() / stable_daily[-29:-1].mean() < 0.1
