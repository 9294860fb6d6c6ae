"""Root cause on synthetic clusters with a known story: contributors, drivers, cause, events."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from anomaly_helpers import (
    AS_OF,
    HISTORY_DAYS,
    Pool,
    SyntheticCluster,
    at,
    days_before,
    event,
    steady_nodes,
    step,
    write_events,
    write_fleet,
    write_gpu_quota,
)

from costwarden.anomaly.evaluate import evaluate_anomalies
from costwarden.config import Settings
from costwarden.domain.anomaly import Anomaly, AnomalyReport
from costwarden.domain.event import (
    NAMESPACE_CREATED,
    POOL_SCALED,
    SPOT_FALLBACK,
    WORKLOAD_SCALED,
)
from costwarden.store import Store

M5_DAY = 0.384 * 24
G5_DAY = 1.212 * 24
N2_SPOT_SHARE = 0.163568 / 0.776944


def _fleet(rng: np.random.Generator) -> tuple[list[SyntheticCluster], list]:
    shop = SyntheticCluster(
        "shop-eks",
        "storefront",
        pools=[
            Pool(
                "workers",
                "m5.2xlarge",
                steady_nodes(10, rng),
                extra_nodes=step(8, days_before(5)),
                extra_namespace="promo",
            )
        ],
        shares={"web": 0.3, "api": 0.3, "batch": 0.2},
    )
    quiet = SyntheticCluster(
        "shop-quiet-eks",
        "storefront",
        pools=[Pool("workers", "m5.xlarge", steady_nodes(4, rng))],
        shares={"web": 0.5, "cron": 0.3},
    )
    batch = SyntheticCluster(
        "batch-gke",
        "data",
        cloud="gke",
        profiles=("gke-base",),
        pools=[
            Pool("workers", "e2-standard-8", steady_nodes(4, rng)),
            Pool(
                "spot-workers",
                "n2-standard-16",
                np.full(HISTORY_DAYS, 6.0),
                tracked=False,
                price_factor=np.where(
                    np.arange(HISTORY_DAYS) < HISTORY_DAYS - 6, N2_SPOT_SHARE, 1.0
                ),
            ),
        ],
        shares={"spark": 0.4, "airflow": 0.3},
    )
    vision = SyntheticCluster(
        "vision-eks",
        "data",
        pools=[
            Pool("workers", "m5.2xlarge", steady_nodes(6, rng)),
            Pool(
                "gpu",
                "g5.2xlarge",
                np.full(HISTORY_DAYS, 2.0),
                gpus=1,
                extra_nodes=step(8, days_before(10), days_before(9)),
                extra_namespace="inference",
            ),
        ],
        shares={"inference": 0.3, "serving": 0.3, "monitoring": 0.1},
    )
    research = SyntheticCluster(
        "research-eks",
        "data",
        pools=[
            Pool("workers", "m5.2xlarge", steady_nodes(6, rng)),
            Pool(
                "gpu",
                "g5.2xlarge",
                np.full(HISTORY_DAYS, 4.0),
                gpus=1,
                extra_nodes=step(3, days_before(7)),
                extra_namespace="features",
            ),
        ],
        shares={"training": 0.4, "features": 0.1, "notebooks": 0.2},
    )
    recs = SyntheticCluster(
        "recs-eks",
        "storefront",
        pools=[
            Pool(
                "workers",
                "m5.2xlarge",
                steady_nodes(6, rng),
                extra_nodes=step(16, days_before(3)),
                extra_namespace="recommendations",
            )
        ],
        shares={"recommendations": 0.1, "search": 0.3, "catalog": 0.3},
    )
    events = [
        event(
            shop,
            at(days_before(5)),
            NAMESPACE_CREATED,
            "Namespace promo created",
            "Namespace",
            "promo",
        ),
        event(
            shop,
            at(days_before(5), 10),
            POOL_SCALED,
            "Machine pool workers scaled from 10 to 18 nodes",
            "MachinePool",
            "workers",
        ),
        event(
            batch,
            at(days_before(6), 3),
            SPOT_FALLBACK,
            "Spot capacity ran out; spot-workers fell back to on-demand",
            "MachinePool",
            "spot-workers",
        ),
        event(
            vision,
            at(days_before(10), 0),
            POOL_SCALED,
            "Machine pool gpu scaled from 2 to 10 nodes",
            "MachinePool",
            "gpu",
        ),
        event(
            vision,
            at(days_before(9), 23),
            POOL_SCALED,
            "Machine pool gpu scaled from 10 to 2 nodes",
            "MachinePool",
            "gpu",
        ),
        event(
            research,
            at(days_before(7), 11),
            POOL_SCALED,
            "Machine pool gpu scaled from 4 to 7 nodes",
            "MachinePool",
            "gpu",
        ),
        event(
            recs,
            at(days_before(3), 2),
            WORKLOAD_SCALED,
            "Deployment recommendations/ranker scaled from 8 to 64 replicas",
            "Deployment",
            "recommendations/ranker",
        ),
        event(
            recs,
            at(days_before(3), 8),
            WORKLOAD_SCALED,
            "Deployment recommendations/ranker scaled from 64 to 160 replicas",
            "Deployment",
            "recommendations/ranker",
        ),
        event(
            recs,
            at(days_before(3), 3),
            POOL_SCALED,
            "Machine pool workers scaled from 6 to 22 nodes",
            "MachinePool",
            "workers",
        ),
        event(
            quiet,
            at(days_before(4)),
            POOL_SCALED,
            "Machine pool workers scaled from 4 to 5 nodes",
            "MachinePool",
            "workers",
        ),
    ]
    return [shop, quiet, batch, vision, research, recs], events


def _seeded(store: Store) -> AnomalyReport:
    clusters, events = _fleet(np.random.default_rng(3))
    write_fleet(store, clusters, seed=3)
    write_events(store, events)
    vision = next(cluster for cluster in clusters if cluster.name == "vision-eks")
    write_gpu_quota(store, vision, "inference", 10)
    with store.transaction() as session:
        return evaluate_anomalies(session, Settings(), AS_OF, AS_OF)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnomalyReport]:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('rootcause') / 'costwarden.db'}")
    yield _seeded(store)
    store.close()


def _alert(report: AnomalyReport, scope: str) -> Anomaly:
    found = [anomaly for anomaly in report.anomalies if anomaly.scope.describe() == scope]
    assert found, [anomaly.scope.describe() for anomaly in report.anomalies]
    return found[0]


def _driver(anomaly: Anomaly, name: str) -> float:
    return float(next(driver.amount for driver in anomaly.drivers if driver.name == name))


def test_only_changed_clusters_alert(report: AnomalyReport) -> None:
    scopes = sorted(anomaly.scope.describe() for anomaly in report.anomalies)

    assert scopes == [
        "cluster batch-gke",
        "cluster recs-eks",
        "cluster research-eks",
        "cluster shop-eks",
        "cluster vision-eks",
    ]


def test_new_namespace_cause_and_drivers(report: AnomalyReport) -> None:
    shop = _alert(report, "cluster shop-eks")

    assert shop.kind == "level_shift"
    assert shop.status == "ongoing"
    assert shop.first_day == days_before(5)
    assert shop.cause == "new_namespace"
    assert (shop.contributors[0].dimension, shop.contributors[0].value) == ("namespace", "promo")
    assert _driver(shop, "more_nodes") == pytest.approx(8 * M5_DAY, rel=0.1)
    assert _driver(shop, "new_workloads") == pytest.approx(0.9 * 8 * M5_DAY, rel=0.1)
    assert shop.events[0].reason == NAMESPACE_CREATED


def test_spot_fallback_is_a_price_change(report: AnomalyReport) -> None:
    batch = _alert(report, "cluster batch-gke")
    rise = 6 * 0.776944 * 24 * (1 - N2_SPOT_SHARE)

    assert batch.cause == "spot_fallback"
    assert (batch.contributors[0].dimension, batch.contributors[0].value) == (
        "node_pool",
        "spot-workers",
    )
    assert batch.contributors[0].expected is None
    assert _driver(batch, "pricier_instances") == pytest.approx(rise, rel=0.1)
    assert abs(_driver(batch, "more_nodes")) < 0.1 * rise
    assert float(batch.impact_per_day or 0) == pytest.approx(1.05 * rise, rel=0.1)


def test_gpu_spike_resolves_with_pool_top(report: AnomalyReport) -> None:
    vision = _alert(report, "cluster vision-eks")

    assert vision.kind == "spike"
    assert vision.status == "resolved"
    assert (vision.first_day, vision.last_day) == (days_before(10), days_before(9))
    assert vision.cause == "gpu_pool_scale_up"
    assert (vision.contributors[0].dimension, vision.contributors[0].value) == ("node_pool", "gpu")
    assert float(vision.contributors[0].delta) == pytest.approx(8 * G5_DAY, rel=0.1)
    assert "from 2 to 10 nodes" in vision.triage.likely_cause  # type: ignore[union-attr]


def test_gpu_pool_grown_for_namespace_without_gpu_quota(report: AnomalyReport) -> None:
    research = _alert(report, "cluster research-eks")

    assert research.cause == "gpu_without_request"
    assert (research.contributors[0].dimension, research.contributors[0].value) == (
        "namespace",
        "features",
    )


def test_hpa_runaway_points_at_namespace(report: AnomalyReport) -> None:
    recs = _alert(report, "cluster recs-eks")

    assert recs.cause == "hpa_runaway"
    assert (recs.contributors[0].dimension, recs.contributors[0].value) == (
        "namespace",
        "recommendations",
    )
    assert recs.events[0].reason == WORKLOAD_SCALED
    assert "recommendations/ranker" in recs.triage.next_step  # type: ignore[union-attr]


def test_groups_and_namespaces_listed_as_related(report: AnomalyReport) -> None:
    shop = _alert(report, "cluster shop-eks")
    related = {item.scope.describe() for item in shop.related}
    related_ids = {anomaly.anomaly_id for anomaly in report.related}

    assert "namespace shop-eks/promo" in related
    assert all(item.anomaly_id in related_ids for item in shop.related)
    assert not any(anomaly.scope.kind == "project" for anomaly in report.anomalies)


def test_triage_links_to_palette(report: AnomalyReport) -> None:
    for anomaly in report.anomalies:
        triage = anomaly.triage

        assert triage is not None
        assert triage.link is not None and triage.link.startswith("https://")
        assert anomaly.scope.cluster_uid in triage.link
        assert triage.evidence[-1].startswith("Per day, capacity:")


def test_pass_on_each_database(store: Store) -> None:
    report = _seeded(store)

    assert {anomaly.cause for anomaly in report.anomalies} == {
        "new_namespace",
        "spot_fallback",
        "gpu_pool_scale_up",
        "gpu_without_request",
        "hpa_runaway",
    }
