"""A seeded fleet of Kubernetes metrics with known expected values, as OpenMetrics text.

Two clusters, eight days at a 5-minute resolution ending at ``END``, with the series cAdvisor,
kube-state-metrics, the kubelet, node-exporter and the DCGM exporter would have scraped. The
fleet plants the cases the recommenders look for:

- ``prod-eks/checkout`` Deployment ``api``: CPU p95 0.4 cores against a 2-core request, 400 MiB
  peak working set, an HPA from 2 to 6 replicas, 1 MB/s sent per pod, and a rollout on day 4
  that replaces both pods;
- ``prod-eks/checkout`` StatefulSet ``redis``: one OOM kill on day 5 at its 512 MiB limit;
- ``prod-eks/batch`` Deployment ``report`` on the GPU node ``ip-10-0-2-20``, requesting no GPU,
  while the node's GPU idles at about 1%; its CPU steps from 1 to 3 cores on day 5;
- ``prod-eks/data``: claim ``data-archive-0`` mounted but idle at 50 MiB of 100 GiB, and claim
  ``old-export`` that no pod mounts;
- ``prod-eks/web`` Deployment ``frontend``: created 2 days before ``END``, too new to judge;
- ``dev-aks``: a small cluster with its own ``checkout/api`` and a Spot node;
- ``dev-aks`` pool ``office``: two Spot nodes busy only on weekdays from 08:00 to 20:00 UTC;
- LoadBalancer Services: ``checkout/api-public`` in front of the api pods, which receive
  traffic, ``data/archive-lb`` in front of ``archive-0``, which receives almost nothing,
  ``web/legacy-lb`` with no ready endpoint (old kube-state-metrics style), and ``dev-aks``'s
  ``sandbox/toy-lb``, too new to judge;
- disk counters on ``ip-10-0-1-10``, where ``data-archive-0`` is mounted, peaking at
  ``DISK_PEAK_IOPS``;
- a CPU utilisation target of ``API_HPA_CPU_TARGET_PERCENT`` on the HPA of ``checkout/api``.

The expected values are the constants below. The series come from closed-form curves plus
small seeded noise on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

END = datetime(2026, 11, 16, tzinfo=UTC)
DAYS = 8
START = END - timedelta(days=DAYS)
RUNNING = END + timedelta(seconds=1)
"""End of the pods still running at ``END``: the sample at ``END`` is their last."""
INTERVAL_SECONDS = 300
DAY_SECONDS = 86_400

MIB = 2.0**20
GIB = 2.0**30

PROD = "prod-eks"
DEV = "dev-aks"
GPU_NODE = "ip-10-0-2-20"

API_CPU_P95_CORES = 0.4
API_CPU_REQUEST_CORES = 2.0
API_CPU_LIMIT_CORES = 4.0
API_MEMORY_PEAK_BYTES = 400 * MIB
API_MEMORY_REQUEST_BYTES = 1 * GIB
API_TRANSMIT_BYTES_PER_SECOND = 1e6
API_HPA_MIN, API_HPA_MAX = 2, 6
REDIS_MEMORY_LIMIT_BYTES = 512 * MIB
REDIS_OOM_AT = START + timedelta(days=5, hours=18)
REPORT_CPU_BEFORE, REPORT_CPU_AFTER = 1.0, 3.0
REPORT_STEP_AT = START + timedelta(days=5)
GPU_UTIL_MEAN_PERCENT = 1.0
ARCHIVE_USED_BYTES = 50 * MIB
ARCHIVE_CAPACITY_BYTES = 100 * GIB
OLD_EXPORT_REQUESTED_BYTES = 500 * GIB
FRONTEND_CREATED = END - timedelta(days=2)
FRONTEND_SCALED = END - timedelta(days=1)
NODE_OVERHEAD_CORES = 0.2
"""CPU busy on every node, as node-exporter reports it, beyond its pods' usage."""
NODE_OVERHEAD_BYTES = 1 * GIB
OFFICE = DEV
OFFICE_POOL = "office"
OFFICE_BUSY_CORES = 1.5
OFFICE_IDLE_CORES = 0.05
"""CPU busy on each ``office`` node inside and outside Mon-Fri 08:00-20:00 UTC."""
OFFICE_START_HOUR, OFFICE_END_HOUR = 8, 20
API_HPA_CPU_TARGET_PERCENT = 70.0
DISK_NODE = "ip-10-0-1-10"
DISK_PEAK_IOPS = 300.0
DISK_OS_IOPS = 20.0
ARCHIVE_RECEIVE_BYTES_PER_SECOND = 10.0
API_RECEIVE_BYTES_PER_SECOND = 2e6
TOY_LB_CREATED = END - timedelta(days=2)


