"""Resource usage read from metrics: containers, workloads, nodes, GPUs, volumes and namespaces.

Units are SI base units throughout: CPU in cores, memory and storage in bytes, GPU utilisation in
percent (0 to 100). Times are UTC. Every result of a usage query comes wrapped in a
``UsageResult`` that names the window, the history it required and the PromQL it ran, so a
recommendation built on it can carry that evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")


@dataclass(frozen=True, order=True, slots=True)
class WorkloadKey:
    """A workload: the controller at the top of a pod's owner chain.

    ``kind`` is the Kubernetes kind (``Deployment``, ``StatefulSet``, ``DaemonSet``, ``CronJob``,
    ``Job``, ``ReplicaSet``), or ``Pod`` for a pod that no controller owns. ``cluster`` is the
    value of the cluster label, and ``""`` when the series had none.
    """

    cluster: str
    namespace: str
    kind: str
    name: str


@dataclass(frozen=True, order=True, slots=True)
class ContainerKey:
    """One container of a workload's pod template, the unit of requests and limits."""

    workload: WorkloadKey
    container: str


@dataclass(frozen=True, order=True, slots=True)
class NodeKey:
    cluster: str
    node: str


@dataclass(frozen=True, order=True, slots=True)
class GpuKey:
    """One GPU of a node: its index on the node (the DCGM ``gpu`` label) and its UUID."""

    node: NodeKey
    gpu: str
    uuid: str


@dataclass(frozen=True, order=True, slots=True)
class VolumeKey:
    """A PersistentVolumeClaim."""

    cluster: str
    namespace: str
    claim: str


@dataclass(frozen=True, order=True, slots=True)
class NamespaceKey:
    cluster: str
    namespace: str


UsageKey = WorkloadKey | ContainerKey | NodeKey | GpuKey | VolumeKey | NamespaceKey


@dataclass(frozen=True, slots=True)
class ShortHistory:
    """Something whose metrics go back less far than a query needs, so it was left out.

    ``first_seen`` is the time of its oldest sample inside the window, and ``history`` the time
    from then to the end of the window.
    """

    key: UsageKey
    first_seen: datetime
    history: timedelta
    required: timedelta


@dataclass(frozen=True, slots=True)
class UsageResult(Generic[ItemT]):
    """The items one usage query found, with the evidence behind them.

    ``items`` contains everything with at least ``min_history`` of data in ``[start, end]``, and
    ``short_history`` everything else the query saw. ``queries`` are the PromQL expressions
    sent, with the label matchers of one batch shown as ``{...}``.
    """

    items: tuple[ItemT, ...]
    short_history: tuple[ShortHistory, ...]
    start: datetime
    end: datetime
    min_history: timedelta
    queries: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContainerCpu:
    """A container's CPU usage quantile over the window, in cores.

    ``cores`` is the largest of the per-pod quantiles, because requests apply to every pod.
    """

    container: ContainerKey
    quantile: float
    cores: float
    pods: int


@dataclass(frozen=True, slots=True)
class ContainerMemory:
    """A container's peak working set over the window, in bytes, the largest over its pods."""

    container: ContainerKey
    max_bytes: float
    pods: int


@dataclass(frozen=True, slots=True)
class ContainerResources:
    """A container's requests and limits, None where the pod spec sets none.

    Values come from the pods running at the end of the window, or from the last values in the
    window when no pod runs then. Across pods the largest value counts.
    """

    container: ContainerKey
    cpu_request_cores: float | None
    cpu_limit_cores: float | None
    memory_request_bytes: float | None
    memory_limit_bytes: float | None
    gpu_request: float | None
    pods: int


@dataclass(frozen=True, slots=True)
class OomKills:
    """Signs that a container ran out of memory in the window.

    ``oom_events`` counts the kernel OOM kills cAdvisor saw, ``restarts`` the restarts
    kube-state-metrics counted, and ``last_terminated_oom`` is true when a pod's last
    termination in the window had the reason ``OOMKilled``.
    """

    container: ContainerKey
    oom_events: int
    restarts: int
    last_terminated_oom: bool


@dataclass(frozen=True, slots=True)
class WorkloadReplicas:
    """A workload's desired replica count over the window, and its autoscaler's bounds."""

    workload: WorkloadKey
    current: int
    min: int
    max: int
    hpa: str | None
    hpa_min: int | None
    hpa_max: int | None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node's shape and placement from its labels, None where no known label gives it."""

    node: NodeKey
    instance_type: str | None
    node_pool: str | None
    capacity_type: str | None
    zone: str | None
    gpu_model: str | None
    cpu_allocatable_cores: float | None
    memory_allocatable_bytes: float | None
    gpu_allocatable: float | None


@dataclass(frozen=True, slots=True)
class NodeUsage:
    """A node's CPU and memory use over the window, from node-exporter.

    ``info`` is None when node-exporter's node name matches no kube-state-metrics node.
    """

    node: NodeKey
    info: NodeInfo | None
    cpu_mean_cores: float
    cpu_quantile_cores: float
    quantile: float
    memory_mean_bytes: float
    memory_max_bytes: float


@dataclass(frozen=True, slots=True)
class GpuDeviceUsage:
    """One GPU's utilisation over the window, from the DCGM exporter, in percent."""

    device: GpuKey
    model: str
    mean_percent: float
    max_percent: float


@dataclass(frozen=True, slots=True)
class GpuNodeWorkloads:
    """A node with allocatable GPUs and the workloads whose pods ran on it in the window.

    ``gpu_workloads`` requested at least one GPU, ``other_workloads`` none.
    """

    node: NodeKey
    gpu_allocatable: float
    gpu_workloads: tuple[WorkloadKey, ...]
    other_workloads: tuple[WorkloadKey, ...]


@dataclass(frozen=True, slots=True)
class VolumeUsage:
    """A PersistentVolumeClaim's size and use over the window, in bytes.

    ``mounted`` is false when the kubelet reported no usage for it in the window, which happens
    when no running pod mounts it. The used figures are then None.
    """

    volume: VolumeKey
    storage_class: str | None
    requested_bytes: float | None
    capacity_bytes: float | None
    used_last_bytes: float | None
    used_min_bytes: float | None
    used_max_bytes: float | None
    mounted: bool


@dataclass(frozen=True, slots=True)
class NetworkEgress:
    """Bytes a workload's pods sent over the window, and that total per day of data."""

    workload: WorkloadKey
    bytes: float
    bytes_per_day: float
    pods: int


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """One statistic of a namespace's usage per UTC day, NaN for a day without data.

    ``resource`` is ``cpu`` (cores), ``memory`` (bytes) or ``egress`` (bytes sent), and
    ``statistic`` is ``mean`` or ``max`` of the day, or ``total`` for egress.
    """

    namespace: NamespaceKey
    resource: str
    statistic: str
    unit: str
    days: tuple[date, ...]
    values: tuple[float, ...]
