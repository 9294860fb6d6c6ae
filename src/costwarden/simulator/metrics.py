"""Kubernetes metrics of simulated clusters as OpenMetrics text, for a Prometheus backfill.

``write_openmetrics`` renders the series that cAdvisor, kube-state-metrics, the kubelet,
node-exporter and the DCGM exporter would have exported for each cluster plan, every
``interval_seconds`` for ``days`` days ending at ``end``. Each series has a ``cluster`` label,
and node labels carry the Palette machine pool name as the provider's node pool label (EKS
``eks.amazonaws.com/nodegroup``, AKS ``kubernetes.azure.com/agentpool``, GKE
``cloud.google.com/gke-nodepool``), so pools grouped from node labels match Palette's pools.

The output is streamed: each cluster's series go to one spool file per metric family, and the
families are then joined in name order, because OpenMetrics wants the samples of a family
together. Only one cluster's series are in memory at a time. Load the result with
``promtool tsdb create-blocks-from openmetrics FILE DATA_DIR``.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import numpy as np

from costwarden.simulator.waste_plans import (
    ALLOCATABLE_SHARE,
    GIB,
    IDLE_NODE_OVERHEAD_CORES,
    MIB,
    NODE_OVERHEAD_BYTES,
    NODE_OVERHEAD_CORES,
    WEEKDAY_IDLE_SHARE,
    WORK_HOURS,
    PoolPlan,
    VolumePlan,
    WasteClusterPlan,
    WorkloadPlan,
    sized,
)
from costwarden.sources.prices import INSTANCE_SHAPES, provider_of

logger = logging.getLogger(__name__)

DEFAULT_DAYS = 8
DEFAULT_INTERVAL_SECONDS = 300
DAY_SECONDS = 86_400
OOM_AFTER = timedelta(days=5, hours=18)
"""Time after the first sample at which an ``oom_killed`` workload hits its memory limit."""
OS_DISK_IOPS = 20.0

POOL_LABELS = {
    "aws": "label_eks_amazonaws_com_nodegroup",
    "azure": "label_kubernetes_azure_com_agentpool",
    "gcp": "label_cloud_google_com_gke_nodepool",
}
CAPACITY_LABELS = {
    "aws": ("label_eks_amazonaws_com_capacity_type", {"on-demand": "ON_DEMAND", "spot": "SPOT"}),
    "azure": (
        "label_kubernetes_azure_com_scalesetpriority", {"on-demand": "regular", "spot": "spot"}
    ),
    "gcp": ("label_cloud_google_com_gke_spot", {"on-demand": "false", "spot": "true"}),
}  # fmt: skip

Labels = dict[str, str]
SeriesOut = tuple[str, Labels, np.ndarray]


@dataclass(frozen=True, slots=True)
class Node:
    """One node of a pool, with its index in the cluster for names and addresses."""

    pool: PoolPlan
    name: str
    index: int
    vcpus: int
    memory_bytes: float
    gpus: int


@dataclass(frozen=True, slots=True)
class Pod:
    """One replica of a workload, placed on ``node``."""

    workload: WorkloadPlan
    name: str
    replicaset: str | None
    node: Node
    ip: str
    replica: int


class ClusterSeries:
    """The series of one cluster plan on a time grid, built in family order of the exporter."""

    def __init__(self, plan: WasteClusterPlan, times: np.ndarray, seed: int) -> None:
        self.plan = plan
        self.times = times
        self.provider = provider_of(plan.cloud_type)
        self.rng = np.random.default_rng([seed, zlib.crc32(plan.name.encode())])
        self.nodes = self._nodes()
        self.pods = self._pods()
        self.cpu = {pod.name: self._cpu(pod.workload) for pod in self.pods}
        self.memory = {pod.name: self._memory(pod.workload) for pod in self.pods}

    def series(self) -> Iterator[SeriesOut]:
        yield from self._node_series()
        yield from self._workload_series()
        for pod in self.pods:
            yield from self._pod_series(pod)
        yield from self._volume_series()
        yield from self._service_series()

    def _nodes(self) -> list[Node]:
        nodes = []
        for pool_index, pool in enumerate(self.plan.pools):
            shape = INSTANCE_SHAPES[self.provider][pool.instance_type]
            for number in range(pool.nodes):
                name = _node_name(self.plan, pool_index, pool, number)
                memory = shape.memory_gib * GIB
                nodes.append(Node(pool, name, len(nodes), shape.vcpus, memory, shape.gpus))
        return nodes

    def _pods(self) -> list[Pod]:
        pods = []
        placed: dict[str, int] = {}
        for workload in self.plan.workloads:
            members = [node for node in self.nodes if node.pool.name == workload.pool]
            replicaset = None
            if workload.kind == "Deployment":
                replicaset = f"{workload.name}-{_digest(self.plan.name + workload.name, 10)}"
            for replica in range(workload.replicas):
                offset = placed.get(workload.pool, 0)
                node = members[(offset + replica) % len(members)]
                name = (
                    f"{replicaset}-{_digest(f'{replicaset}{replica}', 5)}"
                    if replicaset
                    else f"{workload.name}-{replica}"
                )
                ip = f"10.{100 + node.index // 250}.{node.index % 250}.{len(pods) % 250 + 2}"
                pods.append(Pod(workload, name, replicaset, node, ip, replica))
            placed[workload.pool] = placed.get(workload.pool, 0) + workload.replicas
        return pods

    def _cpu(self, workload: WorkloadPlan) -> np.ndarray:
        """Return per-pod CPU cores whose 95th percentile over whole days is the plan's p95."""
        p95 = workload.cpu_p95_cores
        if workload.cpu_pattern == "weekday":
            busy = working_hours(self.times)
            curve = np.where(busy, p95, p95 * WEEKDAY_IDLE_SHARE)
        else:
            base = 0.7 * p95
            curve = daily_sine(self.times, base, (p95 - base) / math.sin(0.45 * math.pi))
        noise = self.rng.normal(0.0, 0.003 * p95, self.times.shape)
        return np.clip(curve + noise, 0.0, None)

    def _memory(self, workload: WorkloadPlan) -> np.ndarray:
        """Return a working set that peaks at the plan's peak, or climbs to an OOM kill."""
        peak = workload.memory_peak_bytes
        memory = daily_sine(self.times, 0.9 * peak, 0.1 * peak)
        if workload.oom_killed and workload.memory_limit_bytes:
            oom = self.times[0] + OOM_AFTER.total_seconds()
            climb_from = oom - DAY_SECONDS * 0.75
            rising = (self.times >= climb_from) & (self.times <= oom)
            progress = (self.times[rising] - climb_from) / (oom - climb_from)
            memory[rising] = peak + progress * (workload.memory_limit_bytes - peak)
            memory[self.times > oom] = 0.75 * peak
        return memory

    def _node_series(self) -> Iterator[SeriesOut]:
        cluster = {"cluster": self.plan.name}
        mounted = self._mounts()
        for node in self.nodes:
            node_labels = cluster | {"node": node.name}
            yield "kube_node_labels", node_labels | self._node_labels(node), self._const(1.0)
            allocatable = {("cpu", "core"): node.vcpus * ALLOCATABLE_SHARE,
                           ("memory", "byte"): node.memory_bytes * ALLOCATABLE_SHARE,
                           ("pods", "integer"): 110.0}  # fmt: skip
            if node.gpus:
                allocatable[("nvidia_com_gpu", "integer")] = float(node.gpus)
            for (resource, unit), amount in allocatable.items():
                labels = node_labels | {"resource": resource, "unit": unit}
                yield "kube_node_status_allocatable", labels, self._const(amount)
            yield from self._node_exporter(node, cluster | {"instance": node.name}, mounted)
            if node.gpus:
                yield from self._dcgm(node)

    def _node_labels(self, node: Node) -> Labels:
        capacity_label, values = CAPACITY_LABELS[self.provider]
        return {
            "label_node_kubernetes_io_instance_type": node.pool.instance_type,
            "label_topology_kubernetes_io_zone": self.plan.zone,
            POOL_LABELS[self.provider]: node.pool.name,
            capacity_label: values[node.pool.capacity_type],
            **({"label_nvidia_com_gpu_product": "NVIDIA-A10G"} if node.gpus else {}),
        }

    def _node_exporter(
        self, node: Node, labels: Labels, mounted: dict[str, list[VolumePlan]]
    ) -> Iterator[SeriesOut]:
        overhead = IDLE_NODE_OVERHEAD_CORES if node.pool.idle else NODE_OVERHEAD_CORES
        busy = np.full(self.times.shape, overhead)
        used = np.full(self.times.shape, float(NODE_OVERHEAD_BYTES))
        for pod in self.pods:
            if pod.node is node:
                busy += self.cpu[pod.name]
                used += self.memory[pod.name]
        share = np.clip(busy / node.vcpus, 0.0, 1.0)
        for cpu in range(node.vcpus):
            core = labels | {"cpu": str(cpu)}
            yield "node_cpu_seconds_total", core | {"mode": "user"}, self._counter(share)
            yield "node_cpu_seconds_total", core | {"mode": "idle"}, self._counter(1.0 - share)
        yield "node_memory_MemTotal_bytes", labels, self._const(node.memory_bytes)
        yield "node_memory_MemAvailable_bytes", labels, node.memory_bytes - used

        disks = [("sda", OS_DISK_IOPS)]
        disks += [
            (f"sd{chr(ord('c') + i)}", v.iops) for i, v in enumerate(mounted.get(node.name, []))
        ]
        for device, iops in disks:
            rate = np.full(self.times.shape, iops / 2)
            for metric in ("node_disk_reads_completed_total", "node_disk_writes_completed_total"):
                yield metric, labels | {"device": device}, self._counter(rate)

    def _dcgm(self, node: Node) -> Iterator[SeriesOut]:
        for gpu in range(node.gpus):
            labels = {"cluster": self.plan.name, "Hostname": node.name, "gpu": str(gpu),
                      "device": f"nvidia{gpu}", "modelName": "NVIDIA A10G",
                      "UUID": f"GPU-{_digest(node.name + str(gpu), 32)}"}  # fmt: skip
            utilisation = np.round(np.clip(self.rng.normal(0.5, 0.3, self.times.shape), 0, None))
            yield "DCGM_FI_DEV_GPU_UTIL", labels, utilisation

    def _workload_series(self) -> Iterator[SeriesOut]:
        for workload in self.plan.workloads:
            base = {"cluster": self.plan.name, "namespace": workload.namespace}
            if workload.kind == "Deployment":
                replicaset = next(p.replicaset for p in self.pods if p.workload is workload)
                owner = {"replicaset": replicaset or "", "owner_kind": "Deployment",
                         "owner_name": workload.name, "owner_is_controller": "true"}  # fmt: skip
                yield "kube_replicaset_owner", base | owner, self._const(1.0)
                yield "kube_deployment_spec_replicas", base | {"deployment": workload.name}, \
                    self._const(float(workload.replicas))  # fmt: skip
            else:
                yield "kube_statefulset_replicas", base | {"statefulset": workload.name}, \
                    self._const(float(workload.replicas))  # fmt: skip
            if workload.hpa is not None:
                hpa = base | {"horizontalpodautoscaler": workload.name}
                target = {
                    "scaletargetref_kind": workload.kind,
                    "scaletargetref_name": workload.name,
                    "scaletargetref_api_version": "apps/v1",
                }
                yield "kube_horizontalpodautoscaler_info", hpa | target, self._const(1.0)
                yield "kube_horizontalpodautoscaler_spec_min_replicas", hpa, \
                    self._const(float(workload.hpa[0]))  # fmt: skip
                yield "kube_horizontalpodautoscaler_spec_max_replicas", hpa, \
                    self._const(float(workload.hpa[1]))  # fmt: skip

    def _pod_series(self, pod: Pod) -> Iterator[SeriesOut]:
        workload = pod.workload
        base = {"cluster": self.plan.name, "namespace": workload.namespace, "pod": pod.name}
        owner_kind, owner_name = (
            ("ReplicaSet", pod.replicaset) if pod.replicaset else (workload.kind, workload.name)
        )
        owner = {"owner_kind": owner_kind, "owner_name": owner_name, "owner_is_controller": "true"}
        yield "kube_pod_owner", base | owner, self._const(1.0)
        info = {"node": pod.node.name, "created_by_kind": owner_kind, "created_by_name": owner_name,
                "pod_ip": pod.ip, "host_ip": ""}  # fmt: skip
        yield "kube_pod_info", base | info, self._const(1.0)

        container = base | {"container": workload.container}
        yield "container_cpu_usage_seconds_total", container, self._counter(self.cpu[pod.name])
        yield "container_cpu_usage_seconds_total", base | {"container": ""}, \
            self._counter(self.cpu[pod.name])  # fmt: skip
        yield "container_memory_working_set_bytes", container, self.memory[pod.name]
        yield "container_memory_working_set_bytes", base | {"container": ""}, self.memory[pod.name]
        network = base | {"container": "", "interface": "eth0"}
        traffic = np.full(self.times.shape, workload.receive_bytes_per_second)
        yield "container_network_receive_bytes_total", network, self._counter(traffic)
        yield "container_network_transmit_bytes_total", network, self._counter(traffic / 4)
        yield from self._oom_series(workload, container)

        spec = container | {"node": pod.node.name}
        requests = {("cpu", "core"): workload.cpu_request_cores,
                    ("memory", "byte"): workload.memory_request_bytes}  # fmt: skip
        for (resource, unit), amount in requests.items():
            labels = spec | {"resource": resource, "unit": unit}
            yield "kube_pod_container_resource_requests", labels, self._const(amount)
        if workload.memory_limit_bytes is not None:
            labels = spec | {"resource": "memory", "unit": "byte"}
            yield "kube_pod_container_resource_limits", labels, \
                self._const(workload.memory_limit_bytes)  # fmt: skip

    def _oom_series(self, workload: WorkloadPlan, container: Labels) -> Iterator[SeriesOut]:
        killed = np.zeros(self.times.shape)
        if workload.oom_killed:
            killed = (self.times > self.times[0] + OOM_AFTER.total_seconds()).astype(float)
            reason = container | {"reason": "OOMKilled"}
            yield "kube_pod_container_status_last_terminated_reason", reason, \
                np.where(killed > 0, 1.0, np.nan)  # fmt: skip
        yield "container_oom_events_total", container, killed
        yield "kube_pod_container_status_restarts_total", container, killed

    def _mounts(self) -> dict[str, list[VolumePlan]]:
        """Map node names to the claims their pods mount."""
        mounted: dict[str, list[VolumePlan]] = {}
        for pod in self.pods:
            claims = pod.workload.claims
            if pod.replica < len(claims):
                mounted.setdefault(pod.node.name, []).append(self.plan.volume(claims[pod.replica]))
        return mounted

    def _volume_series(self) -> Iterator[SeriesOut]:
        mounted_on = {
            volume.claim: node for node, volumes in self._mounts().items() for volume in volumes
        }
        for volume in self.plan.volumes:
            labels = {"cluster": self.plan.name, "namespace": volume.namespace,
                      "persistentvolumeclaim": volume.claim}  # fmt: skip
            info = {
                "storageclass": volume.storage_class,
                "volumename": f"pvc-{_digest(volume.claim, 12)}",
            }
            size = volume.size_gib * GIB
            yield "kube_persistentvolumeclaim_info", labels | info, self._const(1.0)
            yield "kube_persistentvolumeclaim_resource_requests_storage_bytes", labels, \
                self._const(size)  # fmt: skip
            node = mounted_on.get(volume.claim)
            if node is None:
                continue
            used = np.full(self.times.shape, float(volume.used_gib * GIB))
            if volume.growing:
                progress = (self.times - self.times[0]) / (self.times[-1] - self.times[0])
                used = np.round(volume.used_gib * GIB * (0.8 + 0.2 * progress))
            kubelet = labels | {"node": node}
            yield "kubelet_volume_stats_used_bytes", kubelet, used
            yield "kubelet_volume_stats_capacity_bytes", kubelet, self._const(size)

    def _service_series(self) -> Iterator[SeriesOut]:
        for service in self.plan.services:
            base = {"cluster": self.plan.name, "namespace": service.namespace}
            labels = base | {"service": service.name}
            yield "kube_service_info", labels | {"cluster_ip": "172.20.0.10"}, self._const(1.0)
            yield "kube_service_spec_type", labels | {"type": "LoadBalancer"}, self._const(1.0)
            ingress = labels | {"ip": service.ingress_ip, "hostname": ""}
            yield "kube_service_status_load_balancer_ingress", ingress, self._const(1.0)
            endpoint = base | {"endpoint": service.name}
            yield "kube_endpoint_info", endpoint, self._const(1.0)
            for pod in self.pods:
                if service.backends is not None and pod.workload.name == service.backends:
                    address = endpoint | {"ip": pod.ip, "ready": "true"}
                    yield "kube_endpoint_address", address, self._const(1.0)

    def _const(self, value: float) -> np.ndarray:
        return np.full(self.times.shape, float(value))

    def _counter(self, rate: np.ndarray) -> np.ndarray:
        """Return a counter starting at 0 that grows at ``rate[i]`` per second after sample i."""
        interval = self.times[1] - self.times[0] if len(self.times) > 1 else 0.0
        increments = np.asarray(rate, dtype=float)[:-1] * interval
        return np.round(np.concatenate(([0.0], np.cumsum(increments))), 3)


