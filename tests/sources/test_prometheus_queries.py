"""The usage queries against a real Prometheus server holding the seeded fleet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import prometheus_data as fleet
import pytest
from prometheus_fixtures import PrometheusServer
from prometheus_helpers import prometheus_settings

from costwarden.domain.usage import ContainerKey, NamespaceKey, NodeKey, VolumeKey, WorkloadKey
from costwarden.sources.prometheus import PrometheusSource

API = WorkloadKey(fleet.PROD, "checkout", "Deployment", "api")
API_CONTAINER = ContainerKey(API, "api")
REDIS_CONTAINER = ContainerKey(WorkloadKey(fleet.PROD, "checkout", "StatefulSet", "redis"), "redis")
REPORT = WorkloadKey(fleet.PROD, "batch", "Deployment", "report")
FRONTEND = WorkloadKey(fleet.PROD, "web", "Deployment", "frontend")
DEV_API = WorkloadKey(fleet.DEV, "checkout", "Deployment", "api")
WINDOW = timedelta(days=7)


@pytest.fixture(scope="module")
def source(prometheus_server: PrometheusServer) -> Iterator[PrometheusSource]:
    with PrometheusSource(prometheus_settings(prometheus_server.url)) as opened:
        yield opened


def by_key(items: tuple, attribute: str) -> dict:
    return {getattr(item, attribute): item for item in items}


def test_cpu_quantile_matches_planted_p95(source: PrometheusSource) -> None:
    found = source.cpu_usage(end=fleet.END)
    cpu = by_key(found.items, "container")

    assert cpu[API_CONTAINER].cores == pytest.approx(fleet.API_CPU_P95_CORES, rel=0.03)
    assert cpu[API_CONTAINER].quantile == 0.95
    assert cpu[API_CONTAINER].pods == 4, "both ReplicaSets of the rollout join one workload"
    assert cpu[ContainerKey(REPORT, "report")].cores == pytest.approx(3.0, rel=0.03)
    assert cpu[ContainerKey(DEV_API, "api")].cores == pytest.approx(0.05, rel=0.1)
    assert all(key.container not in ("", "POD") for key in cpu)
    assert found.start == fleet.END - WINDOW
    assert found.end == fleet.END


def test_cpu_other_quantile(source: PrometheusSource) -> None:
    median = by_key(source.cpu_usage(end=fleet.END, quantile=0.5).items, "container")

    assert median[API_CONTAINER].cores == pytest.approx(0.25, abs=0.01)


def test_cpu_short_history_listed(source: PrometheusSource) -> None:
    found = source.cpu_usage(end=fleet.END)

    short = by_key(found.short_history, "key")
    frontend = ContainerKey(FRONTEND, "nginx")
    assert frontend in short
    assert short[frontend].history == timedelta(days=2)
    assert short[frontend].required == timedelta(days=3)
    assert short[frontend].first_seen == fleet.FRONTEND_CREATED
    assert frontend not in by_key(found.items, "container")
    assert found.min_history == timedelta(days=3)

    everything = source.cpu_usage(end=fleet.END, min_history=timedelta(0))
    assert frontend in by_key(everything.items, "container")
    assert everything.short_history == ()


def test_cpu_scope_filters(source: PrometheusSource) -> None:
    dev = source.cpu_usage(end=fleet.END, clusters=[fleet.DEV])
    checkout = source.cpu_usage(end=fleet.END, namespaces=["checkout"])
    nothing = source.cpu_usage(end=fleet.END, clusters=[])

    assert {item.container.workload.cluster for item in dev.items} == {fleet.DEV}
    assert len(dev.items) == 2
    assert {item.container.workload.namespace for item in checkout.items} == {"checkout"}
    assert {item.container.workload.cluster for item in checkout.items} == {fleet.PROD, fleet.DEV}
    assert nothing.items == ()


def test_cpu_records_queries(source: PrometheusSource) -> None:
    found = source.cpu_usage(end=fleet.END)

    assert any("quantile_over_time(0.95" in query for query in found.queries)
    assert all("{...}" not in query and "..." in query for query in found.queries)


def test_memory_peak_per_container(source: PrometheusSource) -> None:
    memory = by_key(source.memory_peak(end=fleet.END).items, "container")

    assert memory[API_CONTAINER].max_bytes == pytest.approx(fleet.API_MEMORY_PEAK_BYTES, rel=1e-6)
    assert memory[REDIS_CONTAINER].max_bytes == pytest.approx(fleet.REDIS_MEMORY_LIMIT_BYTES)
    assert memory[API_CONTAINER].pods == 4


def test_resources_requests_and_limits(source: PrometheusSource) -> None:
    found = by_key(source.resources(end=fleet.END).items, "container")

    api = found[API_CONTAINER]
    assert api.cpu_request_cores == fleet.API_CPU_REQUEST_CORES
    assert api.cpu_limit_cores == fleet.API_CPU_LIMIT_CORES
    assert api.memory_request_bytes == fleet.API_MEMORY_REQUEST_BYTES
    assert api.gpu_request is None
    assert api.pods == 2, "only the pods running at the end count"
    assert found[REDIS_CONTAINER].memory_limit_bytes == fleet.REDIS_MEMORY_LIMIT_BYTES
    assert found[REDIS_CONTAINER].cpu_limit_cores is None
    assert found[ContainerKey(FRONTEND, "nginx")].pods == 3


def test_oom_kill_found_once(source: PrometheusSource) -> None:
    found = source.oom_kills(end=fleet.END)

    assert len(found.items) == 1
    kill = found.items[0]
    assert kill.container == REDIS_CONTAINER
    assert kill.oom_events == 1
    assert kill.restarts == 1
    assert kill.last_terminated_oom is True


def test_oom_kill_outside_window(source: PrometheusSource) -> None:
    before = source.oom_kills(end=fleet.REDIS_OOM_AT - timedelta(hours=1), window=timedelta(days=2))

    assert before.items == ()


def test_replicas_and_hpa_bounds(source: PrometheusSource) -> None:
    found = by_key(source.replicas(end=fleet.END).items, "workload")

    api = found[API]
    assert (api.current, api.min, api.max) == (2, 2, 2)
    assert (api.hpa, api.hpa_min, api.hpa_max) == ("api", fleet.API_HPA_MIN, fleet.API_HPA_MAX)
    frontend = found[FRONTEND]
    assert (frontend.current, frontend.min, frontend.max) == (3, 1, 3)
    assert frontend.hpa is None
    redis = found[WorkloadKey(fleet.PROD, "checkout", "StatefulSet", "redis")]
    assert (redis.current, redis.min, redis.max) == (1, 1, 1)


def test_node_info_from_labels(source: PrometheusSource) -> None:
    nodes = by_key(source.node_info(end=fleet.END).items, "node")

    spot = nodes[NodeKey(fleet.PROD, "ip-10-0-1-11")]
    assert spot.capacity_type == "spot"
    assert spot.instance_type == "m5.xlarge"
    assert spot.node_pool == "general"
    assert spot.cpu_allocatable_cores == pytest.approx(3.92)
    gpu = nodes[NodeKey(fleet.PROD, fleet.GPU_NODE)]
    assert gpu.gpu_allocatable == 1.0
    assert gpu.gpu_model == "NVIDIA-A10G"
    assert gpu.capacity_type == "on-demand"
    assert nodes[NodeKey(fleet.DEV, "aks-spot-87654321-vmss000000")].capacity_type == "spot"
    assert nodes[NodeKey(fleet.DEV, "aks-system-12345678-vmss000000")].capacity_type is None
    assert len(nodes) == len(fleet.NODES)


def test_node_usage_matches_planted_load(source: PrometheusSource) -> None:
    found = by_key(source.node_usage(end=fleet.END).items, "node")
    times = fleet.time_grid()
    node = next(item for item in fleet.NODES if item.name == fleet.GPU_NODE)
    pods = [pod for pod in fleet.planted_pods() if pod.node == node.name]
    busy = fleet.node_busy_cores(node, pods, times)
    in_window = times > (fleet.END - WINDOW).timestamp()

    usage = found[NodeKey(fleet.PROD, fleet.GPU_NODE)]
    assert usage.cpu_mean_cores == pytest.approx(busy[in_window].mean(), rel=0.02)
    assert usage.cpu_quantile_cores == pytest.approx(np.quantile(busy[in_window], 0.95), rel=0.02)
    assert usage.memory_max_bytes == pytest.approx(fleet.NODE_OVERHEAD_BYTES + fleet.GIB)
    assert usage.info is not None
    assert usage.info.instance_type == "g5.2xlarge"


def test_gpu_idle_on_gpu_node(source: PrometheusSource) -> None:
    found = source.gpu_utilisation(end=fleet.END)

    assert len(found.items) == 1
    device = found.items[0]
    assert device.device.node == NodeKey(fleet.PROD, fleet.GPU_NODE)
    assert device.model == "NVIDIA A10G"
    assert device.mean_percent == pytest.approx(fleet.GPU_UTIL_MEAN_PERCENT, abs=0.1)
    assert device.max_percent <= 3


def test_gpu_node_runs_only_non_gpu_workloads(source: PrometheusSource) -> None:
    found = source.gpu_node_workloads(end=fleet.END)

    assert [item.node for item in found.items] == [NodeKey(fleet.PROD, fleet.GPU_NODE)]
    node = found.items[0]
    assert node.gpu_allocatable == 1.0
    assert node.gpu_workloads == ()
    assert node.other_workloads == (REPORT,)


def test_volumes_idle_and_unmounted(source: PrometheusSource) -> None:
    found = by_key(source.volumes(end=fleet.END).items, "volume")

    archive = found[VolumeKey(fleet.PROD, "data", "data-archive-0")]
    assert archive.mounted is True
    assert archive.used_max_bytes == fleet.ARCHIVE_USED_BYTES
    assert archive.used_min_bytes == fleet.ARCHIVE_USED_BYTES
    assert archive.capacity_bytes == fleet.ARCHIVE_CAPACITY_BYTES
    assert archive.storage_class == "gp3"
    unmounted = found[VolumeKey(fleet.PROD, "data", "old-export")]
    assert unmounted.mounted is False
    assert unmounted.used_last_bytes is None
    assert unmounted.requested_bytes == fleet.OLD_EXPORT_REQUESTED_BYTES


def test_egress_excludes_loopback(source: PrometheusSource) -> None:
    found = by_key(source.network_egress(end=fleet.END).items, "workload")

    two_pods_for_a_week = 2 * fleet.API_TRANSMIT_BYTES_PER_SECOND * WINDOW.total_seconds()
    assert found[API].bytes == pytest.approx(two_pods_for_a_week, rel=0.01)
    assert found[API].bytes_per_day == pytest.approx(two_pods_for_a_week / 7, rel=0.01)
    assert found[API].pods == 4
    assert REPORT not in found, "a workload that sends nothing has no egress series"


def test_daily_usage_shows_cpu_step(source: PrometheusSource) -> None:
    first_day = fleet.START.date()
    last_day = (fleet.END - timedelta(days=1)).date()
    found = source.daily_usage(first_day, last_day)
    series = {(item.namespace, item.resource, item.statistic): item for item in found.items}

    batch = series[(NamespaceKey(fleet.PROD, "batch"), "cpu", "mean")]
    assert batch.unit == "cores"
    assert len(batch.days) == fleet.DAYS
    step_day = (fleet.REPORT_STEP_AT - fleet.START).days
    assert np.allclose(batch.values[:step_day], fleet.REPORT_CPU_BEFORE, atol=0.05)
    assert np.allclose(batch.values[step_day:], fleet.REPORT_CPU_AFTER, atol=0.05)
    egress = series[(NamespaceKey(fleet.PROD, "checkout"), "egress", "total")]
    one_day = 2 * fleet.API_TRANSMIT_BYTES_PER_SECOND * 86_400
    assert np.allclose(egress.values, one_day, rtol=0.01)


def test_daily_usage_short_namespace(source: PrometheusSource) -> None:
    first_day = fleet.START.date()
    last_day = (fleet.END - timedelta(days=1)).date()
    found = source.daily_usage(first_day, last_day, min_days=7)

    short = by_key(found.short_history, "key")
    web = NamespaceKey(fleet.PROD, "web")
    assert web in short
    assert short[web].history < timedelta(days=7)
    assert all(item.namespace != web for item in found.items)