@dataclass(frozen=True)
class Node:
    cluster: str
    name: str
    cpus: int
    memory_bytes: float
    labels: dict[str, str]
    gpus: int = 0
    office_hours: bool = False
    """Busy ``OFFICE_BUSY_CORES`` in office hours and ``OFFICE_IDLE_CORES`` otherwise, no pods."""


NODES = [
    Node(
        PROD,
        "ip-10-0-1-10",
        4,
        16 * GIB,
        {
            "label_node_kubernetes_io_instance_type": "m5.xlarge",
            "label_eks_amazonaws_com_nodegroup": "general",
            "label_eks_amazonaws_com_capacity_type": "ON_DEMAND",
            "label_topology_kubernetes_io_zone": "us-east-1a",
        },
    ),
    Node(
        PROD,
        "ip-10-0-1-11",
        4,
        16 * GIB,
        {
            "label_node_kubernetes_io_instance_type": "m5.xlarge",
            "label_eks_amazonaws_com_nodegroup": "general",
            "label_eks_amazonaws_com_capacity_type": "SPOT",
            "label_topology_kubernetes_io_zone": "us-east-1b",
        },
    ),
    Node(
        PROD,
        GPU_NODE,
        8,
        32 * GIB,
        {
            "label_node_kubernetes_io_instance_type": "g5.2xlarge",
            "label_eks_amazonaws_com_nodegroup": "gpu",
            "label_eks_amazonaws_com_capacity_type": "ON_DEMAND",
            "label_topology_kubernetes_io_zone": "us-east-1a",
            "label_nvidia_com_gpu_product": "NVIDIA-A10G",
        },
        gpus=1,
    ),
    Node(
        DEV,
        "aks-system-12345678-vmss000000",
        4,
        16 * GIB,
        {
            "label_node_kubernetes_io_instance_type": "Standard_D4s_v5",
            "label_kubernetes_azure_com_agentpool": "system",
            "label_topology_kubernetes_io_zone": "westeurope-1",
        },
    ),
    Node(
        DEV,
        "aks-spot-87654321-vmss000000",
        4,
        16 * GIB,
        {
            "label_node_kubernetes_io_instance_type": "Standard_D4s_v5",
            "label_kubernetes_azure_com_agentpool": "spot",
            "label_kubernetes_azure_com_scalesetpriority": "spot",
            "label_topology_kubernetes_io_zone": "westeurope-2",
        },
    ),
    *(
        Node(
            OFFICE,
            f"aks-office-11223344-vmss00000{number}",
            2,
            8 * GIB,
            {
                "label_node_kubernetes_io_instance_type": "Standard_D2s_v5",
                "label_kubernetes_azure_com_agentpool": OFFICE_POOL,
                "label_kubernetes_azure_com_scalesetpriority": "spot",
                "label_topology_kubernetes_io_zone": "westeurope-1",
                "label_env": "staging",
            },
            office_hours=True,
        )
        for number in (0, 1)
    ),
]


@dataclass
class Container:
    """One container of a pod: usage curves over the fleet's time grid and its pod spec."""

    name: str
    cpu_cores: np.ndarray
    memory_bytes: np.ndarray
    requests: dict[str, float]
    limits: dict[str, float]
    oom_at: datetime | None = None


