"""The planted waste: its ground truth, its Palette clusters and its Kubernetes metrics."""

from __future__ import annotations

import io
import re
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from costwarden.cli import app
from costwarden.simulator.fleet import build_fleet
from costwarden.simulator.metrics import generated_clusters, working_hours, write_openmetrics
from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import SimulatorSettings
from costwarden.simulator.waste import PLANTED_WASTE
from costwarden.simulator.waste_plans import (
    ALLOCATABLE_SHARE,
    DEV_CLUSTER,
    PROD_CLUSTER,
    STAGING_CLUSTER,
    WASTE_CLUSTERS,
    WASTE_PROJECT,
)

AS_OF = datetime(2026, 11, 16, tzinfo=UTC)
KINDS = {
    "workload-requests", "node-pool", "spot", "gpu-misuse", "idle-volumes", "idle-pools",
    "idle-load-balancers", "off-hours-schedule", "storage-class", "commitments",
}  # fmt: skip
SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][\w:]*)\{(?P<labels>.*)\} (?P<value>\S+) (?P<time>\d+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, float]]]:
    """Return each series of OpenMetrics text as (time, value) pairs, in file order."""
    series: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, float]]] = defaultdict(
        list
    )
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match is not None, f"not an OpenMetrics sample: {line!r}"
        labels = tuple(sorted(LABEL.findall(match["labels"])))
        series[(match["name"], labels)].append((int(match["time"]), float(match["value"])))
    return series


@pytest.fixture(scope="module")
def hourly_text() -> str:
    out = io.StringIO()
    write_openmetrics(out, WASTE_CLUSTERS, end=AS_OF, days=8, interval_seconds=3600)
    return out.getvalue()


def test_planted_waste_covers_every_kind() -> None:
    kinds = {item.kind for item in PLANTED_WASTE}
    clusters = {item.cluster for item in PLANTED_WASTE}

    assert kinds == KINDS
    assert clusters == {PROD_CLUSTER, DEV_CLUSTER, STAGING_CLUSTER}
    assert len({item.key for item in PLANTED_WASTE}) == len(PLANTED_WASTE)


def test_planted_waste_figures_by_hand() -> None:
    figures = {item.key: item.savings_per_day for item in PLANTED_WASTE}

    # 3 x m5.xlarge at 0.192 USD/h, all day.
    assert figures[("idle-pools", PROD_CLUSTER, "idle-pool")] == Decimal("13.8240")
    # 4 x m5.2xlarge (0.384) repacked on 2 x m5.xlarge (0.192): six 1.1-core pods, 3 per node.
    assert figures[("node-pool", PROD_CLUSTER, "batch-pool")] == Decimal("27.6480")
    # 4 m5.large nodes (0.096) at the assumed 30% commitment discount.
    assert figures[("commitments", PROD_CLUSTER, "m5.large")] == Decimal("2.7648")
    # 2 x Standard_D4s_v5 (0.192) for the 108 of 168 hours outside working hours.
    assert figures[("off-hours-schedule", DEV_CLUSTER, "weekday-pool")] == Decimal("5.9246")
    # One AWS load balancer hour at 0.0225 USD.
    assert figures[("idle-load-balancers", PROD_CLUSTER, "shop/legacy-gateway")] == Decimal("0.54")


def test_oom_kill_adds_cost() -> None:
    oom = next(item for item in PLANTED_WASTE if item.target.endswith("session-cache"))

    assert oom.savings_per_day < 0


def test_fleet_without_waste_by_default() -> None:
    fleet = build_fleet(5, AS_OF, history_days=30, cluster_count=20)

    assert WASTE_PROJECT not in {project.name for project in fleet.projects}
    assert PROD_CLUSTER not in {cluster.name for cluster in fleet.clusters}


def test_waste_clusters_own_project() -> None:
    plain = build_fleet(5, AS_OF, history_days=30, cluster_count=20)
    fleet = build_fleet(5, AS_OF, history_days=30, cluster_count=20, waste_clusters=True)
    waste = [cluster for cluster in fleet.clusters if cluster.project.name == WASTE_PROJECT]
    others = [cluster for cluster in fleet.clusters if cluster.project.name != WASTE_PROJECT]

    assert [cluster.name for cluster in waste] == [plan.name for plan in WASTE_CLUSTERS]
    assert [cluster.uid for cluster in others] == [cluster.uid for cluster in plain.clusters]
    for before, after in zip(plain.clusters, others, strict=True):
        np.testing.assert_array_equal(before.compute, after.compute)


def test_fleet_waste_pools_match_plans() -> None:
    fleet = build_fleet(5, AS_OF, history_days=30, cluster_count=20, waste_clusters=True)

    for plan in WASTE_CLUSTERS:
        cluster = fleet.cluster_named(plan.name)
        pools = [(pool.name, pool.instance_type, pool.size) for pool in cluster.pools]
        hourly = sum(pool.hourly_price * pool.size for pool in cluster.pools)

        assert pools == [(pool.name, pool.instance_type, pool.nodes) for pool in plan.pools]
        assert cluster.region == plan.region
        np.testing.assert_allclose(cluster.compute, float(hourly) * 24)


def test_metrics_deterministic(hourly_text: str) -> None:
    again = io.StringIO()
    write_openmetrics(again, WASTE_CLUSTERS, end=AS_OF, days=8, interval_seconds=3600)

    assert again.getvalue() == hourly_text
    assert hourly_text.endswith("# EOF\n")