GENERATED_SHAPES = {
    "eks": ("us-east-1", "us-east-1a", "m5.large", "m5.2xlarge"),
    "aks": ("eastus", "eastus-1", "Standard_D2s_v5", "Standard_D8s_v5"),
}
"""Region, zone, system pool type and worker pool type of generated clusters per cloud type."""


def generated_clusters(
    count: int, workloads_per_cluster: int, seed: int = 0
) -> Iterator[WasteClusterPlan]:
    """Yield ``count`` clusters of right-sized Deployments, alternately EKS and AKS, for load tests.

    Each cluster has a two-node system pool and a worker pool sized to hold its workloads'
    requests, so these clusters plant no waste beyond the steady nodes that no commitment
    covers. The same arguments give the same clusters.
    """
    for index in range(count):
        cloud_type = "eks" if index % 2 == 0 else "aks"
        region, zone, system_type, worker_type = GENERATED_SHAPES[cloud_type]
        rng = np.random.default_rng([seed, 17, index])
        workloads = []
        cores = 0.0
        for number in range(workloads_per_cluster):
            replicas = int(rng.integers(1, 4))
            cpu = round(float(rng.uniform(0.05, 0.5)), 3)
            memory = float(rng.integers(128, 1024)) * MIB
            namespace = f"team-{number % 5}"
            workloads.append(sized(namespace, "Deployment", f"svc-{number:04d}", "worker-pool",
                                   replicas, cpu, memory))  # fmt: skip
            cores += cpu * replicas
        worker_cores = INSTANCE_SHAPES[provider_of(cloud_type)][worker_type].vcpus * 0.8
        workers = max(2, math.ceil(cores / worker_cores))
        yield WasteClusterPlan(
            name=f"bench-{index:04d}-{cloud_type}",
            cloud_type=cloud_type,
            region=region,
            zone=zone,
            environment="prod",
            pools=(PoolPlan("system-pool", system_type, 2, system=True),
                   PoolPlan("worker-pool", worker_type, workers)),
            workloads=tuple(workloads),
        )  # fmt: skip