@dataclass
class Pod:
    cluster: str
    namespace: str
    name: str
    node: str
    owner_kind: str
    owner_name: str
    start: datetime
    end: datetime
    containers: list[Container]
    transmit_bytes_per_second: float = 0.0


@dataclass
class Series:
    name: str
    labels: dict[str, str]
    values: np.ndarray
    """One value per time of the grid, NaN where the series has no sample."""


@dataclass
class Fleet:
    """The generated series, in the order they are written."""

    times: np.ndarray
    series: list[Series] = field(default_factory=list)

    def add(self, name: str, labels: dict[str, str], values: np.ndarray | float) -> None:
        array = np.broadcast_to(np.asarray(values, dtype=float), self.times.shape).copy()
        self.series.append(Series(name, labels, array))

    def write_openmetrics(self, path: Path) -> int:
        """Write the OpenMetrics text promtool backfills and return the sample count."""
        by_name: dict[str, list[Series]] = {}
        for series in self.series:
            by_name.setdefault(series.name, []).append(series)

        count = 0
        with path.open("w", encoding="utf-8") as out:
            for name in sorted(by_name):
                out.write(f"# TYPE {name} unknown\n")
                for series in by_name[name]:
                    count += _write_series(out, self.times, series)
            out.write("# EOF\n")
        return count


def _write_series(out: object, times: np.ndarray, series: Series) -> int:
    labels = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(series.labels.items()))
    prefix = f"{series.name}{{{labels}}} "
    present = ~np.isnan(series.values)
    lines = [
        f"{prefix}{value:.12g} {int(moment)}\n"
        for moment, value in zip(times[present], series.values[present], strict=True)
    ]
    out.write("".join(lines))  # type: ignore[attr-defined]
    return len(lines)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def time_grid() -> np.ndarray:
    """Unix seconds from ``START`` to ``END`` inclusive, every ``INTERVAL_SECONDS``."""
    count = DAYS * DAY_SECONDS // INTERVAL_SECONDS + 1
    return START.timestamp() + INTERVAL_SECONDS * np.arange(count, dtype=float)


def daily_sine(times: np.ndarray, base: float, amplitude: float) -> np.ndarray:
    """``base`` plus a sine of one day's period that peaks at 06:00 UTC."""
    return base + amplitude * np.sin(2 * math.pi * (times - START.timestamp()) / DAY_SECONDS)


def daily_wave(times: np.ndarray, base: float, p95: float) -> np.ndarray:
    """A daily sine around ``base`` whose 95th percentile over whole days is ``p95``.

    The 95th percentile of sin over a full period is sin(0.45 pi).
    """
    return daily_sine(times, base, (p95 - base) / math.sin(0.45 * math.pi))


def build_fleet(seed: int = 11) -> Fleet:
    """Generate every series of the fleet. The same seed gives the same text."""
    rng = np.random.default_rng(seed)
    fleet = Fleet(time_grid())
    pods = list(_pods(fleet.times, rng))
    for pod in pods:
        _write_pod(fleet, pod)
    _write_workloads(fleet)
    for node in NODES:
        _write_node(fleet, node, [pod for pod in pods if pod.node == node.name])
    _write_volumes(fleet)
    _write_gpu(fleet, rng)
    _write_services(fleet, pods)
    _write_disks(fleet)
    return fleet


def planted_pods(seed: int = 11) -> list[Pod]:
    """Return the pods ``build_fleet(seed)`` writes, with the same usage curves."""
    return list(_pods(time_grid(), np.random.default_rng(seed)))