def test_metrics_families_contiguous(hourly_text: str) -> None:
    names = [line.split()[2] for line in hourly_text.splitlines() if line.startswith("# TYPE")]
    seen: list[str] = []
    for line in hourly_text.splitlines():
        if not line.startswith("#"):
            name = line.split("{", 1)[0]
            if not seen or seen[-1] != name:
                seen.append(name)

    assert seen == names
    assert len(set(names)) == len(names)


def test_node_pools_match_palette(hourly_text: str) -> None:
    series = parse(hourly_text)
    pools: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, labels in series:
        if name == "kube_node_labels":
            values = dict(labels)
            pool = (
                values.get("label_eks_amazonaws_com_nodegroup")
                or values.get("label_kubernetes_azure_com_agentpool")
                or values.get("label_cloud_google_com_gke_nodepool")
            )
            pools[values["cluster"]][
                f"{pool}/{values['label_node_kubernetes_io_instance_type']}"
            ] += 1

    for plan in WASTE_CLUSTERS:
        expected = {f"{pool.name}/{pool.instance_type}": pool.nodes for pool in plan.pools}
        assert dict(pools[plan.name]) == expected


def test_metrics_counters_never_fall(hourly_text: str) -> None:
    series = parse(hourly_text)
    counters = [key for key in series if key[0].endswith("_total")]

    assert counters
    for key in counters:
        values = np.array([value for _, value in series[key]])
        assert np.all(np.diff(values) >= 0), key
        assert values[0] == 0, key


def test_weekday_pool_busy_working_hours(hourly_text: str) -> None:
    series = parse(hourly_text)
    user = [
        points
        for (name, labels), points in series.items()
        if name == "node_cpu_seconds_total"
        and ("mode", "user") in labels
        and dict(labels)["instance"].startswith("aks-weekdaypool")
    ]
    times = np.array([moment for moment, _ in user[0]], dtype=float)
    busy = sum(np.diff([value for _, value in points]) / 3600 for points in user)
    working = working_hours(times[:-1])

    allocatable = 8 * ALLOCATABLE_SHARE  # 2 nodes x 4 vCPUs.

    assert len(user) == 8
    assert busy[working].sum() / busy.sum() > 0.9
    assert busy[~working].max() < 0.05 * allocatable


def test_idle_load_balancer_no_endpoints(hourly_text: str) -> None:
    series = parse(hourly_text)
    endpoints = {
        dict(labels)["endpoint"] for name, labels in series if name == "kube_endpoint_info"
    }
    ready = {dict(labels)["endpoint"] for name, labels in series if name == "kube_endpoint_address"}

    assert {"legacy-gateway", "storefront", "grafana"} <= endpoints
    assert "legacy-gateway" not in ready
    assert {"storefront", "grafana"} <= ready


def test_metrics_sample_count(hourly_text: str) -> None:
    samples = sum(1 for line in hourly_text.splitlines() if not line.startswith("#"))
    count = write_openmetrics(io.StringIO(), WASTE_CLUSTERS, end=AS_OF, days=8,
                              interval_seconds=3600)  # fmt: skip

    assert count == samples


def test_metrics_rejects_naive_end() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        write_openmetrics(io.StringIO(), WASTE_CLUSTERS, end=datetime(2026, 11, 16))


def test_generated_clusters_scale() -> None:
    plans = list(generated_clusters(6, 40, seed=3))
    again = list(generated_clusters(6, 40, seed=3))

    assert plans == again
    assert len({plan.name for plan in plans}) == 6
    assert {plan.cloud_type for plan in plans} == {"eks", "aks"}
    assert all(len(plan.workloads) == 40 for plan in plans)


def test_generated_metrics_per_workload() -> None:
    out = io.StringIO()
    write_openmetrics(out, generated_clusters(2, 7, seed=1), end=AS_OF, days=1,
                      interval_seconds=3600)  # fmt: skip
    series = parse(out.getvalue())
    deployments = {
        (dict(labels)["cluster"], dict(labels)["deployment"])
        for name, labels in series
        if name == "kube_deployment_spec_replicas"
    }

    assert len(deployments) == 14


def test_cli_writes_metrics(tmp_path: Path) -> None:
    out = tmp_path / "waste.om"
    result = CliRunner().invoke(
        app,
        ["palette-sim-metrics", "--out", str(out), "--as-of", "2026-11-16", "--days", "1",
         "--interval-seconds", "3600", "--clusters", "1", "--workloads-per-cluster", "3"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "promtool tsdb create-blocks-from openmetrics" in result.output
    text = out.read_text()
    assert text.endswith("# EOF\n")
    assert 'cluster="bench-0000-eks"' in text
    assert f'cluster="{PROD_CLUSTER}"' in text


def test_simulator_serves_waste_pools() -> None:
    settings = SimulatorSettings(
        seed=7, as_of=AS_OF, history_days=30, cluster_count=12, waste_clusters=True,
        rate_limit_enabled=False,
    )  # fmt: skip
    with SimulatorServer(settings) as sim:
        cluster = sim.state.fleet.cluster_named(DEV_CLUSTER)
        headers = {"ApiKey": sim.api_key}
        with httpx.Client(base_url=sim.url, headers=headers, timeout=10) as client:
            config = client.get(f"/v1/cloudconfigs/aks/{cluster.cloud_config_uid}")

    assert config.status_code == 200, config.text
    pools = {pool["name"]: pool for pool in config.json()["spec"]["machinePoolConfig"]}
    plan = next(plan for plan in WASTE_CLUSTERS if plan.name == DEV_CLUSTER)
    for pool in plan.pools:
        assert pools[pool.name]["instanceType"] == pool.instance_type
        assert pools[pool.name]["size"] == pool.nodes