def time_grid(end: datetime, days: int, interval_seconds: int) -> np.ndarray:
    """Return Unix seconds from ``end - days`` to ``end`` inclusive, every ``interval_seconds``."""
    count = days * DAY_SECONDS // interval_seconds + 1
    start = end.timestamp() - days * DAY_SECONDS
    return start + interval_seconds * np.arange(count, dtype=float)


def daily_sine(times: np.ndarray, base: float, amplitude: float) -> np.ndarray:
    """Return ``base`` plus a sine of one day's period that peaks at 06:00 UTC."""
    return base + amplitude * np.sin(2 * math.pi * (times % DAY_SECONDS) / DAY_SECONDS)


def working_hours(times: np.ndarray) -> np.ndarray:
    """Return True at the times that fall in weekday working hours (UTC)."""
    days = np.floor(times / DAY_SECONDS)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday, weekday 3 with Monday as 0.
    hour = (times % DAY_SECONDS) / 3600
    return (weekday < 5) & (hour >= WORK_HOURS[0]) & (hour < WORK_HOURS[1])


def write_openmetrics(
    out: Path | IO[str],
    clusters: Iterable[WasteClusterPlan],
    *,
    end: datetime,
    days: int = DEFAULT_DAYS,
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
    seed: int = 0,
) -> int:
    """Write the clusters' series as OpenMetrics text to a path or text stream.

    Returns the number of samples written. The same arguments give the same text.
    """
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware (UTC)")
    if days < 1 or interval_seconds < 1:
        raise ValueError(f"days and interval_seconds must be positive, got {days} and "
                         f"{interval_seconds}")  # fmt: skip
    times = time_grid(end, days, interval_seconds)
    stamps = np.array([f" {int(moment)}\n" for moment in times], dtype=object)
    with tempfile.TemporaryDirectory(prefix="costwarden-metrics-") as spool_dir:
        spool = _Spool(Path(spool_dir))
        count = 0
        for number, plan in enumerate(clusters, start=1):
            for name, labels, values in ClusterSeries(plan, times, seed).series():
                count += spool.write(name, labels, values, stamps)
            if number % 100 == 0:
                logger.info("rendered metrics of %d clusters, %d samples", number, count)
        spool.close()
        if isinstance(out, Path):
            with out.open("w", encoding="utf-8") as stream:
                spool.join(stream)
        else:
            spool.join(out)
    return count