def _noisy(rng: np.random.Generator, values: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(values + rng.normal(0.0, scale, values.shape), 0.0, None)


def _pods(times: np.ndarray, rng: np.random.Generator) -> Iterator[Pod]:
    rollout = START + timedelta(days=4)
    api_cpu = _noisy(rng, daily_wave(times, 0.25, API_CPU_P95_CORES), 0.004)
    api_memory = daily_sine(times, 300 * MIB, API_MEMORY_PEAK_BYTES - 300 * MIB)

    def api(name: str) -> Container:
        return Container(
            name,
            api_cpu,
            api_memory,
            {"cpu": API_CPU_REQUEST_CORES, "memory": API_MEMORY_REQUEST_BYTES},
            {"cpu": API_CPU_LIMIT_CORES, "memory": 2 * GIB},
        )

    for replicaset, start, end in (
        ("api-6c8d7f9b4", START, rollout),
        ("api-7d9f8b6c5", rollout, RUNNING),
    ):
        for suffix, node in (("k2x9p", "ip-10-0-1-10"), ("m4q7z", "ip-10-0-1-11")):
            yield Pod(
                PROD, "checkout", f"{replicaset}-{suffix}", node, "ReplicaSet", replicaset,
                start, end, [api("api")], API_TRANSMIT_BYTES_PER_SECOND,
            )  # fmt: skip

    yield Pod(
        PROD, "checkout", "redis-0", "ip-10-0-1-11", "StatefulSet", "redis", START, RUNNING,
        [Container("redis", _noisy(rng, np.full(times.shape, 0.1), 0.002), _redis_memory(times),
                   {"cpu": 0.25, "memory": 256 * MIB}, {"memory": REDIS_MEMORY_LIMIT_BYTES},
                   oom_at=REDIS_OOM_AT)],
    )  # fmt: skip

    step = times >= REPORT_STEP_AT.timestamp()
    report_cpu = np.where(step, REPORT_CPU_AFTER, REPORT_CPU_BEFORE)
    yield Pod(
        PROD, "batch", "report-5f6d7c8b9-x1y2z", GPU_NODE, "ReplicaSet", "report-5f6d7c8b9",
        START, RUNNING,
        [Container("report", _noisy(rng, report_cpu, 0.01), np.full(times.shape, 1 * GIB),
                   {"cpu": 1.0, "memory": 2 * GIB}, {"memory": 4 * GIB})],
    )  # fmt: skip

    yield Pod(
        PROD, "data", "archive-0", "ip-10-0-1-10", "StatefulSet", "archive", START, RUNNING,
        [Container("archive", _noisy(rng, np.full(times.shape, 0.02), 0.001),
                   np.full(times.shape, 64 * MIB), {"cpu": 0.5, "memory": 512 * MIB}, {})],
    )  # fmt: skip

    for suffix, created in (
        ("aaaaa", FRONTEND_CREATED),
        ("bbbbb", FRONTEND_SCALED),
        ("ccccc", FRONTEND_SCALED),
    ):
        yield Pod(
            PROD, "web", f"frontend-84b5c6d7e8-{suffix}", "ip-10-0-1-10", "ReplicaSet",
            "frontend-84b5c6d7e8", created, RUNNING,
            [Container("nginx", _noisy(rng, np.full(times.shape, 0.1), 0.002),
                       np.full(times.shape, 50 * MIB), {"cpu": 0.5, "memory": 256 * MIB}, {})],
        )  # fmt: skip

    system = "aks-system-12345678-vmss000000"
    yield Pod(
        DEV, "sandbox", "toy-6d5c4b3a2-qwert", system, "ReplicaSet", "toy-6d5c4b3a2",
        START, RUNNING,
        [Container("toy", _noisy(rng, np.full(times.shape, 0.05), 0.001),
                   np.full(times.shape, 32 * MIB), {"cpu": 1.0, "memory": 512 * MIB}, {})],
    )  # fmt: skip
    yield Pod(
        DEV, "checkout", "api-55d4c3b2a1-zzzzz", system, "ReplicaSet", "api-55d4c3b2a1",
        START, RUNNING,
        [Container("api", _noisy(rng, np.full(times.shape, 0.05), 0.001),
                   np.full(times.shape, 100 * MIB), {"cpu": 0.5, "memory": 256 * MIB}, {})],
        1e4,
    )  # fmt: skip


def _redis_memory(times: np.ndarray) -> np.ndarray:
    """200 MiB, rising on day 5 to the 512 MiB limit at the OOM kill, then 150 MiB."""
    grow_from = (START + timedelta(days=5)).timestamp()
    oom = REDIS_OOM_AT.timestamp()
    memory = np.full(times.shape, 200 * MIB)
    rising = (times >= grow_from) & (times <= oom)
    progress = (times[rising] - grow_from) / (oom - grow_from)
    memory[rising] = 200 * MIB + progress * (REDIS_MEMORY_LIMIT_BYTES - 200 * MIB)
    memory[times > oom] = 150 * MIB
    return memory


def _alive(times: np.ndarray, pod: Pod) -> np.ndarray:
    return (times >= pod.start.timestamp()) & (times < pod.end.timestamp())


def _counter(rate: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``rate`` per interval, starting at 0 when the series appears."""
    increments = np.where(alive, rate * INTERVAL_SECONDS, 0.0)
    increments[np.argmax(alive)] = 0.0
    return np.where(alive, np.cumsum(increments), np.nan)


def _write_pod(fleet: Fleet, pod: Pod) -> None:
    alive = _alive(fleet.times, pod)
    base = {"cluster": pod.cluster, "namespace": pod.namespace, "pod": pod.name}
    owner = {"owner_kind": pod.owner_kind, "owner_name": pod.owner_name}
    fleet.add("kube_pod_owner", base | owner | {"owner_is_controller": "true"}, _on(alive))
    fleet.add("kube_pod_info", base | {"node": pod.node, "created_by_kind": pod.owner_kind,
                                       "created_by_name": pod.owner_name}, _on(alive))  # fmt: skip

    pod_cpu = np.zeros(fleet.times.shape)
    pod_memory = np.zeros(fleet.times.shape)
    for container in pod.containers:
        _write_container(fleet, base, pod.node, alive, container)
        pod_cpu += container.cpu_cores
        pod_memory += container.memory_bytes

    # cAdvisor's pod-level cgroup series (container="") must not count twice.
    fleet.add("container_cpu_usage_seconds_total", base | {"container": ""},
              _counter(pod_cpu, alive))  # fmt: skip
    fleet.add("container_memory_working_set_bytes", base | {"container": ""},
              np.where(alive, pod_memory, np.nan))  # fmt: skip
    if pod.transmit_bytes_per_second:
        rate = np.full(fleet.times.shape, pod.transmit_bytes_per_second)
        fleet.add("container_network_transmit_bytes_total",
                  base | {"container": "", "interface": "eth0"}, _counter(rate, alive))  # fmt: skip
        loopback = base | {"container": "", "interface": "lo"}
        fleet.add("container_network_transmit_bytes_total", loopback, _counter(rate * 10, alive))


def _on(alive: np.ndarray, value: float = 1.0) -> np.ndarray:
    return np.where(alive, value, np.nan)


def _write_container(
    fleet: Fleet, base: dict[str, str], node: str, alive: np.ndarray, container: Container
) -> None:
    labels = base | {"container": container.name}
    fleet.add("container_cpu_usage_seconds_total", labels, _counter(container.cpu_cores, alive))
    fleet.add("container_memory_working_set_bytes", labels,
              np.where(alive, container.memory_bytes, np.nan))  # fmt: skip

    killed = np.zeros(fleet.times.shape)
    if container.oom_at is not None:
        killed = (fleet.times >= container.oom_at.timestamp()).astype(float)
        reason = labels | {"reason": "OOMKilled"}
        fleet.add("kube_pod_container_status_last_terminated_reason", reason,
                  np.where(alive & (killed > 0), 1.0, np.nan))  # fmt: skip
    fleet.add("container_oom_events_total", labels, np.where(alive, killed, np.nan))
    fleet.add("kube_pod_container_status_restarts_total", labels, np.where(alive, killed, np.nan))

    units = {"cpu": "core", "memory": "byte", "nvidia_com_gpu": "integer"}
    for metric, values in (
        ("kube_pod_container_resource_requests", container.requests),
        ("kube_pod_container_resource_limits", container.limits),
    ):
        for resource, amount in values.items():
            spec = labels | {"node": node, "resource": resource, "unit": units[resource]}
            fleet.add(metric, spec, _on(alive, amount))


def _write_workloads(fleet: Fleet) -> None:
    times = fleet.times
    always = np.ones(times.shape, dtype=bool)
    rollout = START + timedelta(days=4)
    for cluster, namespace, replicaset, deployment, created in (
        (PROD, "checkout", "api-6c8d7f9b4", "api", START),
        (PROD, "checkout", "api-7d9f8b6c5", "api", rollout),
        (PROD, "batch", "report-5f6d7c8b9", "report", START),
        (PROD, "web", "frontend-84b5c6d7e8", "frontend", FRONTEND_CREATED),
        (DEV, "sandbox", "toy-6d5c4b3a2", "toy", START),
        (DEV, "checkout", "api-55d4c3b2a1", "api", START),
    ):
        labels = {"cluster": cluster, "namespace": namespace, "replicaset": replicaset,
                  "owner_kind": "Deployment", "owner_name": deployment,
                  "owner_is_controller": "true"}  # fmt: skip
        fleet.add("kube_replicaset_owner", labels, _on(times >= created.timestamp()))

    frontend = np.where(times >= FRONTEND_SCALED.timestamp(), 3.0, 1.0)
    frontend[times < FRONTEND_CREATED.timestamp()] = np.nan
    for cluster, namespace, name, replicas in (
        (PROD, "checkout", "api", np.full(times.shape, 2.0)),
        (PROD, "batch", "report", np.ones(times.shape)),
        (PROD, "web", "frontend", frontend),
        (DEV, "sandbox", "toy", np.ones(times.shape)),
        (DEV, "checkout", "api", np.ones(times.shape)),
    ):
        labels = {"cluster": cluster, "namespace": namespace, "deployment": name}
        fleet.add("kube_deployment_spec_replicas", labels, replicas)
    for namespace, name in (("checkout", "redis"), ("data", "archive")):
        labels = {"cluster": PROD, "namespace": namespace, "statefulset": name}
        fleet.add("kube_statefulset_replicas", labels, _on(always))

    hpa = {"cluster": PROD, "namespace": "checkout", "horizontalpodautoscaler": "api"}
    target = {"scaletargetref_kind": "Deployment", "scaletargetref_name": "api",
              "scaletargetref_api_version": "apps/v1"}  # fmt: skip
    fleet.add("kube_horizontalpodautoscaler_info", hpa | target, 1.0)
    fleet.add("kube_horizontalpodautoscaler_spec_min_replicas", hpa, float(API_HPA_MIN))
    fleet.add("kube_horizontalpodautoscaler_spec_max_replicas", hpa, float(API_HPA_MAX))
    cpu_target = {"metric_name": "cpu", "metric_target_type": "utilization"}
    fleet.add("kube_horizontalpodautoscaler_spec_target_metric", hpa | cpu_target,
              API_HPA_CPU_TARGET_PERCENT)  # fmt: skip


def node_busy_cores(node: Node, pods: list[Pod], times: np.ndarray) -> np.ndarray:
    """CPU busy on a node: its pods' usage while they run plus ``NODE_OVERHEAD_CORES``."""
    busy = np.full(times.shape, NODE_OVERHEAD_CORES)
    for pod in pods:
        alive = _alive(times, pod)
        for container in pod.containers:
            busy += np.where(alive, container.cpu_cores, 0.0)
    return busy


def _write_node(fleet: Fleet, node: Node, pods: list[Pod]) -> None:
    times = fleet.times
    cluster = {"cluster": node.cluster}
    fleet.add("kube_node_labels", cluster | {"node": node.name} | node.labels, 1.0)
    allocatable = {("cpu", "core"): node.cpus - 0.08, ("memory", "byte"): node.memory_bytes - GIB,
                   ("pods", "integer"): 110.0}  # fmt: skip
    if node.gpus:
        allocatable[("nvidia_com_gpu", "integer")] = float(node.gpus)
    for (resource, unit), amount in allocatable.items():
        labels = cluster | {"node": node.name, "resource": resource, "unit": unit}
        fleet.add("kube_node_status_allocatable", labels, amount)

    always = np.ones(times.shape, dtype=bool)
    # _counter adds rate[i] over the interval that ends at sample i, so the start of that
    # interval decides whether it falls in office hours.
    office = office_busy_cores(times - INTERVAL_SECONDS)
    busy = office if node.office_hours else node_busy_cores(node, pods, times)
    busy_share = busy / node.cpus
    for cpu in range(node.cpus):
        labels = cluster | {"instance": node.name, "cpu": str(cpu)}
        fleet.add("node_cpu_seconds_total", labels | {"mode": "user"}, _counter(busy_share, always))
        fleet.add("node_cpu_seconds_total", labels | {"mode": "idle"},
                  _counter(1.0 - busy_share, always))  # fmt: skip

    used = np.full(times.shape, NODE_OVERHEAD_BYTES)
    for pod in pods:
        alive = _alive(times, pod)
        for container in pod.containers:
            used += np.where(alive, container.memory_bytes, 0.0)
    instance = cluster | {"instance": node.name}
    fleet.add("node_memory_MemTotal_bytes", instance, node.memory_bytes)
    fleet.add("node_memory_MemAvailable_bytes", instance, node.memory_bytes - used)


def _write_volumes(fleet: Fleet) -> None:
    for claim, requested, used, capacity in (
        ("data-archive-0", ARCHIVE_CAPACITY_BYTES, ARCHIVE_USED_BYTES, ARCHIVE_CAPACITY_BYTES),
        ("old-export", OLD_EXPORT_REQUESTED_BYTES, None, None),
    ):
        labels = {"cluster": PROD, "namespace": "data", "persistentvolumeclaim": claim}
        fleet.add("kube_persistentvolumeclaim_info",
                  labels | {"storageclass": "gp3", "volumename": f"pvc-{claim}"}, 1.0)  # fmt: skip
        fleet.add("kube_persistentvolumeclaim_resource_requests_storage_bytes", labels, requested)
        if used is not None:
            kubelet = labels | {"node": "ip-10-0-1-10"}
            fleet.add("kubelet_volume_stats_used_bytes", kubelet, used)
            fleet.add("kubelet_volume_stats_capacity_bytes", kubelet, capacity)


def _write_gpu(fleet: Fleet, rng: np.random.Generator) -> None:
    utilisation = np.round(_noisy(rng, np.full(fleet.times.shape, GPU_UTIL_MEAN_PERCENT), 0.3))
    labels = {"cluster": PROD, "Hostname": GPU_NODE, "gpu": "0", "device": "nvidia0",
              "UUID": "GPU-3f1c2a9e-5b7d-4c1e-9a2f-0d8e6b4c2a1f",
              "modelName": "NVIDIA A10G"}  # fmt: skip
    fleet.add("DCGM_FI_DEV_GPU_UTIL", labels, utilisation)


def office_busy_cores(times: np.ndarray) -> np.ndarray:
    """``OFFICE_BUSY_CORES`` Mon-Fri from 08:00 to 20:00 UTC, ``OFFICE_IDLE_CORES`` otherwise."""
    moments = times.astype("datetime64[s]")
    weekday = (moments.astype("datetime64[D]").view("int64") + 3) % 7
    hour = (moments - moments.astype("datetime64[D]")).astype("int64") // 3600
    working = (weekday < 5) & (hour >= OFFICE_START_HOUR) & (hour < OFFICE_END_HOUR)
    return np.where(working, OFFICE_BUSY_CORES, OFFICE_IDLE_CORES)


def pod_ip(index: int) -> str:
    return f"10.1.{index // 250}.{index % 250 + 2}"


def _write_services(fleet: Fleet, pods: list[Pod]) -> None:
    """Write Services, Endpoints, pod IPs and received bytes for the load balancer cases."""
    times = fleet.times
    always = np.ones(times.shape, dtype=bool)
    ips = {pod.name: pod_ip(index) for index, pod in enumerate(pods)}
    for pod in pods:
        labels = {"cluster": pod.cluster, "namespace": pod.namespace, "pod": pod.name}
        alive = _alive(times, pod)
        fleet.add("kube_pod_ips", labels | {"ip": ips[pod.name], "ip_family": "4"}, _on(alive))
        receive_rates = {"api": API_RECEIVE_BYTES_PER_SECOND,
                         "archive": ARCHIVE_RECEIVE_BYTES_PER_SECOND}  # fmt: skip
        rate = receive_rates.get(pod.containers[0].name)
        if rate is not None and pod.cluster == PROD:
            counter = _counter(np.full(times.shape, rate), alive)
            fleet.add("container_network_receive_bytes_total",
                      labels | {"container": "", "interface": "eth0"}, counter)  # fmt: skip

    toy_alive = times >= TOY_LB_CREATED.timestamp()
    for cluster, namespace, name, kind, alive in (
        (PROD, "checkout", "api-public", "LoadBalancer", always),
        (PROD, "checkout", "api-internal", "ClusterIP", always),
        (PROD, "data", "archive-lb", "LoadBalancer", always),
        (PROD, "web", "legacy-lb", "LoadBalancer", always),
        (DEV, "sandbox", "toy-lb", "LoadBalancer", toy_alive),
    ):
        labels = {"cluster": cluster, "namespace": namespace, "service": name}
        fleet.add("kube_service_spec_type", labels | {"type": kind}, _on(alive))
        fleet.add("kube_endpoint_info", {"cluster": cluster, "namespace": namespace,
                                         "endpoint": name}, _on(alive))  # fmt: skip
        if kind == "LoadBalancer":
            ingress = labels | {"hostname": f"{name}.elb.example"}
            fleet.add("kube_service_status_load_balancer_ingress", ingress, _on(alive))

    for endpoint, owner in (("api-public", "api"), ("api-internal", "api"),
                            ("archive-lb", "archive")):  # fmt: skip
        for pod in pods:
            if pod.cluster == PROD and pod.containers[0].name == owner:
                labels = {"cluster": PROD, "namespace": pod.namespace, "endpoint": endpoint,
                          "ip": ips[pod.name], "ready": "true"}  # fmt: skip
                fleet.add("kube_endpoint_address", labels, _on(_alive(times, pod)))
    legacy = {"cluster": PROD, "namespace": "web", "endpoint": "legacy-lb"}
    fleet.add("kube_endpoint_address_available", legacy, 0.0)


def _write_disks(fleet: Fleet) -> None:
    """Disk counters of ``DISK_NODE``: a data disk peaking at ``DISK_PEAK_IOPS`` and an OS disk."""
    always = np.ones(fleet.times.shape, dtype=bool)
    data_iops = daily_sine(fleet.times, (DISK_PEAK_IOPS + 50) / 2, (DISK_PEAK_IOPS - 50) / 2)
    os_iops = np.full(fleet.times.shape, DISK_OS_IOPS)
    for device, iops in (("nvme1n1", data_iops), ("nvme0n1", os_iops)):
        labels = {"cluster": PROD, "instance": DISK_NODE, "device": device}
        fleet.add("node_disk_reads_completed_total", labels, _counter(iops / 3, always))
        fleet.add("node_disk_writes_completed_total", labels, _counter(iops * 2 / 3, always))