class _Spool:
    """One temporary file per metric family, joined into one OpenMetrics text at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[str, IO[str]] = {}

    def write(self, name: str, labels: Labels, values: np.ndarray, stamps: np.ndarray) -> int:
        stream = self.files.get(name)
        if stream is None:
            stream = (self.directory / name).open("w", encoding="utf-8")
            self.files[name] = stream
        text = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items()))
        prefix = f"{name}{{{text}}} "
        present = ~np.isnan(values)
        lines = [
            f"{prefix}{value:.12g}{stamp}"
            for value, stamp in zip(values[present], stamps[present], strict=True)
        ]
        stream.write("".join(lines))
        return len(lines)

    def close(self) -> None:
        for stream in self.files.values():
            stream.close()

    def join(self, out: IO[str]) -> None:
        for name in sorted(self.files):
            out.write(f"# TYPE {name} unknown\n")
            with (self.directory / name).open(encoding="utf-8") as part:
                shutil.copyfileobj(part, out)
        out.write("# EOF\n")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _digest(text: str, length: int) -> str:
    """Return a stable lowercase hex name suffix of ``length`` characters."""
    value = format(zlib.crc32(text.encode()), "08x") * (length // 8 + 1)
    return value[:length]


def _node_name(plan: WasteClusterPlan, pool_index: int, pool: PoolPlan, number: int) -> str:
    provider = provider_of(plan.cloud_type)
    if provider == "azure":
        return (
            f"aks-{pool.name.replace('-', '')}-{_digest(plan.name + pool.name, 8)}-vmss{number:06d}"
        )
    if provider == "gcp":
        return f"gke-{plan.name}-{pool.name}-{_digest(pool.name, 8)}-{number:04d}"
    return f"ip-10-{pool_index}-{number // 250}-{number % 250 + 10}.ec2.internal"
